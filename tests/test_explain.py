"""Explanations: word-level evidence from Captum on a tiny trained model, and `predict.py --explain`."""

import csv
import json
from pathlib import Path

import pytest

from event_classifier.cli import predict_main
from event_classifier.errors import EventClassifierError
from event_classifier.explain import METHODS, Explainer, deletion_drop
from event_classifier.inference import Ensemble, Predictor

from conftest import make_corpus, save_tiny_model, train_tiny_run


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    _, run = train_tiny_run(tmp_path_factory.mktemp("explain"))
    return run


@pytest.mark.parametrize("method", METHODS)
def test_evidence_is_words_of_the_paragraph_with_shares_as_weights(trained, method):
    explainer = Explainer(Predictor(trained), method=method, top_k=5)
    texts = [r["text"] for r in make_corpus(n_articles=2, seed=7)]
    evidence = explainer.explain(texts)
    assert len(evidence) == len(texts)
    for text, words in zip(texts, evidence):
        assert 0 < len(words) <= 5 and sum(abs(w["weight"]) for w in words) <= 1.0001
        assert all(text[w["start"]:w["end"]] == w["token"] and w["token"].strip(".") for w in words)
        assert [abs(w["weight"]) for w in words] == sorted((abs(w["weight"]) for w in words), reverse=True)


def test_evidence_points_at_the_words_that_carry_the_label(trained):
    """Deleting each paragraph's strongest supporting words lowers its label's probability more than deleting as
    many words at random."""
    predictor = Predictor(trained)
    texts = [r["text"] for r in make_corpus(n_articles=6, seed=11)]
    drop = deletion_drop(predictor, texts, Explainer(predictor).explain(texts))
    assert drop["evidence"] > drop["random"]


def test_a_paragraph_longer_than_the_window_is_explained_over_all_its_windows(tmp_path):
    predictor = Predictor(save_tiny_model(tmp_path / "m", max_length=16))
    words = "troops captured the ridge town after shelling near the river village on monday".split()
    text = " ".join(words * 4)
    evidence = Explainer(predictor, top_k=100).explain([text])[0]
    assert max(w["start"] for w in evidence) > len(text) // 2  # words of the later windows are weighed too


def test_explaining_an_ensemble_or_an_unknown_label_is_refused(tmp_path):
    model = save_tiny_model(tmp_path / "m")
    with pytest.raises(EventClassifierError, match="single --model"):
        Explainer(Ensemble([model, model]))
    with pytest.raises(EventClassifierError, match="cannot explain"):
        Explainer(Predictor(model)).explain(["Troops took the town."], ["riot"])
    with pytest.raises(EventClassifierError, match="use one of occlusion, ig"):
        Explainer(Predictor(model), method="lime")
    with pytest.raises(EventClassifierError, match="drop --quantize"):
        Explainer(Predictor(model, quantize=True), method="ig")
    assert Explainer(Predictor(model, quantize=True)).explain(["Troops took the town."])[0]


def test_predict_explain_adds_evidence_to_jsonl_and_csv_rows(trained, tmp_path):
    article = tmp_path / "a.txt"
    article.write_text("Troops captured the ridge town.\n\nTalks and a ceasefire agreement were signed.\n")
    out = tmp_path / "rows.jsonl"
    assert predict_main(["--model", str(trained), str(article), "--output", str(out), "--explain"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2 and all(r["evidence"] and {"token", "weight", "start", "end"} <= set(r["evidence"][0]) for r in rows)
    table = tmp_path / "rows.csv"
    assert predict_main(["--model", str(trained), str(article), "--output", str(table), "--explain",
                         "--explain-method", "ig"]) == 0
    row = next(csv.DictReader(table.open()))
    assert json.loads(row["evidence"])[0]["token"] in row["text"]  # a JSON list in one column


def test_an_onnx_export_is_explained_by_occlusion_and_refused_by_integrated_gradients(tmp_path):
    from event_classifier.onnx_backend import export_onnx

    exported = Predictor(export_onnx(save_tiny_model(tmp_path / "m"), tmp_path / "onnx"))
    evidence = Explainer(exported).explain(["Troops took the ridge town."])[0]
    assert evidence and all("Troops took the ridge town."[w["start"]:w["end"]] == w["token"] for w in evidence)
    with pytest.raises(EventClassifierError, match="ONNX export"):
        Explainer(exported, method="ig")
