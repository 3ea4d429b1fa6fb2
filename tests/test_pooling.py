"""model.pooling: mean puts the head on the mean of the token states; the choice travels with the model."""

import json

import numpy as np
import pytest
import torch

from conftest import make_corpus, train_tiny_run
from event_classifier.config import load_config
from event_classifier.errors import EventClassifierError
from event_classifier.explain import Explainer
from event_classifier.inference import Predictor, quantize_int8
from event_classifier.model import MeanPoolingBertForSequenceClassification, MeanPoolingMPNetForSequenceClassification
from event_classifier.model import build_tiny_bert, load_backbone, load_checkpoint
from event_classifier.onnx_backend import export_onnx


@pytest.fixture(scope="module")
def mean_run(tmp_path_factory):
    """A tiny run whose head reads the mean of the token states."""
    _, run = train_tiny_run(tmp_path_factory.mktemp("pooling"), 12, "--train.precision=fp32", "--model.pooling=mean",
                            "--train.head_init=auto")  # default.yaml's head: mean pooling, the linear-probe start
    return run / "model"


def test_the_saved_model_pools_by_the_mean_of_the_unpadded_token_states(mean_run):
    assert json.loads((mean_run / "config.json").read_text())["classifier_pooling"] == "mean"
    model, tokenizer, meta, _ = load_checkpoint(mean_run)
    assert type(model) is MeanPoolingBertForSequenceClassification
    texts = ["Troops entered the town.", "Ministers signed an agreement after long talks in the capital on monday."]
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        states = model.bert(**batch).last_hidden_state
        by_hand = torch.stack([model.classifier(states[i, batch["attention_mask"][i].bool()].mean(dim=0)) for i in range(2)])
        assert torch.allclose(model(**batch).logits, by_hand, atol=1e-5)
        pooled_by_cls = model.classifier(model.bert.pooler(states))
    assert not torch.allclose(by_hand, pooled_by_cls, atol=1e-3)  # the [CLS] head would answer otherwise
    # the pooling learnt the words: the run scores its test split well above chance
    metrics = json.loads((mean_run.parent / "metrics.json").read_text())
    assert metrics["test"]["macro_f1"] > 0.6


def test_the_onnx_export_int8_and_explanations_run_the_mean_head(mean_run, tmp_path):
    texts = [r["text"] for r in make_corpus(seed=5)][:10]
    expected = Predictor(mean_run, precision="fp32").predict_proba(texts)
    np.testing.assert_allclose(Predictor(export_onnx(mean_run, tmp_path / "onnx")).predict_proba(texts), expected, atol=1e-3)
    model, _, _, _ = load_checkpoint(mean_run)
    quantized = quantize_int8(model)
    assert type(quantized) is MeanPoolingBertForSequenceClassification
    assert type(quantized.classifier) is torch.nn.Linear  # the head stays fp32
    evidence = Explainer(Predictor(mean_run, precision="fp32"), top_k=3).explain(texts[:2])
    assert all(len(words) == 3 for words in evidence)


def test_a_bad_pooling_value_is_a_one_line_error_naming_the_config():
    with pytest.raises(EventClassifierError, match=r"configs/tiny.yaml: model.pooling must be cls or mean, got 'max'"):
        load_config("configs/tiny.yaml", ["--model.pooling=max"])


def test_mean_pooling_on_a_backbone_outside_the_bert_family_is_refused(tmp_path):
    from transformers import DistilBertConfig, DistilBertModel

    folder = build_tiny_bert([r["text"] for r in make_corpus()], tmp_path / "distil")  # its tokenizer, another model
    DistilBertModel(DistilBertConfig(vocab_size=1000, dim=32, n_layers=1, n_heads=2, hidden_dim=64)).save_pretrained(folder)
    with pytest.raises(EventClassifierError, match=r"model.pooling mean: backbone .* is a distilbert model.*use model.pooling: cls"):
        load_backbone(str(folder), ["a", "b"], tmp_path, [], seed=0, pooling="mean")
    model, _ = load_backbone(str(folder), ["a", "b"], tmp_path, [], seed=0)  # the default head loads it
    assert model.config.model_type == "distilbert"


def test_fine_tuning_a_model_folder_with_the_other_pooling_warns_and_names_the_fix(tmp_path, caplog):
    from conftest import LABELS, save_tiny_model

    folder = save_tiny_model(tmp_path / "cls_model")  # a [CLS] head
    texts = [r["text"] for r in make_corpus()][:8]
    with caplog.at_level("WARNING", logger="event_classifier.model"):
        load_backbone(str(folder), LABELS, tmp_path / "w", texts, seed=0, pooling="cls")
        assert not caplog.records
        model, _ = load_backbone(str(folder), LABELS, tmp_path / "w", texts, seed=0, pooling="mean")
    assert type(model) is MeanPoolingBertForSequenceClassification
    assert "trained on the cls pooling and this config reads mean" in caplog.text
    assert "--model.pooling=mean" in caplog.text


@pytest.fixture(scope="module")
def mpnet_run(tmp_path_factory):
    """A tiny run over a random 2-layer MPNet (all-mpnet-base-v2's family), mean pooling as default.yaml asks."""
    from transformers import MPNetConfig, MPNetModel

    tmp = tmp_path_factory.mktemp("mpnet")
    folder = build_tiny_bert([r["text"] for r in make_corpus()], tmp / "tiny_mpnet")  # its tokenizer, another model
    vocab_size = json.loads((folder / "config.json").read_text())["vocab_size"]
    torch.manual_seed(0)
    MPNetModel(MPNetConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=130), add_pooling_layer=False).save_pretrained(folder)
    _, run = train_tiny_run(tmp, 12, "--train.precision=fp32", f"--model.name={folder}", "--model.pooling=mean",
                            "--train.head_init=auto")
    return run / "model"


def test_an_mpnet_backbone_trains_and_predicts_with_the_mean_head(mpnet_run, tmp_path):
    assert json.loads((mpnet_run / "config.json").read_text())["model_type"] == "mpnet"
    model, tokenizer, _, _ = load_checkpoint(mpnet_run)
    assert type(model) is MeanPoolingMPNetForSequenceClassification
    assert type(model.classifier) is torch.nn.Linear  # one linear layer, as the linear probe and int8 expect
    texts = ["Troops entered the town.", "Ministers signed an agreement after long talks in the capital on monday."]
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        states = model.mpnet(batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        by_hand = torch.stack([model.classifier(states[i, batch["attention_mask"][i].bool()].mean(dim=0)) for i in range(2)])
        assert torch.allclose(model(**batch).logits, by_hand, atol=1e-5)
    metrics = json.loads((mpnet_run.parent / "metrics.json").read_text())
    assert metrics["train"]["linear_probe_train_accuracy"] > 0  # the probe started the head
    assert metrics["test"]["macro_f1"] > 0.6
    corpus = [r["text"] for r in make_corpus(seed=5)][:10]
    expected = Predictor(mpnet_run, precision="fp32").predict_proba(corpus)
    assert type(quantize_int8(model)) is MeanPoolingMPNetForSequenceClassification
    np.testing.assert_allclose(Predictor(export_onnx(mpnet_run, tmp_path / "onnx")).predict_proba(corpus), expected, atol=1e-3)


def test_a_second_stage_over_an_mpnet_run_starts_from_its_trained_head(mpnet_run, tmp_path):
    """The recipe's stage 2 over an MPNet stage 1: the model folder loads as MPNet with its head, no new probe."""
    _, run = train_tiny_run(tmp_path, 2, "--train.precision=fp32", f"--model.name={mpnet_run}", "--model.pooling=mean")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["train"]["linear_probe_train_accuracy"] is None  # stage 1's head was kept
    model, _, _, _ = load_checkpoint(run / "model")
    assert type(model) is MeanPoolingMPNetForSequenceClassification
    first, _, _, _ = load_checkpoint(mpnet_run)
    assert not torch.equal(model.classifier.weight, first.classifier.weight)  # and it trained on
