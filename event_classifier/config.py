"""Typed configuration: a dataclass tree loaded from YAML and overridden from the command line.

The dataclasses below are the one definition of every field and its default; `configs/default.yaml` spells the
same values out for readers, and a test fails if the two drift apart.

Paths: a relative path is relative to the file that states it: a YAML file's folder, the current folder for a
command-line override, the project root for a default below. `load_config` returns absolute paths, so a run's
saved config works from any working directory.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from event_classifier.errors import EventClassifierError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = PROJECT_ROOT / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "default.yaml"
TASKS = ("single_label", "multi_label")  # model.task: one label per paragraph, or the main one plus secondary ones
HEAD_INITS = ("auto", "linear_probe", "random")  # train.head_init: auto, one fitted on frozen features (LP-FT), or random
EPOCH_CHOICES = ("best_dev", "fixed")  # train.epoch_choice: the epoch with the best dev score, or exactly train.epochs
REPORT_TO = ("none", "tensorboard", "mlflow")  # experiment trackers the Trainer reports to (train.report_to)
SINGLE_LABEL_SETTINGS = ("label_smoothing", "source_label_weight", "rdrop_alpha", "lexical_weight")  # train.* refused by multi_label
# plus data.sources values
PATH_FIELDS = (("data", "paragraphs"), ("data", "feedback"), ("data", "prepared_dir"), ("train", "output_dir"))


@dataclass
class LabelSpec:
    name: str  # the label as written in the data and predicted
    description: str = ""  # one line from data/GUIDELINES.md: what the label means (shown in the model card and app)


DEFAULT_LABELS = (
    LabelSpec("military_advance", "forces take, enter, retake, capture or establish themselves in territory or positions; "
                                  "a withdrawal is an advance for the other side"),
    LabelSpec("attack", "a violent strike or clash by armed forces or groups: shelling, air or drone strike, bombing, "
                        "ambush, armed clash, raid, violence against civilians by armed men"),
    LabelSpec("diplomacy", "non-violent dealings between governments or parties: talks, agreements, ceasefires, "
                           "surrenders, sanctions, envoys"),
    LabelSpec("other", "everything else: background, humanitarian and economic news, protests, crime, arrests, "
                       "disasters and accidents, deployments, plans and threats"),
)


@dataclass
class DataConfig:
    paragraphs: Optional[str] = "data/paragraphs"  # our own labelled JSONL files: a folder of *.jsonl, one file or a glob pattern; null = none
    feedback: Optional[str] = "data/feedback"  # corrections saved by the web app (*.jsonl); a later one of a text wins; null = none
    sources: dict[str, str] = field(default_factory=dict)  # extra sources: name -> path, read via configs/sources/<name>.yaml
    prepared_dir: str = "data/prepared"  # where data/prepare.py writes train/dev/test.jsonl and training reads them
    dev_fraction: float = 0.15  # share of articles in the dev split
    test_fraction: float = 0.15  # share of articles in the test split
    split_seed: int = 13  # seed of the article-grouped stratified split
    near_duplicate_threshold: float = 0.9  # TF-IDF cosine above which two paragraphs count as near-duplicates


@dataclass
class ModelConfig:
    name: str = "all-MiniLM-L6-v2"  # backbone: all-MiniLM-L6-v2 (bundled), a hub name, tiny-random-bert, or a model folder
    # given as a path starting with ./ ../ / or ~ (e.g. a run's model/ to fine-tune further), relative like other paths
    max_length: Optional[int] = None  # tokens per window; None = 99th percentile of train lengths, capped by the model
    task: str = "single_label"  # single_label: one label per paragraph (softmax); multi_label: the main label and any
    # secondary ones (`also` in the data): a sigmoid per label, BCE loss, per-label thresholds tuned on dev
    attention_dropout: Optional[float] = None  # dropout on attention probabilities in training; None = the backbone's
    # own (0.1 for MiniLM). 0 lets PyTorch's fused attention kernel run in training (benchmarks/speed.py)
    pooling: str = "mean"  # what the head reads: mean, the mean of the token states, the sentence embedding
    # all-MiniLM-L6-v2 was trained to give (BERT-family backbones); cls, BERT's pooler over the [CLS] token


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
    layer_lr_decay: float = 1.0  # layer-wise learning-rate decay: the head trains at learning_rate, each encoder layer
    # below it at this factor times the layer above's rate, the embeddings last (1 = one rate for all)
    class_weights: bool = True  # weight the loss by the train split's label frequencies: inverse class frequency
    # (single_label), or negatives/positives per label as BCE pos_weight (multi_label)
    label_smoothing: float = 0.0  # single_label: share of each target spread evenly over all labels (0 = none)
    main_label_weight: float = 0.0  # multi_label: weight of the main label's cross-entropy added to the BCE, so that the
    # most probable label is the main one; 0 = BCE alone
    source_label_weight: float = 0.0  # single_label: weight of an auxiliary cross-entropy in which a second linear head,
    # on the same pooled features, predicts each training row's source label (CASE's SubType, kept by its codebook);
    # the head is dropped before saving, rows without a source label add nothing to it; 0 = off
    rdrop_alpha: float = 0.0  # single_label: R-Drop (Liang et al., 2021): each training batch runs twice, with two
    # dropout draws; the loss is the mean of the two cross-entropies plus this weight times the symmetric KL divergence
    # between the two predicted distributions (averaged over the two directions and the rows); about twice the cost of
    # a step; 0 = off
    early_stopping_patience: int = 3  # epochs without dev macro-F1 gain before stopping; 0 = never stop early
    epoch_choice: str = "best_dev"  # best_dev: keep the epoch with the best dev macro-F1 (a refit trains that many);
    # fixed: train exactly `epochs` and keep the last (dev still scores each epoch and calibrates; a refit trains `epochs`)
    seed: int = 42  # seed for weights of the new head, dropout and data order
    head_init: str = "auto"  # linear_probe: the new head starts as a logistic regression fitted on the frozen backbone's
    # features of the train split (LP-FT; a model folder of ours keeps its trained head); random: drawn at random;
    # auto: linear_probe for single_label, random for multi_label (see `resolved_head_init`)
    precision: str = "auto"  # auto | bf16 | fp32: auto uses bf16 autocast where it measures faster than fp32
    group_by_length: bool = True  # batch paragraphs of similar length together to cut padding
    logging_steps: int = 10  # log the training loss every N steps
    save_total_limit: int = 2  # checkpoints kept on disk (the best one is always kept)
    lexical_weight: float = 0.0  # single_label: share of a TF-IDF + logistic regression model, trained on the same rows
    # and saved in the model folder, in every prediction's probabilities (0 = transformer alone; see event_classifier.lexical)
    refit: bool = False  # after choosing the epoch count on dev, train again on train+dev for that many epochs and ship that
    report_to: str = "none"  # none | tensorboard | mlflow: where the Trainer also logs (mlflow: runs/mlflow.db by default)


@dataclass
class PredictConfig:
    batch_size: int = 32  # paragraphs per inference batch (32 measured fastest on 2 CPU cores); stored with the model
    stride: int = 32  # tokens shared by consecutive windows of a long paragraph; stored with the model


@dataclass
class Config:
    labels: list[LabelSpec] = field(default_factory=lambda: [copy.copy(label) for label in DEFAULT_LABELS])  # the label set, in order
    fallback_label: Optional[str] = "other"  # where --min-confidence routes uncertain predictions; null = flag them only
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)

    @property
    def label_names(self) -> list[str]:
        return [label.name for label in self.labels]

    @property
    def resolved_head_init(self) -> str:
        """train.head_init with auto decided: the linear-probe start for single_label (it gained on real news, README
        "Levers tried"), the random one for multi_label (with the probe start, the tiny multi-label test model stopped
        learning second labels)."""
        if self.train.head_init != "auto":
            return self.train.head_init
        return "random" if self.model.task == "multi_label" else "linear_probe"


def _normalise_labels(content: dict[str, Any]) -> dict[str, Any]:
    """`labels: [a, b]` is short for `labels: [{name: a}, {name: b}]`."""
    if isinstance(content.get("labels"), list):
        content["labels"] = [{"name": item} if isinstance(item, str) else item for item in content["labels"]]
    return content


def _absolute(value: str, base: Path) -> str:
    return os.path.normpath(base / os.path.expanduser(value)) if value else value


def _resolve_paths(content: dict[str, Any], base: Path) -> dict[str, Any]:
    """Make the path fields present in `content` absolute against `base`."""
    for section, key in PATH_FIELDS:
        if isinstance(content.get(section), dict) and isinstance(content[section].get(key), str):
            content[section][key] = _absolute(content[section][key], base)
    model = content.get("model")
    if isinstance(model, dict) and isinstance(model.get("name"), str) and model["name"].startswith((".", "/", "~")):
        model["name"] = _absolute(model["name"], base)  # an explicit path (./ ../ / ~), not a hub name
    sources = content.get("data", {}).get("sources") if isinstance(content.get("data"), dict) else None
    if isinstance(sources, dict):
        content["data"]["sources"] = {name: _absolute(str(p), base) for name, p in sources.items()}
    return content


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
    return _resolve_paths(_normalise_labels(content), path.resolve().parent)


def load_yaml_chain(path: Path) -> dict[str, Any]:
    """Read a config file, following `defaults: base.yaml` so experiment configs hold only their differences."""
    content = _read_yaml(path)
    base_name = content.pop("defaults", None)
    if base_name is None:
        return content
    base = load_yaml_chain((path.parent / base_name).resolve())
    return OmegaConf.to_container(OmegaConf.merge(OmegaConf.create(base), OmegaConf.create(content)))


def _overrides(overrides: list[str]) -> dict[str, Any]:
    content = OmegaConf.to_container(OmegaConf.from_dotlist([o.lstrip("-") for o in overrides]))
    return _resolve_paths(_normalise_labels(content), Path.cwd())


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Load `path` (default configs/default.yaml) into a typed Config, then apply `section.key=value` overrides."""
    path = Path(path) if path else DEFAULT_CONFIG
    schema = OmegaConf.structured(Config)
    try:
        merged = OmegaConf.merge(schema, OmegaConf.create(load_yaml_chain(path)))
        if overrides:
            merged = OmegaConf.merge(merged, OmegaConf.create(_overrides(overrides)))
        config: Config = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or ""
        reason = str(exc).splitlines()[0]
        raise EventClassifierError(
            f"{path}: bad config value {key!r}: {reason}; see the field list in event_classifier/config.py"
        ) from None
    _resolve_paths_in_place(config)
    validate(config, path)
    return config


def _resolve_paths_in_place(config: Config) -> None:
    """Paths still relative came from the dataclass defaults: they are relative to the project root."""
    for section, key in PATH_FIELDS:
        part = getattr(config, section)
        value = getattr(part, key)
        if value and not os.path.isabs(value):
            setattr(part, key, _absolute(value, PROJECT_ROOT))


def validate(config: Config, path: Path | str) -> None:
    """Check the values that types alone cannot."""
    names = config.label_names
    if len(names) < 2 or len(set(names)) != len(names) or not all(names):
        raise EventClassifierError(f"{path}: 'labels' must list at least two distinct, named labels, got {names}")
    if config.fallback_label is not None and config.fallback_label not in names:
        raise EventClassifierError(f"{path}: fallback_label {config.fallback_label!r} is not one of the labels {names}; "
                                   "set fallback_label to one of them, or to null to flag uncertain predictions only")
    if config.model.pooling not in ("cls", "mean"):
        raise EventClassifierError(f"{path}: model.pooling must be cls or mean, got {config.model.pooling!r}")
    if config.model.attention_dropout is not None and not 0 <= config.model.attention_dropout < 1:
        raise EventClassifierError(f"{path}: model.attention_dropout must be in [0, 1) or null, got {config.model.attention_dropout!r}")
    if config.model.task not in TASKS:
        raise EventClassifierError(f"{path}: model.task must be {' or '.join(TASKS)}, got {config.model.task!r}")
    if config.train.precision not in {"auto", "bf16", "fp32"}:
        raise EventClassifierError(f"{path}: train.precision must be auto, bf16 or fp32, got {config.train.precision!r}")
    if config.train.epoch_choice not in EPOCH_CHOICES:
        raise EventClassifierError(f"{path}: train.epoch_choice must be {' or '.join(EPOCH_CHOICES)}, got {config.train.epoch_choice!r}")
    if config.train.head_init not in HEAD_INITS:
        raise EventClassifierError(f"{path}: train.head_init must be {' or '.join(HEAD_INITS)}, got {config.train.head_init!r}")
    for name in SINGLE_LABEL_SETTINGS:
        if getattr(config.train, name) and config.model.task == "multi_label":
            raise EventClassifierError(f"{path}: train.{name} applies to single_label models; set it to 0 for multi_label")
    for name in ("source_label_weight", "rdrop_alpha"):
        if getattr(config.train, name) < 0:
            raise EventClassifierError(f"{path}: train.{name} must be at least 0, got {getattr(config.train, name)}")
    if not 0 <= config.train.lexical_weight < 1:
        raise EventClassifierError(f"{path}: train.lexical_weight must be at least 0 and below 1, got {config.train.lexical_weight}")
    if not 0 < config.train.layer_lr_decay <= 1:
        raise EventClassifierError(f"{path}: train.layer_lr_decay must be above 0 and at most 1, got {config.train.layer_lr_decay}")
    if not 0 <= config.train.label_smoothing < 1:
        raise EventClassifierError(f"{path}: train.label_smoothing must be at least 0 and below 1, got {config.train.label_smoothing}")
    if config.train.report_to not in REPORT_TO:
        raise EventClassifierError(f"{path}: train.report_to must be one of {', '.join(REPORT_TO)}, got {config.train.report_to!r}")
    fractions = config.data.dev_fraction + config.data.test_fraction
    if not (0 < config.data.dev_fraction < 1 and 0 < config.data.test_fraction < 1 and fractions < 1):
        raise EventClassifierError(f"{path}: data.dev_fraction and data.test_fraction must be in (0, 1) and sum below 1")
    if config.predict.batch_size < 1 or config.predict.stride < 0:
        raise EventClassifierError(f"{path}: predict.batch_size must be >= 1 and predict.stride >= 0")


def to_dict(config: Config) -> dict[str, Any]:
    """The resolved config as plain data, for saving next to a run."""
    return dataclasses.asdict(config)


def save_config(config: Config, path: Path) -> None:
    from event_classifier.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(to_dict(config), sort_keys=False, allow_unicode=True))
