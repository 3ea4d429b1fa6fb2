"""train.rdrop_alpha: R-Drop runs each training batch twice (two dropout draws) and adds the symmetric KL divergence
between the two answers to the mean of their cross-entropies."""

import pytest
import torch
from transformers import DataCollatorWithPadding, TrainingArguments

from conftest import LABELS, make_corpus
from event_classifier.config import load_config
from event_classifier.errors import EventClassifierError
from event_classifier.model import load_backbone
from event_classifier.training import _LayerwiseTrainer, _weighted_loss, fit, symmetric_kl


def test_symmetric_kl_is_the_mean_of_both_directions_over_rows_and_zero_for_equal_answers():
    p_logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    q_logits = torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.4, 1.0]])
    p, q = p_logits.softmax(-1), q_logits.softmax(-1)
    by_row = ((p * (p / q).log()).sum(-1) + (q * (q / p).log()).sum(-1)) / 2
    assert symmetric_kl(p_logits, q_logits).item() == pytest.approx(by_row.mean().item(), rel=1e-6)
    assert symmetric_kl(q_logits, p_logits).item() == pytest.approx(symmetric_kl(p_logits, q_logits).item(), rel=1e-6)
    assert symmetric_kl(p_logits, p_logits + 3.0).item() == pytest.approx(0.0, abs=1e-7)  # a shift is the same answer


def _logits(model, batch):
    return model(**{k: v for k, v in batch.items() if k != "labels"}).logits


def _trainer(tmp_path, alpha):
    texts = [r["text"] for r in make_corpus()]
    model, tokenizer = load_backbone("tiny-random-bert", LABELS, tmp_path / "backbone", texts, seed=0)
    args = TrainingArguments(output_dir=str(tmp_path / "out"), use_cpu=True, report_to="none")
    trainer = _LayerwiseTrainer(model=model, args=args, processing_class=tokenizer, compute_loss_func=_weighted_loss(None),
                                data_collator=DataCollatorWithPadding(tokenizer), layer_lr_decay=1.0, rdrop_alpha=alpha)
    batch = DataCollatorWithPadding(tokenizer)([{**tokenizer(t), "labels": i % len(LABELS)} for i, t in enumerate(texts[:6])])
    return trainer, model, batch


def test_a_training_step_runs_the_batch_twice_in_one_pass_and_adds_alpha_times_the_kl(tmp_path):
    trainer, model, batch = _trainer(tmp_path, alpha=2.0)
    model.train()
    doubled = {key: torch.cat([value, value]) for key, value in batch.items()}
    torch.manual_seed(7)
    logits = _logits(model, doubled)
    first, second = logits.chunk(2)
    assert not torch.allclose(first, second)  # dropout drew differently for the two copies
    expected = torch.nn.functional.cross_entropy(logits, doubled["labels"]) + 2.0 * symmetric_kl(first, second)
    torch.manual_seed(7)
    loss = trainer.compute_loss(model, dict(batch))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_evaluation_and_alpha_zero_keep_the_plain_loss(tmp_path):
    trainer, model, batch = _trainer(tmp_path, alpha=2.0)
    model.eval()
    plain = torch.nn.functional.cross_entropy(_logits(model, batch), batch["labels"])
    assert trainer.compute_loss(model, dict(batch)).item() == pytest.approx(plain.item(), rel=1e-6)
    trainer.rdrop_alpha = 0.0
    model.train()
    torch.manual_seed(3)
    once = torch.nn.functional.cross_entropy(_logits(model, batch), batch["labels"])
    torch.manual_seed(3)
    assert trainer.compute_loss(model, dict(batch)).item() == pytest.approx(once.item(), rel=1e-6)


def test_train_py_trains_with_r_drop_and_the_kl_term_changes_the_model(tmp_path):
    """Through fit: same seed and data, so only the doubled batch and its KL term make the encoder differ."""
    rows = make_corpus()
    rows = {"train": rows[:96], "dev": rows[96:]}
    config = load_config("configs/tiny.yaml", ["--train.epochs=2", "--train.epoch_choice=fixed"])
    plain = fit(config, rows, tmp_path / "plain")
    config.train.rdrop_alpha = 5.0
    rdrop = fit(config, rows, tmp_path / "rdrop")
    assert set(rdrop.model.state_dict()) == set(plain.model.state_dict())
    encoder = [n for n in plain.model.state_dict() if "encoder.layer.0." in n and n.endswith("weight")]
    assert any(not torch.allclose(plain.model.state_dict()[n], rdrop.model.state_dict()[n], atol=1e-7) for n in encoder)
    assert rdrop.stats["steps"] == plain.stats["steps"]  # one optimizer step per batch, as without R-Drop


@pytest.mark.parametrize("options, message", [
    (["--train.rdrop_alpha=-1"], r"train.rdrop_alpha must be at least 0, got -1"),
    (["--train.rdrop_alpha=1", "--model.task=multi_label"], r"train.rdrop_alpha applies to single_label models"),
])
def test_bad_rdrop_settings_are_refused_in_one_line(options, message):
    with pytest.raises(EventClassifierError, match=message):
        load_config("configs/tiny.yaml", options)
