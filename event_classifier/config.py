"""Typed configuration: a dataclass tree loaded from YAML and overridden from the command line."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from event_classifier.errors import EventClassifierError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "configs" / "default.yaml"


@dataclass
class DataConfig:
    paragraphs: str = "data/paragraphs"  # our own labelled JSONL files: a folder of *.jsonl or one file
    sources: dict[str, str] = field(default_factory=dict)  # extra sources: name -> path, read via configs/sources/<name>.yaml
    prepared_dir: str = "data/prepared"  # where data/prepare.py writes train/dev/test.jsonl and training reads them
    dev_fraction: float = 0.15  # share of articles in the dev split
    test_fraction: float = 0.15  # share of articles in the test split
    split_seed: int = 13  # seed of the article-grouped stratified split
    near_duplicate_threshold: float = 0.9  # TF-IDF cosine above which two paragraphs count as near-duplicates


@dataclass
class ModelConfig:
    name: str = "all-MiniLM-L6-v2"  # backbone: all-MiniLM-L6-v2 (bundled), a hub name, a local path, or tiny-random-bert
    max_length: Optional[int] = None  # tokens per window; None = 99th percentile of train lengths, capped by the model


@dataclass
class TrainConfig:
    output_dir: str = "runs"  # run directories are created below this folder
    run_name: Optional[str] = None  # name of the run directory; None = a timestamp
    epochs: float = 8.0  # maximum number of epochs (early stopping may end sooner)
    max_steps: int = -1  # stop after this many optimizer steps; -1 = no limit
    batch_size: int = 16  # paragraphs per training batch
    eval_batch_size: int = 64  # paragraphs per evaluation batch
    learning_rate: float = 5.0e-5  # peak AdamW learning rate
    weight_decay: float = 0.01  # AdamW weight decay
    warmup_ratio: float = 0.1  # share of steps with linear warm-up
    class_weights: bool = True  # weight the loss by inverse class frequency of the train split
    early_stopping_patience: int = 3  # epochs without dev macro-F1 gain before stopping; 0 = never stop early
    seed: int = 42  # seed for weights of the new head, dropout and data order
    precision: str = "auto"  # auto | bf16 | fp32: auto uses bf16 autocast where the hardware supports it
    group_by_length: bool = True  # batch paragraphs of similar length together to cut padding
    logging_steps: int = 10  # log the training loss every N steps
    save_total_limit: int = 2  # checkpoints kept on disk (the best one is always kept)


@dataclass
class PredictConfig:
    batch_size: int = 32  # paragraphs per inference batch (32 measured fastest on 2 CPU cores)
    stride: int = 32  # tokens shared by consecutive windows of a long paragraph


@dataclass
class Config:
    labels: list[str] = field(default_factory=lambda: ["military_advance", "attack", "diplomacy", "other"])  # the label set
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise EventClassifierError(f"{path}: config file not found; pass an existing YAML file with --config")
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EventClassifierError(f"{path}: not valid YAML ({first_line}); fix the syntax") from None
    if not isinstance(content, dict):
        raise EventClassifierError(f"{path}: a config must be a YAML mapping of sections, got {type(content).__name__}")
    return content


def load_yaml_chain(path: Path) -> dict[str, Any]:
    """Read a config file, following `defaults: base.yaml` so experiment configs hold only their differences."""
    content = _read_yaml(path)
    base_name = content.pop("defaults", None)
    if base_name is None:
        return content
    base = load_yaml_chain((path.parent / base_name).resolve())
    return OmegaConf.to_container(OmegaConf.merge(OmegaConf.create(base), OmegaConf.create(content)))


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Load `path` (default configs/default.yaml) into a typed Config, then apply `section.key=value` overrides."""
    path = Path(path) if path else DEFAULT_CONFIG
    schema = OmegaConf.structured(Config)
    try:
        merged = OmegaConf.merge(schema, OmegaConf.create(load_yaml_chain(path)))
        if overrides:
            merged = OmegaConf.merge(merged, OmegaConf.from_dotlist([o.lstrip("-") for o in overrides]))
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or ""
        reason = str(exc).splitlines()[0]
        raise EventClassifierError(
            f"{path}: bad config value {key!r}: {reason}; see the field list in event_classifier/config.py"
        ) from None
    config: Config = OmegaConf.to_object(merged)
    validate(config, path)
    return config


def validate(config: Config, path: Path) -> None:
    """Check the values that types alone cannot."""
    if len(config.labels) < 2 or len(set(config.labels)) != len(config.labels):
        raise EventClassifierError(f"{path}: 'labels' must list at least two distinct labels, got {config.labels}")
    if config.train.precision not in {"auto", "bf16", "fp32"}:
        raise EventClassifierError(f"{path}: train.precision must be auto, bf16 or fp32, got {config.train.precision!r}")
    fractions = config.data.dev_fraction + config.data.test_fraction
    if not (0 < config.data.dev_fraction < 1 and 0 < config.data.test_fraction < 1 and fractions < 1):
        raise EventClassifierError(f"{path}: data.dev_fraction and data.test_fraction must be in (0, 1) and sum below 1")


def to_dict(config: Config) -> dict[str, Any]:
    """The resolved config as plain data, for saving next to a run."""
    return dataclasses.asdict(config)


def save_config(config: Config, path: Path) -> None:
    from event_classifier.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(to_dict(config), sort_keys=False))

