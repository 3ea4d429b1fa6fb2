"""Evaluating a model on labelled paragraphs through the same code path as prediction."""

from __future__ import annotations

import re
from pathlib import Path

from event_classifier.errors import EventClassifierError
from event_classifier.inference import Predictor
from event_classifier.io import atomic_write_json, atomic_write_jsonl
from event_classifier.metrics import classification_metrics, plot_confusion_matrix


def check_labels_match(model_labels: list[str], rows: list[dict], where: str) -> None:
    """The data may only use labels the model knows; otherwise its figures would be meaningless."""
    unknown = sorted({r["label"] for r in rows} - set(model_labels))
    if unknown:
        raise EventClassifierError(
            f"{where}: labels {unknown} are not among the model's labels {model_labels}; "
            "evaluate with data labelled in the model's label set (or map it with a codebook)"
        )


def evaluate_rows(predictor: Predictor, rows: list[dict], output_dir: Path | None = None, name: str = "eval",
                  progress: bool = False) -> dict:
    """Predict `rows`, compute metrics, and (with output_dir) write metrics.json, predictions and a confusion plot."""
    if not rows:
        raise EventClassifierError(f"{name}: no labelled paragraphs to evaluate")
    check_labels_match(predictor.labels, rows, name)
    predictions = predictor.predict([r["text"] for r in rows], progress=progress)
    metrics = classification_metrics([r["label"] for r in rows], [p["label"] for p in predictions], predictor.labels)
    metrics["data"] = name
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(output_dir / "metrics.json", metrics)
        atomic_write_jsonl(output_dir / "predictions.jsonl", (
            {"id": r["id"], "text": r["text"], "true": r["label"], **p} for r, p in zip(rows, predictions)
        ))
        plot_confusion_matrix(metrics, output_dir / "confusion_matrix.png", title=f"{name}: macro-F1 {metrics['macro_f1']:.3f}")
    return metrics


def data_name(spec: str) -> str:
    """A folder-safe name for an evaluation data set: `case2021` for case2021=PATH, the file stem otherwise."""
    name = spec.partition("=")[0] if "=" in spec and not Path(spec).exists() else Path(spec).stem
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)
