"""train.head_init: linear_probe starts fine-tuning from a head fitted on the frozen backbone's features (LP-FT)."""

import json

import numpy as np
import pytest
import torch

from conftest import LABELS, make_corpus, train_tiny_run
from event_classifier.config import load_config
from event_classifier.errors import EventClassifierError
from event_classifier.model import load_backbone
from event_classifier.training import linear_probe_head


@pytest.fixture(scope="module")
def corpus_texts():
    rows = make_corpus()
    return [r["text"] for r in rows], [r["label"] for r in rows]


@pytest.mark.parametrize("pooling", ["cls", "mean"])
@pytest.mark.parametrize("labels", [LABELS, LABELS[:2]], ids=["four labels", "two labels"])
def test_the_head_becomes_the_probe_on_the_features_it_reads(tmp_path, corpus_texts, pooling, labels):
    texts, gold = corpus_texts
    kept = [(t, labels.index(g)) for t, g in zip(texts, gold) if g in labels]
    texts, targets = [t for t, _ in kept], [y for _, y in kept]
    model, tokenizer = load_backbone("tiny-random-bert", labels, tmp_path, texts, seed=0, pooling=pooling)
    batch = tokenizer(texts, truncation=True, max_length=32, padding=True, return_tensors="pt")
    model.eval()
    with torch.no_grad():
        before = model(**batch).logits
    probe, accuracy = linear_probe_head(model, tokenizer, texts, targets, 32, balanced=True, batch_size=16)
    with torch.no_grad():
        after = torch.softmax(model(**batch).logits, dim=-1).numpy()
        out = model.bert(**batch)
        if pooling == "mean":
            mask = batch["attention_mask"].unsqueeze(-1).float()
            features = (out.last_hidden_state * mask).sum(1) / mask.sum(1)
        else:
            features = out.pooler_output
    np.testing.assert_allclose(after, probe.predict_proba(features.numpy()), atol=1e-4)
    assert not np.allclose(after, torch.softmax(before, dim=-1).numpy(), atol=1e-3)  # the random head is gone
    assert accuracy == pytest.approx(float(np.mean(after.argmax(1) == np.array(targets))))
    assert model.training is False  # the caller's mode is kept


def test_a_run_with_the_probe_start_records_it_and_learns(tmp_path):
    _, run = train_tiny_run(tmp_path, 12, "--train.precision=fp32", "--model.pooling=mean", "--train.head_init=linear_probe")
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.5 < metrics["train"]["linear_probe_train_accuracy"] <= 1  # the mean of the token states separates the labels
    assert metrics["test"]["macro_f1"] > 0.6


def test_bad_head_init_settings_are_one_line_errors_naming_the_config(tmp_path):
    with pytest.raises(EventClassifierError, match=r"configs/tiny.yaml: train.head_init must be random or linear_probe, got 'lp'"):
        load_config("configs/tiny.yaml", ["--train.head_init=lp"])
    with pytest.raises(EventClassifierError, match=r"linear_probe applies to single_label models"):
        load_config("configs/tiny.yaml", ["--train.head_init=linear_probe", "--model.task=multi_label"])
    texts = ["troops entered the town", "ministers met"]
    model, tokenizer = load_backbone("tiny-random-bert", LABELS, tmp_path, texts, seed=0)
    with pytest.raises(EventClassifierError, match="holds one label only"):
        linear_probe_head(model, tokenizer, texts, [0, 0], 16, balanced=True)
