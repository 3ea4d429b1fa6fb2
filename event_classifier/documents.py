"""From inputs to paragraph records: files (.txt, .md, .jsonl, .csv, .tsv, .html), folders, URLs, lists of URLs and
stdin. Reading a page's article is pages.py's job, fetching it fetch.py's, the plain-text rules text_articles.py's."""

from __future__ import annotations

import contextlib
import csv
import io
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from event_classifier.errors import EventClassifierError, SkippedInput
from event_classifier.fetch import Fetcher, FetchSettings, Page
from event_classifier.io import check_text_file, decode_utf8, iter_jsonl, jsonl_lines, read_text_file
from event_classifier.pages import Article, extract_article
from event_classifier.runs import holds_model
from event_classifier.text_articles import read_text_article, split_into_paragraphs  # noqa: F401 (re-exported)

TEXT_SUFFIXES = {".txt", ".md", ""}
HTML_SUFFIXES = {".html", ".htm"}
TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t"}
FOLDER_SUFFIXES = TEXT_SUFFIXES - {""} | HTML_SUFFIXES | set(TABLE_SUFFIXES) | {".jsonl"}
ARTICLE_FIELDS = ("article", "title", "date", "site", "author")  # on every row, None where unknown


@dataclass
class InputCounts:
    """Per input: paragraphs read, empty ones skipped, chrome lines dropped, and inputs that failed (with why), so
    nothing is dropped unreported."""

    paragraphs: dict[str, int] = field(default_factory=dict)
    skipped_empty: dict[str, int] = field(default_factory=dict)
    chrome_dropped: dict[str, int] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)


@dataclass
class InputOptions:
    """How inputs are read: table columns, whether a title is predicted too, and how URLs are fetched."""

    text_column: str = "text"
    id_column: str | None = None
    keep_title: bool = False
    fetch: FetchSettings = field(default_factory=FetchSettings)


def is_url(spec: str) -> bool:
    return "://" in spec


def read_url_list(path: str | Path) -> list[str]:
    """The URLs of a file, one a line; blank lines and lines starting with # are ignored."""
    lines = (line.strip() for line in read_text_file(path).splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def expand_inputs(inputs: Iterable[str], url_files: Iterable[str] = ()) -> list[str]:
    """Inputs in order, with each folder replaced by its supported files (recursive, sorted, hidden ones left out)
    and the URLs of each --urls file appended."""
    specs: list[str] = []
    for spec in inputs:
        path = Path(spec)
        if spec == "-" or is_url(spec) or not path.is_dir():
            specs.append(spec)
            continue
        if holds_model(path):
            raise EventClassifierError(f"{path}: a model folder given as an input; give each model of an ensemble its "
                                       "own --model (--model A --model B)")
        found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in FOLDER_SUFFIXES
                       and not any(part.startswith(".") for part in p.relative_to(path).parts))
        if not found:
            raise EventClassifierError(f"{path}: no {', '.join(sorted(FOLDER_SUFFIXES))} files in this folder; "
                                       "give a folder of articles")
        specs.extend(str(p) for p in found)
    for url_file in url_files:
        specs.extend(read_url_list(url_file))
    return specs


def _article_records(name: str, article: Article, counts: InputCounts, keep_title: bool,
                     link: str | None = None) -> Iterator[dict]:
    base = {"source": name, "article": link or name, "title": article.title, "date": article.date,
            "site": article.site, "author": article.author}
    texts = ([article.title] if keep_title and article.title else []) + article.paragraphs
    for index, text in enumerate(texts):
        yield {**base, "paragraph": index, "text": text}
    counts.paragraphs[name] = len(texts)
    if article.chrome_dropped:
        counts.chrome_dropped[name] = article.chrome_dropped


def _records_from_objects(name: str, objects: Iterable[tuple[int, dict]], counts: InputCounts) -> Iterator[dict]:
    index = 0
    for number, obj in objects:
        if "text" not in obj:
            raise EventClassifierError(f"{name}:{number}: missing 'text' field; each JSONL line needs a 'text'")
        if not isinstance(obj["text"], str) or not obj["text"].strip():
            counts.skipped_empty[name] = counts.skipped_empty.get(name, 0) + 1
            continue
        extra = {k: v for k, v in obj.items() if k not in {"text", "source", "paragraph"}}
        yield {"source": name, **dict.fromkeys(ARTICLE_FIELDS), "article": name, "paragraph": index, **extra,
               "text": " ".join(obj["text"].split())}
        index += 1
    counts.paragraphs[name] = index


def _table_rows(path: Path, options: InputOptions) -> Iterator[tuple[int, dict]]:
    """(line number, row) of a CSV/TSV file, its text column renamed `text` and its id column `id`."""
    reader = csv.DictReader(io.StringIO(read_text_file(path), newline=""), delimiter=TABLE_SUFFIXES[path.suffix.lower()])
    columns = reader.fieldnames or []
    for wanted, option in ((options.text_column, "--text-column"), (options.id_column, "--id-column")):
        if wanted is not None and wanted not in columns:
            raise EventClassifierError(f"{path}: no column {wanted!r} (columns: {', '.join(columns)}); "
                                       f"name the right one with {option}")
    for number, row in enumerate(reader, start=2):
        record = {k: v for k, v in row.items() if k not in {options.text_column, options.id_column, None}}
        if options.id_column is not None:
            record = {"id": row[options.id_column], **record}
        yield number, {**record, "text": row[options.text_column] or ""}


def _page_article(page: Page) -> Article:
    if page.kind == "text":
        return read_text_article(page.body.decode(page.charset or "utf-8", errors="replace"))
    html = page.body.decode(page.charset, errors="replace") if page.charset else page.body  # else the meta tag says
    return extract_article(html, page.url, url=page.final_url)


def read_text_input(name: str, text: str, counts: InputCounts, options: InputOptions) -> Iterator[dict]:
    """Records of text given whole rather than as a file (stdin, an article pasted into the web app): JSONL when it
    starts with `{`, else a plain-text article; `name` stands for the input in rows and messages."""
    if not text.strip():
        raise EventClassifierError(f"{name}: no text received; give an article's text, or a file")
    if text.lstrip().startswith("{"):
        return _records_from_objects(name, iter_jsonl(name, text), counts)
    return _article_records(name, read_text_article(text), counts, options.keep_title)


def _read_stdin(counts: InputCounts, options: InputOptions) -> Iterator[dict]:
    return read_text_input("<stdin>", decode_utf8(sys.stdin.buffer.read(), "<stdin>"), counts, options)


def _read_file(spec: str, counts: InputCounts, options: InputOptions) -> Iterator[dict]:
    path = Path(spec)
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _records_from_objects(spec, iter_jsonl(spec, lines=jsonl_lines(path)), counts)
    if suffix in TABLE_SUFFIXES:
        return _records_from_objects(spec, _table_rows(path, options), counts)
    if suffix in TEXT_SUFFIXES:
        return _article_records(spec, read_text_article(read_text_file(path)), counts, options.keep_title)
    if suffix in HTML_SUFFIXES:
        check_text_file(path)
        return _article_records(spec, extract_article(path.read_bytes(), spec), counts, options.keep_title)
    raise EventClassifierError(f"{path}: unsupported input type {path.suffix!r}; give .txt, .jsonl, .csv, .tsv, "
                               ".html, a folder, a URL or - for stdin")


def read_inputs(inputs: list[str], counts: InputCounts, options: InputOptions | None = None,
                url_files: Iterable[str] = ()) -> Iterator[dict]:
    """Yield one record per paragraph: source, article, title, date, site, author, paragraph index, any extra
    JSONL/CSV fields (e.g. id), text.

    A URL that cannot be fetched, or a page without an article, is recorded in `counts.failures` and skipped;
    other problems (a missing file, broken JSON) stop the run with an EventClassifierError.
    """
    options = options or InputOptions()
    specs = expand_inputs(inputs, url_files)
    urls = [spec for spec in specs if is_url(spec)]
    with contextlib.ExitStack() as stack:  # an HTTP client only when some input is a URL
        pages = stack.enter_context(Fetcher(options.fetch)).fetch_many(urls) if urls else iter(())
        for spec in specs:
            try:
                if spec == "-":
                    yield from _read_stdin(counts, options)
                elif is_url(spec):
                    _, page = next(pages)
                    if isinstance(page, SkippedInput):
                        raise page
                    yield from _article_records(spec, _page_article(page), counts, options.keep_title)
                else:
                    yield from _read_file(spec, counts, options)
            except SkippedInput as exc:
                counts.failures[spec] = str(exc)

