"""Hyper-parameter search with Optuna: `event-classifier tune --trials N`.

Each trial fine-tunes with `training.fit` (the same Trainer set-up as `train`) on the train split and is scored by
its best dev macro-F1 (the test split is never read). A seeded TPE sampler proposes the values; a median pruner,
fed dev macro-F1 after every epoch, stops trials that trail the others. Results go to runs/tune/NAME/: the trial
table (trials.md, trials.json) and the best trial as a config overlay (best.yaml: `defaults:` the tuned config plus
the differences) that `train.py --config runs/tune/NAME/best.yaml` trains.
"""

from __future__ import annotations

import copy
import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from transformers import TrainerCallback

from event_classifier.config import DEFAULT_CONFIG, PROJECT_ROOT, Config, load_config, to_dict
from event_classifier.data import load_split
from event_classifier.errors import EventClassifierError
from event_classifier.io import atomic_write_json, atomic_write_text
from event_classifier.tracking import tracked_run
from event_classifier.training import fit

TUNED = ("learning_rate", "epochs", "batch_size", "warmup_ratio", "weight_decay")  # train.* fields searched
COLUMNS = ("trial", "state", "dev_macro_f1", "epochs_run", *TUNED, "runtime_s")


def suggest(trial, config: Config) -> Config:
    """The trial's config: ranges usual for fine-tuning a small BERT such as MiniLM; epochs up to train.epochs."""
    chosen = copy.deepcopy(config)
    train = chosen.train
    train.learning_rate = trial.suggest_float("learning_rate", 1e-5, 1e-4, log=True)
    train.epochs = float(trial.suggest_int("epochs", min(2, int(config.train.epochs)), max(2, int(config.train.epochs))))
    train.batch_size = trial.suggest_categorical("batch_size", [8, 16, 32])
    train.warmup_ratio = trial.suggest_float("warmup_ratio", 0.0, 0.2)
    train.weight_decay = trial.suggest_float("weight_decay", 0.0, 0.1)
    return chosen


class ReportToOptuna(TrainerCallback):
    """Reports dev macro-F1 after each epoch to the trial; stops training when the pruner says the trial trails."""

    def __init__(self, trial):
        self.trial, self.pruned = trial, False

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self.trial.report(metrics["eval_macro_f1"], step=round(state.epoch or 0))
        if self.trial.should_prune():
            self.pruned = True
            control.should_training_stop = True
        return control


def _differences(base: Any, tuned: Any) -> Any:
    """What `tuned` changes in `base` (nested dicts), or None for no change."""
    if isinstance(base, dict) and isinstance(tuned, dict):
        changed = {key: _differences(base.get(key), value) for key, value in tuned.items()}
        return {key: value for key, value in changed.items() if value is not None} or None
    return None if base == tuned else tuned


def overlay(config: Config, base_path: Path, best: dict, where: Path) -> str:
    """A config file that `load_config` reads as: the base config, this run's overrides, the best trial's values."""
    diff = _differences(to_dict(load_config(base_path)), to_dict(config)) or {}
    diff.get("train", {}).pop("run_name", None)
    train = diff.setdefault("train", {})
    train.update({name: best["params"][name] for name in TUNED})
    train["epochs"] = float(train["epochs"])
    header = (f"# The best of {best['trials']} trials of `event-classifier tune` ({best['study']}): dev macro-F1 "
              f"{best['value']:.4f} (trial {best['number']}).\n# Train it: python train.py --config {where}\n")
    base, folder = Path(base_path).resolve(), where.parent.resolve()
    inside = all(p.is_relative_to(PROJECT_ROOT) for p in (base, folder))  # then relative, so the project can move
    defaults = os.path.relpath(base, folder) if inside else str(base)
    return header + yaml.safe_dump({"defaults": defaults, **diff}, sort_keys=False, allow_unicode=True)


def markdown_table(rows: list[dict]) -> str:
    def cell(value: Any) -> str:
        return f"{value:.4g}" if isinstance(value, float) else "" if value is None else str(value)

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    return "\n".join(lines + ["| " + " | ".join(cell(row.get(c)) for c in COLUMNS) + " |" for row in rows]) + "\n"


def tune(config: Config, trials: int, name: str | None = None, base_path: str | Path | None = None,
         timeout: float | None = None, overwrite: bool = False) -> dict:
    """Search `trials` trials; write runs/tune/NAME/{trials.md, trials.json, best.yaml}; return the summary."""
    import optuna

    name = name or datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = Path(config.train.output_dir) / "tune" / name
    if folder.exists() and not overwrite:
        raise EventClassifierError(f"{folder}: tuning folder exists; pass --overwrite to replace it or choose another --name")
    shutil.rmtree(folder, ignore_errors=True)
    rows = {split: load_split(config, split) for split in ("train", "dev")}  # never the test split
    outcome: dict[int, dict] = {}

    def objective(trial) -> float:
        trial_config = suggest(trial, config)
        trial_dir = folder / f"trial-{trial.number}"
        reporter = ReportToOptuna(trial)
        with tracked_run(trial_config, trial_dir, name=f"tune-{name}-trial-{trial.number}"):
            fitted = fit(trial_config, rows, trial_dir, extra_callbacks=(reporter,))
        for checkpoint in (trial_dir / "checkpoints").glob("checkpoint-*"):  # the weights are not kept; the log is
            shutil.rmtree(checkpoint)
        outcome[trial.number] = {"epochs_run": fitted.stats["epochs"], "runtime_s": fitted.stats["runtime_s"]}
        if reporter.pruned:
            raise optuna.TrialPruned()
        return float(fitted.stats["best_dev_macro_f1"])

    study = optuna.create_study(
        study_name=name, direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=config.train.seed, n_startup_trials=max(3, trials // 3)),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
    )
    study.optimize(objective, n_trials=trials, timeout=timeout)
    table = [{"trial": t.number, "state": t.state.name.lower(), "dev_macro_f1": t.value if t.value is not None else
              max(t.intermediate_values.values(), default=None), **outcome.get(t.number, {}), **t.params}
             for t in study.trials]
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not finished:
        raise EventClassifierError(f"{folder}: no trial completed; give more --trials or a longer --timeout")
    best = study.best_trial
    summary = {"study": name, "trials": len(study.trials), "number": best.number, "value": best.value,
               "params": best.params, "folder": str(folder), "table": table}
    atomic_write_json(folder / "trials.json", summary)
    atomic_write_text(folder / "trials.md", f"# tune {name}: dev macro-F1 per trial\n\n" + markdown_table(table))
    atomic_write_text(folder / "best.yaml", overlay(config, Path(base_path or DEFAULT_CONFIG), summary, folder / "best.yaml"))
    return {**summary, "markdown": markdown_table(table)}
