"""File reading and writing with clear errors: one atomic-write helper for every kind of output, one UTF-8 reader,
hashes of inputs, strict JSONL."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterable, Iterator

from event_classifier.errors import EventClassifierError

_UMASK = os.umask(0o022)
os.umask(_UMASK)


def _fsync_directory(directory: Path) -> None:
    """Make a rename inside `directory` durable (a no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside `path`; when the block ends without error it is fsynced and renamed to `path`.

    Every file the project writes goes through here (text, JSON, figures, prediction output), so a crash or Ctrl-C
    never leaves half a file: the old file stays, or the new one is complete. `suffix` keeps the extension that
    writers such as matplotlib read from the name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes files private; results are ordinary files
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_directory(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_open(path: str | Path, newline: str | None = None) -> Iterator[Any]:
    """A text handle (UTF-8) whose content appears at `path` only when the block ends without error."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline=newline) as handle:
        yield handle


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; on success it replaces `path` whole (e.g. an exported model)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        yield tmp
        for item in tmp.rglob("*"):
            if item.is_file():
                with open(item, "rb") as handle:
                    os.fsync(handle.fileno())
        os.chmod(tmp, 0o777 & ~_UMASK)
        old = path.with_name(f".{path.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        _fsync_directory(path.parent)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_open(path) as handle:
        handle.write(text)


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def atomic_write_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    with atomic_open(path) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


_APPEND_LOCK = threading.Lock()


def append_jsonl_line(path: str | Path, row: dict) -> None:
    """Append `row` as one JSON line to `path`, never rewriting what is there: one write with O_APPEND under a lock
    (a thread lock here, an flock for other processes), then fsync, so concurrent writers cannot interleave lines
    and a crash loses at most the line being written."""
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")
    with _APPEND_LOCK:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            written = os.write(fd, line)
            if written != len(line):
                raise EventClassifierError(f"{path}: only {written} of {len(line)} bytes appended; the disk may be full")
            os.fsync(fd)
        finally:
            os.close(fd)  # closing releases the flock
        _fsync_directory(path.parent)


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def decode_utf8(raw: bytes, where: str) -> str:
    """UTF-8 bytes as text (a leading BOM is dropped), or an error naming `where` and the offending byte."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EventClassifierError(
            f"{where}: not UTF-8 text (bad byte at offset {exc.start}); convert it, e.g. iconv -f latin1 -t utf-8"
        ) from None


def check_text_file(path: Path) -> None:
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


def read_text_file(path: str | Path) -> str:
    """Read a UTF-8 text file (a BOM is accepted) or raise an error that says what is wrong with it."""
    check_text_file(Path(path))
    text = decode_utf8(Path(path).read_bytes(), str(path))
    if not text.strip():
        raise EventClassifierError(f"{path}: file is empty; give a file with at least one paragraph")
    return text


def read_json(path: str | Path) -> Any:
    """A JSON file the project wrote, or an error saying it is damaged."""
    text = read_text_file(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise EventClassifierError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); restore or rewrite it") from None


def jsonl_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Numbered lines of a JSONL file, read one at a time so that any file size runs in constant memory."""
    check_text_file(path)
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            yield number, decode_utf8(raw, f"{path}:{number}")


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
