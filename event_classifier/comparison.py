"""Side by side: the TF-IDF baseline scored like a model, and the comparison table of several models."""

from __future__ import annotations

import numpy as np

from event_classifier.baseline import train_baseline
from event_classifier.evaluation import score_label_sets, score_predictions
from event_classifier.metrics import recall_by_source_label


def baseline_metrics(train_rows: list[dict], rows: list[dict], labels: list[str]) -> dict:
    """TF-IDF + logistic regression trained on `train_rows` (a model's train split), scored like the models."""
    classifier = train_baseline(train_rows)
    order = [list(classifier.classes_).index(label) if label in classifier.classes_ else None for label in labels]
    raw = classifier.predict_proba([r["text"] for r in rows])
    probs = np.stack([raw[:, i] if i is not None else np.zeros(len(rows)) for i in order], axis=1)
    metrics = score_predictions(rows, probs, labels)
    predicted = [labels[i] for i in probs.argmax(axis=1)]
    if any(r.get("also") for r in rows):  # one label per paragraph, scored as a label set like a single-label model
        metrics["label_sets"] = score_label_sets(rows, [[label] for label in predicted], labels)
    if any("source_label" in r for r in rows):
        metrics["by_source_label"] = recall_by_source_label(rows, predicted)
    return metrics


LABEL_SET_COLUMNS = {"label-set micro-F1": lambda s: s["micro_f1"], "label-set macro-F1": lambda s: s["macro_f1"],
                     "secondary F1": lambda s: s["secondary"]["f1"], "subset accuracy": lambda s: s["subset_accuracy"],
                     "Hamming loss": lambda s: s["hamming_loss"]}


def comparison_table(results: dict[str, dict], labels: list[str]) -> str:
    """Markdown table sorted by macro-F1 (of the main label, so that single- and multi-label models compare); when a
    result has label-set metrics (a multi_label model, or data with `also`), their columns follow."""
    sets = any("label_sets" in m for m in results.values())
    extra = list(LABEL_SET_COLUMNS) if sets else []
    head = ("| model | macro-F1 | 95 % CI | accuracy | ECE | " + " | ".join(f"F1 {label}" for label in labels)
            + "".join(f" | {column}" for column in extra) + " |")
    lines = [head, "|" + "---|" * (5 + len(labels) + len(extra))]
    for name, m in sorted(results.items(), key=lambda kv: -kv[1]["macro_f1"]):
        low, high = m["macro_f1_ci95"]
        per_class = " | ".join(f"{m['per_class'][label]['f1']:.3f}" for label in labels)
        more = "".join(f" | {value(m['label_sets']):.3f}" if "label_sets" in m else " | -"
                       for value in LABEL_SET_COLUMNS.values()) if sets else ""
        lines.append(f"| {name} | {m['macro_f1']:.3f} | {low:.3f}-{high:.3f} | {m['accuracy']:.3f} | {m['ece']:.3f} | "
                     f"{per_class}{more} |")
    return "\n".join(lines)


def source_label_table(results: dict[str, dict], key: str = "by_source_label") -> str:
    """Markdown table of the recall of each label of the source's scheme (rows: e.g. CASE subtypes, with the label
    its codebook maps it to) for each result that has them (columns, in the order given); "" when none has."""
    names = [name for name, m in results.items() if m.get(key)]
    if not names:
        return ""
    lines = ["| source label | maps to | n | " + " | ".join(names) + " |", "|" + "---|" * (3 + len(names))]
    for source_label in sorted({t for name in names for t in results[name][key]}):
        entry = next(results[name][key][source_label] for name in names if source_label in results[name][key])
        recalls = [f"{results[name][key][source_label]['recall']:.2f}" if source_label in results[name][key] else "-"
                   for name in names]
        lines.append(f"| {source_label} | {entry['label']} | {entry['n']} | " + " | ".join(recalls) + " |")
    return "\n".join(lines)
