"""predict --engine ray: a local Ray limited to 2 CPUs labels a few thousand rows exactly as the local engine does."""

import json
from pathlib import Path

import pytest

from event_classifier.cli import predict_main

from conftest import make_corpus, save_tiny_model, write_jsonl

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow  # about a minute: Ray starts, and each run starts its actors


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def rows_and_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ray")
    corpus = make_corpus(n_articles=500, per_article=4, seed=3)
    rows = [{"id": f"row-{i:05d}", "text": r["text"], "desk": r["article_id"], "n": i} for i, r in enumerate(corpus)]
    return tmp, rows, save_tiny_model(tmp / "model")


def read_jsonl_folder(folder: Path) -> list[dict]:
    return [json.loads(line) for path in sorted(folder.iterdir()) for line in path.read_text().splitlines() if line]


def test_ray_labels_every_row_like_the_local_engine(local_ray, rows_and_model):
    tmp, rows, model = rows_and_model
    source = write_jsonl(tmp / "in.jsonl", rows)
    assert predict_main(["--model", str(model), str(source), "--output", str(tmp / "local.jsonl")]) == 0
    assert predict_main(["--engine", "ray", "--model", str(model), str(source), "--output", str(tmp / "out")]) == 0
    local = {r["id"]: r for r in map(json.loads, (tmp / "local.jsonl").read_text().splitlines())}
    distributed = read_jsonl_folder(tmp / "out")
    assert len(distributed) == len(rows) == 2000
    assert sorted(r["id"] for r in distributed) == sorted(local)
    by_id = {r["id"]: r for r in rows}
    worst = 0.0
    for row in distributed:
        expected = local[row["id"]]
        assert {k: row[k] for k in ("text", "desk", "n")} == {k: by_id[row["id"]][k] for k in ("text", "desk", "n")}
        assert row["label"] == expected["label"]
        worst = max(worst, *(abs(row["probs"][label] - p) for label, p in expected["probs"].items()))
    assert worst < 1e-5


def test_ray_reads_parquet_and_csv_and_writes_parquet(local_ray, rows_and_model):
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp, rows, model = rows_and_model
    part = rows[:300] + [{"id": "row-empty", "text": "  ", "desk": "x", "n": -1}]  # kept, with no prediction
    pq.write_table(pa.Table.from_pylist(part), tmp / "in.parquet")
    assert predict_main(["--engine", "ray", "--model", str(model), str(tmp / "in.parquet"),
                         "--output", str(tmp / "out.parquet")]) == 0
    table = pq.read_table(tmp / "out.parquet")
    assert table.num_rows == 301 and {"id", "text", "desk", "n", "label", "score", "probs"} <= set(table.column_names)
    empty = [r for r in table.to_pylist() if r["id"] == "row-empty"]
    assert empty[0]["label"] is None and empty[0]["probs"] is None

    (tmp / "in.csv").write_text("ref,body\n007,Troops captured the ridge town.\n008,Envoys met for talks.\n")
    assert predict_main(["--engine", "ray", "--model", str(model), str(tmp / "in.csv"), "--text-column", "body",
                         "--id-column", "ref", "--output", str(tmp / "csv-out")]) == 0
    assert sorted(r["id"] for r in read_jsonl_folder(tmp / "csv-out")) == ["007", "008"]  # ids stay strings


@pytest.mark.parametrize("problem, expected", [
    ("missing", "file not found"),
    ("no_text", "no column 'text'"),
    ("article", "--engine ray reads"),
])
def test_bad_ray_inputs_are_one_line_errors(local_ray, rows_and_model, capsys, problem, expected):
    tmp, _, model = rows_and_model
    paths = {"missing": tmp / "nope.jsonl", "no_text": write_jsonl(tmp / "no_text.jsonl", [{"id": 1, "body": "x"}]),
             "article": tmp / "a.txt"}
    paths["article"].write_text("Troops took the town.")
    assert predict_main(["--engine", "ray", "--model", str(model), str(paths[problem]), "--output", str(tmp / "bad")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert expected in err[-1] and err[-1].startswith("error: ")
    assert not (tmp / "bad").exists()
