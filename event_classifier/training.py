"""Fine-tuning with transformers.Trainer: weighted loss, dev macro-F1 each epoch, best checkpoint kept."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections import Counter
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from transformers import DataCollatorWithPadding, EarlyStoppingCallback, Trainer, TrainerCallback, TrainingArguments, set_seed

from event_classifier.calibration import fit_temperature
from event_classifier.config import Config, load_config, save_config, to_dict
from event_classifier.data import SPLITS, load_split
from event_classifier.errors import EventClassifierError
from event_classifier.evaluation import evaluate_rows
from event_classifier.inference import Predictor
from event_classifier.io import atomic_write_json, atomic_write_jsonl, atomic_write_text, sha256_of
from event_classifier.metrics import macro_f1
from event_classifier.model import META_FILE, load_backbone, resolve_precision, save_model
from event_classifier.reports import model_card

logger = logging.getLogger(__name__)


class TrainingInterrupted(EventClassifierError):
    """Training stopped by Ctrl-C after saving a checkpoint; the message says how to resume."""

    exit_code = 130


def process_rank() -> tuple[int, int]:
    """(rank, world size) under torchrun or accelerate launch; (0, 1) for a plain run."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def prepare_run_dir(config: Config, resume: bool, overwrite: bool) -> Path:
    """runs/<name>/: new unless --resume (continue it) or --overwrite (start it afresh).

    With several processes, rank 0 alone checks and creates the folder; the others only use its name.
    """
    root = Path(config.train.output_dir)
    name = config.train.run_name
    rank, world = process_rank()
    if world > 1 and name is None and not resume:
        raise EventClassifierError("several training processes need one folder: set --train.run_name=NAME")
    if rank != 0:
        config.train.run_name = name or (root / "latest").resolve().name
        return root / config.train.run_name
    if name is None and resume:
        latest = root / "latest"
        if not latest.exists():
            raise EventClassifierError(f"{latest}: no run to resume; name one with --train.run_name=NAME")
        name = latest.resolve().name
    name = name or datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = root / name
    if run_dir.exists() and not resume:
        if not overwrite:
            raise EventClassifierError(
                f"{run_dir}: run folder exists; pass --resume to continue it, --overwrite to replace it, "
                "or choose another --train.run_name"
            )
        shutil.rmtree(run_dir)
    if resume and not run_dir.exists():
        raise EventClassifierError(f"{run_dir}: no such run to resume; check --train.run_name")
    run_dir.mkdir(parents=True, exist_ok=True)
    config.train.run_name = name
    return run_dir


def check_resume_matches(run_dir: Path, config: Config, data_record: dict) -> None:
    """A resumed run must see the labels and the data it started with, or its checkpoints mean something else."""
    saved_config = run_dir / "config.yaml"
    if saved_config.exists():
        labels = load_config(saved_config).labels
        if labels != config.labels:
            raise EventClassifierError(f"{saved_config}: the run was trained with labels {labels}, not {config.labels}; "
                                       "resume with the run's own config or start a new run")
    saved_data = run_dir / "data.json"
    if saved_data.exists():
        before = json.loads(saved_data.read_text(encoding="utf-8"))
        changed = [name for name, item in data_record.items() if before.get(name, {}).get("sha256") != item["sha256"]]
        if changed:
            raise EventClassifierError(f"{saved_data}: the {', '.join(changed)} split(s) changed since the run started; "
                                       "restore them or start a new run with --overwrite")


def class_weights(labels: list[str], train_labels: list[str]) -> torch.Tensor:
    """Inverse class frequency, scaled so that a balanced data set gets weight 1 everywhere."""
    counts = Counter(train_labels)
    total = len(train_labels)
    return torch.tensor([total / (len(labels) * counts[label]) for label in labels], dtype=torch.float32)


def choose_max_length(tokenizer, model, texts: list[str], configured: int | None) -> int:
    """The configured length, else the 99th percentile of train token lengths, capped by what the model accepts."""
    limit = min(tokenizer.model_max_length, model.config.max_position_embeddings)
    if configured:
        return min(configured, limit)
    lengths = [len(ids) for ids in tokenizer(texts, truncation=False)["input_ids"]]
    return int(min(limit, max(32, np.percentile(lengths, 99))))


def _weighted_loss(weights: torch.Tensor | None):
    def loss(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"].float()
        return torch.nn.functional.cross_entropy(logits, labels, weight=None if weights is None else weights.to(logits.device))
    return loss


def _compute_metrics(labels: list[str]):
    def compute(prediction) -> dict:
        predicted = np.asarray(prediction.predictions).argmax(-1)
        return {"macro_f1": macro_f1([labels[i] for i in prediction.label_ids], [labels[i] for i in predicted], labels)}
    return compute


def calibrate(predictor: Predictor, rows: dict[str, list[dict]], labels: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Fit the temperature on dev and set it on `predictor`; return (before, after) probabilities for dev and test.

    Each split goes through the model once; both probabilities come from the same logits.
    """
    windows = {}
    for split in ("dev", "test"):
        ids, owner = predictor.windows([r["text"] for r in rows[split]])
        windows[split] = (predictor.window_logits(ids), owner, len(rows[split]))
    y_dev = np.array([labels.index(r["label"]) for r in rows["dev"]])
    predictor.temperature = fit_temperature(predictor, *windows["dev"][:2], y_dev)
    return {split: (predictor.combine(logits, owner, n, temperature=1.0), predictor.combine(logits, owner, n))
            for split, (logits, owner, n) in windows.items()}


class GracefulInterrupt(TrainerCallback):
    """Ctrl-C during training: finish the current step, save a checkpoint, stop, and say how to resume."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        self._previous = signal.signal(signal.SIGINT, self._request)
        return self

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self._previous)

    def _request(self, signum, frame):
        if self.requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.requested = True
        print("\ninterrupt: saving a checkpoint after this step (Ctrl-C again to abort at once)", file=sys.stderr)

    def on_step_end(self, args, state, control, **kwargs):
        if self.requested:
            control.should_save = True
            control.should_training_stop = True
        return control


def _point_latest(run_dir: Path) -> None:
    link = run_dir.parent / "latest"
    tmp = run_dir.parent / ".latest.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_dir.name)
    os.replace(tmp, link)


def train(config: Config, resume: bool = False, overwrite: bool = False) -> dict:
    """Fine-tune on the prepared train split; keep the best dev checkpoint; evaluate it on dev and test."""
    run_dir = prepare_run_dir(config, resume, overwrite)
    main_process = process_rank()[0] == 0
    set_seed(config.train.seed)
    rows = {name: load_split(config, name) for name in SPLITS}
    label_ids = {label: i for i, label in enumerate(config.labels)}
    texts = [r["text"] for r in rows["train"]]
    work_dir = run_dir if main_process else Path(tempfile.mkdtemp(prefix="event_classifier_rank"))
    model, tokenizer = load_backbone(config.model.name, config.labels, work_dir, texts, config.train.seed)
    max_length = choose_max_length(tokenizer, model, texts, config.model.max_length)
    config.model.max_length = max_length
    precision = resolve_precision(config.train.precision)
    data_files = {name: str(Path(config.data.prepared_dir) / f"{name}.jsonl") for name in SPLITS}
    data_record = {name: {"path": p, "sha256": sha256_of(Path(p)), "rows": len(rows[name])} for name, p in data_files.items()}
    if resume:
        check_resume_matches(run_dir, config, data_record)
    if main_process:
        save_config(config, run_dir / "config.yaml")
        atomic_write_json(run_dir / "data.json", data_record)

    def encode(split: str) -> Dataset:
        data = Dataset.from_dict({"text": [r["text"] for r in rows[split]], "label": [label_ids[r["label"]] for r in rows[split]]})
        return data.map(lambda b: tokenizer(b["text"], truncation=True, max_length=max_length), batched=True,
                        remove_columns=["text"], desc=f"tokenising {split}")

    args = TrainingArguments(
        output_dir=str(run_dir / "checkpoints"),
        num_train_epochs=config.train.epochs, max_steps=config.train.max_steps,
        per_device_train_batch_size=config.train.batch_size, per_device_eval_batch_size=config.train.eval_batch_size,
        learning_rate=config.train.learning_rate, weight_decay=config.train.weight_decay,
        warmup_steps=config.train.warmup_ratio, seed=config.train.seed, data_seed=config.train.seed,
        eval_strategy="epoch", save_strategy="epoch", logging_steps=config.train.logging_steps,
        load_best_model_at_end=True, metric_for_best_model="macro_f1", greater_is_better=True,
        save_total_limit=config.train.save_total_limit, bf16=precision == "bf16", use_cpu=not torch.cuda.is_available(),
        train_sampling_strategy="group_by_length" if config.train.group_by_length else "random",
        report_to="none", dataloader_num_workers=0,
    )
    weights = class_weights(config.labels, [r["label"] for r in rows["train"]]) if config.train.class_weights else None
    callbacks = [EarlyStoppingCallback(config.train.early_stopping_patience)] if config.train.early_stopping_patience else []
    trainer = Trainer(
        model=model, args=args, train_dataset=encode("train"), eval_dataset=encode("dev"), processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer), compute_loss_func=_weighted_loss(weights),
        compute_metrics=_compute_metrics(config.labels), callbacks=callbacks,
    )
    has_checkpoint = resume and any((run_dir / "checkpoints").glob("checkpoint-*"))
    interrupt = GracefulInterrupt()
    trainer.add_callback(interrupt)
    with interrupt:
        result = trainer.train(resume_from_checkpoint=True if has_checkpoint else None)
    if not trainer.is_world_process_zero():  # the main process alone exports, calibrates and evaluates
        return {"run_dir": str(run_dir), "rank": process_rank()[0]}
    atomic_write_jsonl(run_dir / "train_log.jsonl", trainer.state.log_history)
    if interrupt.requested:
        raise TrainingInterrupted(
            f"{run_dir}: training interrupted at step {trainer.state.global_step}, checkpoint saved; continue with: "
            f"python train.py --config {run_dir / 'config.yaml'} --resume"
        )

    model_dir = run_dir / "model"
    tmp_dir = run_dir / ".model.tmp"
    shutil.rmtree(tmp_dir, ignore_errors=True)
    meta = {"labels": config.labels, "max_length": max_length, "backbone": config.model.name,
            "precision": precision, "data": data_files, "run": str(run_dir)}
    save_model(trainer.model, tokenizer, tmp_dir, meta)
    shutil.rmtree(model_dir, ignore_errors=True)
    tmp_dir.rename(model_dir)

    predictor = Predictor(model_dir, batch_size=config.predict.batch_size, stride=config.predict.stride, precision=precision)
    probs = calibrate(predictor, rows, config.labels)
    meta["temperature"] = predictor.temperature
    atomic_write_json(model_dir / META_FILE, meta)
    metrics = {
        "train": {"runtime_s": round(result.metrics.get("train_runtime", 0.0), 1), "epochs": round(trainer.state.epoch or 0, 2),
                  "steps": trainer.state.global_step, "best_checkpoint": trainer.state.best_model_checkpoint,
                  "precision": precision, "max_length": max_length, "temperature": predictor.temperature},
        **{split: evaluate_rows(predictor, rows[split], run_dir / "evaluation" / split, split,
                                uncalibrated=probs[split][0], probs=probs[split][1])
           for split in ("dev", "test")},
    }
    manifest_path = Path(config.data.prepared_dir) / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.exists() else None
    atomic_write_text(model_dir / "README.md", model_card(meta, metrics, to_dict(config), manifest))
    atomic_write_json(run_dir / "metrics.json", metrics)
    _point_latest(run_dir)
    return {"run_dir": str(run_dir), **metrics}


def train_seeds(config: Config, seeds: list[int], overwrite: bool = False) -> dict:
    """Train the same config once per seed; report mean and standard deviation of dev and test macro-F1."""
    import copy

    base = config.train.run_name or datetime.now().strftime("%Y%m%d-%H%M%S")
    runs = {}
    for seed in seeds:
        one = copy.deepcopy(config)
        one.train.seed, one.train.run_name = seed, f"{base}-seed{seed}"
        runs[seed] = train(one, overwrite=overwrite)
    summary = {"runs": {s: r["run_dir"] for s, r in runs.items()}}
    for split in ("dev", "test"):
        scores = np.array([r[split]["macro_f1"] for r in runs.values()])
        summary[split] = {"macro_f1_mean": round(float(scores.mean()), 4), "macro_f1_std": round(float(scores.std(ddof=1)), 4)
                          if len(scores) > 1 else 0.0, "macro_f1": [round(float(x), 4) for x in scores]}
    path = Path(config.train.output_dir) / f"{base}-seeds.json"
    atomic_write_json(path, summary)
    return {"summary_path": str(path), **summary}
