from pathlib import Path

import pytest

from event_classifier.config import Config, load_config
from event_classifier.errors import EventClassifierError

CONFIGS = sorted(Path("configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_config_loads(path):
    config = load_config(path)
    assert isinstance(config, Config)
    assert config.labels == ["military_advance", "attack", "diplomacy", "other"]


def test_tiny_config_holds_only_differences():
    tiny, default = load_config("configs/tiny.yaml"), load_config("configs/default.yaml")
    assert tiny.model.name == "tiny-random-bert" and tiny.train.epochs == 1
    assert tiny.data == default.data  # inherited unchanged


def test_overrides_apply_with_types():
    config = load_config(None, ["--train.epochs=3", "--train.learning_rate=1e-4", "--model.max_length=64"])
    assert config.train.epochs == 3.0 and config.train.learning_rate == pytest.approx(1e-4)
    assert config.model.max_length == 64


def test_unknown_key_in_override_names_the_key():
    with pytest.raises(EventClassifierError, match="train.epoch"):
        load_config(None, ["--train.epoch=3"])


def test_unknown_key_in_yaml_names_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  learnig_rate: 0.1\n")
    with pytest.raises(EventClassifierError, match="learnig_rate"):
        load_config(bad)


def test_wrong_type_is_an_error(tmp_path):
    with pytest.raises(EventClassifierError, match="batch_size"):
        load_config(None, ["--train.batch_size=many"])


def test_bad_precision_is_an_error():
    with pytest.raises(EventClassifierError, match="precision"):
        load_config(None, ["--train.precision=fp8"])


def test_missing_config_file():
    with pytest.raises(EventClassifierError, match="not found"):
        load_config("configs/nope.yaml")


def test_auto_precision_picks_the_faster_of_bf16_and_fp32(monkeypatch):
    from event_classifier import model

    monkeypatch.setattr(model.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(model, "bf16_speedup_on_cpu", lambda: 0.5)
    assert model.resolve_precision("auto") == "fp32"
    monkeypatch.setattr(model, "bf16_speedup_on_cpu", lambda: 4.0)
    assert model.resolve_precision("auto") == "bf16"
    assert model.resolve_precision("fp32") == "fp32"
