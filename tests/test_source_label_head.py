"""train.source_label_weight: a second head learns each row's source label (CASE's SubType) beside the main one, and
is gone from the saved model."""

import pytest
import torch

from conftest import make_corpus
from event_classifier.config import load_config
from event_classifier.errors import EventClassifierError
from event_classifier.training import _weighted_loss, _with_source_labels, fit, source_label_ids

SUBTYPES = {"military_advance": ["GOV_REGAINS_TERIT", "NON_STATE_ACTOR_OVERTAKES_TER"], "attack": ["AIR_STRIKE", "GRENADE"],
            "diplomacy": ["DIPLO", "AGREEMENT"], "other": ["ARREST", "CHANGE_TO_GROUP_ACT"]}


def _rows() -> dict[str, list[dict]]:
    rows = make_corpus()
    for i, row in enumerate(rows):
        if i % 5:  # every fifth row is our own paragraph, without a source label
            row["source_label"] = SUBTYPES[row["label"]][i % 2]
    return {"train": rows[:96], "dev": rows[96:]}


def test_the_loss_adds_the_weighted_cross_entropy_of_the_source_labels_and_skips_rows_without_one():
    class Head:
        def logits(self):
            return torch.tensor([[2.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 1.0, 3.0]])

    outputs = {"logits": torch.tensor([[3.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 1.0], [0.0, 0.0, 0.0, 4.0]])}
    labels = torch.tensor([[0, 2], [1, -100], [3, 2]])
    main = _weighted_loss(None)
    total = _with_source_labels(main, Head(), 0.5)(outputs, labels)
    aux = torch.nn.functional.cross_entropy(Head().logits()[[0, 2]], torch.tensor([2, 2]))
    assert total.item() == pytest.approx((main(outputs, labels[:, 0]) + 0.5 * aux).item(), rel=1e-6)
    dev = torch.tensor([0, 1, 3])  # evaluation batches carry the label alone
    assert _with_source_labels(main, Head(), 0.5)(outputs, dev).item() == pytest.approx(main(outputs, dev).item())


def test_source_label_ids_index_the_sorted_labels_and_refuse_rows_without_them():
    names, ids = source_label_ids([{"source_label": "B"}, {}, {"source_label": "A"}], "run")
    assert names == ["A", "B"] and ids == [1, -100, 0]
    with pytest.raises(EventClassifierError, match=r"^runs/x: train.source_label_weight is set but the training rows carry 0"):
        source_label_ids(make_corpus()[:10], "runs/x")


def test_training_with_the_head_moves_the_encoder_otherwise_and_saves_no_trace_of_it(tmp_path):
    config = load_config("configs/tiny.yaml", ["--train.epochs=2", "--train.epoch_choice=fixed"])
    plain = fit(config, _rows(), tmp_path / "plain")
    config.train.source_label_weight = 1.0
    fitted = fit(config, _rows(), tmp_path / "aux")
    assert fitted.stats["source_labels"] == sorted({s for pair in SUBTYPES.values() for s in pair})
    assert not hasattr(fitted.model, "source_label_head")
    assert not any("source_label_head" in name for name in fitted.model.state_dict())
    assert set(fitted.model.state_dict()) == set(plain.model.state_dict())
    encoder = [name for name in plain.model.state_dict() if "encoder.layer.0." in name and name.endswith("weight")]
    moved = [not torch.allclose(plain.model.state_dict()[n], fitted.model.state_dict()[n], atol=1e-7) for n in encoder]
    assert any(moved)  # same seed and data: only the auxiliary loss's gradient makes the encoder differ
    fitted.model.eval()
    inputs = fitted.tokenizer(["a test sentence"], return_tensors="pt")
    assert fitted.model(**inputs).logits.shape == (1, len(config.label_names))  # the hook is gone: a plain forward


@pytest.mark.parametrize("overrides, message", [(["--train.source_label_weight=-1"], "must be at least 0"),
                                                (["--train.source_label_weight=0.5", "--model.task=multi_label"],
                                                 "applies to single_label")])
def test_a_bad_weight_is_refused_in_one_line(overrides, message):
    with pytest.raises(EventClassifierError, match=f"train.source_label_weight {message}"):
        load_config("configs/tiny.yaml", overrides)


def test_the_real_news_benchmark_passes_the_case_subtypes_to_the_head(tmp_path, monkeypatch):
    """In the benchmark's project system the CASE fold's snippets keep their SubType through deduplication and the
    train/dev split, so the head learns them; our own paragraphs beside them carry none."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import real_news
    from conftest import write_jsonl

    fits = []

    def recording_fit(*args, **kwargs):
        fits.append(fit(*args, **kwargs))
        return fits[-1]

    monkeypatch.setattr(real_news, "fit", recording_fit)
    corpus = write_jsonl(tmp_path / "c.jsonl", make_corpus(seed=5)[:40])
    config = load_config("configs/tiny.yaml", [f"--data.paragraphs={corpus}", "--train.epochs=1",
                                               "--train.source_label_weight=0.5", "--train.epoch_choice=fixed"])
    case = [dict(r, id=f"case-{i}", article_id=f"case-{i}", source="case") for i, r in enumerate(_rows()["train"][:60])]
    predictor = real_news.project_fit(config, case, tmp_path / "work")
    assert fits[0].stats["source_labels"] == sorted({r["source_label"] for r in case if "source_label" in r})
    assert predictor.predict_proba(["troops entered the town"]).shape == (1, 4)
