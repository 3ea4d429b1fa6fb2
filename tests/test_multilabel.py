"""Multi-label (issue 13): secondary labels (`also`) in the data, a sigmoid head with thresholds tuned on dev, label-set
metrics, `labels` in predictions and one event-table row per paragraph and label."""

import csv
import io
import json
import random

import numpy as np
import pytest
from fastapi.testclient import TestClient

from event_classifier.calibration import MIN_TUNING_SUPPORT, UNTUNED, tune_thresholds
from event_classifier.cli import evaluate_main, predict_main, prepare_main, train_main
from event_classifier.config import load_config
from event_classifier.errors import EventClassifierError
from event_classifier.fetch import FetchSettings
from event_classifier.inference import Predictor
from event_classifier.serving import ServeSettings, create_app
from event_classifier.sources import read_labelled_file
from event_classifier.training import label_targets, positive_weights

from conftest import LABELS, WORDS, make_corpus, write_jsonl


def make_mixed_corpus(n_articles: int = 40, seed: int = 0) -> list[dict]:
    """make_corpus without its one-off place and name tokens (which a tiny model memorises instead of the label
    words), where half the advance and half the diplomacy paragraphs also report an attack: two attack words are
    added and `also: [attack]` is set. A quarter of the paragraphs carry two labels."""
    rng = random.Random(seed)
    rows = make_corpus(n_articles=n_articles, seed=seed)
    for row in rows:
        words = [w for w in row["text"].rstrip(".").lower().split() if not w.startswith(("place", "name"))]
        article = int(row["article_id"].split("-a")[1])
        if (row["label"], article % 2) in {("military_advance", 0), ("diplomacy", 1)}:
            words += rng.sample(WORDS["attack"], 2)
            row["also"] = ["attack"]
        row["text"] = " ".join(words).capitalize() + "."
    return rows


# --- data --------------------------------------------------------------------------------------------------------

def test_also_is_carried_to_the_prepared_splits_and_counted(tmp_path):
    from event_classifier.data import prepare, read_split

    rows = make_mixed_corpus()
    config = load_config("configs/tiny.yaml", [f"--data.paragraphs={write_jsonl(tmp_path / 'c.jsonl', rows)}",
                                               f"--data.prepared_dir={tmp_path / 'prep'}"])
    manifest = prepare(config)
    prepared = {name: read_split(tmp_path / "prep" / f"{name}.jsonl", LABELS) for name in ("train", "dev", "test")}
    expected = {r["id"]: r.get("also") for r in rows}
    assert all(r.get("also") == expected[r["id"]] for part in prepared.values() for r in part)
    assert sum("also" in r for part in prepared.values() for r in part) == sum("also" in r for r in rows) > 0
    for name, part in prepared.items():
        assert manifest["splits"][name]["also"] == ({"attack": sum("also" in r for r in part)} if any("also" in r for r in part) else {})


def test_a_csv_also_cell_lists_labels_separated_by_semicolons(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("text,label,also\nTroops took Kerel after shelling and talks.,military_advance,attack; diplomacy\n"
                    "Talks opened.,diplomacy,\n")
    rows, _ = read_labelled_file(path, LABELS)
    assert rows[0]["also"] == ["attack", "diplomacy"] and "also" not in rows[1]


@pytest.mark.parametrize("also,message", [
    (["riot"], "unknown label 'riot' in 'also'"),
    (["military_advance"], "'also' repeats the main label 'military_advance'"),
    (["attack", "attack"], "'also' lists a label twice"),
    ("attack", None),  # a plain string is one label, as in a CSV cell: accepted
    ({"attack": 1}, "'also' must be a list of labels"),
])
def test_bad_also_names_the_file_and_line(tmp_path, also, message):
    path = write_jsonl(tmp_path / "p.jsonl", [{"text": "Talks.", "label": "diplomacy"},
                                              {"text": "Troops took Kerel.", "label": "military_advance", "also": also}])
    if message is None:
        assert read_labelled_file(path, LABELS)[0][1]["also"] == ["attack"]
        return
    with pytest.raises(EventClassifierError, match=f"p.jsonl:2: {message}".replace("(", r"\(").replace("[", r"\[")):
        read_labelled_file(path, LABELS)


def test_the_task_is_a_typed_config_field():
    assert load_config(None).model.task == "single_label"
    assert load_config(None, ["--model.task=multi_label"]).model.task == "multi_label"
    with pytest.raises(EventClassifierError, match="model.task must be single_label or multi_label, got 'multi'"):
        load_config(None, ["--model.task=multi"])


# --- training targets, thresholds, calibration, metrics -------------------------------------------------------------

def test_targets_are_the_label_set_then_the_main_label_and_pos_weight_balances_each_label():
    rows = [{"label": "attack"}, {"label": "military_advance", "also": ["attack"]}, {"label": "other"}, {"label": "other"}]
    targets = label_targets(rows, LABELS)
    assert targets.tolist() == [[0, 1, 0, 0, 1], [1, 1, 0, 0, 0], [0, 0, 0, 1, 3], [0, 0, 0, 1, 3]]
    # negatives / positives: advance 3/1, attack 2/2, diplomacy has no positives (1), other 2/2
    assert positive_weights(targets[:, :-1]).tolist() == [3.0, 1.0, 1.0, 1.0]


def test_thresholds_are_tuned_per_label_for_its_secondary_occurrences():
    # b is a secondary label of the five main-a paragraphs where its probability is 0.3 or more; c never is one
    b = [0.35, 0.32, 0.31, 0.34, 0.30, 0.25, 0.2, 0.28]
    probs = np.array([[0.9, p, 0.1] for p in b] + [[0.1, 0.2, 0.8], [0.2, 0.9, 0.3]])
    y = np.array([[1, 1, 0]] * 5 + [[1, 0, 0]] * 3 + [[0, 0, 1], [0, 1, 0]])
    main = np.array([0] * 8 + [2, 1])
    thresholds = tune_thresholds(probs, y, main, ["a", "b", "c"])
    assert 0.28 < thresholds["b"] <= 0.30
    assert thresholds["a"] == thresholds["c"] == 1.0  # no secondary a or c on dev: never added
    assert tune_thresholds(probs, np.eye(3)[main], main, ["a", "b", "c"]) == {"a": 1.0, "b": 1.0, "c": 1.0}


def test_a_threshold_is_not_tuned_on_fewer_secondary_occurrences_than_the_minimum():
    # one dev paragraph with a secondary b at 0.04 would set b's cut at 0.04; below MIN_TUNING_SUPPORT it stays 0.5
    probs = np.array([[0.9, 0.04, 0.1], [0.9, 0.02, 0.1], [0.1, 0.9, 0.1]])
    y = np.array([[1, 1, 0], [1, 0, 0], [0, 1, 0]])
    main = np.array([0, 0, 1])
    assert MIN_TUNING_SUPPORT > 1
    assert tune_thresholds(probs, y, main, ["a", "b", "c"]) == {"a": 1.0, "b": UNTUNED, "c": 1.0} and UNTUNED == 0.5


MIXED = "Troops seized the ridge after drone strikes and shelling wounded many, officials said."  # in no split


@pytest.fixture(scope="module")
def multi_run(tmp_path_factory):
    """prepare -> train a tiny multi-label model on the mixed corpus, through the command lines. Its dev split has 6
    secondary attacks: enough (MIN_TUNING_SUPPORT) to tune the attack threshold."""
    tmp = tmp_path_factory.mktemp("multilabel")
    corpus = write_jsonl(tmp / "c.jsonl", make_mixed_corpus())
    args = ["--config", "configs/tiny.yaml", f"--data.paragraphs={corpus}", f"--data.prepared_dir={tmp / 'prep'}",
            f"--train.output_dir={tmp / 'runs'}"]
    assert prepare_main(args) == 0
    # fp32: `auto` would pick bf16 on a machine with AMX and fp32 elsewhere, and the figures below are for one of them
    assert train_main(args + ["--train.run_name=multi", "--model.task=multi_label", "--train.precision=fp32"]) == 0
    return tmp, tmp / "runs" / "multi"


def _split(tmp, name):
    return [json.loads(line) for line in (tmp / "prep" / f"{name}.jsonl").read_text().splitlines()]


def test_a_tiny_multi_label_model_learns_the_main_label_and_the_second_one(multi_run):
    tmp, run = multi_run
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["macro_f1"] >= 0.9 and metrics["test"]["task"] == "multi_label"  # the main label
    rows = [r for name in ("train", "dev", "test") for r in _split(tmp, name)]
    predicted = Predictor(run).predict([r["text"] for r in rows])
    mixed = [set(p["labels"]) == {r["label"], *r["also"]} for r, p in zip(rows, predicted) if "also" in r]
    single = [p["labels"] == [r["label"]] for r, p in zip(rows, predicted) if "also" not in r]
    # measured 0.675 and 0.99 (no secondary label found would give 0 and 1; one on every paragraph, 1 and about 0.3)
    assert len(mixed) == 40 and np.mean(mixed) >= 0.55 and np.mean(single) >= 0.85
    assert Predictor(run).predict([MIXED])[0]["labels"] == ["military_advance", "attack"]  # a paragraph it never saw


def test_thresholds_are_tuned_on_dev_stored_with_the_model_and_reloaded(multi_run):
    _, run = multi_run
    meta = json.loads((run / "model" / "event_classifier.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    assert meta["task"] == "multi_label" and set(meta["thresholds"]) == set(LABELS)
    assert all(0 < t <= 1 for t in meta["thresholds"].values()) and meta["thresholds"]["attack"] < 1  # dev has secondary attacks
    assert metrics["test"]["label_sets"]["thresholds"] == meta["thresholds"] == Predictor(run).meta.thresholds
    assert 0.05 < meta["temperature"] < 20  # calibrated by BCE on dev, not pinned at a bound
    assert "thresholds tuned on dev" in (run / "model" / "README.md").read_text()


def test_evaluate_prints_label_set_metrics_and_compares_with_the_single_label_baseline(multi_run, capsys):
    tmp, run = multi_run
    assert evaluate_main([str(run)]) == 0
    printed = capsys.readouterr().out
    assert "label sets" in printed and "secondary" in printed and "Hamming loss" in printed
    sets = json.loads((run / "evaluation" / "test" / "metrics.json").read_text())["label_sets"]
    assert {"micro_f1", "macro_f1", "subset_accuracy", "hamming_loss", "per_class", "secondary"} <= set(sets)
    assert evaluate_main([str(run), "--baseline", "--output-dir", str(tmp / "cmp")]) == 0
    table = (tmp / "cmp" / "comparison.md").read_text()
    assert "secondary F1" in table and "| tfidf-logreg baseline |" in table
    results = json.loads((tmp / "cmp" / "comparison.json").read_text())["results"]
    assert results["tfidf-logreg baseline"]["label_sets"]["secondary"]["predicted"] <= results[str(run)]["label_sets"]["secondary"]["predicted"]


def test_predict_writes_labels_and_an_event_row_per_label(multi_run, tmp_path):
    _, run = multi_run
    article = tmp_path / "a.txt"
    article.write_text(MIXED + "\n\nMinisters signed the agreement at the summit on monday, officials said.")
    out, events = tmp_path / "out.jsonl", tmp_path / "events.csv"
    assert predict_main(["--model", str(run), str(article), "--output", str(out), "--events", str(events)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    thresholds = Predictor(run).meta.thresholds
    for r in rows:  # the main label, then every other label at or over its threshold, most probable first
        others = sorted((l for l in LABELS if l != r["label"] and r["probs"][l] >= thresholds[l]), key=lambda l: -r["probs"][l])
        assert r["labels"] == [r["label"], *others]
    assert rows[0]["labels"] == ["military_advance", "attack"]  # so the per-label rows below are exercised
    table = list(csv.DictReader(io.StringIO(events.read_text())))
    expected = [(str(i), label, str(k == 0)) for i, r in enumerate(rows) for k, label in enumerate(r["labels"]) if label != "other"]
    assert [(t["paragraph"], t["label"], t["main"]) for t in table] == expected
    assert float(table[1]["confidence"]) == rows[0]["probs"]["attack"]
    routed = tmp_path / "routed.jsonl"
    assert predict_main(["--model", str(run), str(article), "--output", str(routed), "--min-confidence", "0.9999"]) == 0
    low = [r for r in map(json.loads, routed.read_text().splitlines()) if r["low_confidence"]]
    assert low and all(r["label"] == "other" and r["labels"] == ["other"] for r in low)


def test_the_web_app_serves_secondary_labels_and_the_task(multi_run, tmp_path):
    _, run = multi_run
    app = create_app(run, ServeSettings(feedback_dir=tmp_path / "feedback", fetch=FetchSettings(cache_dir=None, retries=0)))
    client = TestClient(app, base_url="http://127.0.0.1")
    model = client.get("/api/model").json()
    assert model["task"] == "multi_label" and model["thresholds"] == Predictor(run).meta.thresholds
    texts = [MIXED, "Ministers signed the agreement at the summit."]
    answer = client.post("/api/predict", json={"texts": texts}).json()
    direct = Predictor(run).predict(texts)
    assert [p["labels"] for p in answer["paragraphs"]] == [d["labels"] for d in direct]
    assert answer["paragraphs"][0]["labels"] == ["military_advance", "attack"]
    assert [p["label"] for p in answer["paragraphs"]] == [d["label"] for d in direct]
