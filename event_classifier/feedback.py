"""Analysts' corrections from the web app: one JSON line each, appended to data/feedback/<date>.jsonl and never
rewriting earlier lines; data/prepare.py reads them back as a source, so the next training run learns from them."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from event_classifier.errors import EventClassifierError
from event_classifier.io import append_jsonl_line
from event_classifier.sources import ReadReport, read_labelled_file

FEEDBACK_SOURCE = "feedback"


def record_correction(folder: str | Path, text: str, label: str, previous_label: str | None, labels: list[str],
                      model: str, article: str | None = None) -> dict:
    """Append one correction to FOLDER/<UTC date>.jsonl and return it (with `path`).

    The line holds text, label, previous label, model, article (also as `article_id`, so prepare keeps the
    paragraphs of one article in one split) and time.
    """
    if label not in labels:
        raise EventClassifierError(f"unknown label {label!r}; use one of {', '.join(labels)}")
    text = " ".join(text.split())
    if not text:
        raise EventClassifierError("an empty paragraph cannot be corrected; give its text")
    now = datetime.now(timezone.utc)
    row = {"text": text, "label": label, "previous_label": previous_label, "model": model, "article": article,
           "article_id": f"{FEEDBACK_SOURCE}:{article}" if article else None,
           "time": now.isoformat(timespec="seconds").replace("+00:00", "Z")}
    path = Path(folder) / f"{now:%Y-%m-%d}.jsonl"
    append_jsonl_line(path, row)
    return {**row, "path": str(path)}


def read_feedback(folder: str | Path | None, labels: list[str]) -> tuple[list[dict], list[ReadReport]]:
    """Every correction in FOLDER/*.jsonl (none when the folder does not exist), newest first.

    Newest first because deduplication keeps the first copy of a text: so the latest correction of a text wins over
    earlier ones, while our corpus, read before any source, still wins over a correction of the same text.
    """
    folder = Path(folder) if folder else None
    if folder is None or not folder.is_dir():
        return [], []
    rows, reports = [], []
    for path in sorted(folder.glob("*.jsonl")):  # dated names: oldest file first, lines in the order written
        file_rows, report = read_labelled_file(path, labels, source=FEEDBACK_SOURCE)
        rows += file_rows
        reports.append(report)
    return rows[::-1], reports
