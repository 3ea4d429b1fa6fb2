"""train.layer_lr_decay: the head trains at the learning rate, each encoder layer below it at a decayed rate."""

import pytest
import torch
from safetensors.torch import load_file

from conftest import LABELS, make_corpus, train_tiny_run
from event_classifier.config import load_config
from event_classifier.errors import EventClassifierError
from event_classifier.model import load_backbone
from event_classifier.training import layerwise_groups


def test_each_layer_gets_its_decayed_rate_and_every_parameter_one_group(tmp_path):
    model, _ = load_backbone("tiny-random-bert", LABELS, tmp_path, [r["text"] for r in make_corpus()], seed=0)
    layers = model.config.num_hidden_layers
    decayed = {name for name, _ in model.named_parameters() if not name.endswith("bias") and "LayerNorm" not in name}
    groups = layerwise_groups(model, 1e-3, 0.5, 0.01, decayed)
    rate = {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert len(rate) == len(named) == sum(len(g["params"]) for g in groups)  # each parameter in exactly one group
    for name, param in named.items():
        lr, weight_decay = rate[id(param)]
        if name.startswith("classifier.") or ".pooler." in name:
            assert lr == pytest.approx(1e-3), name
        elif ".embeddings." in name:
            assert lr == pytest.approx(1e-3 * 0.5 ** (layers + 1)), name
        else:
            layer = int(name.split(".layer.")[1].split(".")[0])
            assert lr == pytest.approx(1e-3 * 0.5 ** (layers - layer)), name
        assert weight_decay == (0.01 if name in decayed else 0.0), name


def _embeddings(folder):
    weights = load_file(str(folder / "model.safetensors"))
    return next(v for k, v in weights.items() if k.endswith("embeddings.word_embeddings.weight"))


@pytest.mark.parametrize("decay, embeddings_move", [(1.0, True), (1e-6, False)])
def test_a_tiny_decay_keeps_the_embeddings_where_one_rate_moves_them(tmp_path, decay, embeddings_move):
    """Through train.py: the optimizer the Trainer uses is the layer-wise one (with one rate the embeddings move)."""
    _, run = train_tiny_run(tmp_path, 3, f"--train.layer_lr_decay={decay}")
    start, trained = _embeddings(run / "tiny_backbone"), _embeddings(run / "model")
    assert (not torch.allclose(start, trained, atol=1e-6)) is embeddings_move


@pytest.mark.parametrize("value", ["0", "1.5", "-0.2"])
def test_a_decay_outside_zero_to_one_is_refused_in_one_line(value):
    with pytest.raises(EventClassifierError, match=r"train.layer_lr_decay must be above 0 and at most 1"):
        load_config("configs/tiny.yaml", [f"--train.layer_lr_decay={value}"])
