"""The lexical companion (train.lexical_weight): TF-IDF + logistic regression saved inside the model folder and blended
into every prediction, through training, refit, evaluation, export and loading."""

import json
import shutil

import numpy as np
import pytest

from event_classifier.baseline import train_baseline
from event_classifier.cli import evaluate_main
from event_classifier.config import load_config
from event_classifier.errors import EventClassifierError
from event_classifier.inference import Predictor
from event_classifier.lexical import LEXICAL_FILE, LexicalModel
from event_classifier.onnx_backend import export_onnx

from conftest import LABELS, make_corpus, train_tiny_run


def test_the_saved_companion_predicts_as_the_tfidf_baseline_does(tmp_path):
    rows = make_corpus()
    texts = [r["text"] for r in make_corpus(seed=1)]
    baseline = train_baseline(rows)
    expected = baseline.predict_proba(texts)[:, [list(baseline.classes_).index(label) for label in LABELS]]
    model = LexicalModel.fit(rows, LABELS)
    model.save(tmp_path)
    loaded = LexicalModel.load(tmp_path, LABELS)
    np.testing.assert_allclose(loaded.predict_proba(texts), expected, atol=1e-5)
    assert (loaded.predict_proba(texts).argmax(axis=1) == expected.argmax(axis=1)).all()


def test_a_label_the_training_rows_never_had_gets_probability_zero():
    rows = [r for r in make_corpus() if r["label"] in {"attack", "diplomacy"}]  # two labels: a binary model inside
    probs = LexicalModel.fit(rows, LABELS).predict_proba(["shelling and a drone strike killed two", "ministers signed talks"])
    assert probs[:, [0, 3]].max() < 1e-9 and probs.sum(axis=1) == pytest.approx([1, 1])
    assert probs[0].argmax() == LABELS.index("attack") and probs[1].argmax() == LABELS.index("diplomacy")


def test_a_damaged_or_foreign_companion_file_is_a_one_line_error_naming_it(tmp_path):
    LexicalModel.fit(make_corpus(), LABELS).save(tmp_path)
    with pytest.raises(EventClassifierError, match=rf"{LEXICAL_FILE}: labels .* do not fit"):
        LexicalModel.load(tmp_path, list(reversed(LABELS)))
    (tmp_path / LEXICAL_FILE).write_text('{"labels": []', encoding="utf-8")
    with pytest.raises(EventClassifierError, match=rf"{LEXICAL_FILE}: not a valid lexical model"):
        LexicalModel.load(tmp_path, LABELS)


@pytest.mark.parametrize("override, message", [("--train.lexical_weight=1", "below 1"),
                                               ("--model.task=multi_label", "single_label models")])
def test_a_weight_of_one_or_a_multi_label_model_is_refused(override, message):
    with pytest.raises(EventClassifierError, match=message):
        load_config("configs/tiny.yaml", ["--train.lexical_weight=0.5", override] if "task" in override else [override])


@pytest.fixture(scope="module")
def blended_run(tmp_path_factory):
    """A tiny refit run whose transformer has barely trained (1 epoch), with a companion at weight 0.5."""
    tmp = tmp_path_factory.mktemp("lexical")
    _, run = train_tiny_run(tmp, 1, "--train.precision=fp32", "--train.lexical_weight=0.5", "--train.refit=true")
    return tmp, run


def test_training_saves_the_companion_fitted_on_train_and_dev_and_its_scores_are_the_blends(blended_run):
    tmp, run = blended_run
    model_dir = run / "model"
    meta = json.loads((model_dir / "event_classifier.json").read_text())
    assert meta["lexical_weight"] == 0.5 and (model_dir / LEXICAL_FILE).is_file()
    train_dev = [json.loads(line) for split in ("train", "dev") for line in open(tmp / "prepared" / f"{split}.jsonl")]
    test = [json.loads(line) for line in open(tmp / "prepared" / "test.jsonl")]
    texts = [r["text"] for r in test]
    predictor = Predictor(model_dir, precision="fp32")
    refitted = LexicalModel.fit(train_dev, LABELS, seed=42)  # the refit companion: train+dev, the run's seed
    np.testing.assert_allclose(predictor.lexical.predict_proba(texts), refitted.predict_proba(texts), atol=1e-5)
    metrics = json.loads((run / "metrics.json").read_text())
    blend_temperature = predictor.lexical.blend_temperature  # fitted on dev by the selection run, kept by the refit
    assert blend_temperature == metrics["train"]["lexical_blend_temperature"] and blend_temperature != pytest.approx(1, abs=0.05)
    blended = predictor.predict_proba(texts)
    predictor.lexical = None
    alone = predictor.predict_proba(texts)
    mixed = 0.5 * alone + 0.5 * refitted.predict_proba(texts)
    scaled = np.exp(np.log(mixed) / blend_temperature)
    np.testing.assert_allclose(blended, scaled / scaled.sum(axis=1, keepdims=True), atol=1e-5)
    assert (blended.argmax(axis=1) == mixed.argmax(axis=1)).all()  # a temperature changes confidence, not labels
    # the words carry the labels, so the companion lifts a transformer that has barely trained
    truth = np.array([LABELS.index(r["label"]) for r in test])
    assert (blended.argmax(axis=1) == truth).mean() > (alone.argmax(axis=1) == truth).mean()
    assert metrics["test"]["lexical_weight"] == 0.5
    assert "Lexical companion" in (model_dir / "README.md").read_text()
    assert evaluate_main([str(run), "--output-dir", str(tmp / "ev")]) == 0
    assert json.loads((tmp / "ev" / "metrics.json").read_text())["macro_f1"] == pytest.approx(metrics["test"]["macro_f1"])


def test_the_onnx_export_carries_the_companion_and_blends_alike(blended_run, tmp_path):
    _, run = blended_run
    exported = export_onnx(run / "model", tmp_path / "onnx")
    texts = [r["text"] for r in make_corpus(seed=3)][:12]
    assert (exported / LEXICAL_FILE).is_file()
    np.testing.assert_allclose(Predictor(exported).predict_proba(texts),
                               Predictor(run / "model", precision="fp32").predict_proba(texts), atol=1e-3)


def test_a_model_folder_missing_its_companion_says_which_file_and_the_fix(blended_run, tmp_path):
    _, run = blended_run
    copy = shutil.copytree(run / "model", tmp_path / "model")
    (copy / LEXICAL_FILE).unlink()
    with pytest.raises(EventClassifierError, match=rf"{LEXICAL_FILE}: missing; .*restore the model folder"):
        Predictor(copy)
