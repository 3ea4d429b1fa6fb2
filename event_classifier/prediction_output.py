"""Writing predictions as JSONL or CSV, to a file (atomically) or stdout, with per-article counts."""

from __future__ import annotations

import csv
import json
import os
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Iterable


def write_predictions(records: Iterable[dict], output: str | None, fmt: str, labels: list[str]) -> dict[str, dict[str, int]]:
    """Stream `records` out one row per paragraph; return counts per source and label."""
    summary: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(labels, 0))
    if output:
        path = Path(output)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        handle = os.fdopen(fd, "w", encoding="utf-8", newline="")
    else:
        handle, tmp = sys.stdout, None
    try:
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
        if tmp:
            handle.close()
            os.replace(tmp, output)
    except BaseException:
        if tmp:
            handle.close()
            Path(tmp).unlink(missing_ok=True)
        raise
    return dict(summary)
