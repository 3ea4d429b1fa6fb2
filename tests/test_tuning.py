"""tune: three Optuna trials on the tiny model, the trial table, and the best trial as an overlay that trains."""

import json

from event_classifier.cli import prepare_main, train_main, tune_main
from event_classifier.config import load_config

from conftest import make_corpus, write_jsonl


def test_three_trials_give_a_table_and_an_overlay_that_trains(tmp_path, capsys):
    corpus = write_jsonl(tmp_path / "c.jsonl", make_corpus())
    args = ["--config", "configs/tiny.yaml", f"--data.paragraphs={corpus}", f"--data.prepared_dir={tmp_path / 'prep'}",
            f"--train.output_dir={tmp_path / 'runs'}", "--train.epochs=3"]
    assert prepare_main(args) == 0
    (tmp_path / "prep" / "test.jsonl").unlink()  # the tuner never reads the test split
    assert tune_main(args + ["--trials", "3", "--name", "t"]) == 0
    folder = tmp_path / "runs" / "tune" / "t"
    summary = json.loads((folder / "trials.json").read_text())
    assert [row["trial"] for row in summary["table"]] == [0, 1, 2]
    assert all(row["state"] in {"complete", "pruned"} for row in summary["table"])
    assert all(1e-5 <= row["learning_rate"] <= 1e-4 and 2 <= row["epochs"] <= 3 for row in summary["table"])
    markdown = (folder / "trials.md").read_text().splitlines()
    assert markdown[2].startswith("| trial | state | dev_macro_f1") and len(markdown) == 4 + 3
    assert "best: trial" in capsys.readouterr().out

    config = load_config(folder / "best.yaml")
    best = summary["params"]
    assert config.model.name == "tiny-random-bert" and config.train.learning_rate == best["learning_rate"]
    assert config.train.epochs == best["epochs"] and config.train.batch_size == best["batch_size"]
    assert config.data.prepared_dir == str(tmp_path / "prep")  # the tuning run's own overrides are kept
    prepare_main(args)  # restore the test split that train evaluates on
    assert train_main(["--config", str(folder / "best.yaml"), "--train.run_name=best", "--train.epochs=1"]) == 0
    assert (tmp_path / "runs" / "best" / "model" / "config.json").exists()


def test_tune_has_help_and_rejects_zero_trials(capsys):
    import subprocess

    done = subprocess.run(["event-classifier", "tune", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "usage: event-classifier tune" in done.stdout and "--trials" in done.stdout
    assert tune_main(["--trials", "0"]) == 2 and "--trials 0" in capsys.readouterr().err
