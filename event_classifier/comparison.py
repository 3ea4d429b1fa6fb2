"""Side by side: the TF-IDF baseline scored like a model, and the comparison table of several models."""

from __future__ import annotations

import numpy as np

from event_classifier.baseline import train_baseline
from event_classifier.evaluation import score_predictions


def baseline_metrics(train_rows: list[dict], rows: list[dict], labels: list[str]) -> dict:
    """TF-IDF + logistic regression trained on `train_rows` (a model's train split), scored like the models."""
    classifier = train_baseline(train_rows)
    order = [list(classifier.classes_).index(label) if label in classifier.classes_ else None for label in labels]
    raw = classifier.predict_proba([r["text"] for r in rows])
    probs = np.stack([raw[:, i] if i is not None else np.zeros(len(rows)) for i in order], axis=1)
    return score_predictions(rows, probs, labels)


def comparison_table(results: dict[str, dict], labels: list[str]) -> str:
    """Markdown table sorted by macro-F1."""
    head = "| model | macro-F1 | 95 % CI | accuracy | ECE | " + " | ".join(f"F1 {label}" for label in labels) + " |"
    lines = [head, "|" + "---|" * (5 + len(labels))]
    for name, m in sorted(results.items(), key=lambda kv: -kv[1]["macro_f1"]):
        low, high = m["macro_f1_ci95"]
        per_class = " | ".join(f"{m['per_class'][label]['f1']:.3f}" for label in labels)
        lines.append(f"| {name} | {m['macro_f1']:.3f} | {low:.3f}-{high:.3f} | {m['accuracy']:.3f} | {m['ece']:.3f} | {per_class} |")
    return "\n".join(lines)
