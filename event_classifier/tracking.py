"""Experiment tracking with MLflow (`train.report_to: mlflow`): one MLflow run per training run.

The Trainer's own MLflow callback logs the per-epoch metrics (and its TrainingArguments) into the run opened here;
this module adds what only the workflow knows: the resolved config as params, the final metrics, and the run's
files (metrics.json, plots, model card) as artifacts. Without MLFLOW_TRACKING_URI, runs go to a local SQLite
store beside the run folders, `<train.output_dir>/mlflow.db`, with artifacts in `<train.output_dir>/mlruns/`: no
server. (MLflow 3 keeps the plain-folder store in maintenance mode and refuses it by default; SQLite is its
serverless local store.) Open it with `mlflow ui --backend-store-uri sqlite:///runs/mlflow.db`.
TensorBoard (`report_to: tensorboard`) needs nothing here: the Trainer writes event files under the run folder.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Iterator

from event_classifier.config import Config, to_dict

EXPERIMENT = "event_classifier"  # unless MLFLOW_EXPERIMENT_NAME names another
FINAL_METRICS = ("macro_f1", "accuracy", "ece")  # of each evaluated split, logged as e.g. test_macro_f1
# the run's reports, as glob patterns in the run folder: metrics, model card, each split's metrics, error report, plots
ARTIFACTS = ("metrics.json", "model/README.md", "evaluation/*/metrics.json", "evaluation/*/errors.md", "evaluation/*/*.png")


def tracking_uri(config: Config) -> str:
    """MLFLOW_TRACKING_URI if set, else a SQLite file beside the run folders."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(config.train.output_dir).resolve() / 'mlflow.db'}"


def flat_params(config: Config) -> dict[str, Any]:
    """The resolved config as MLflow params: `train.learning_rate`, ...; the labels as their names."""
    params: dict[str, Any] = {"labels": ",".join(config.label_names)}
    for section, values in to_dict(config).items():
        if isinstance(values, dict):
            for key, value in values.items():
                params[f"{section}.{key}"] = value
        elif section != "labels":
            params[section] = values
    return params


@contextlib.contextmanager
def _tracking_env(uri: str) -> Iterator[None]:
    """MLFLOW_TRACKING_URI for the block only, so the Trainer's callback and the fluent API use the same store."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)


@contextlib.contextmanager
def tracked_run(config: Config, run_dir: Path, enabled: bool = True, name: str | None = None) -> Iterator[Any]:
    """An active MLflow run for the block, named `name` or after `run_dir`, with the config logged as params, when
    `train.report_to` is mlflow (and `enabled`, i.e. in the main process); otherwise nothing happens."""
    if config.train.report_to != "mlflow" or not enabled:
        yield None
        return
    import mlflow

    user_uri = "MLFLOW_TRACKING_URI" in os.environ
    with _tracking_env(tracking_uri(config)):
        experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME", EXPERIMENT)
        if not user_uri and mlflow.get_experiment_by_name(experiment) is None:  # artifacts beside the store, not in cwd
            mlflow.create_experiment(experiment, artifact_location=(Path(config.train.output_dir).resolve() / "mlruns").as_uri())
        mlflow.set_experiment(experiment)
        with mlflow.start_run(run_name=name or Path(run_dir).name, tags={"run_dir": str(run_dir)}) as run:
            mlflow.log_params(flat_params(config))
            yield run


def _active_mlflow(config: Config):
    """The mlflow module when this config tracks with it and a run is open, else None."""
    if config.train.report_to != "mlflow":
        return None
    import mlflow

    return mlflow if mlflow.active_run() is not None else None


@contextlib.contextmanager
def stage_run(config: Config, name: str) -> Iterator[None]:
    """A nested MLflow run for a second training stage (the refit), so that its steps do not mix with the first
    stage's; nothing when no MLflow run is open."""
    mlflow = _active_mlflow(config)
    if mlflow is None:
        yield
        return
    with mlflow.start_run(run_name=name, nested=True):
        yield


def log_results(config: Config, run_dir: Path, metrics: dict) -> None:
    """The final metrics (macro-F1, accuracy and ECE of every evaluated split) and the run's reports into the open
    MLflow run; nothing when none is open."""
    mlflow = _active_mlflow(config)
    if mlflow is None:
        return
    final = {f"{split}_{name}": float(values[name]) for split, values in metrics.items()
             if isinstance(values, dict) for name in FINAL_METRICS if isinstance(values.get(name), (int, float))}
    mlflow.log_metrics(final)
    run_dir = Path(run_dir)
    for pattern in ARTIFACTS:
        for path in sorted(run_dir.glob(pattern)):
            folder = path.parent.relative_to(run_dir).as_posix()
            mlflow.log_artifact(str(path), artifact_path=None if folder == "." else folder)
