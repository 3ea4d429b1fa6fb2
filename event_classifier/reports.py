"""Readable Markdown written next to results: the error report and the model card."""

from __future__ import annotations

from collections import defaultdict

import yaml

LABEL_SUMMARIES = {  # one line each from data/GUIDELINES.md
    "military_advance": "forces take, enter, retake, capture or establish themselves in territory or positions; "
                        "a withdrawal is an advance for the other side",
    "attack": "a violent strike or clash by armed forces or groups: shelling, air/drone strike, bombing, ambush, armed clash",
    "diplomacy": "non-violent dealings between governments or parties: talks, agreements, ceasefires, sanctions, envoys",
    "other": "everything else: background, humanitarian and economic news, protests, crime, arrests, disasters, "
             "deployments, plans and threats",
}


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
    pairs: dict[tuple[str, str], list] = defaultdict(list)
    for row, prediction in mistakes:
        pairs[(row["label"], prediction["label"])].append((row, prediction))
    lines += ["", "## Confusion pairs", ""]
    for (true, predicted), items in sorted(pairs.items(), key=lambda kv: -len(kv[1])):
        lines += [f"### {true} read as {predicted} ({len(items)})", ""]
        lines += [f"- ({p['score']:.2f}) {_clip(r['text'])}" for r, p in items[:per_pair]]
        lines.append("")
    return "\n".join(lines) + "\n"


def model_card(meta: dict, metrics: dict, config: dict, data_manifest: dict | None) -> str:
    """README.md for an exported model folder: use, labels, data, metrics with their command, calibration, config."""
    dev, test = metrics["dev"], metrics["test"]
    lines = [
        "# event_classifier model", "",
        f"Fine-tuned from `{meta['backbone']}` to label news paragraphs by event type. Written by `python train.py`.", "",
        "## Intended use and limits", "",
        "Labelling paragraphs of English-language conflict reporting as event data. One label per paragraph: a paragraph "
        "reporting two events gets the main one (see data/GUIDELINES.md). Trained on text written in the style of wire "
        "reports; expect lower scores on other genres, other languages, and on paragraphs that need wider context. "
        "Not for decisions about individuals. Check a sample of its output before publishing figures built on it.", "",
        "## Labels", "", "| label | meaning |", "|---|---|",
    ]
    lines += [f"| `{label}` | {LABEL_SUMMARIES.get(label, '')} |" for label in meta["labels"]]
    lines += ["", "## Training data", ""]
    if data_manifest:
        lines += ["| file | rows kept | licence | sha256 |", "|---|---|---|---|"]
        lines += [f"| {i['path']} ({i['source']}) | {i['kept']} | {source_licence(i['source'])} | `{i['sha256'][:16]}…` |"
                  for i in data_manifest["inputs"]]
        lines += ["", "| split | paragraphs | labels |", "|---|---|---|"]
        lines += [f"| {n} | {s['rows']} | {s['labels']} |" for n, s in data_manifest["splits"].items()]
    lines += [
        "", "## Metrics", "",
        "| split | macro-F1 (95 % CI) | accuracy | ECE |", "|---|---|---|---|",
        *(f"| {n} | {m['macro_f1']:.3f} ({m['macro_f1_ci95'][0]:.3f}-{m['macro_f1_ci95'][1]:.3f}) | {m['accuracy']:.3f} "
          f"| {m['ece']:.3f} |" for n, m in (("dev", dev), ("test", test))),
        "", f"Written by `python train.py` at the end of training; reproduce with `python train.py --config "
            f"{meta['run']}/config.yaml --train.run_name=NEW_NAME`, re-check with `python evaluate.py {meta['run']}`.",
        "", "## Calibration", "",
        f"Temperature scaling fitted on dev: T = {meta.get('temperature', 1.0)}. Test ECE "
        f"{test.get('ece_uncalibrated', test['ece']):.3f} before, {test['ece']:.3f} after. `predict.py --min-confidence X` "
        "routes predictions below X to `other` and flags them; see evaluation/test/coverage.png to choose X.",
        "", "## Config", "", "```yaml", yaml.safe_dump(config, sort_keys=False).strip(), "```", "",
    ]
    return "\n".join(lines)
