"""Calibration: temperature scaling fitted on dev, per-label thresholds tuned on dev (multi_label), expected
calibration error, and the plots that show them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.metrics import f1_score, log_loss

from event_classifier.plots import new_figure, save_figure

NEVER = 1.0  # a label's threshold when it is never added beside the main label
MIN_TUNING_SUPPORT = 5  # secondary occurrences in dev needed to tune a label's threshold; with fewer, UNTUNED
UNTUNED = 0.5  # the sigmoid's own decision point


def _confidence_bins(probs: np.ndarray, y: np.ndarray, n_bins: int) -> list[tuple[float, float, float]]:
    """(share of paragraphs, mean confidence, accuracy) for each non-empty equal-width confidence bin."""
    confidence, correct = probs.max(axis=1), probs.argmax(axis=1) == y
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    return [((bins == b).mean(), confidence[bins == b].mean(), correct[bins == b].mean())
            for b in range(n_bins) if (bins == b).any()]


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, n_bins: int = 15) -> float:
    """Mean gap between confidence and accuracy over equal-width confidence bins, weighted by bin size."""
    return float(sum(share * abs(confidence - accuracy) for share, confidence, accuracy in _confidence_bins(probs, y, n_bins)))


def fit_temperature(predictor, logits: np.ndarray, owner: list[int], y: np.ndarray) -> float:
    """The temperature T (logits / T) that minimises the dev negative log-likelihood: of the true label's softmax
    probability when `y` holds label indices, or the binary cross-entropy of every label's sigmoid probability when
    `y` is a multi-hot matrix (multi_label)."""
    return fit_scale(lambda temperature: predictor.combine(logits, owner, len(y), temperature=temperature), y)


def fit_scale(probs_at, y: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of `y` under `probs_at(temperature)`."""
    def nll(log_t: float) -> float:
        probs = probs_at(float(np.exp(log_t)))
        if y.ndim == 2:
            return float(log_loss(y.ravel(), probs.ravel(), labels=[0, 1]))
        return float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None)).mean())
    best = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return round(float(np.exp(best.x)), 4)


def tune_thresholds(probs: np.ndarray, y: np.ndarray, main: np.ndarray, labels: list[str]) -> dict[str, float]:
    """Per label, the probability at or over which it joins a paragraph's labels beside the most probable one: the
    dev threshold that maximises the label's F1 as a secondary label (`y`: multi-hot, one column per label; `main`:
    each paragraph's true main label, whose column is left out, as in metrics.label_set_metrics). Candidates are the
    dev probabilities; 1.0, never, for a label dev never has as a secondary one (such as `other`), and 0.5 for one
    it has fewer than MIN_TUNING_SUPPORT times: a cut fitted to one or two paragraphs is noise (one dev advance
    had set 0.037, and the model then added an advance to a third of real attack snippets)."""
    predicted_main = probs.argmax(axis=1)
    thresholds = {}
    for i, label in enumerate(labels):
        rows = main != i  # a paragraph's true main label is not a secondary one, found or missed
        truth, always = y[rows, i], predicted_main[rows] == i
        candidates = np.append(np.unique(probs[rows, i][~always]), 1.0)
        if truth.sum() < MIN_TUNING_SUPPORT:
            thresholds[label] = NEVER if not truth.any() else UNTUNED
            continue
        scores = [f1_score(truth, always | (probs[rows, i] >= cut), zero_division=0) for cut in candidates]
        best = np.flatnonzero(np.isclose(scores, max(scores)))[-1]  # of equal F1s, the highest cut: fewest labels
        thresholds[label] = float(np.floor(candidates[best] * 1e4) / 1e4)  # rounded down: the chosen paragraph stays in
    return thresholds


def coverage_curve(probs: np.ndarray, y: np.ndarray, steps: int = 20) -> list[dict]:
    """For each min_confidence threshold: the share of paragraphs kept and the precision among them."""
    confidence, correct = probs.max(axis=1), probs.argmax(axis=1) == y
    curve = []
    for threshold in np.linspace(0, 0.95, steps):
        kept = confidence >= threshold
        curve.append({"min_confidence": round(float(threshold), 3), "coverage": round(float(kept.mean()), 4),
                      "precision": round(float(correct[kept].mean()), 4) if kept.any() else None})
    return curve


def plot_reliability(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, n_bins: int = 10) -> None:
    """Reliability diagram: accuracy against confidence per bin, one line per named (probs, y) pair."""
    figure, axes = new_figure(figsize=(5, 5))
    axes.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    for name, (probs, y) in curves.items():
        bins = _confidence_bins(probs, y, n_bins)
        axes.plot([c for _, c, _ in bins], [a for _, _, a in bins], "o-",
                  label=f"{name} (ECE {expected_calibration_error(probs, y):.3f})")
    axes.set(xlabel="confidence", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1), title="reliability")
    axes.legend(loc="upper left", fontsize=8)
    save_figure(figure, path, dpi=110)


def plot_coverage(curve: list[dict], path: Path) -> None:
    """Precision and coverage against the min_confidence threshold, to choose it."""
    figure, axes = new_figure(figsize=(5, 4))
    xs = [c["min_confidence"] for c in curve]
    axes.plot(xs, [c["coverage"] for c in curve], "o-", label="coverage")
    axes.plot(xs, [c["precision"] if c["precision"] is not None else np.nan for c in curve], "s-", label="precision")
    axes.set(xlabel="min_confidence", ylim=(0, 1.02), title="coverage vs precision")
    axes.legend()
    save_figure(figure, path, dpi=110)
