"""Calibration: temperature scaling fitted on dev, expected calibration error, and the plots that show them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, n_bins: int = 15) -> float:
    """Mean gap between confidence and accuracy over equal-width confidence bins, weighted by bin size."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    error = 0.0
    for b in range(n_bins):
        inside = bins == b
        if inside.any():
            error += inside.mean() * abs(confidence[inside].mean() - correct[inside].mean())
    return float(error)


def fit_temperature(predictor, logits: np.ndarray, owner: list[int], y: np.ndarray) -> float:
    """The temperature T (logits / T) that minimises the dev negative log-likelihood."""
    def nll(log_t: float) -> float:
        probs = predictor.combine(logits, owner, len(y), temperature=float(np.exp(log_t)))
        return float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None)).mean())
    best = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return round(float(np.exp(best.x)), 4)


def coverage_curve(probs: np.ndarray, y: np.ndarray, steps: int = 20) -> list[dict]:
    """For each min_confidence threshold: the share of paragraphs kept and the precision among them."""
    confidence, correct = probs.max(axis=1), probs.argmax(axis=1) == y
    curve = []
    for threshold in np.linspace(0, 0.95, steps):
        kept = confidence >= threshold
        curve.append({"min_confidence": round(float(threshold), 3), "coverage": round(float(kept.mean()), 4),
                      "precision": round(float(correct[kept].mean()), 4) if kept.any() else None})
    return curve


def _save(figure, path: Path) -> None:
    import matplotlib.pyplot as plt

    tmp = path.with_name(f".{path.stem}.tmp.png")
    figure.tight_layout()
    figure.savefig(tmp, dpi=110)
    plt.close(figure)
    tmp.replace(path)


def plot_reliability(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, n_bins: int = 10) -> None:
    """Reliability diagram: accuracy against confidence per bin, one line per named (probs, y) pair."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 5))
    axes.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    for name, (probs, y) in curves.items():
        confidence, correct = probs.max(axis=1), probs.argmax(axis=1) == y
        bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
        xs = [confidence[bins == b].mean() for b in range(n_bins) if (bins == b).any()]
        ys = [correct[bins == b].mean() for b in range(n_bins) if (bins == b).any()]
        axes.plot(xs, ys, "o-", label=f"{name} (ECE {expected_calibration_error(probs, y):.3f})")
    axes.set(xlabel="confidence", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1), title="reliability")
    axes.legend(loc="upper left", fontsize=8)
    _save(figure, path)


def plot_coverage(curve: list[dict], path: Path) -> None:
    """Precision and coverage against the min_confidence threshold, to choose it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 4))
    xs = [c["min_confidence"] for c in curve]
    axes.plot(xs, [c["coverage"] for c in curve], "o-", label="coverage")
    axes.plot(xs, [c["precision"] if c["precision"] is not None else np.nan for c in curve], "s-", label="precision")
    axes.set(xlabel="min_confidence", ylim=(0, 1.02), title="coverage vs precision")
    axes.legend()
    _save(figure, path)
