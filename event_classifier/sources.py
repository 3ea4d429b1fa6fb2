"""Labelled data readers: our own JSONL/CSV files, and outside sources mapped through a codebook."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from event_classifier.config import PROJECT_ROOT
from event_classifier.errors import EventClassifierError
from event_classifier.io import iter_jsonl, read_text_file

SOURCES_DIR = PROJECT_ROOT / "configs" / "sources"
DROP = "drop"


@dataclass
class ReadReport:
    """What reading one file kept and passed over, so nothing disappears unreported."""

    path: str
    source: str
    kept: int = 0
    skipped_empty: int = 0
    dropped_by_codebook: dict[str, int] = field(default_factory=dict)


def _check_label(label: Any, labels: list[str], where: str) -> str:
    if label not in labels:
        raise EventClassifierError(
            f"{where}: unknown label {label!r}; use one of {', '.join(labels)} (or map it in a codebook)"
        )
    return label


def _check_also(value: Any, label: str, labels: list[str], where: str) -> list[str]:
    """The secondary labels of a row (`also`): a JSON list, or in a CSV/TSV cell names separated by `;`.

    Each must be a known label, differ from the row's `label` and appear once (data/GUIDELINES.md, rule 15)."""
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = [part.strip() for part in value.split(";") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise EventClassifierError(f"{where}: 'also' must be a list of labels, got {value!r}; write e.g. \"also\": [\"attack\"]")
    for item in value:
        if item not in labels:
            raise EventClassifierError(f"{where}: unknown label {item!r} in 'also'; use one of {', '.join(labels)}")
        if item == label:
            raise EventClassifierError(f"{where}: 'also' repeats the main label {item!r}; list only other labels in 'also'")
    if len(set(value)) != len(value):
        raise EventClassifierError(f"{where}: 'also' lists a label twice ({value}); list each secondary label once")
    return value


def _make_row(text: Any, label: str, where: str, source: str, row_id: str, article_id: Any,
              also: list[str] | None = None) -> dict | None:
    if not isinstance(text, str):
        raise EventClassifierError(f"{where}: 'text' must be a string, got {type(text).__name__}")
    if not text.strip():
        return None
    row = {
        "id": str(row_id),
        "article_id": str(article_id) if article_id not in (None, "") else f"{source}:{row_id}",
        "text": " ".join(text.split()),
        "label": label,
        "source": source,
    }
    if also:  # only rows with secondary labels carry the field, so single-label data is written as before
        row["also"] = also
    return row


def _read_table(path: Path, text: str, delimiter: str, header: bool) -> list[dict[str, Any]] | list[list[str]]:
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, quoting=csv.QUOTE_MINIMAL)
    table = [row for row in reader if row]
    if not header:
        return table
    if not table:
        raise EventClassifierError(f"{path}: no header row; the first row must name the columns")
    names = table[0]
    return [dict(zip(names, row)) for row in table[1:]]


def read_labelled_file(path: Path, labels: list[str], source: str = "authored") -> tuple[list[dict], ReadReport]:
    """Read a labelled JSONL, CSV or TSV file with `text` and `label` fields (optional `id`, `article_id`, `source`,
    and `also`: secondary labels)."""
    path = Path(path)
    text = read_text_file(path)
    report = ReadReport(str(path), source)
    if path.suffix in {".csv", ".tsv"}:
        records = _read_table(path, text, "\t" if path.suffix == ".tsv" else ",", header=True)
        numbered = list(enumerate(records, start=2))
    else:
        numbered = list(iter_jsonl(path, text))
    rows = []
    for number, record in numbered:
        where = f"{path}:{number}"
        for column in ("text", "label"):
            if column not in record:
                raise EventClassifierError(f"{where}: missing '{column}' field; every row needs 'text' and 'label'")
        label = _check_label(record["label"], labels, where)
        row = _make_row(record["text"], label, where, record.get("source") or source,
                        record.get("id") or f"{path.stem}-{number}", record.get("article_id"),
                        _check_also(record.get("also"), label, labels, where))
        if row is None:
            report.skipped_empty += 1
            continue
        rows.append(row)
    report.kept = len(rows)
    return rows, report


def load_codebook(name: str) -> dict[str, Any]:
    """Read configs/sources/<name>.yaml: how to read a source and how its labels map to ours. A name may carry a tag
    after `@` (`cameo_conflict@test`): the same codebook for another file of the source, with ids of its own."""
    name = name.partition("@")[0]
    path = SOURCES_DIR / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in SOURCES_DIR.glob("*.yaml")))
        raise EventClassifierError(f"{path}: no codebook for source {name!r}; known sources: {known}")
    codebook = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key in ("format", "text_field", "label_field", "labels"):
        if key not in codebook:
            raise EventClassifierError(f"{path}: codebook lacks '{key}'; see \"Adding a source\" in data/README.md")
    if "annotations" in codebook:
        codebook["annotations"] = str((path.parent / codebook["annotations"]).resolve())
    return codebook


def text_digest(text: str) -> str:
    """A short fingerprint of a text (whitespace normalised): an annotation holds it, never the text itself."""
    return hashlib.sha1(" ".join(str(text).split()).encode("utf-8")).hexdigest()[:12]


def _annotations(codebook: dict[str, Any], path: Path, labels: list[str]) -> dict[int, tuple[str, str]]:
    """The codebook's `annotations` file (TSV: file, record, label, text_sha1, ...): our own labels for single records
    of an outside file, by the file's name and the record number its errors name; returns record -> (label, digest)."""
    where = Path(codebook["annotations"])
    records = read_labelled_table(where)
    found = {}
    for number, record in records:
        missing = [c for c in ("file", "record", "label", "text_sha1") if not record.get(c)]
        if missing:
            raise EventClassifierError(f"{where}:{number}: missing {', '.join(missing)}; each annotation names file, "
                                       "record, label and text_sha1")
        if record["file"] == path.name:
            label = _check_label(record["label"], labels, f"{where}:{number}")
            found[int(record["record"])] = (label, record["text_sha1"])
    return found


def read_labelled_table(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """A TSV with a header, as (line number, record) pairs."""
    return list(enumerate(_read_table(path, read_text_file(path), "\t", header=True), start=2))


def _source_records(path: Path, codebook: dict[str, Any]) -> list[tuple[int, Any]]:
    text = read_text_file(path)
    kind = codebook["format"]
    if kind == "json":
        try:
            return list(enumerate(json.loads(text), start=1))
        except json.JSONDecodeError as exc:
            raise EventClassifierError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if kind == "jsonl":
        return list(iter_jsonl(path, text))
    if kind in {"tsv", "csv"}:
        header = codebook.get("header", True)
        records = _read_table(path, text, "\t" if kind == "tsv" else ",", header=header)
        return list(enumerate(records, start=2 if header else 1))
    raise EventClassifierError(f"codebook format {kind!r} is not one of json, jsonl, tsv, csv")


def read_source(name: str, path: Path, labels: list[str]) -> tuple[list[dict], ReadReport]:
    """Read an outside source by its codebook; labels the codebook maps to `drop` are counted, not kept."""
    codebook = load_codebook(name)
    path = Path(path)
    mapping = {str(k): v for k, v in codebook["labels"].items()}
    annotated = _annotations(codebook, path, labels) if "annotations" in codebook else {}
    report = ReadReport(str(path), name)
    rows, seen = [], set()
    for number, record in _source_records(path, codebook):
        where = f"{path}:{number}"
        try:
            source_label = str(record[codebook["label_field"]])
        except (KeyError, IndexError, TypeError):
            raise EventClassifierError(
                f"{where}: missing label field {codebook['label_field']!r} named by configs/sources/{name}.yaml; "
                "fix the codebook or the file"
            ) from None
        if source_label not in mapping:
            raise EventClassifierError(
                f"{where}: source label {source_label!r} is not in configs/sources/{name}.yaml; map it to a label or 'drop'"
            )
        target = mapping[source_label]
        if number in annotated:  # our own label for this record (codebook `annotations`) decides over the mapping
            target, digest = annotated[number]
            seen.add(number)
        if target == DROP:  # counted in the report, never silently lost
            report.dropped_by_codebook[source_label] = report.dropped_by_codebook.get(source_label, 0) + 1
            continue
        try:
            text = record[codebook["text_field"]]
        except (KeyError, IndexError):
            raise EventClassifierError(
                f"{where}: missing text field {codebook['text_field']!r} named by configs/sources/{name}.yaml; "
                "fix the codebook or the file"
            ) from None
        if number in annotated and text_digest(text) != annotated[number][1]:
            raise EventClassifierError(
                f"{codebook['annotations']}: the annotation of {path.name} record {number} was made for another text; "
                f"{path} has changed: restore the file its PROVENANCE.md names, or annotate it again")
        label = _check_label(target, labels, f"configs/sources/{name}.yaml ({source_label})")
        id_field = codebook.get("id_field")
        row_id = record[id_field] if id_field is not None else number
        row = _make_row(text, label, where, name, f"{name}-{row_id}", None)
        if row is None:
            report.skipped_empty += 1
            continue
        row["source_label"] = source_label
        rows.append(row)
    if set(annotated) - seen:
        raise EventClassifierError(
            f"{codebook['annotations']}: annotates {path.name} record {min(set(annotated) - seen)}, which {path} does not "
            "have; restore the file its PROVENANCE.md names")
    report.kept = len(rows)
    return rows, report


def read_source_texts(name: str, path: Path) -> list[str]:
    """Every text of an outside source by its codebook, whatever its label maps to (to check our corpus against it).
    Records without the codebook's text field (PLOVER's file opens with one describing the file) hold no text."""
    codebook = load_codebook(name)
    field_name = codebook["text_field"]
    texts = []
    for _, record in _source_records(Path(path), codebook):
        try:
            texts.append(str(record[field_name]))
        except (KeyError, IndexError):
            continue
    return texts


def split_source_spec(spec: str) -> tuple[str, Path] | None:
    """`NAME=PATH` as (name, path); None when `spec` is a plain file path (an existing file, or no `=`)."""
    spec = str(spec)
    if "=" not in spec or Path(spec).exists():
        return None
    name, _, path = spec.partition("=")
    if not name or not path:
        raise EventClassifierError(f"{spec!r}: expected NAME=PATH, e.g. case=../shared/data/case2021_task2_dev.tsv")
    return name, Path(path)


def parse_source_spec(spec: str) -> tuple[str, Path]:
    """A `--source NAME=PATH` value (the `=` is required)."""
    named = split_source_spec(spec)
    if named is None:
        raise EventClassifierError(f"--source {spec!r}: expected NAME=PATH, e.g. case=../shared/data/case2021_task2_dev.tsv")
    return named


def read_any(spec: str | Path, labels: list[str]) -> tuple[list[dict], ReadReport]:
    """Read `NAME=PATH` through a codebook, or a plain labelled JSONL/CSV/TSV file."""
    named = split_source_spec(str(spec))
    if named:
        return read_source(*named, labels)
    return read_labelled_file(Path(spec), labels)
