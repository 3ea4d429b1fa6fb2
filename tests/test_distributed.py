"""Training runs unchanged under torchrun: two CPU processes (gloo) share the work through Trainer's DDP."""

import json
import os
import subprocess
import sys

import pytest

from event_classifier.cli import prepare_main


@pytest.mark.slow
def test_two_cpu_processes_train_one_model(tiny_args, tmp_path):
    assert prepare_main(tiny_args) == 0
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "train.py",
               *tiny_args, "--train.run_name=ddp", "--train.epochs=2", "--train.batch_size=8"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "runs" / "ddp"
    metrics = json.loads((run / "metrics.json").read_text())
    # 80 train paragraphs, batch 8 per process, 2 processes: 5 optimizer steps an epoch instead of 10
    assert metrics["train"]["steps"] == 10
    assert (run / "model" / "config.json").exists()
    assert done.stdout.count("dev macro-F1") == 1  # the main process alone reports


def test_distributed_run_needs_a_run_name(tiny_args, monkeypatch, capsys):
    from event_classifier.cli import train_main

    monkeypatch.setenv("WORLD_SIZE", "2")
    assert train_main(tiny_args) == 2
    assert "--train.run_name" in capsys.readouterr().err
