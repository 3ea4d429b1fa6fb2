"""Data preparation: read all sources, remove duplicates, split by article and label into train/dev/test."""

from __future__ import annotations

import glob
import re
import string
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import cosine_similarity
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.preprocessing import MultiLabelBinarizer

from event_classifier.config import Config
from event_classifier.errors import EventClassifierError
from event_classifier.feedback import read_feedback
from event_classifier.io import atomic_write_json, atomic_write_jsonl, iter_jsonl, read_text_file, sha256_of
from event_classifier.sources import read_labelled_file, read_source

SPLITS = ("train", "dev", "test")
_PUNCTUATION = re.compile(f"[{re.escape(string.punctuation)}“”‘’«»—–…]")


def normalise_text(text: str) -> str:
    """Case, punctuation and whitespace folded, so trivially different copies compare equal."""
    return " ".join(_PUNCTUATION.sub(" ", text.lower()).split())


def row_labels(row: dict) -> list[str]:
    """Every label of a row: its main `label` first, then its secondary ones (`also`, absent on most rows)."""
    return [row["label"], *row.get("also", [])]


def label_matrix(label_sets: list[list[str]], labels: list[str]) -> np.ndarray:
    """Label sets (e.g. `row_labels` of each row, or predicted `labels`) as a multi-hot matrix, one column per label."""
    return MultiLabelBinarizer(classes=labels).fit_transform(label_sets).astype(np.float32)


def paragraph_files(path: Path) -> list[Path]:
    """The JSONL files of our own corpus: one file, every *.jsonl in a folder, or the files a glob pattern names
    (e.g. `data/paragraphs/b1[234].jsonl` for some batches)."""
    path = Path(path)
    if any(char in str(path) for char in "*?["):
        files = sorted(Path(match) for match in glob.glob(str(path)) if match.endswith(".jsonl"))
        if not files:
            raise EventClassifierError(f"{path}: the pattern matches no *.jsonl file; fix data.paragraphs")
        return files
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
        if not files:
            raise EventClassifierError(f"{path}: no *.jsonl files in this folder; add labelled paragraphs (see data/README.md)")
        return files
    if not path.exists():
        raise EventClassifierError(f"{path}: not found; set data.paragraphs to a JSONL file or a folder of them")
    return [path]


class _UnionFind:
    def __init__(self, size: int):
        self.parent = list(range(size))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        self.parent[self.find(i)] = self.find(j)


def deduplicate(rows: list[dict], threshold: float) -> tuple[list[dict], dict]:
    """Drop exact duplicates (after normalising) and give every row a `group`.

    A group joins the paragraphs of one article and every pair of near-duplicates (TF-IDF cosine >= threshold),
    so a split by group never puts copies or siblings on both sides.
    """
    seen: dict[str, int] = {}
    kept, conflicts = [], 0
    for row in rows:
        key = normalise_text(row["text"])
        if key in seen:
            conflicts += kept[seen[key]]["label"] != row["label"]
            continue
        seen[key] = len(kept)
        kept.append(row)
    union = _UnionFind(len(kept))
    first_of_article: dict[str, int] = {}
    for i, row in enumerate(kept):
        union.union(i, first_of_article.setdefault(row["article_id"], i))
    near_pairs = 0
    if len(kept) > 1:
        vectors = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit_transform(normalise_text(r["text"]) for r in kept)
        similar = cosine_similarity(vectors, dense_output=False)
        similar.setdiag(0)
        pairs = np.argwhere(similar >= threshold) if similar.nnz and similar.max() >= threshold else []
        for i, j in pairs:
            if i < j:
                near_pairs += 1
                union.union(int(i), int(j))
    for i, row in enumerate(kept):
        row["group"] = union.find(i)
    report = {
        "exact_duplicates_removed": len(rows) - len(kept),
        "duplicates_with_conflicting_labels": int(conflicts),
        "near_duplicate_pairs_grouped": near_pairs,
    }
    return kept, report


def take_fold(rows: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Split off about `fraction` of the rows, stratified by label and grouped by `group`."""
    n_folds = max(2, round(1 / fraction))
    labels = [r["label"] for r in rows]
    groups = [r["group"] for r in rows]
    if len(set(groups)) < n_folds:
        raise EventClassifierError(
            f"only {len(set(groups))} articles after deduplication, too few for a {fraction:.0%} split; add data"
        )
    folds = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    rest_idx, fold_idx = next(folds.split(np.zeros(len(rows)), labels, groups))
    return [rows[i] for i in rest_idx], [rows[i] for i in fold_idx]


def split(rows: list[dict], config: Config) -> dict[str, list[dict]]:
    """Article-grouped, label-stratified train/dev/test split."""
    seed = config.data.split_seed
    rest, test = take_fold(rows, config.data.test_fraction, seed)
    train, dev = take_fold(rest, config.data.dev_fraction / (1 - config.data.test_fraction), seed + 1)
    splits = {"train": train, "dev": dev, "test": test}
    for name, part in splits.items():
        if not part:
            raise EventClassifierError(f"the {name} split is empty after deduplication; add more articles")
    missing = [label for label in config.label_names if label not in {r["label"] for r in train}]
    if missing:
        raise EventClassifierError(f"no train examples for label(s) {', '.join(missing)}; add paragraphs with those labels")
    return splits


def collect(config: Config, extra_sources: dict[str, str] | None = None) -> tuple[list[dict], list[dict]]:
    """Read our corpus, every configured source and the web app's corrections (data.feedback), in that order (the
    first copy of a text is the one deduplication keeps); return the rows and one report per file read."""
    rows, reports = [], []
    own = paragraph_files(Path(config.data.paragraphs)) if config.data.paragraphs else []
    if not own and not config.data.sources and not extra_sources:
        raise EventClassifierError("no data: set data.paragraphs to our corpus or name outside sources in data.sources")
    for path in own:
        file_rows, report = read_labelled_file(path, config.label_names)
        rows += file_rows
        reports.append(report)
    for name, path in {**config.data.sources, **(extra_sources or {})}.items():
        file_rows, report = read_source(name, Path(path), config.label_names)
        rows += file_rows
        reports.append(report)
    feedback_rows, feedback_reports = read_feedback(config.data.feedback, config.label_names)
    rows += feedback_rows
    reports += feedback_reports
    ids = Counter(r["id"] for r in rows)
    repeated = [i for i, n in ids.items() if n > 1]
    if repeated:
        raise EventClassifierError(f"paragraph id {repeated[0]!r} occurs {ids[repeated[0]]} times; ids must be unique")
    return rows, [dict(asdict(r), sha256=sha256_of(Path(r.path))) for r in reports]


def prepare(config: Config, extra_sources: dict[str, str] | None = None) -> dict:
    """Write train/dev/test JSONL and a manifest (counts, hashes, duplicates) to config.data.prepared_dir."""
    rows, reports = collect(config, extra_sources)
    if not rows:
        raise EventClassifierError(f"{config.data.paragraphs or 'data.sources'}: no labelled paragraphs found")
    rows, dedup = deduplicate(rows, config.data.near_duplicate_threshold)
    splits = split(rows, config)
    out = Path(config.data.prepared_dir)
    manifest = {"labels": config.label_names, "inputs": reports, "deduplication": dedup, "splits": {}}
    for name, part in splits.items():
        path = out / f"{name}.jsonl"
        atomic_write_jsonl(path, ({k: v for k, v in r.items() if k != "group"} for r in part))
        manifest["splits"][name] = {
            "rows": len(part),
            "articles": len({r["article_id"] for r in part}),
            "labels": dict(sorted(Counter(r["label"] for r in part).items())),
            "also": dict(sorted(Counter(label for r in part for label in r.get("also", [])).items())),
            "sources": dict(sorted(Counter(r["source"] for r in part).items())),
            "sha256": sha256_of(path),
        }
    atomic_write_json(out / "manifest.json", manifest)
    return manifest


def read_split(path: Path, labels: list[str]) -> list[dict]:
    """Read a prepared split; its labels (main and `also`) must be among `labels`."""
    path = Path(path)
    rows = [row for _, row in iter_jsonl(path, read_text_file(path))]
    unknown = {label for r in rows for label in row_labels(r)} - set(labels)
    if unknown:
        raise EventClassifierError(f"{path}: labels {sorted(unknown)} are not in the label set {labels}; rerun data/prepare.py "
                                   "with the same config")
    return rows


def load_split(config: Config, name: str) -> list[dict]:
    """Read one prepared split, with a clear message if data/prepare.py has not been run."""
    path = Path(config.data.prepared_dir) / f"{name}.jsonl"
    if not path.exists():
        raise EventClassifierError(f"{path}: prepared split not found; run `python data/prepare.py` first")
    return read_split(path, config.label_names)
