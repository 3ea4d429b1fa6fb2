"""Writing predictions as JSONL or CSV, to a file (atomically) or stdout, with per-article counts; and the event
table: one row per paragraph that reports an event, ready for a spreadsheet or a database import."""

from __future__ import annotations

import contextlib
import csv
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Iterable

from event_classifier.errors import EventClassifierError
from event_classifier.io import atomic_open

EVENT_COLUMNS = ["date", "article", "title", "site", "paragraph", "label", "confidence", "low_confidence", "text"]


class RowWriter:
    """Rows to an open text handle as JSONL, or as CSV whose columns are `columns` or else the first row's."""

    def __init__(self, handle, fmt: str, columns: list[str] | None = None):
        self.handle, self.fmt, self.writer = handle, fmt, None
        if columns and fmt == "csv":  # the header is written even when no row follows
            self.writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
            self.writer.writeheader()

    def write(self, row: dict) -> None:
        if self.fmt == "jsonl":
            self.handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            return
        if self.writer is None:
            self.writer = csv.DictWriter(self.handle, fieldnames=list(row), extrasaction="ignore")
            self.writer.writeheader()
        self.writer.writerow(row)


def events_format(path: str) -> str:
    """The event table's format from its suffix: .csv or .jsonl."""
    suffix = Path(path).suffix.lower()
    if suffix not in {".csv", ".jsonl"}:
        raise EventClassifierError(f"--events {path}: unknown table format {suffix!r}; name it .csv or .jsonl")
    return suffix[1:]


def event_row(record: dict) -> dict:
    """A prediction as a row of the event table (columns EVENT_COLUMNS)."""
    return {"date": record.get("date"), "article": record.get("article", record["source"]), "title": record.get("title"),
            "site": record.get("site"), "paragraph": record["paragraph"], "label": record["label"],
            "confidence": record["score"], "low_confidence": bool(record.get("low_confidence", False)),
            "text": record["text"]}


def write_predictions(records: Iterable[dict], output: str | None, fmt: str, labels: list[str],
                      events: str | None = None, fallback_label: str | None = None) -> dict[str, dict[str, int]]:
    """Stream `records` out one row per paragraph; return counts per source and label.

    With `events`, the paragraphs whose label is not `fallback_label` (all of them when it is None) also go to that
    table. Files appear only when every row is written: a failure or Ctrl-C leaves no partial output.
    """
    summary: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(labels, 0))
    with contextlib.ExitStack() as stack:
        handle = stack.enter_context(atomic_open(output, newline="") if output else contextlib.nullcontext(sys.stdout))
        rows = RowWriter(handle, fmt)
        event_rows = None
        if events:
            event_rows = RowWriter(stack.enter_context(atomic_open(events, newline="")), events_format(events), EVENT_COLUMNS)
        for record in records:
            summary[record["source"]][record["label"]] += 1
            if fmt == "jsonl":
                rows.write(record)
            else:
                flat = {k: json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else v  # e.g. evidence
                        for k, v in record.items() if k != "probs"}
                flat.update({f"p_{label}": p for label, p in record["probs"].items()})
                rows.write(flat)
            if event_rows is not None and (fallback_label is None or record["label"] != fallback_label):
                event_rows.write(event_row(record))
    return dict(summary)
