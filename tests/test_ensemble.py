"""Seed ensembles: several models with one label set predict and evaluate as one, averaging calibrated probabilities."""

import json

import numpy as np
import pytest

from event_classifier.cli import evaluate_main, predict_main
from event_classifier.inference import Ensemble, Predictor, load_predictor

from conftest import LABELS, save_tiny_model

TEXTS = ["Troops took the ridge town.", "Rockets hit the depot.", "Envoys met for talks in Geneva.", "Prices rose."]


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ens")
    first = save_tiny_model(tmp / "a", temperature=1.0)
    second = save_tiny_model(tmp / "b", temperature=3.0)  # same weights, another temperature: other probabilities
    return first, second


def test_ensemble_probabilities_are_the_mean_of_its_members(two_models):
    a, b = (Predictor(m).predict_proba(TEXTS) for m in two_models)
    assert not np.allclose(a, b)
    together = Ensemble(list(two_models)).predict_proba(TEXTS)
    assert together == pytest.approx((a + b) / 2, abs=1e-9)
    assert together.sum(axis=1) == pytest.approx(np.ones(len(TEXTS)))
    assert isinstance(load_predictor([two_models[0]]), Predictor) and not isinstance(load_predictor([two_models[0]]), Ensemble)


def test_ensemble_refuses_models_with_other_labels(two_models, tmp_path, capsys):
    other = save_tiny_model(tmp_path / "c", labels=["x", "y"], fallback_label=None)
    assert predict_main(["--model", str(two_models[0]), "--model", str(other), "-"]) == 2
    assert "an ensemble needs models of one label set" in capsys.readouterr().err


def test_predict_and_evaluate_take_several_models(two_models, tmp_path):
    article = tmp_path / "a.txt"
    article.write_text("\n\n".join(TEXTS))
    out = tmp_path / "out.jsonl"
    assert predict_main(["--model", str(two_models[0]), "--model", str(two_models[1]), str(article), "--output", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    expected = Ensemble(list(two_models)).predict_proba(TEXTS)
    assert np.array([list(r["probs"].values()) for r in rows]) == pytest.approx(expected, abs=1e-5)
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": label}) + "\n" for t, label in zip(TEXTS, LABELS)))
    assert evaluate_main([str(two_models[0]), str(two_models[1]), "--ensemble", "--data", str(data),
                          "--output-dir", str(tmp_path / "ev")]) == 0
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["n"] == 4


def test_models_listed_after_one_model_flag_are_refused_not_read_as_articles(two_models, tmp_path, capsys):
    """`--model A B` would make B an input folder, and a run folder holds .jsonl files with texts: refuse it."""
    article = tmp_path / "a.txt"
    article.write_text("\n\n".join(TEXTS))
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "model" / "config.json").write_text("{}")
    (run / "predictions.jsonl").write_text(json.dumps({"text": "Rockets hit the depot."}) + "\n")
    for folder in (two_models[1], run):
        assert predict_main(["--model", str(two_models[0]), str(folder), str(article)]) == 2
        err = capsys.readouterr().err.strip()
        assert str(folder) in err and "own --model" in err and len(err.splitlines()) == 1
