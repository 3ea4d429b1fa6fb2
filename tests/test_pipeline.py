"""The whole workflow, prepare -> train -> evaluate -> predict, through the real entry points on the tiny model."""

import csv
import io
import json
import subprocess
import sys

import pytest
import yaml

from event_classifier.cli import evaluate_main, predict_main, prepare_main, train_main
from event_classifier.inference import Predictor

from conftest import HANG_GUARD_S, LABELS, train_tiny_run

ARTICLE = "Troops captured the ridge town\nafter a night march.\n\nRockets hit the depot, killing two.\n\nEnvoys met for talks."


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One tiny training run shared by the tests below."""
    tmp = tmp_path_factory.mktemp("pipeline")
    _, run = train_tiny_run(tmp)
    return tmp, run


def test_run_folder_holds_config_labels_hashes_logs_metrics(trained_run):
    tmp, run = trained_run
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert [label["name"] for label in config["labels"]] == LABELS and config["train"]["run_name"] == "r1"
    data = json.loads((run / "data.json").read_text())
    assert set(data) == {"train", "dev", "test"} and all(len(v["sha256"]) == 64 for v in data.values())
    assert (run / "train_log.jsonl").read_text().count("\n") >= 3
    metrics = json.loads((run / "metrics.json").read_text())
    for split in ("dev", "test"):
        assert {"accuracy", "macro_f1", "per_class", "confusion_matrix"} <= set(metrics[split])
        assert set(metrics[split]["per_class"]) == set(LABELS)
    assert (tmp / "runs" / "latest").resolve() == run.resolve()


def test_the_tiny_setup_learns_the_inline_corpus(trained_run):
    """Every pipeline test runs on a model that has learnt something, so a bug that shuffles labels or drops the
    loss shows up as a failure here rather than as a constant model."""
    _, run = trained_run
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["dev"]["macro_f1"] >= 0.9 and metrics["test"]["macro_f1"] >= 0.9
    assert metrics["train"]["temperature"] < 20  # not pinned at the cap, as a constant model would be


def test_labels_travel_with_the_checkpoint(trained_run):
    _, run = trained_run
    config = json.loads((run / "model" / "config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(4)] == LABELS
    assert config["label2id"] == {label: i for i, label in enumerate(LABELS)}
    meta = json.loads((run / "model" / "event_classifier.json").read_text())
    assert [label["name"] for label in meta["labels"]] == LABELS and meta["max_length"] > 0
    assert meta["fallback_label"] == "other" and meta["stride"] == 32 and meta["batch_size"] == 32
    assert meta["data"]["train"]["sha256"] == json.loads((run / "data.json").read_text())["train"]["sha256"]


def test_saved_model_loads_in_a_plain_transformers_pipeline(trained_run):
    from transformers import pipeline

    _, run = trained_run
    classify = pipeline("text-classification", model=str(run / "model"), device="cpu")
    out = classify("Troops captured the town.")
    assert out[0]["label"] in LABELS


def test_evaluate_writes_metrics_and_plot(trained_run, capsys):
    tmp, run = trained_run
    assert evaluate_main([str(run)]) == 0
    printed = capsys.readouterr().out
    assert "macro-F1" in printed and "military_advance" in printed
    metrics = json.loads((run / "evaluation" / "test" / "metrics.json").read_text())
    assert metrics["n"] == sum(1 for _ in open(tmp / "prepared" / "test.jsonl"))
    assert (run / "evaluation" / "test" / "confusion_matrix.png").stat().st_size > 1000
    # reuses the prediction path: same figure as the one written at the end of training
    assert metrics["macro_f1"] == pytest.approx(json.loads((run / "metrics.json").read_text())["test"]["macro_f1"])


def test_predict_txt_and_jsonl_to_jsonl(trained_run, tmp_path, capsys):
    _, run = trained_run
    article = tmp_path / "article.txt"
    article.write_text(ARTICLE)
    items = tmp_path / "items.jsonl"
    items.write_text('{"id": "x1", "text": "Talks resumed.", "desk": "europe"}\n{"id": "x2", "text": "   "}\n')
    out = tmp_path / "out.jsonl"
    assert predict_main(["--model", str(run), str(article), str(items), "--output", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["paragraph"] for r in rows[:3]] == [0, 1, 2]
    assert rows[0]["text"] == "Troops captured the ridge town after a night march."
    assert rows[3]["id"] == "x1" and rows[3]["desk"] == "europe" and rows[3]["source"] == str(items)
    assert len(rows) == 4  # the whitespace-only paragraph is skipped and reported
    for r in rows:
        assert r["label"] in LABELS and sum(r["probs"].values()) == pytest.approx(1, abs=1e-4)
    err = capsys.readouterr().err
    assert "3 paragraphs" in err and "1 empty skipped" in err


def test_predict_csv_and_same_predictions_after_reload(trained_run, tmp_path):
    _, run = trained_run
    article = tmp_path / "a.txt"
    article.write_text(ARTICLE)
    out = tmp_path / "out.csv"
    assert predict_main(["--model", str(run / "model"), str(article), "--output", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 3 and {f"p_{label}" for label in LABELS} <= set(rows[0])
    fresh = Predictor(run / "model").predict([r["text"] for r in rows])
    assert [r["label"] for r in rows] == [f["label"] for f in fresh]
    assert [float(r["score"]) for r in rows] == pytest.approx([f["score"] for f in fresh], abs=1e-6)


def test_predict_reads_stdin(trained_run):
    _, run = trained_run
    done = subprocess.run([sys.executable, "predict.py", "--model", str(run), "-"], input=ARTICLE, capture_output=True,
                          text=True, timeout=HANG_GUARD_S)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 3 and "<stdin>: 3 paragraphs" in done.stderr


def test_existing_run_is_not_overwritten_without_a_flag(trained_run, capsys):
    tmp, _ = trained_run
    args = ["--config", "configs/tiny.yaml", f"--data.prepared_dir={tmp / 'prepared'}",
            f"--train.output_dir={tmp / 'runs'}", "--train.run_name=r1"]
    assert train_main(args) == 2
    assert "--resume" in capsys.readouterr().err


@pytest.mark.parametrize("script", ["train.py", "evaluate.py", "predict.py", "data/prepare.py"])
def test_every_command_line_has_help(script):
    done = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "usage" in done.stdout


def test_run_has_calibration_model_card_and_reports(trained_run):
    _, run = trained_run
    meta = json.loads((run / "model" / "event_classifier.json").read_text())
    assert 0.05 <= meta["temperature"] <= 20
    card = (run / "model" / "README.md").read_text()
    for fragment in ("## Intended use and limits", "`military_advance`", "## Training data", "macro-F1", "T = ", "```yaml"):
        assert fragment in card
    test = json.loads((run / "metrics.json").read_text())["test"]
    assert test["macro_f1_ci95"][0] <= test["macro_f1"] <= test["macro_f1_ci95"][1]
    assert 0 <= test["ece"] <= 1 and "ece_uncalibrated" in test and test["coverage_curve"][0]["coverage"] == 1.0
    for name in ("errors.md", "reliability.png", "coverage.png", "confusion_matrix.png"):
        assert (run / "evaluation" / "test" / name).exists(), name


def test_several_models_and_the_baseline_side_by_side(trained_run, tmp_path, capsys):
    _, run = trained_run
    out = tmp_path / "cmp"
    assert evaluate_main([str(run), str(run / "model"), "--baseline", "--output-dir", str(out)]) == 0
    comparison = json.loads((out / "comparison.json").read_text())
    assert set(comparison["results"]) == {str(run), str(run / "model"), "tfidf-logreg baseline"}
    assert "| tfidf-logreg baseline |" in (out / "comparison.md").read_text()


def test_seeds_give_mean_and_std(tmp_path):
    from conftest import make_corpus, write_jsonl

    corpus = write_jsonl(tmp_path / "p" / "c.jsonl", make_corpus())
    args = ["--config", "configs/tiny.yaml", f"--data.paragraphs={corpus}", f"--data.prepared_dir={tmp_path / 'prep'}",
            f"--train.output_dir={tmp_path / 'runs'}", "--train.run_name=s"]
    assert prepare_main(args) == 0
    assert train_main(args + ["--seeds", "1,2"]) == 0
    summary = json.loads((tmp_path / "runs" / "s-seeds.json").read_text())
    assert len(summary["test"]["macro_f1"]) == 2 and summary["test"]["macro_f1_std"] >= 0
    assert summary["test"]["macro_f1_mean"] == pytest.approx(sum(summary["test"]["macro_f1"]) / 2, abs=1e-4)
    assert (tmp_path / "runs" / "s-seed1" / "model").is_dir() and (tmp_path / "runs" / "s-seed2" / "model").is_dir()
