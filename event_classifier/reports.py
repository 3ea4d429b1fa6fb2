"""Readable Markdown written next to results: the error report and the model card."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from event_classifier.meta import ModelMeta

def source_licence(source: str) -> str:
    """Our own paragraphs are the project's; an outside source's licence is in its codebook."""
    if source == "authored":
        return "original text of this project"
    from event_classifier.errors import EventClassifierError
    from event_classifier.sources import load_codebook

    try:
        return load_codebook(source).get("licence", "see data/README.md")
    except EventClassifierError:  # a card is still written when a codebook has gone
        return "see data/README.md"


def _clip(text: str, limit: int = 300) -> str:
    text = text.replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def weakest_first(by_source_label: dict[str, dict]) -> list[tuple[str, dict]]:
    """Source labels by recall, lowest first (the larger first among equals)."""
    return sorted(by_source_label.items(), key=lambda kv: (kv[1]["recall"], -kv[1]["n"], kv[0]))


def error_report(rows: list[dict], predictions: list[dict], metrics: dict, name: str, top: int = 15,
                 per_pair: int = 3) -> str:
    """The most confident mistakes and, for each confusion pair, example texts."""
    mistakes = sorted(
        ((r, p) for r, p in zip(rows, predictions) if r["label"] != p["label"]), key=lambda rp: -rp[1]["score"]
    )
    lines = [f"# Errors on {name}", "",
             f"{len(mistakes)} of {len(rows)} paragraphs wrong; macro-F1 {metrics['macro_f1']:.3f}, "
             f"accuracy {metrics['accuracy']:.3f}.", "", f"## The {min(top, len(mistakes))} most confident mistakes", "",
             "| confidence | true | predicted | text |", "|---|---|---|---|"]
    for row, prediction in mistakes[:top]:
        lines.append(f"| {prediction['score']:.2f} | {row['label']} | {prediction['label']} | {_clip(row['text'])} |")
    if metrics.get("by_source_label"):
        lines += ["", "## Recall per label of the source's scheme, weakest first", "",
                  "| source label | maps to | right | recall |", "|---|---|---|---|"]
        lines += [f"| {source_label} | {m['label']} | {m['right']} of {m['n']} | {m['recall']:.2f} |"
                  for source_label, m in weakest_first(metrics["by_source_label"])]
    pairs: dict[tuple[str, str], list] = defaultdict(list)
    for row, prediction in mistakes:
        pairs[(row["label"], prediction["label"])].append((row, prediction))
    lines += ["", "## Confusion pairs", ""]
    for (true, predicted), items in sorted(pairs.items(), key=lambda kv: -len(kv[1])):
        lines += [f"### {true} read as {predicted} ({len(items)})", ""]
        lines += [f"- ({p['score']:.2f}) {_clip(r['text'])}" for r, p in items[:per_pair]]
        lines.append("")
    return "\n".join(lines) + "\n"


def _refit_epochs(refit: dict) -> str:
    """How a refit's epoch count was set: chosen on dev, or fixed by the config (train.epoch_choice)."""
    if refit["epochs_chosen_on_dev"] is None:
        return f"with the epoch count fixed at {refit['epochs']:g} (train.epoch_choice: fixed)"
    return f"after dev chose {refit['epochs_chosen_on_dev']} epochs"


def model_card(meta: "ModelMeta", metrics: dict, config: dict, origin: str | None = None) -> str:
    """README.md for an exported model folder: use, labels, data, metrics with their command, calibration, config.
    `origin` names what wrote a model that `python train.py` did not (e.g. a soup of runs)."""
    dev, test = metrics["dev"], metrics["test"]
    fallback = f"`{meta.fallback_label}`" if meta.fallback_label else "no label (they are only flagged)"
    lines = [
        "# event_classifier model", "",
        f"Fine-tuned from `{meta.backbone}` to label news paragraphs by event type. Written by "
        f"{origin or '`python train.py`'} (event_classifier {meta.version}).", "",
        "## Intended use and limits", "",
        "Labelling paragraphs of English-language conflict reporting as event data. "
        + ("Several labels per paragraph (`labels`): the main event's (`label`, the most probable) and any other event's "
           "whose probability reaches its threshold (see `also` in data/GUIDELINES.md). " if meta.multi_label else
           "One label per paragraph: a paragraph reporting two events gets the main one (see data/GUIDELINES.md). ")
        + "Trained on text written in the style of wire "
        "reports; expect lower scores on other genres, other languages, and on paragraphs that need wider context. "
        "Not for decisions about individuals. Check a sample of its output before publishing figures built on it.", "",
        "## Labels", "", "| label | meaning |", "|---|---|",
    ]
    lines += [f"| `{label.name}` | {label.description} |" for label in meta.labels]
    lines += ["", "## Training data", "", "| split | paragraphs | labels | sources (licence) | sha256 |", "|---|---|---|---|---|"]
    for split, item in meta.data.items():
        sources = ", ".join(f"{s} {n} ({source_licence(s)})" for s, n in item.get("sources", {}).items())
        lines.append(f"| {split} | {item.get('rows', '')} | {item.get('labels', '')} | {sources} | `{item.get('sha256', '')[:16]}…` |")
    lines += [
        "", "## Metrics", "",
        "| split | macro-F1 (95 % CI) | accuracy | ECE |", "|---|---|---|---|",
        *(f"| {n} | {m['macro_f1']:.3f} ({m['macro_f1_ci95'][0]:.3f}-{m['macro_f1_ci95'][1]:.3f}) | {m['accuracy']:.3f} "
          f"| {m['ece']:.3f} |" for n, m in (("dev", dev), ("test", test))),
        *(["", "Macro-F1, accuracy and ECE are of the main label. Label sets (main + secondary labels) on test: micro-F1 "
               f"{sets['micro_f1']:.3f}, macro-F1 {sets['macro_f1']:.3f}, secondary-label F1 {sets['secondary']['f1']:.3f}, "
               f"subset accuracy {sets['subset_accuracy']:.3f}, Hamming loss {sets['hamming_loss']:.4f}."]
          if (sets := test.get("label_sets")) else []),
        *(["", f"Refit: {_refit_epochs(metrics['refit'])}, the shipped model was trained "
                f"again on train+dev ({metrics['refit']['paragraphs']} paragraphs) for that many; its test macro-F1 is "
                f"{test['macro_f1']:.3f} (the dev-selected model's: {metrics['refit']['selection_test_macro_f1']:.3f}); "
                "the dev row is the dev-selected model's, and the temperature is the one it fitted on dev."]
          if "refit" in metrics else []),
        "", (f"Written by `python train.py` at the end of training; reproduce with `python train.py --config "
             f"{meta.run}/config.yaml --train.run_name=NEW_NAME`, re-check with `python evaluate.py {meta.run}`."
             if origin is None else f"Re-check with `python evaluate.py {meta.run}`; the config below is the first "
             "member's."),
        "", "## Calibration and inference settings", "",
        f"Temperature scaling fitted on dev: T = {meta.temperature}. Test ECE "
        f"{test.get('ece_uncalibrated', test['ece']):.3f} before, {test['ece']:.3f} after. `predict.py --min-confidence X` "
        f"flags predictions below X and routes them to {fallback}; see evaluation/test/coverage.png to choose X. "
        f"Windows of {meta.max_length} tokens overlapping by {meta.stride}, batches of {meta.batch_size}.",
        *([f"Task multi_label: a sigmoid per label; thresholds tuned on dev (a label joins `labels` at or above its "
           f"threshold): {', '.join(f'{k} {v:g}' for k, v in meta.thresholds.items())}."] if meta.multi_label else []),
        *([f"Lexical companion: TF-IDF + logistic regression trained on the same rows (`lexical.json`), {meta.lexical_weight:g} "
           "of every prediction's probabilities; the temperature above scales the transformer's share, a blend "
           "temperature fitted on dev (in `lexical.json`) the mean, and explanations attribute the transformer's "
           "share."] if meta.lexical_weight else []),
        "", "## Config", "", "```yaml", yaml.safe_dump(config, sort_keys=False, allow_unicode=True).strip(), "```", "",
    ]
    return "\n".join(lines)
