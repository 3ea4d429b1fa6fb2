"""Interrupted training: SIGKILL then --resume ends where an uninterrupted run ends; Ctrl-C saves and says how to resume."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from event_classifier.cli import prepare_main, train_main

EPOCHS = ["--train.epochs=10", "--train.batch_size=4", "--train.save_total_limit=20"]  # several checkpoints to resume from


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "train.py", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_checkpoint(run: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if any((c / "trainer_state.json").exists() for c in (run / "checkpoints").glob("checkpoint-*")):
            return
        if process.poll() is not None:
            pytest.fail(f"training ended before its first checkpoint: {process.stderr.read()[-2000:]}")
        time.sleep(0.02)
    pytest.fail("no checkpoint within the timeout")


@pytest.fixture
def prepared(tiny_args):
    assert prepare_main(tiny_args) == 0
    return tiny_args + EPOCHS


def _final(run: Path) -> dict:
    metrics = json.loads((run / "metrics.json").read_text())
    predictions = [list(json.loads(line)["probs"].values()) for line in (run / "evaluation" / "test" / "predictions.jsonl").open()]
    return {"dev": metrics["dev"]["macro_f1"], "test": metrics["test"]["macro_f1"], "steps": metrics["train"]["steps"],
            "probs": predictions, "resumed_from_step": metrics["train"]["resumed_from_step"]}


def test_killed_run_resumes_to_the_same_result(prepared, tmp_path):
    assert train_main(prepared + ["--train.run_name=whole"]) == 0
    runs = tmp_path / "runs"
    process = _start(prepared + ["--train.run_name=killed"])
    _wait_for_checkpoint(runs / "killed", process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert not (runs / "killed" / "model").exists(), "the run finished before it was killed"
    saved = max(int(c.name.split("-")[1]) for c in (runs / "killed" / "checkpoints").glob("checkpoint-*")
                if (c / "trainer_state.json").exists())
    assert train_main(prepared + ["--train.run_name=killed", "--resume"]) == 0
    whole, resumed = _final(runs / "whole"), _final(runs / "killed")
    assert whole["resumed_from_step"] == 0
    assert resumed["resumed_from_step"] == saved > 0  # continued from the checkpoint, not from step 0
    assert resumed["steps"] == whole["steps"]
    assert resumed["dev"] == whole["dev"] and resumed["test"] == whole["test"]
    assert np.asarray(resumed["probs"]) == pytest.approx(np.asarray(whole["probs"]), abs=1e-4)


def test_ctrl_c_saves_a_checkpoint_and_says_how_to_resume(prepared, tmp_path):
    run = tmp_path / "runs" / "stopped"
    process = _start(prepared + ["--train.run_name=stopped"])
    _wait_for_checkpoint(run, process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "--resume" in last and str(run / "config.yaml") in last
    assert "Traceback" not in err
    assert not (run / "model").exists()
    assert train_main(["--config", str(run / "config.yaml"), "--resume"]) == 0
    assert (run / "model" / "config.json").exists()


def test_resume_refuses_data_that_changed_since_the_run_started(prepared, tmp_path, capsys):
    args = prepared + ["--train.run_name=r", "--train.epochs=1"]
    assert train_main(args) == 0
    train_file = tmp_path / "prepared" / "train.jsonl"
    train_file.write_text(train_file.read_text() + "\n")  # any change of content changes the hash
    assert train_main(args + ["--resume"]) == 2
    assert "train split(s) changed since the run started" in capsys.readouterr().err


def test_resume_refuses_other_labels(prepared, tmp_path, capsys):
    args = prepared + ["--train.run_name=r", "--train.epochs=1"]
    assert train_main(args) == 0
    assert train_main(args + ["--resume", "--labels=[military_advance,attack,diplomacy,other,protest]"]) == 2
    assert "trained with labels" in capsys.readouterr().err
