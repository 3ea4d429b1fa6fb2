"""What travels with a saved model besides its weights: labels, inference settings, calibration, training data."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from event_classifier import __version__
from event_classifier.config import DEFAULT_LABELS, TASKS, LabelSpec
from event_classifier.errors import EventClassifierError
from event_classifier.io import atomic_write_json

META_FILE = "event_classifier.json"
FORMAT_VERSION = 4  # 1: the untyped dict of event_classifier 0.1 (labels as names, no settings); 2: no `task`
# (single-label); 3: no `lexical_weight` (none). All still load.
MULTI_LABEL_PROBLEM = "multi_label_classification"  # transformers' problem_type of a sigmoid head


@dataclass
class ModelMeta:
    """Everything `predict` and `evaluate` need besides the weights, so a model folder is usable on its own."""

    labels: list[LabelSpec]  # the label set in the order of the model's outputs, with descriptions
    max_length: int  # tokens per window
    fallback_label: Optional[str] = None  # where low-confidence predictions are routed; None = flag only
    stride: int = 32  # tokens shared by consecutive windows of a long paragraph
    batch_size: int = 32  # paragraphs per inference batch
    temperature: float = 1.0  # softmax (sigmoid, multi_label) temperature fitted on dev (calibration)
    task: str = "single_label"  # single_label (softmax, one label) | multi_label (a sigmoid per label, `labels`)
    thresholds: dict[str, float] = field(default_factory=dict)  # multi_label: per-label probability thresholds tuned
    # on dev for the secondary labels; empty = 0.5 each. The main label is always the most probable one
    lexical_weight: float = 0.0  # share of the TF-IDF companion (lexical.json in the folder) in the probabilities; 0 = none
    precision: str = "fp32"  # what training used; inference measures `auto` again on its own machine
    backbone: str = ""  # the model.name it was fine-tuned from
    data: dict[str, dict[str, Any]] = field(default_factory=dict)  # split -> path, sha256, rows, label counts, sources
    run: str = ""  # the run folder that produced it
    version: str = __version__  # event_classifier version that wrote it
    format_version: int = FORMAT_VERSION

    @property
    def label_names(self) -> list[str]:
        return [label.name for label in self.labels]

    @property
    def multi_label(self) -> bool:
        return self.task == "multi_label"

    def save(self, directory: Path) -> None:
        atomic_write_json(Path(directory) / META_FILE, dataclasses.asdict(self))

    @classmethod
    def load(cls, directory: Path, model_labels: list[str], default_max_length: int,
             problem_type: str | None = None) -> "ModelMeta":
        """Read `event_classifier.json`; a folder without one (any fine-tuned classifier) gets its labels, and its task
        from `problem_type`, from config.json. A task that contradicts `problem_type` (when given) is refused."""
        path = Path(directory) / META_FILE
        if not path.exists():
            return cls(labels=_described(model_labels), max_length=default_max_length,
                       fallback_label="other" if "other" in model_labels else None,
                       task="multi_label" if problem_type == MULTI_LABEL_PROBLEM else "single_label")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise EventClassifierError(f"{path}: not valid JSON; the checkpoint is corrupt or incomplete, retrain or restore it") from None
        version = raw.get("format_version", 1)
        if version > FORMAT_VERSION:
            raise EventClassifierError(f"{path}: written by a newer event_classifier ({raw.get('version')}); upgrade this one")
        meta = _from_v1(raw, default_max_length) if version == 1 else _from_v2(raw, path)
        if meta.label_names != model_labels:
            raise EventClassifierError(f"{path}: labels {meta.label_names} differ from config.json's {model_labels}; "
                                       "the checkpoint is corrupt or incomplete, retrain or restore it")
        head_differs = problem_type is not None and meta.multi_label != (problem_type == MULTI_LABEL_PROBLEM)
        if meta.task not in TASKS or head_differs or set(meta.thresholds) - set(model_labels):
            raise EventClassifierError(f"{path}: task {meta.task!r} (thresholds for {sorted(meta.thresholds)}) does not fit "
                                       f"config.json's problem_type {problem_type!r} and labels; the checkpoint is corrupt "
                                       "or incomplete, retrain or restore it")
        return meta


def _described(names: list[str]) -> list[LabelSpec]:
    known = {label.name: label.description for label in DEFAULT_LABELS}
    return [LabelSpec(name, known.get(name, "")) for name in names]


def _from_v1(raw: dict, default_max_length: int) -> ModelMeta:
    """The metadata of models written before ModelMeta: labels as names, data as split -> path."""
    names = list(raw.get("labels", []))
    return ModelMeta(
        labels=_described(names), max_length=int(raw.get("max_length", default_max_length)),
        fallback_label="other" if "other" in names else None, temperature=float(raw.get("temperature", 1.0)),
        precision=raw.get("precision", "fp32"), backbone=raw.get("backbone", ""),
        data={split: {"path": p} for split, p in raw.get("data", {}).items()}, run=raw.get("run", ""), version="0.1.0",
    )


def _from_v2(raw: dict, path: Path) -> ModelMeta:
    names = {f.name for f in dataclasses.fields(ModelMeta)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise EventClassifierError(f"{path}: unknown fields {unknown}; the file was edited by hand or is damaged")
    try:
        labels = [LabelSpec(**item) for item in raw.pop("labels")]
        return ModelMeta(labels=labels, **raw)
    except (TypeError, KeyError) as exc:
        raise EventClassifierError(f"{path}: incomplete model metadata ({exc}); retrain or restore the model folder") from None
