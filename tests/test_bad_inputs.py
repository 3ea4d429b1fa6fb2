"""Every bad input a careless user can give: one line on stderr naming the file and the fix, exit code 2, no traceback.

| case | command | message contains |
|---|---|---|
| missing input file | predict | `file not found` |
| empty input file | predict | `file is empty` |
| binary file | predict | `binary file` |
| non-UTF-8 text | predict | `not UTF-8` and `iconv` |
| JSONL with a broken line | predict | `:2: broken JSON line` |
| JSONL line without `text` | predict | `missing 'text'` |
| unsupported input type | predict | `unsupported input type` |
| labelled data without `label` | prepare | `missing 'label'` |
| a label not in the label set | prepare | `unknown label 'riot'` |
| an `also` label not in the label set | prepare | `unknown label 'riot' in 'also'` |
| `also` repeating the main label | prepare | `'also' repeats the main label` |
| a class with no train examples | prepare | `no train examples` |
| too few articles after deduplication | prepare | `too few` |
| unknown config key | train | `'train.epoch'` |
| wrong config type | train | `batch_size` |
| config file missing | train | `config file not found` |
| splits not prepared | train | `run python data/prepare.py` |
| folder that is not a model | predict | `not a model folder` |
| corrupt checkpoint | predict | `corrupt or incomplete` |
| data labels differ from the model's | evaluate | `not among the model's labels` |
| bad --min-confidence | predict | `must be in [0, 1)` |
| unknown source name | prepare | `no codebook` |
"""

import json
from pathlib import Path

import pytest

from event_classifier.cli import evaluate_main, predict_main, prepare_main, train_main

from conftest import LABELS, make_corpus, save_tiny_model, write_jsonl


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("bad") / "model")


def _write(tmp_path: Path, name: str, content) -> str:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return str(path)


def _prepare_args(tmp_path: Path, paragraphs: str) -> list[str]:
    return ["--config", "configs/tiny.yaml", f"--data.paragraphs={paragraphs}", f"--data.prepared_dir={tmp_path / 'prep'}"]


def _corrupt_model(tmp_path: Path, model_dir: Path) -> str:
    broken = tmp_path / "broken"
    broken.mkdir()
    for item in model_dir.iterdir():
        (broken / item.name).write_bytes(item.read_bytes())
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # a copy cut short
    return str(broken)


CASES = {
    "missing input file": lambda t, m: (predict_main, ["--model", m, str(t / "nope.txt")], ["nope.txt", "file not found"]),
    "empty input file": lambda t, m: (predict_main, ["--model", m, _write(t, "e.txt", "  \n\n")], ["e.txt", "file is empty"]),
    "binary file": lambda t, m: (predict_main, ["--model", m, _write(t, "b.txt", b"\x00\x01\x02PK")], ["b.txt", "binary file"]),
    "non-UTF-8 text": lambda t, m: (predict_main, ["--model", m, _write(t, "l.txt", "Troops took Mos\xe9n.".encode("latin-1"))],
                                    ["l.txt", "not UTF-8", "iconv"]),
    "broken JSONL line": lambda t, m: (predict_main, ["--model", m, _write(t, "j.jsonl", '{"text": "ok"}\n{"text": oops\n')],
                                       ["j.jsonl:2", "broken JSON line"]),
    "JSONL without text": lambda t, m: (predict_main, ["--model", m, _write(t, "n.jsonl", '{"body": "ok"}\n')],
                                        ["n.jsonl:1", "missing 'text'"]),
    "unsupported input type": lambda t, m: (predict_main, ["--model", m, _write(t, "a.pdf", "%PDF")], ["a.pdf", "unsupported"]),
    "data without label": lambda t, m: (prepare_main, _prepare_args(t, _write(t, "p.jsonl", '{"text": "Talks."}\n')),
                                        ["p.jsonl:1", "missing 'label'"]),
    "label not in label set": lambda t, m: (prepare_main, _prepare_args(t, _write(t, "p.jsonl", '{"text": "x", "label": "riot"}\n')),
                                            ["p.jsonl:1", "unknown label 'riot'", "use one of"]),
    "also label not in label set": lambda t, m: (
        prepare_main, _prepare_args(t, _write(t, "p.jsonl", '{"text": "x", "label": "attack", "also": ["riot"]}\n')),
        ["p.jsonl:1", "unknown label 'riot' in 'also'", "use one of"]),
    "also repeating the main label": lambda t, m: (
        prepare_main, _prepare_args(t, _write(t, "p.jsonl", '{"text": "x", "label": "attack", "also": ["attack"]}\n')),
        ["p.jsonl:1", "'also' repeats the main label 'attack'"]),
    "class with no train examples": lambda t, m: (
        prepare_main, _prepare_args(t, str(write_jsonl(t / "c.jsonl", [r for r in make_corpus() if r["label"] != "attack"]))),
        ["no train examples", "attack"]),
    "too few articles after dedup": lambda t, m: (
        prepare_main, _prepare_args(t, str(write_jsonl(t / "d.jsonl", [dict(r, text="Same text.") for r in make_corpus()]))),
        ["too few"]),
    "unknown config key": lambda t, m: (train_main, ["--config", "configs/tiny.yaml", "--train.epoch=3"], ["train.epoch"]),
    "wrong config type": lambda t, m: (train_main, ["--train.batch_size=lots"], ["batch_size"]),
    "missing config file": lambda t, m: (train_main, ["--config", str(t / "x.yaml")], ["x.yaml", "config file not found"]),
    "splits not prepared": lambda t, m: (train_main, ["--config", "configs/tiny.yaml", f"--data.prepared_dir={t / 'none'}",
                                                      f"--train.output_dir={t / 'runs'}"], ["train.jsonl", "data/prepare.py"]),
    "folder that is not a model": lambda t, m: (predict_main, ["--model", str(t), _write(t, "a.txt", "Talks.")],
                                                ["not a model folder"]),
    "corrupt checkpoint": lambda t, m: (predict_main, ["--model", _corrupt_model(t, Path(m)), _write(t, "a.txt", "Talks.")],
                                        ["broken", "corrupt or incomplete"]),
    "labels differ from the model's": lambda t, m: (
        evaluate_main, [m, "--data", str(write_jsonl(t / "v.jsonl", [{"text": "x", "label": "protest"}]))],
        ["unknown label 'protest'"]),
    "bad min-confidence": lambda t, m: (predict_main, ["--model", m, "--min-confidence", "1.5", _write(t, "a.txt", "x")],
                                        ["--min-confidence", "[0, 1)"]),
    "unknown source": lambda t, m: (prepare_main, ["--config", "configs/tiny.yaml", "--source", f"gdelt={t / 'g.csv'}"],
                                    ["no codebook", "gdelt"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gives_one_clear_line_and_exit_2(case, tmp_path, model_dir, capsys):
    main, argv, expected = CASES[case](tmp_path, str(model_dir))
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    for fragment in expected:
        assert fragment in lines[0], lines[0]


def test_whitespace_paragraphs_are_skipped_and_counted(tmp_path, model_dir, capsys):
    article = _write(tmp_path, "a.jsonl", '{"text": "Talks."}\n{"text": "   "}\n{"text": ""}\n{"text": "Shelling."}\n')
    out = tmp_path / "o.jsonl"
    assert predict_main(["--model", str(model_dir), article, "--output", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 2
    err = capsys.readouterr().err
    assert "2 paragraphs" in err and "2 empty skipped" in err


def test_a_100000_word_paragraph_is_predicted_from_all_its_windows(tmp_path, model_dir):
    article = _write(tmp_path, "long.txt", " ".join(["troops entered the village"] * 25_000))
    out = tmp_path / "o.jsonl"
    assert predict_main(["--model", str(model_dir), article, "--output", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["label"] in LABELS and len(rows[0]["text"].split()) == 100_000


def test_prediction_output_is_written_atomically(tmp_path, model_dir):
    """A failing run leaves no half-written output file behind."""
    out = tmp_path / "o.jsonl"
    good = _write(tmp_path, "good.txt", "Talks opened.")
    assert predict_main(["--model", str(model_dir), good, str(tmp_path / "missing.txt"), "--output", str(out)]) == 2
    assert not out.exists() and not list(tmp_path.glob(".o.jsonl*"))
