"""Writing predictions as JSONL or CSV, to a file (atomically) or stdout, with per-article counts."""

from __future__ import annotations

import contextlib
import csv
import json
import sys
from collections import defaultdict
from typing import Iterable

from event_classifier.io import atomic_open


def write_predictions(records: Iterable[dict], output: str | None, fmt: str, labels: list[str]) -> dict[str, dict[str, int]]:
    """Stream `records` out one row per paragraph; return counts per source and label.

    A file appears only when every row is written: a failure or Ctrl-C leaves no partial output.
    """
    summary: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(labels, 0))
    target = atomic_open(output, newline="") if output else contextlib.nullcontext(sys.stdout)
    with target as handle:
        writer = None
        for record in records:
            summary[record["source"]][record["label"]] += 1
            if fmt == "jsonl":
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                continue
            flat = {k: v for k, v in record.items() if k != "probs"}
            flat.update({f"p_{label}": p for label, p in record["probs"].items()})
            if writer is None:
                writer = csv.DictWriter(handle, fieldnames=list(flat), extrasaction="ignore")
                writer.writeheader()
            writer.writerow(flat)
    return dict(summary)
