"""Evaluating a model on labelled paragraphs through the same code path as prediction.

`evaluate_run` is the one evaluation of the project: `train` calls it on dev and test right after fitting (with
calibration, sharing the model's logits), `evaluate` calls it on any labelled data.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TypedDict

import numpy as np

from event_classifier.calibration import (coverage_curve, expected_calibration_error, fit_scale, fit_temperature,
                                         plot_coverage, plot_reliability, tune_thresholds)
from event_classifier.data import label_matrix, row_labels
from event_classifier.errors import EventClassifierError
from event_classifier.inference import Predictor
from event_classifier.io import atomic_write_json, atomic_write_jsonl, atomic_write_text
from event_classifier.metrics import (bootstrap_macro_f1, classification_metrics, label_set_metrics, plot_confusion_matrix,
                                      recall_by_source_label)
from event_classifier.reports import error_report
from event_classifier.sources import split_source_spec


class Metrics(TypedDict, total=False):
    """What evaluating a model on labelled rows gives (also the content of metrics.json)."""

    n: int
    accuracy: float
    macro_f1: float
    macro_f1_ci95: tuple[float, float]
    per_class: dict[str, dict[str, float]]  # label -> precision, recall, f1, support
    labels: list[str]
    confusion_matrix: list[list[int]]  # rows: true labels, columns: predicted
    ece: float  # expected calibration error of the (calibrated) probabilities
    ece_uncalibrated: float  # the same before temperature scaling (only when calibrating)
    coverage_curve: list[dict]  # min_confidence -> coverage, precision
    by_source: dict[str, dict]  # mixed data: n, accuracy, macro_f1 per source
    by_source_label: dict[str, dict]  # data read through a codebook: n, right, recall per label of the source's scheme
    data: str
    temperature: float
    task: str  # the model's: single_label or multi_label
    label_sets: dict  # multi_label model or data with `also`: metrics.label_set_metrics, plus the thresholds used


def check_labels_match(model_labels: list[str], rows: list[dict], where: str) -> None:
    """The data may only use labels the model knows (as main or `also` labels); otherwise its figures would be
    meaningless."""
    unknown = sorted({label for r in rows for label in row_labels(r)} - set(model_labels))
    if unknown:
        raise EventClassifierError(
            f"{where}: labels {unknown} are not among the model's labels {model_labels}; "
            "evaluate with data labelled in the model's label set (or map it with a codebook)"
        )


def score_predictions(rows: list[dict], probs: np.ndarray, labels: list[str]) -> Metrics:
    """Metrics of probabilities against labelled rows: accuracy, macro-F1 with a bootstrap interval, per class, ECE."""
    y_true = [r["label"] for r in rows]
    y_pred = [labels[i] for i in probs.argmax(axis=1)]
    metrics = classification_metrics(y_true, y_pred, labels)
    metrics["macro_f1_ci95"] = bootstrap_macro_f1(y_true, y_pred, labels)
    y = np.array([labels.index(label) for label in y_true])
    metrics["ece"] = round(expected_calibration_error(probs, y), 4)
    return metrics


def score_label_sets(rows: list[dict], predicted: list[list[str]], labels: list[str]) -> dict:
    """Label-set metrics (metrics.label_set_metrics) of predicted label sets against each row's main and `also` labels."""
    main = np.array([labels.index(r["label"]) for r in rows])
    return label_set_metrics(label_matrix([row_labels(r) for r in rows], labels), label_matrix(predicted, labels), main, labels)


def evaluate_rows(predictor: Predictor, rows: list[dict], output_dir: Path | None = None, name: str = "eval",
                  progress: bool = False, uncalibrated: np.ndarray | None = None, probs: np.ndarray | None = None) -> Metrics:
    """Predict `rows` and score them; with output_dir, also write metrics.json, predictions.jsonl, errors.md,
    and confusion, reliability and coverage plots. `uncalibrated` (probabilities before temperature scaling)
    adds the before/after comparison to the reliability diagram; `probs`, when already computed, are used as they are."""
    if not rows:
        raise EventClassifierError(f"{name}: no labelled paragraphs to evaluate")
    check_labels_match(predictor.labels, rows, name)
    if probs is None:
        probs = predictor.predict_proba([r["text"] for r in rows], progress=progress)
    predictions = [predictor.decide(p) for p in probs]
    metrics = score_predictions(rows, probs, predictor.labels)
    metrics["data"] = name
    metrics["temperature"] = predictor.temperature
    metrics["task"] = predictor.meta.task
    if predictor.meta.lexical_weight:
        metrics["lexical_weight"] = predictor.meta.lexical_weight
    if predictor.meta.multi_label or any(r.get("also") for r in rows):  # single-label models too, for one table
        metrics["label_sets"] = score_label_sets(rows, [p["labels"] for p in predictions], predictor.labels)
        metrics["label_sets"]["thresholds"] = dict(predictor.meta.thresholds)
    sources = sorted({r.get("source", "") for r in rows})
    if len(sources) > 1:  # mixed data: how the model does on each source, over the labels that source has
        metrics["by_source"] = {}
        for source in sources:
            pairs = [(r["label"], p["label"]) for r, p in zip(rows, predictions) if r.get("source", "") == source]
            present = [label for label in predictor.labels if label in {t for t, _ in pairs}]
            m = classification_metrics([t for t, _ in pairs], [p for _, p in pairs], present)
            metrics["by_source"][source] = {"n": m["n"], "accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "labels": present}
    if any("source_label" in r for r in rows):  # e.g. which CASE subtypes the model misses
        metrics["by_source_label"] = recall_by_source_label(rows, [p["label"] for p in predictions])
    y = np.array([predictor.labels.index(r["label"]) for r in rows])
    metrics["coverage_curve"] = coverage_curve(probs, y)
    if uncalibrated is not None:
        metrics["ece_uncalibrated"] = round(expected_calibration_error(uncalibrated, y), 4)
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(output_dir / "metrics.json", metrics)
        atomic_write_jsonl(output_dir / "predictions.jsonl", (
            {"id": r["id"], "text": r["text"], "true": r["label"], **({"true_also": r["also"]} if r.get("also") else {}),
             **({"source_label": r["source_label"]} if "source_label" in r else {}), **p}
            for r, p in zip(rows, predictions)
        ))
        atomic_write_text(output_dir / "errors.md", error_report(rows, predictions, metrics, name))
        plot_confusion_matrix(metrics, output_dir / "confusion_matrix.png", title=f"{name}: macro-F1 {metrics['macro_f1']:.3f}")
        curves = {"calibrated" if uncalibrated is not None else f"T={predictor.temperature:g}": (probs, y)}
        if uncalibrated is not None:
            curves = {"before (T=1)": (uncalibrated, y), **curves}
        plot_reliability(curves, output_dir / "reliability.png")
        plot_coverage(metrics["coverage_curve"], output_dir / "coverage.png")
    return metrics


def data_name(spec: str) -> str:
    """A folder-safe name for an evaluation data set: `case` for case=PATH, the file stem otherwise."""
    named = split_source_spec(spec)
    name = named[0] if named else Path(spec).stem
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def evaluate_run(predictor: Predictor, splits: dict[str, list[dict]], outputs: dict[str, Path] | None = None,
                 calibrate: bool = False, progress: bool = False) -> dict[str, Metrics]:
    """Score `predictor` on each named set of labelled rows, each passed through the model once.

    With `calibrate`, the temperature is first fitted on splits["dev"] and set on the predictor and in its metadata
    (for a multi_label model, then also the per-label thresholds, tuned on the calibrated dev probabilities), so that
    a model saved or refitted with predictor.meta keeps them; every
    split's report then shows its calibration before and after, from the same logits. `outputs` maps a split name to
    the folder for its metrics, predictions, error report and plots.
    """
    for name, rows in splits.items():
        if not rows:
            raise EventClassifierError(f"{name}: no labelled paragraphs to evaluate")
        check_labels_match(predictor.labels, rows, name)
    if not calibrate:  # also the path of an Ensemble, whose members each apply their own temperature
        return {name: evaluate_rows(predictor, rows, (outputs or {}).get(name), name,
                                    probs=predictor.predict_proba([r["text"] for r in rows], progress))
                for name, rows in splits.items()}
    if "dev" not in splits:
        raise EventClassifierError("calibration needs a dev split")
    passes, own = {}, {}
    for name, rows in splits.items():
        texts = [r["text"] for r in rows]
        ids, owner = predictor.windows(texts)
        passes[name] = (predictor.window_logits(ids, progress), owner, len(rows))
        own[name] = predictor.companion_proba(texts)  # once per split
    if predictor.meta.multi_label:
        y_dev = label_matrix([row_labels(r) for r in splits["dev"]], predictor.labels)
    else:
        y_dev = np.array([predictor.labels.index(r["label"]) for r in splits["dev"]])
    predictor.temperature = fit_temperature(predictor, *passes["dev"][:2], y_dev)
    if predictor.lexical is not None:  # then the blend with the companion, on the calibrated transformer's dev probabilities
        dev_probs = predictor.combine(*passes["dev"])
        predictor.lexical.blend_temperature = fit_scale(lambda t: predictor.blend(dev_probs, own["dev"], t), y_dev)
    if predictor.meta.multi_label:
        main = np.array([predictor.labels.index(r["label"]) for r in splits["dev"]])
        predictor.meta.thresholds = tune_thresholds(predictor.combine(*passes["dev"]), y_dev, main, predictor.labels)
    results = {}
    for name, (logits, owner, n) in passes.items():
        results[name] = evaluate_rows(predictor, splits[name], (outputs or {}).get(name), name,
                                      uncalibrated=predictor.blend(predictor.combine(logits, owner, n, temperature=1.0), own[name], 1.0),
                                      probs=predictor.blend(predictor.combine(logits, owner, n), own[name]))
    return results
