"""Classification metrics (scikit-learn), a readable table and a confusion-matrix plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, hamming_loss, precision_recall_fscore_support

from event_classifier.plots import new_figure, save_figure


def macro_f1(y_true: list[str], y_pred: list[str], labels: list[str]) -> float:
    return float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))


def classification_metrics(y_true: list[str], y_pred: list[str], labels: list[str]) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix (rows = true labels)."""
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    return {
        "n": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": macro_f1(y_true, y_pred, labels),
        "per_class": {
            label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for label, p, r, f, s in zip(labels, precision, recall, f1, support)
        },
        "labels": labels,
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def recall_by_source_label(rows: list[dict], predicted: list[str]) -> dict[str, dict]:
    """For each label of the source's own scheme (`source_label`, kept by a codebook: CASE's SubType): how many rows,
    the label its codebook maps it to, how many were predicted as that label, and that share. Rows without one are
    left out; no row has one: {}."""
    counts: dict[str, dict] = {}
    for row, label in zip(rows, predicted, strict=True):
        if "source_label" in row:
            entry = counts.setdefault(row["source_label"], {"label": row["label"], "n": 0, "right": 0})
            entry["n"] += 1
            entry["right"] += row["label"] == label
    return {name: dict(entry, recall=round(entry["right"] / entry["n"], 3)) for name, entry in sorted(counts.items())}


def label_set_metrics(y_true: np.ndarray, y_pred: np.ndarray, main: np.ndarray, labels: list[str]) -> dict:
    """Multi-label figures of predicted label sets against true ones (multi-hot matrices, one column per label):
    micro- and macro-F1 over labels, per-class precision/recall/F1/support, subset accuracy (the whole set right),
    Hamming loss, and `secondary`: micro precision/recall/F1 over every label but each paragraph's true main label
    (`main`: its column index), i.e. how well the events beside the main one are found."""
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, zero_division=0)
    keep = np.ones_like(y_true, dtype=bool)
    keep[np.arange(len(main)), main] = False
    secondary = precision_recall_fscore_support(y_true * keep, y_pred * keep, average="micro", zero_division=0)
    return {
        "micro_f1": float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "subset_accuracy": float(accuracy_score(y_true, y_pred)),
        "hamming_loss": float(hamming_loss(y_true, y_pred)),
        "per_class": {label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                      for label, p, r, f, s in zip(labels, precision, recall, f1, support)},
        "secondary": {"precision": float(secondary[0]), "recall": float(secondary[1]), "f1": float(secondary[2]),
                      "support": int((y_true * keep).sum()), "predicted": int((y_pred * keep).sum())},
    }


def format_table(metrics: dict) -> str:
    """Per-class table with the headline figures, for the terminal."""
    width = max(len(label) for label in metrics["labels"]) + 2
    lines = [f"{'label':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    for label, m in metrics["per_class"].items():
        lines.append(f"{label:<{width}}{m['precision']:>10.3f}{m['recall']:>10.3f}{m['f1']:>10.3f}{m['support']:>10d}")
    lines.append(f"{'accuracy':<{width}}{metrics['accuracy']:>30.3f}{metrics['n']:>10d}")
    lines.append(f"{'macro-F1':<{width}}{metrics['macro_f1']:>30.3f}")
    lines.append("confusion matrix (rows: true, columns: predicted)")
    lines.append(" " * width + "".join(f"{label[:9]:>10}" for label in metrics["labels"]))
    for label, row in zip(metrics["labels"], metrics["confusion_matrix"]):
        lines.append(f"{label:<{width}}" + "".join(f"{v:>10d}" for v in row))
    sets = metrics.get("label_sets")
    if sets:
        lines.append("label sets (main + secondary labels, at the model's thresholds)")
        lines.append(f"{'label':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}")
        for label, m in [*sets["per_class"].items(), ("secondary", sets["secondary"])]:
            lines.append(f"{label:<{width}}{m['precision']:>10.3f}{m['recall']:>10.3f}{m['f1']:>10.3f}{m['support']:>10d}")
        lines.append(f"micro-F1 {sets['micro_f1']:.3f}, macro-F1 {sets['macro_f1']:.3f}, subset accuracy "
                     f"{sets['subset_accuracy']:.3f}, Hamming loss {sets['hamming_loss']:.4f}")
    return "\n".join(lines)


def plot_confusion_matrix(metrics: dict, path: Path, title: str = "") -> None:
    """Save the confusion matrix as a PNG (written to a temporary name, then renamed)."""
    from sklearn.metrics import ConfusionMatrixDisplay

    figure, axes = new_figure(figsize=(6, 5))
    ConfusionMatrixDisplay(np.array(metrics["confusion_matrix"]), display_labels=metrics["labels"]).plot(
        ax=axes, colorbar=False, xticks_rotation=30
    )
    axes.set_title(title or f"macro-F1 {metrics['macro_f1']:.3f}")
    save_figure(figure, path)


def bootstrap_macro_f1(y_true: list[str], y_pred: list[str], labels: list[str], rounds: int = 1000,
                       seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of macro-F1 over `rounds` paired resamples of the evaluated paragraphs
    (scipy.stats.bootstrap; the percentile method, because BCa's jackknife costs one F1 per paragraph)."""
    from scipy.stats import bootstrap

    index = {label: i for i, label in enumerate(labels)}
    true = np.array([index[y] for y in y_true])
    pred = np.array([index.get(y, -1) for y in y_pred])
    ids = list(range(len(labels)))
    if len(true) < 2:
        point = float(f1_score(true, pred, labels=ids, average="macro", zero_division=0))
        return round(point, 4), round(point, 4)
    result = bootstrap((true, pred), lambda t, p: f1_score(t, p, labels=ids, average="macro", zero_division=0),
                       paired=True, vectorized=False, n_resamples=rounds, method="percentile",
                       rng=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return round(float(low), 4), round(float(high), 4)
