"""Reading articles to classify: .txt (paragraphs split on blank lines), .jsonl with `text`, or stdin."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from event_classifier.errors import EventClassifierError
from event_classifier.io import decode_utf8, iter_jsonl, jsonl_lines, read_text_file

_BLANK_LINE = re.compile(r"\n\s*\n")


@dataclass
class InputCounts:
    """How many paragraphs each input gave and how many were empty, so nothing is dropped unreported."""

    paragraphs: dict[str, int] = field(default_factory=dict)
    skipped_empty: dict[str, int] = field(default_factory=dict)


def split_into_paragraphs(text: str) -> list[str]:
    """Paragraphs are separated by blank lines; single line breaks inside a paragraph become spaces."""
    return [" ".join(block.split()) for block in _BLANK_LINE.split(text.replace("\r\n", "\n"))]


def _records_from_text(name: str, text: str, counts: InputCounts) -> Iterator[dict]:
    index = 0
    for paragraph in split_into_paragraphs(text):
        if not paragraph:
            continue  # the gap between blocks, not a paragraph
        yield {"source": name, "paragraph": index, "text": paragraph}
        index += 1
    counts.paragraphs[name] = index


def _records_from_jsonl(name: str, objects: Iterator[tuple[int, dict]], counts: InputCounts) -> Iterator[dict]:
    index = 0
    for number, obj in objects:
        if "text" not in obj:
            raise EventClassifierError(f"{name}:{number}: missing 'text' field; each JSONL line needs a 'text'")
        if not isinstance(obj["text"], str) or not obj["text"].strip():
            counts.skipped_empty[name] = counts.skipped_empty.get(name, 0) + 1
            continue
        extra = {k: v for k, v in obj.items() if k not in {"text", "source", "paragraph"}}
        yield {"source": name, "paragraph": index, **extra, "text": " ".join(obj["text"].split())}
        index += 1
    counts.paragraphs[name] = index


def read_inputs(inputs: list[str], counts: InputCounts) -> Iterator[dict]:
    """Yield one record per paragraph: source, paragraph index, any extra JSONL fields (e.g. id), text."""
    for spec in inputs:
        if spec == "-":
            text = decode_utf8(sys.stdin.buffer.read(), "<stdin>")
            if not text.strip():
                raise EventClassifierError("<stdin>: no text received; pipe an article or give a file")
            if text.lstrip().startswith("{"):
                yield from _records_from_jsonl("<stdin>", iter_jsonl("<stdin>", text), counts)
            else:
                yield from _records_from_text("<stdin>", text, counts)
            continue
        path = Path(spec)
        if path.suffix == ".jsonl":
            yield from _records_from_jsonl(spec, iter_jsonl(spec, lines=jsonl_lines(path)), counts)
        elif path.suffix in {".txt", ".md", ""}:
            yield from _records_from_text(spec, read_text_file(path), counts)
        else:
            raise EventClassifierError(f"{path}: unsupported input type {path.suffix!r}; give .txt, .jsonl or - for stdin")
