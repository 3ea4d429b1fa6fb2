import numpy as np
import torch
import pytest

from event_classifier.documents import split_into_paragraphs
from event_classifier.inference import Predictor

from conftest import LABELS, make_corpus, save_tiny_model


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """An untrained tiny classifier saved as a model folder, with a short window so long texts need several."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model", max_length=16)


def test_windows_cover_every_token_of_a_long_paragraph(tiny_model_dir):
    predictor = Predictor(tiny_model_dir, stride=4)
    text = " ".join(f"troops{i % 7} entered village{i}" for i in range(40))
    ids, owner = predictor.windows([text, "Short one."])
    full = predictor.tokenizer(text, add_special_tokens=False)["input_ids"]
    special = set(predictor.tokenizer.all_special_ids)
    windows = [[t for t in w if t not in special] for w, o in zip(ids, owner) if o == 0]
    assert len(windows) > 1 and all(len(w) <= 16 for w in ids)
    # consecutive windows overlap by `stride` tokens and together rebuild the whole paragraph
    rebuilt = windows[0] + [t for w in windows[1:] for t in w[predictor.stride:]]
    assert rebuilt == full
    assert owner.count(1) == 1


def test_long_paragraph_probabilities_are_the_mean_of_its_windows(tiny_model_dir):
    predictor = Predictor(tiny_model_dir, stride=4, precision="fp32")
    text = " ".join(f"shelling{i} hit depot{i}" for i in range(30))
    ids, _ = predictor.windows([text])
    assert len(ids) > 2
    per_window = np.stack([predictor.combine(predictor.window_logits([w]), [0], 1)[0] for w in ids])  # one by one
    combined = predictor.predict_proba([text])[0]
    assert combined == pytest.approx(per_window.mean(axis=0), abs=1e-4)


def test_predictions_are_label_set_and_probabilities_sum_to_one(tiny_model_dir):
    results = Predictor(tiny_model_dir).predict(["Troops took the town.", "Talks opened in Geneva.", "x " * 500])
    assert len(results) == 3
    for r in results:
        assert r["label"] in LABELS and set(r["probs"]) == set(LABELS)
        assert sum(r["probs"].values()) == pytest.approx(1.0, abs=1e-4)
        assert r["score"] == max(r["probs"].values())


def test_batching_and_sorting_do_not_change_results(tiny_model_dir):
    texts = [r["text"] for r in make_corpus()][:30] + ["a " * 60]
    one_by_one = np.concatenate([Predictor(tiny_model_dir, batch_size=1, precision="fp32").predict_proba([t]) for t in texts])
    batched = Predictor(tiny_model_dir, batch_size=7, precision="fp32").predict_proba(texts)
    assert batched == pytest.approx(one_by_one, abs=1e-5)


def test_split_into_paragraphs_joins_lines_and_splits_on_blank_lines():
    text = "First line\ncontinues here.\n\n  \nSecond paragraph.\r\n\r\nThird."
    assert [p for p in split_into_paragraphs(text) if p] == ["First line continues here.", "Second paragraph.", "Third."]


def test_predict_records_streams_its_input_in_chunks(tiny_model_dir):
    """A huge input is never read whole: the first result arrives after one chunk of records was pulled."""
    pulled = []

    def records():
        for i in range(10_000):
            pulled.append(i)
            yield {"source": "s", "paragraph": i, "text": f"Troops entered village {i}."}

    stream = Predictor(tiny_model_dir).predict_records(records(), chunk_size=16)
    first = next(stream)
    assert first["paragraph"] == 0 and first["label"] in LABELS
    assert len(pulled) <= 17


def test_min_confidence_routes_uncertain_predictions_to_other(tiny_model_dir):
    strict = Predictor(tiny_model_dir, min_confidence=0.99).predict(["Troops took the town."])[0]
    assert strict["label"] == "other" and strict["low_confidence"] is True
    assert strict["score"] == max(strict["probs"].values())  # the probabilities themselves are kept


def test_int8_quantized_predictor_gives_probabilities(tiny_model_dir):
    result = Predictor(tiny_model_dir, quantize=True).predict(["Rockets hit the depot."])[0]
    assert result["label"] in LABELS and sum(result["probs"].values()) == pytest.approx(1, abs=1e-4)


def test_min_confidence_flags_every_row_so_csv_columns_are_stable(tiny_model_dir):
    results = Predictor(tiny_model_dir, min_confidence=0.3).predict(["Troops took the town.", "Talks opened."])
    assert all(isinstance(r["low_confidence"], bool) for r in results)


def test_int8_quantizes_the_encoder_and_keeps_the_head_and_ffn_outputs_in_fp32(tiny_model_dir):
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear
    from torch.nn import Linear

    quantized = Predictor(tiny_model_dir, quantize=True)
    modules = dict(quantized.model.named_modules())
    assert type(modules["classifier"]) is Linear and type(modules["bert.pooler.dense"]) is Linear
    encoder = {name: m for name, m in modules.items() if name.startswith("bert.encoder") and isinstance(m, (Linear, Int8Linear))}
    ffn_out = [name for name in encoder if name.endswith(".output.dense") and ".attention." not in name]
    assert ffn_out and all(type(encoder[name]) is Linear for name in ffn_out)
    assert all(isinstance(m, Int8Linear) for name, m in encoder.items() if name not in ffn_out)
    assert encoder["bert.encoder.layer.0.intermediate.dense"].weight().qscheme() == torch.per_channel_affine
    texts = [r["text"] for r in make_corpus()][:40]
    fp32 = Predictor(tiny_model_dir, precision="fp32").predict_proba(texts)
    int8 = quantized.predict_proba(texts)
    assert np.abs(int8 - fp32).max() < 0.05  # small change in probabilities, same shape and labels order
