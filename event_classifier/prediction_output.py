"""Writing predictions as JSONL or CSV, to a file (atomically) or stdout, with per-article counts; and the event
table: one row per paragraph and event label, ready for a spreadsheet or a database import."""

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

EVENT_COLUMNS = ["date", "article", "title", "site", "paragraph", "label", "main", "confidence", "low_confidence", "text"]
LABEL_SEPARATOR = ";"  # between the labels of a row in a CSV cell, as in the `also` cell of a labelled CSV


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


def label_set(record: dict) -> list[str]:
    """The record's `label` first, then the secondary labels of its `labels`: a main label corrected in the web app
    replaces the model's main label and keeps its secondary ones."""
    return [record["label"], *[label for label in (record.get("labels") or [])[1:] if label != record["label"]]]


def event_rows(record: dict, fallback_label: str | None = None) -> list[dict]:
    """A prediction as rows of the event table (columns EVENT_COLUMNS): one per label of the paragraph (`labels`; the
    main one first, `main` true, as write_predictions' label_set puts it) that is not `fallback_label`, with that label's
    probability as its confidence."""
    labels = record["labels"]
    return [{"date": record.get("date"), "article": record.get("article", record["source"]), "title": record.get("title"),
             "site": record.get("site"), "paragraph": record["paragraph"], "label": label, "main": label == record["label"],
             "confidence": record["score"] if label == record["label"] else record["probs"][label],
             "low_confidence": bool(record.get("low_confidence", False)), "text": record["text"]}
            for label in labels if fallback_label is None or label != fallback_label]


def write_predictions(records: Iterable[dict], output: str | None, fmt: str, labels: list[str],
                      events: str | None = None, fallback_label: str | None = None) -> dict[str, dict[str, int]]:
    """Stream `records` out one row per paragraph; return counts per source and label.

    With `events`, each paragraph's labels other than `fallback_label` (all of them when it is None) also go to that
    table, one row per paragraph and label. Files appear only when every row is written: a failure or Ctrl-C leaves
    no partial output. In CSV, `labels` is one cell, the labels joined by `;`.
    """
    summary: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(labels, 0))
    with contextlib.ExitStack() as stack:
        handle = stack.enter_context(atomic_open(output, newline="") if output else contextlib.nullcontext(sys.stdout))
        rows = RowWriter(handle, fmt)
        event_table = None
        if events:
            event_table = RowWriter(stack.enter_context(atomic_open(events, newline="")), events_format(events), EVENT_COLUMNS)
        for record in records:
            record = {**record, "labels": label_set(record)}  # e.g. a main label corrected in the web app
            summary[record["source"]][record["label"]] += 1
            if fmt == "jsonl":
                rows.write(record)
            else:
                flat = {k: json.dumps(v, ensure_ascii=False) if isinstance(v, dict) or (isinstance(v, list) and k != "labels")
                        else v for k, v in record.items() if k != "probs"}  # e.g. evidence
                if "labels" in flat:
                    flat["labels"] = LABEL_SEPARATOR.join(flat["labels"])
                flat.update({f"p_{label}": p for label, p in record["probs"].items()})
                rows.write(flat)
            if event_table is not None:
                for row in event_rows(record, fallback_label):
                    event_table.write(row)
    return dict(summary)
