"""Model soups: runs of one config averaged weight by weight into one model that every command loads."""

import json

import numpy as np
import pytest
import torch

from event_classifier.cli import predict_main, soup_main, train_main
from event_classifier.inference import Predictor
from event_classifier.model import load_checkpoint

from conftest import save_tiny_model

TEXTS = ["Troops took the ridge town.", "Rockets hit the depot.", "Envoys met for talks in Geneva.", "Prices rose."]


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    """Two runs of the tiny config that differ only by seed and their soup, trained as a user would:
    `train.py --seeds 1,2 --soup`."""
    from conftest import make_corpus, write_jsonl

    from event_classifier.cli import prepare_main

    tmp = tmp_path_factory.mktemp("soup")
    corpus = write_jsonl(tmp / "paragraphs" / "c.jsonl", make_corpus())
    args = ["--config", "configs/tiny.yaml", f"--data.paragraphs={corpus}", f"--data.prepared_dir={tmp / 'prepared'}",
            f"--train.output_dir={tmp / 'runs'}", "--train.run_name=r", "--train.epochs=3"]
    assert prepare_main(args) == 0
    assert train_main(args + ["--seeds", "1,2", "--soup"]) == 0
    return tmp, tmp / "runs" / "r-seed1", tmp / "runs" / "r-seed2"


def test_a_soup_is_the_mean_of_its_members_weights_calibrated_and_scored_on_their_splits(two_seeds, capsys):
    tmp, a, b = two_seeds
    out = tmp / "runs" / "r-soup"  # written by train.py --soup
    again = tmp / "again"
    assert soup_main(["--model", str(a), "--model", str(b), "--output", str(again)]) == 0
    assert "macro-F1" in capsys.readouterr().err
    assert json.loads((again / "metrics.json").read_text())["test"] == json.loads((out / "metrics.json").read_text())["test"]
    (ma, *_), (mb, *_), (ms, *_) = (load_checkpoint(p) for p in (a, b, out))
    for (name, wa), wb, ws in zip(ma.state_dict().items(), mb.state_dict().values(), ms.state_dict().values()):
        if wa.is_floating_point():
            assert torch.allclose(ws, (wa + wb) / 2, atol=1e-6), name
    assert not torch.equal(ma.classifier.weight, mb.classifier.weight)  # the seeds did train apart
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["soup"]["calibration"] == "fitted on dev" and metrics["soup"]["members"] == [str(a), str(b)]
    assert metrics["dev"]["n"] > 0 and metrics["test"]["n"] > 0
    assert "event-classifier soup" in (out / "model" / "README.md").read_text()
    assert (out / "config.yaml").read_text() == (a / "config.yaml").read_text()  # a run folder, as evaluate.py expects
    probs = Predictor(out).predict_proba(TEXTS)
    assert probs.sum(axis=1) == pytest.approx(np.ones(len(TEXTS)), abs=1e-5)
    assert not np.allclose(probs, Predictor(a).predict_proba(TEXTS))
    rows = tmp / "rows.jsonl"
    article = tmp / "a.txt"
    article.write_text("\n\n".join(TEXTS))
    assert predict_main(["--model", str(out), str(article), "--output", str(rows)]) == 0
    assert len(rows.read_text().splitlines()) == len(TEXTS)


def test_model_folders_without_a_run_keep_the_mean_of_their_temperatures(tmp_path):
    a = save_tiny_model(tmp_path / "a", temperature=1.0)
    b = save_tiny_model(tmp_path / "b", temperature=3.0)
    assert soup_main(["--model", str(a), "--model", str(b), "--output", str(tmp_path / "s")]) == 0
    metrics = json.loads((tmp_path / "s" / "metrics.json").read_text())
    assert metrics["soup"]["calibration"] == "the mean of the members' temperatures"
    assert Predictor(tmp_path / "s").temperature == pytest.approx(2.0)


def test_a_soup_refuses_what_does_not_average(tmp_path, capsys):
    a = save_tiny_model(tmp_path / "a")
    other = save_tiny_model(tmp_path / "c", labels=["x", "y"], fallback_label=None)
    longer = save_tiny_model(tmp_path / "d", task="multi_label")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("kept")
    cases = [
        (["--model", str(a), "--output", str(tmp_path / "s")], "at least two models"),
        (["--model", str(a), "--model", str(other), "--output", str(tmp_path / "s")], "labels"),
        (["--model", str(a), "--model", str(longer), "--output", str(tmp_path / "s")], "one task"),
        (["--model", str(a), "--model", str(a), "--output", str(tmp_path / "full")], "--overwrite"),
        (["--model", str(a), "--model", str(tmp_path / "nope"), "--output", str(tmp_path / "s")], "nope"),
    ]
    for argv, message in cases:
        assert soup_main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    assert (tmp_path / "full" / "x").read_text() == "kept" and not (tmp_path / "s").exists()
    assert train_main(["--config", "configs/tiny.yaml", "--soup"]) == 2
    assert "give --seeds" in capsys.readouterr().err
