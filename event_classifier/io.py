"""File reading and writing with clear errors: atomic writes, hashed inputs, strict JSONL."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from event_classifier.errors import EventClassifierError

_UMASK = os.umask(0o022)
os.umask(_UMASK)


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename, so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes files private; results are ordinary files
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def atomic_write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_text_file_head(path: Path) -> None:
    """Check that `path` is an existing, non-empty text file, reading only its start."""
    path = Path(path)
    if not path.exists():
        raise EventClassifierError(f"{path}: file not found; check the path")
    if path.is_dir():
        raise EventClassifierError(f"{path}: is a folder, expected a file")
    with open(path, "rb") as handle:
        head = handle.read(8192)
    if b"\x00" in head:
        raise EventClassifierError(f"{path}: looks like a binary file, expected UTF-8 text (.txt, .jsonl, .csv)")
    if not head.strip() and path.stat().st_size < 8192:
        raise EventClassifierError(f"{path}: file is empty; give a file with at least one paragraph")


def read_text_file(path: Path) -> str:
    """Read a UTF-8 text file (a BOM is accepted) or raise an error that says what is wrong with it."""
    read_text_file_head(path)
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EventClassifierError(
            f"{path}: not UTF-8 text (bad byte at offset {exc.start}); convert it, e.g. iconv -f latin1 -t utf-8"
        ) from None
    if not text.strip():
        raise EventClassifierError(f"{path}: file is empty; give a file with at least one paragraph")
    return text


def iter_jsonl(path: Path | str, text: str | None = None,
               lines: Iterable[tuple[int, str]] | None = None) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-blank line of `text`, of numbered `lines`, or of the file at `path`.

    A broken line is an error naming its number.
    """
    if lines is None:
        lines = enumerate((read_text_file(Path(path)) if text is None else text).splitlines(), start=1)
    for number, line in lines:
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EventClassifierError(f"{path}:{number}: broken JSON line ({exc.msg}); fix or remove that line") from None
        if not isinstance(obj, dict):
            raise EventClassifierError(f"{path}:{number}: each line must be a JSON object, got {type(obj).__name__}")
        yield number, obj
