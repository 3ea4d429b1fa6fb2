"""Side-by-side evaluation of several models (and the TF-IDF baseline) on the same labelled paragraphs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from event_classifier.baseline import train_baseline
from event_classifier.config import load_config
from event_classifier.data import load_split
from event_classifier.errors import EventClassifierError
from event_classifier.evaluation import check_labels_match, data_name, evaluate_rows, score_predictions
from event_classifier.inference import Predictor
from event_classifier.io import atomic_write_json, atomic_write_text
from event_classifier.metrics import format_table
from event_classifier.sources import read_any


def _run_config(model: str):
    path = Path(model) / "config.yaml"
    if not path.exists():
        raise EventClassifierError(f"{model}: not a run folder (no config.yaml); pass --data FILE, or a run folder first")
    return load_config(path)


def baseline_metrics(model: str, rows: list[dict], labels: list[str]) -> dict:
    """TF-IDF + logistic regression trained on the run's train split, scored like the models."""
    config = _run_config(model)
    classifier = train_baseline(load_split(config, "train"), seed=config.train.seed)
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


def compare(models: list[str], data: str | None, baseline: bool, output_dir: str | None, batch_size: int = 32,
            quantize: bool = False) -> dict[str, dict]:
    """Evaluate every model on the same rows; print a table for one, a side-by-side comparison for several."""
    predictors = [Predictor(m, batch_size=batch_size, quantize=quantize) for m in models]
    labels = predictors[0].labels
    for model, predictor in zip(models, predictors):
        if predictor.labels != labels:
            raise EventClassifierError(f"{model}: its labels {predictor.labels} differ from {models[0]}'s {labels}; "
                                       "compare models trained on the same label set")
    if data:
        rows, name = read_any(data, labels)[0], data_name(data)
    else:
        rows, name = load_split(_run_config(models[0]), "test"), "test"
    check_labels_match(labels, rows, name)
    results: dict[str, dict] = {}
    for model, predictor in zip(models, predictors):
        base = Path(model) if (Path(model) / "config.yaml").exists() else predictor.directory
        where = Path(output_dir) / Path(model).name if output_dir and len(models) > 1 else (
            Path(output_dir) if output_dir else base / "evaluation" / name)
        results[str(model)] = metrics = evaluate_rows(predictor, rows, where, name)
        if len(models) == 1:
            print(format_table(metrics))
            low, high = metrics["macro_f1_ci95"]
            print(f"macro-F1 95 % CI {low:.3f}-{high:.3f}; ECE {metrics['ece']:.3f}")
            for source, m in metrics.get("by_source", {}).items():
                print(f"  {source}: macro-F1 {m['macro_f1']:.3f}, accuracy {m['accuracy']:.3f} ({m['n']} paragraphs)")
            print(f"wrote {where}/metrics.json, errors.md and plots")
    if baseline:
        results["tfidf-logreg baseline"] = baseline_metrics(models[0], rows, labels)
    if len(results) > 1:
        table = comparison_table(results, labels)
        print(f"\n{name}: {len(rows)} paragraphs\n{table}")
        out = Path(output_dir) if output_dir else Path("runs") / "comparisons" / name
        atomic_write_json(out / "comparison.json", {"data": name, "rows": len(rows), "results": results})
        atomic_write_text(out / "comparison.md", f"# {name} ({len(rows)} paragraphs)\n\n{table}\n")
        print(f"wrote {out}/comparison.md and comparison.json")
    return results
