"""Run folders: create, resume and overwrite checks, the data hashes a run was trained on, the `latest` link, and
which folder holds the model."""

from __future__ import annotations

import copy
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from event_classifier.config import Config, load_config, save_config
from event_classifier.errors import EventClassifierError
from event_classifier.io import atomic_write_json, read_json, sha256_of

CONFIG_FILE, DATA_FILE, MODEL_DIR = "config.yaml", "data.json", "model"


def process_rank() -> tuple[int, int]:
    """(rank, world size) under torchrun or accelerate launch; (0, 1) for a plain run."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def holds_model(path: str | Path) -> bool:
    """Whether `path` is a model folder or a run folder holding one in model/."""
    return (Path(path) / "config.json").exists() or (Path(path) / MODEL_DIR / "config.json").exists()


def resolve_model_dir(path: str | Path) -> Path:
    """The model folder of `path`: a run folder (runs/NAME, holding model/) or a model folder itself."""
    path = Path(path)
    if (path / MODEL_DIR / "config.json").exists():
        return path / MODEL_DIR
    if not path.is_dir():
        raise EventClassifierError(f"{path}: model folder not found; pass a run folder (runs/NAME) or its model/ folder")
    if not (path / "config.json").exists():
        raise EventClassifierError(f"{path}: not a model folder (no config.json); pass runs/NAME or runs/NAME/model")
    return path


def run_dir_of(path: str | Path) -> Path | None:
    """The run folder that `path` (a run or its model folder) belongs to, or None for a model folder on its own."""
    path = Path(path)
    for candidate in (path, path.parent):
        if (candidate / CONFIG_FILE).exists() and (candidate / MODEL_DIR).exists():
            return candidate
    return None


def data_record(config: Config, rows: dict[str, list[dict]]) -> dict[str, dict]:
    """What each split a run reads is: its path, sha256, size, labels and sources."""
    record = {}
    for name, part in rows.items():
        path = Path(config.data.prepared_dir) / f"{name}.jsonl"
        record[name] = {"path": str(path), "sha256": sha256_of(path), "rows": len(part),
                        "labels": dict(sorted(Counter(r["label"] for r in part).items())),
                        "sources": dict(sorted(Counter(r.get("source", "") for r in part).items()))}
    return record


def check_split_unchanged(recorded: dict, split: str, where: str) -> Path:
    """The path of a split a model was trained or tested on, if it still holds the same rows; else an error."""
    item = recorded.get(split)
    if not item or "path" not in item:
        raise EventClassifierError(f"{where}: no record of the model's {split} split; pass --data FILE to evaluate on a file")
    path = Path(item["path"])
    if not path.exists():
        raise EventClassifierError(f"{path}: the model's {split} split is gone; run data/prepare.py with the run's config, "
                                   "or pass --data FILE")
    if "sha256" in item:
        now = sha256_of(path)
        if now != item["sha256"]:
            raise EventClassifierError(
                f"{path}: the {split} split changed since {where} was trained (sha256 {item['sha256'][:12]}… then, "
                f"{now[:12]}… now), so it may overlap the training rows; restore it, or pass --data {path} to score it on purpose"
            )
    return path


@dataclass
class Run:
    """One run folder: runs/<name>/ with config.yaml, data.json, checkpoints/, model/, metrics.json."""

    directory: Path

    @property
    def model_dir(self) -> Path:
        return self.directory / MODEL_DIR

    @classmethod
    def create(cls, config: Config, resume: bool = False, overwrite: bool = False) -> tuple["Run", Config]:
        """runs/<name>/: new unless `resume` (continue it) or `overwrite` (start afresh). Returns the run and a copy
        of `config` with the run name filled in (the caller's config is left as it was).

        With several processes, rank 0 alone checks and creates the folder; the others only use its name.
        """
        config = copy.deepcopy(config)
        root = Path(config.train.output_dir)
        name = config.train.run_name
        rank, world = process_rank()
        if world > 1 and name is None and not resume:
            raise EventClassifierError("several training processes need one folder: set --train.run_name=NAME")
        if rank != 0:
            config.train.run_name = name or (root / "latest").resolve().name
            return cls(root / config.train.run_name), config
        if name is None and resume:
            latest = root / "latest"
            if not latest.exists():
                raise EventClassifierError(f"{latest}: no run to resume; name one with --train.run_name=NAME")
            name = latest.resolve().name
        name = name or datetime.now().strftime("%Y%m%d-%H%M%S")
        directory = root / name
        if directory.exists() and not resume:
            if not overwrite:
                raise EventClassifierError(
                    f"{directory}: run folder exists; pass --resume to continue it, --overwrite to replace it, "
                    "or choose another --train.run_name"
                )
            shutil.rmtree(directory)
        if resume and not directory.exists():
            raise EventClassifierError(f"{directory}: no such run to resume; check --train.run_name")
        directory.mkdir(parents=True, exist_ok=True)
        config.train.run_name = name
        return cls(directory), config

    def check_resume_matches(self, config: Config, record: dict) -> None:
        """A resumed run must see the labels and the data it started with, or its checkpoints mean something else."""
        saved_config = self.directory / CONFIG_FILE
        if saved_config.exists():
            labels = load_config(saved_config).label_names
            if labels != config.label_names:
                raise EventClassifierError(f"{saved_config}: the run was trained with labels {labels}, not {config.label_names}; "
                                           "resume with the run's own config or start a new run")
        saved_data = self.directory / DATA_FILE
        if saved_data.exists():
            before = read_json(saved_data)
            changed = [name for name, item in record.items() if before.get(name, {}).get("sha256") != item["sha256"]]
            if changed:
                raise EventClassifierError(f"{saved_data}: the {', '.join(changed)} split(s) changed since the run started; "
                                           "restore them or start a new run with --overwrite")

    def record_start(self, config: Config, record: dict) -> None:
        save_config(config, self.directory / CONFIG_FILE)
        atomic_write_json(self.directory / DATA_FILE, record)

    def point_latest(self) -> None:
        """Make <output_dir>/latest point at this run (replaced atomically)."""
        link = self.directory.parent / "latest"
        tmp = self.directory.parent / ".latest.tmp"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(self.directory.name)
        os.replace(tmp, link)
