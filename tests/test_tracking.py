"""train.report_to: an MLflow run in a local store with params, metrics and artifacts; TensorBoard event files."""

from pathlib import Path

import pytest

from event_classifier.cli import prepare_main, train_main
from event_classifier.config import load_config
from event_classifier.errors import EventClassifierError

from conftest import make_corpus, write_jsonl


def tiny_args(tmp: Path, name: str) -> list[str]:
    corpus = write_jsonl(tmp / "c.jsonl", make_corpus())
    return ["--config", "configs/tiny.yaml", f"--data.paragraphs={corpus}", f"--data.prepared_dir={tmp / 'prep'}",
            f"--train.output_dir={tmp / 'runs'}", f"--train.run_name={name}", "--train.epochs=2"]


def test_mlflow_run_has_the_config_per_epoch_and_final_metrics_and_the_reports(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    args = tiny_args(tmp_path, "tracked")
    assert prepare_main(args) == 0
    assert train_main(args + ["--train.report_to=mlflow"]) == 0
    client = MlflowClient(f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("event_classifier")
    assert experiment.artifact_location == (tmp_path / "runs" / "mlruns").as_uri()
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "tracked" and run.info.status == "FINISHED"
    assert run.data.params["train.epochs"] == "2.0" and run.data.params["model.name"] == "tiny-random-bert"
    assert 0 <= run.data.metrics["test_macro_f1"] <= 1 and "dev_macro_f1" in run.data.metrics
    assert len(client.get_metric_history(run.info.run_id, "eval_macro_f1")) == 2  # one per epoch, from the Trainer
    top = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"metrics.json", "model", "evaluation"} <= top
    assert [a.path for a in client.list_artifacts(run.info.run_id, "model")] == ["model/README.md"]
    test_files = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation/test")}
    assert {"evaluation/test/metrics.json", "evaluation/test/confusion_matrix.png"} <= test_files
    assert "MLFLOW_TRACKING_URI" not in __import__("os").environ  # set for the run only


def test_tensorboard_writes_event_files_in_the_run_folder(tmp_path):
    args = tiny_args(tmp_path, "tb")
    assert prepare_main(args) == 0
    assert train_main(args + ["--train.report_to=tensorboard"]) == 0
    assert list((tmp_path / "runs" / "tb").rglob("events.out.tfevents.*"))


def test_an_unknown_tracker_is_a_config_error():
    with pytest.raises(EventClassifierError, match="report_to must be one of none, tensorboard, mlflow"):
        load_config(None, ["--train.report_to=wandb"])
