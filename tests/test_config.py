from pathlib import Path

import pytest

from event_classifier.config import Config, load_config
from event_classifier.errors import EventClassifierError

CONFIGS = sorted(Path("configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_config_loads(path):
    config = load_config(path)
    assert isinstance(config, Config)
    assert config.label_names == ["military_advance", "attack", "diplomacy", "other"]
    assert all(label.description for label in config.labels) and config.fallback_label in config.label_names


def test_tiny_config_holds_only_differences():
    tiny, default = load_config("configs/tiny.yaml"), load_config("configs/default.yaml")
    assert tiny.model.name == "tiny-random-bert" and tiny.train.epochs == 20
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


def test_label_smoothing_is_checked_and_smooths_the_single_label_loss():
    import torch

    from event_classifier.training import _weighted_loss

    with pytest.raises(EventClassifierError, match="label_smoothing must be at least 0 and below 1"):
        load_config(None, ["--train.label_smoothing=1.0"])
    with pytest.raises(EventClassifierError, match="label_smoothing applies to single_label"):
        load_config(None, ["--train.label_smoothing=0.1", "--model.task=multi_label"])
    assert load_config(None, ["--train.label_smoothing=0.1"]).train.label_smoothing == 0.1
    logits, labels = torch.tensor([[4.0, 0.0, 0.0, 0.0]]), torch.tensor([0])
    log_p = torch.log_softmax(logits, dim=1)[0]
    smoothed = _weighted_loss(None, 0.2)({"logits": logits}, labels)
    assert smoothed.item() == pytest.approx(-(0.8 * log_p[0] + 0.2 * log_p.mean()).item(), rel=1e-5)
    assert _weighted_loss(None)({"logits": logits}, labels).item() == pytest.approx(-log_p[0].item(), rel=1e-5)


def test_attention_dropout_is_checked_and_set_on_every_attention_layer(tmp_path):
    from event_classifier.model import load_backbone

    with pytest.raises(EventClassifierError, match=r"attention_dropout must be in \[0, 1\)"):
        load_config(None, ["--model.attention_dropout=1.5"])
    texts = ["troops entered the town", "talks resumed in the capital"]
    for setting, expected in ((None, 0.1), (0.0, 0.0), (0.05, 0.05)):  # None: the backbone's own
        model, _ = load_backbone("tiny-random-bert", ["a", "b"], tmp_path, texts, seed=0, attention_dropout=setting)
        found = {m.dropout.p for m in model.modules() if type(m).__name__ == "BertSelfAttention"}
        assert found == {expected} and model.config.attention_probs_dropout_prob == expected


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


def test_default_yaml_spells_out_exactly_the_dataclass_defaults():
    """Defaults live in config.py; configs/default.yaml repeats them for readers. This fails if either drifts."""
    import dataclasses

    import yaml

    from event_classifier.config import DEFAULT_CONFIG, _resolve_paths_in_place

    built_in = Config()
    _resolve_paths_in_place(built_in)
    assert load_config(DEFAULT_CONFIG) == built_in
    written = yaml.safe_load(DEFAULT_CONFIG.read_text())

    def field_names(obj) -> set[str]:
        return {f.name for f in dataclasses.fields(obj)}

    assert set(written) == field_names(built_in)
    for section in ("data", "model", "train", "predict"):
        assert set(written[section]) == field_names(getattr(built_in, section)), section


def test_paths_are_relative_to_the_file_that_states_them(tmp_path, monkeypatch):
    from event_classifier.config import PROJECT_ROOT

    (tmp_path / "exp").mkdir()
    exp = tmp_path / "exp" / "x.yaml"
    exp.write_text(f"defaults: {PROJECT_ROOT / 'configs' / 'default.yaml'}\ndata:\n  prepared_dir: prep\n"
                   "  sources:\n    case: ../case.tsv\n")
    monkeypatch.chdir(tmp_path)
    config = load_config(exp, ["--train.output_dir=out"])
    assert config.data.prepared_dir == str(tmp_path / "exp" / "prep")  # the YAML file's folder
    assert config.data.sources["case"] == str(tmp_path / "case.tsv")
    assert config.train.output_dir == str(tmp_path / "out")  # the current folder, for a command-line override
    assert config.data.paragraphs == str(PROJECT_ROOT / "data" / "paragraphs")  # default.yaml's folder


def test_labels_with_descriptions_short_names_and_fallback():
    config = load_config(None, ["--labels=[advance,attack,none]", "--fallback_label=none"])
    assert config.label_names == ["advance", "attack", "none"] and config.fallback_label == "none"
    with pytest.raises(EventClassifierError, match="fallback_label 'other' is not one of the labels"):
        load_config(None, ["--labels=[advance,attack,none]"])
    assert load_config(None, ["--labels=[advance,attack]", "--fallback_label=null"]).fallback_label is None


def test_duplicate_labels_are_an_error():
    with pytest.raises(EventClassifierError, match="distinct"):
        load_config(None, ["--labels=[a,a]", "--fallback_label=a"])
