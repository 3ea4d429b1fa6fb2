"""The shape the pipeline keeps: evaluate checks its data, labels and settings travel with the model, the installed
command works from any folder, and old model folders still load."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from event_classifier.cli import evaluate_main, predict_main, prepare_main, train_main
from event_classifier.inference import Predictor

from conftest import HANG_GUARD_S, LABELS, make_corpus, save_tiny_model, write_jsonl

PROJECT = Path(__file__).resolve().parent.parent
ARTICLE = "Troops captured the ridge town.\n\nRockets hit the depot, killing two.\n\nEnvoys met for talks."


@pytest.fixture(scope="module")
def three_label_run(tmp_path_factory):
    """A tiny run on a label set without `other`: diplomacy and other become `none`, the fallback."""
    tmp = tmp_path_factory.mktemp("three")
    rows = [dict(r, label=r["label"] if r["label"] in {"military_advance", "attack"} else "none") for r in make_corpus()]
    corpus = write_jsonl(tmp / "c.jsonl", rows)
    args = ["--config", str(PROJECT / "configs" / "tiny.yaml"), f"--data.paragraphs={corpus}",
            f"--data.prepared_dir={tmp / 'prep'}", f"--train.output_dir={tmp / 'runs'}", "--train.run_name=three",
            "--labels=[military_advance,attack,none]", "--fallback_label=none", "--train.epochs=8"]
    assert prepare_main(args) == 0
    assert train_main(args) == 0
    return tmp / "runs" / "three"


def test_a_label_set_without_other_trains_predicts_and_routes_to_its_fallback(three_label_run, tmp_path):
    meta = json.loads((three_label_run / "model" / "event_classifier.json").read_text())
    assert [label["name"] for label in meta["labels"]] == ["military_advance", "attack", "none"]
    assert meta["fallback_label"] == "none"
    article = tmp_path / "a.txt"
    article.write_text(ARTICLE)
    out = tmp_path / "out.jsonl"
    assert predict_main(["--model", str(three_label_run), str(article), "--output", str(out), "--min-confidence", "0.99"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert set(rows[0]["probs"]) == {"military_advance", "attack", "none"}
    low = [r for r in rows if r["low_confidence"]]
    assert low and all(r["label"] == "none" for r in low)
    assert all(r["label"] == max(r["probs"], key=r["probs"].get) for r in rows if not r["low_confidence"])


def test_without_a_fallback_label_uncertain_predictions_are_flagged_not_moved(tmp_path):
    model = save_tiny_model(tmp_path / "m", labels=["a", "b", "c"], fallback_label=None)
    predictor = Predictor(model, min_confidence=0.99)
    for result in predictor.predict(["Troops took the town.", "Talks in Geneva."]):
        assert result["low_confidence"] and result["label"] == max(result["probs"], key=result["probs"].get)


def test_inference_settings_come_from_the_model(tmp_path):
    model = save_tiny_model(tmp_path / "m", max_length=24, stride=5, batch_size=7, temperature=2.5)
    predictor = Predictor(model)
    assert (predictor.max_length, predictor.stride, predictor.batch_size, predictor.temperature) == (24, 5, 7, 2.5)
    assert Predictor(model, batch_size=3, stride=2).batch_size == 3  # an explicit setting wins for this predictor


def test_the_temperature_is_the_metadata_s_so_a_saved_model_keeps_what_calibration_set(tmp_path):
    predictor = Predictor(save_tiny_model(tmp_path / "m", temperature=2.5))
    before = predictor.predict_proba(["Rockets hit the depot."])
    predictor.temperature = 0.5  # what calibration does
    assert predictor.meta.temperature == 0.5  # the metadata saved with the model holds it, no second copy
    assert not (abs(predictor.predict_proba(["Rockets hit the depot."]) - before) < 1e-6).all()  # and predictions use it


def test_a_model_folder_from_event_classifier_0_1_still_loads(tmp_path):
    model = save_tiny_model(tmp_path / "m")
    (model / "event_classifier.json").write_text(json.dumps(  # the untyped metadata that 0.1 wrote
        {"labels": LABELS, "max_length": 20, "backbone": "tiny-random-bert", "precision": "fp32",
         "data": {"train": "data/prepared/train.jsonl"}, "run": "runs/old", "temperature": 1.7}))
    predictor = Predictor(model, min_confidence=0.99)
    assert predictor.labels == LABELS and predictor.max_length == 20 and predictor.temperature == 1.7
    assert predictor.meta.fallback_label == "other" and predictor.meta.labels[0].description  # described from the defaults
    assert predictor.predict(["Troops took the town."])[0]["label"] == "other"


def test_metadata_that_contradicts_the_weights_is_refused(tmp_path, capsys):
    model = save_tiny_model(tmp_path / "m")
    meta = json.loads((model / "event_classifier.json").read_text())
    meta["labels"] = meta["labels"][::-1]
    (model / "event_classifier.json").write_text(json.dumps(meta))
    assert predict_main(["--model", str(model), "-"]) == 2
    assert "differ from config.json" in capsys.readouterr().err


@pytest.fixture(scope="module")
def run_with_splits(tmp_path_factory):
    from conftest import train_tiny_run

    tmp = tmp_path_factory.mktemp("splits")
    _, run = train_tiny_run(tmp, epochs=2)
    return tmp, run


def test_evaluate_refuses_a_test_split_that_changed_since_training(run_with_splits, capsys):
    tmp, run = run_with_splits
    test_file = tmp / "prepared" / "test.jsonl"
    original = test_file.read_text()
    recorded = json.loads((run / "data.json").read_text())["test"]["sha256"]
    try:
        test_file.write_text(original + json.dumps({"id": "new", "text": "Troops took Kerel.", "label": "military_advance"}) + "\n")
        assert evaluate_main([str(run)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and recorded[:12] in err and "changed since" in err
        assert f"--data {test_file}" in err
        assert evaluate_main([str(run), "--data", str(test_file)]) == 0  # on purpose: allowed
    finally:
        test_file.write_text(original)
    assert evaluate_main([str(run)]) == 0


def test_commands_work_from_another_folder(run_with_splits, tmp_path):
    _, run = run_with_splits
    (tmp_path / "a.txt").write_text(ARTICLE)
    predicted = subprocess.run([sys.executable, str(PROJECT / "predict.py"), "--model", str(run), "a.txt"],
                               cwd=tmp_path, capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert predicted.returncode == 0, predicted.stderr
    assert len(predicted.stdout.splitlines()) == 3
    evaluated = subprocess.run(["event-classifier", "evaluate", str(run), "--output-dir", "ev"], cwd=tmp_path,
                               capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert evaluated.returncode == 0, evaluated.stderr
    assert (tmp_path / "ev" / "metrics.json").exists()


@pytest.mark.parametrize("command", ["prepare", "train", "evaluate", "predict", "serve"])
def test_the_installed_command_has_every_step_with_help(command):
    done = subprocess.run(["event-classifier", command, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and f"usage: event-classifier {command}" in done.stdout
    assert "--config" in done.stdout if command in {"prepare", "train"} else "--model" in done.stdout or "models" in done.stdout


def test_the_installed_command_lists_its_steps_and_rejects_unknown_ones():
    listed = subprocess.run(["event-classifier", "--help"], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and all(c in listed.stdout for c in ("prepare", "train", "evaluate", "predict"))
    wrong = subprocess.run(["event-classifier", "fit"], capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and "unknown command 'fit'" in wrong.stderr


def test_an_atomic_folder_replaces_the_old_one_only_when_complete(tmp_path):
    from event_classifier.io import atomic_directory

    target = tmp_path / "model"
    target.mkdir()
    (target / "weights").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as tmp:
            (tmp / "weights").write_text("half")
            raise RuntimeError("crash while saving")
    assert (target / "weights").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["model"]
    with atomic_directory(target) as tmp:
        (tmp / "weights").write_text("new")
    assert (target / "weights").read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["model"]


def test_training_leaves_the_callers_config_unchanged(tmp_path):
    from event_classifier.config import load_config
    from event_classifier.workflow import train

    corpus = write_jsonl(tmp_path / "c.jsonl", make_corpus())
    config = load_config(PROJECT / "configs" / "tiny.yaml", [f"--data.paragraphs={corpus}", f"--data.prepared_dir={tmp_path / 'p'}",
                                                             f"--train.output_dir={tmp_path / 'runs'}", "--train.epochs=1"])
    assert prepare_main(["--config", str(PROJECT / "configs" / "tiny.yaml"), f"--data.paragraphs={corpus}",
                         f"--data.prepared_dir={tmp_path / 'p'}"]) == 0
    before = repr(config)
    result = train(config)
    assert repr(config) == before and config.train.run_name is None and config.model.max_length is None
    assert Path(result["run_dir"]).is_dir()
    shutil.rmtree(result["run_dir"])


def test_fixed_epoch_choice_trains_every_epoch_keeps_the_last_and_refits_for_the_configured_count(tmp_path, capsys):
    corpus = write_jsonl(tmp_path / "c.jsonl", make_corpus())
    args = ["--config", str(PROJECT / "configs" / "tiny.yaml"), f"--data.paragraphs={corpus}",
            f"--data.prepared_dir={tmp_path / 'p'}", f"--train.output_dir={tmp_path / 'runs'}", "--train.run_name=fx",
            "--train.epochs=3", "--train.early_stopping_patience=1", "--train.epoch_choice=fixed", "--train.refit=true"]
    assert prepare_main(args) == 0
    assert train_main(args) == 0
    run = tmp_path / "runs" / "fx"
    metrics = json.loads((run / "metrics.json").read_text())
    log = [json.loads(line) for line in open(run / "train_log.jsonl")]
    assert [round(e["epoch"]) for e in log if "eval_macro_f1" in e] == [1, 2, 3]  # dev scored every epoch, no early stop
    assert metrics["train"]["epochs"] == 3 and metrics["train"]["best_epoch"] is None
    assert metrics["refit"]["epochs_chosen_on_dev"] is None and metrics["refit"]["epochs"] == 3
    assert "epoch count fixed at 3" in (run / "model" / "README.md").read_text()
    assert train_main(args + ["--train.epoch_choice=last", "--train.run_name=bad"]) == 2
    assert "train.epoch_choice must be best_dev or fixed, got 'last'" in capsys.readouterr().err


def test_refit_trains_again_on_train_and_dev_for_the_epochs_dev_chose(tmp_path):
    corpus = write_jsonl(tmp_path / "c.jsonl", make_corpus())
    args = ["--config", str(PROJECT / "configs" / "tiny.yaml"), f"--data.paragraphs={corpus}",
            f"--data.prepared_dir={tmp_path / 'p'}", f"--train.output_dir={tmp_path / 'runs'}", "--train.run_name=rf",
            "--train.epochs=6", "--train.early_stopping_patience=2"]
    assert prepare_main(args) == 0
    assert train_main(args + ["--refit"]) == 0
    run = tmp_path / "runs" / "rf"
    metrics = json.loads((run / "metrics.json").read_text())
    chosen = metrics["refit"]["epochs_chosen_on_dev"]
    assert 0 < chosen <= 6 and metrics["refit"]["epochs"] == pytest.approx(chosen, abs=0.01)
    rows = {split: sum(1 for _ in open(tmp_path / "p" / f"{split}.jsonl")) for split in ("train", "dev", "test")}
    assert metrics["refit"]["paragraphs"] == rows["train"] + rows["dev"]
    steps_per_epoch = -(-metrics["refit"]["paragraphs"] // 4)
    assert metrics["refit"]["steps"] == pytest.approx(chosen * steps_per_epoch, abs=1)
    assert metrics["test"]["n"] == rows["test"] and metrics["selection_test"]["n"] == rows["test"]
    assert (run / "evaluation" / "test" / "metrics.json").exists() and (run / "refit_train_log.jsonl").exists()
    assert "Refit: after dev chose" in (run / "model" / "README.md").read_text()
    # the exported model is the refit one: predictions match the refit test scores
    meta = json.loads((run / "model" / "event_classifier.json").read_text())
    assert meta["temperature"] == metrics["train"]["temperature"]
    assert evaluate_main([str(run), "--output-dir", str(tmp_path / "ev")]) == 0
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["macro_f1"] == pytest.approx(metrics["test"]["macro_f1"])
