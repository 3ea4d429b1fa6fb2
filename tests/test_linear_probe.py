"""train.head_init: linear_probe starts fine-tuning from a head fitted on the frozen backbone's features (LP-FT)."""

import json
import logging

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from conftest import LABELS, make_corpus, train_tiny_run
from event_classifier.config import load_config
from event_classifier.errors import EventClassifierError
from event_classifier.model import load_backbone
from event_classifier.training import linear_probe_head


DEFAULT_HEAD = ("--model.pooling=mean", "--train.head_init=auto")  # default.yaml's; tiny.yaml pins cls and random


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
        features = _features(model, batch, pooling)
    np.testing.assert_allclose(after, probe.predict_proba(features.numpy()), atol=1e-4)
    assert not np.allclose(after, torch.softmax(before, dim=-1).numpy(), atol=1e-3)  # the random head is gone
    assert accuracy == pytest.approx(float(np.mean(after.argmax(1) == np.array(targets))))
    assert model.training is False  # the caller's mode is kept


def _features(model, batch, pooling):
    """What the head reads: the mean of the unpadded token states, or BERT's pooler over [CLS]."""
    out = model.bert(**batch)
    if pooling == "cls":
        return out.pooler_output
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return (out.last_hidden_state * mask).sum(1) / mask.sum(1)


def test_a_multi_label_head_becomes_one_binary_probe_per_label(tmp_path, corpus_texts):
    texts, gold = corpus_texts
    also = {"attack": "military_advance", "diplomacy": "other"}  # a second event on two labels' paragraphs
    targets = np.array([[name in (g, also.get(g)) for name in LABELS] for g in gold], dtype=float)
    targets[:, 2] = 0.0  # diplomacy never present: no probe, a constant low logit
    model, tokenizer = load_backbone("tiny-random-bert", LABELS, tmp_path, texts, seed=0, task="multi_label")
    probes, accuracy = linear_probe_head(model, tokenizer, texts, targets, 32, balanced=True, batch_size=16)
    assert probes[2] is None and all(probe is not None for i, probe in enumerate(probes) if i != 2)
    batch = tokenizer(texts, truncation=True, max_length=32, padding=True, return_tensors="pt")
    model.eval()
    with torch.no_grad():
        after = torch.sigmoid(model(**batch).logits).numpy()
        features = _features(model, batch, "mean").numpy()
    for i in (0, 1, 3):
        np.testing.assert_allclose(after[:, i], probes[i].predict_proba(features)[:, 1], atol=1e-4)
    assert np.all(after[:, 2] < 1e-3)  # the train frequency of a label never seen, clipped
    assert accuracy == pytest.approx(float(np.mean((after > 0.5) == (targets > 0.5))))


def test_auto_is_the_probe_start_for_single_label_and_the_random_one_for_multi_label():
    assert load_config("configs/default.yaml").train.head_init == "auto"
    assert load_config("configs/default.yaml").resolved_head_init == "linear_probe"
    assert load_config("configs/default.yaml", ["--model.task=multi_label"]).resolved_head_init == "random"
    chosen = ["--model.task=multi_label", "--train.head_init=linear_probe"]
    assert load_config("configs/default.yaml", chosen).resolved_head_init == "linear_probe"


def test_the_default_run_starts_from_the_probe_and_learns(tmp_path):
    _, run = train_tiny_run(tmp_path, 12, "--train.precision=fp32", *DEFAULT_HEAD)
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.5 < metrics["train"]["linear_probe_train_accuracy"] <= 1  # the mean of the token states separates the labels
    assert metrics["test"]["macro_f1"] > 0.6


def test_fine_tuning_one_of_our_model_folders_keeps_its_trained_head(tmp_path, caplog):
    _, first = train_tiny_run(tmp_path / "one", 12, "--train.precision=fp32", *DEFAULT_HEAD)
    with caplog.at_level(logging.INFO, logger="event_classifier.training"):
        _, second = train_tiny_run(tmp_path / "two", 1, "--train.precision=fp32", *DEFAULT_HEAD,
                                   f"--model.name={first / 'model'}", "--train.learning_rate=1e-9")
    assert json.loads((second / "metrics.json").read_text())["train"]["linear_probe_train_accuracy"] is None
    assert "its head is kept" in caplog.text
    trained = load_file(first / "model" / "model.safetensors")["classifier.weight"]
    kept = load_file(second / "model" / "model.safetensors")["classifier.weight"]
    torch.testing.assert_close(kept, trained, atol=1e-6, rtol=0)  # one epoch at a vanishing rate: the head is the first run's


def test_bad_head_init_settings_are_one_line_errors_naming_the_config(tmp_path):
    with pytest.raises(EventClassifierError, match=r"configs/tiny.yaml: train.head_init must be auto or linear_probe or random, got 'lp'"):
        load_config("configs/tiny.yaml", ["--train.head_init=lp"])
    texts = ["troops entered the town", "ministers met"]
    model, tokenizer = load_backbone("tiny-random-bert", LABELS, tmp_path, texts, seed=0)
    with pytest.raises(EventClassifierError, match="holds one label only"):
        linear_probe_head(model, tokenizer, texts, [0, 0], 16, balanced=True)
