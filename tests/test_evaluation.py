import numpy as np
import pytest

from event_classifier.calibration import coverage_curve, expected_calibration_error, fit_temperature
from event_classifier.comparison import comparison_table
from event_classifier.metrics import bootstrap_macro_f1, classification_metrics
from event_classifier.reports import error_report

from conftest import LABELS


class _Combiner:
    """The part of Predictor that fit_temperature uses: softmax(logits / T) averaged per text."""

    def combine(self, logits, owner, n, temperature=1.0):
        scaled = logits / temperature
        probs = np.exp(scaled - scaled.max(axis=1, keepdims=True))
        return probs / probs.sum(axis=1, keepdims=True)


def test_ece_is_zero_when_confidence_matches_accuracy_and_large_when_overconfident():
    y = np.array([0, 0, 0, 1])
    calibrated = np.array([[0.75, 0.25]] * 4)  # 75 % confident, 75 % right
    assert expected_calibration_error(calibrated, y) == pytest.approx(0.0)
    overconfident = np.array([[0.99, 0.01]] * 4)
    assert expected_calibration_error(overconfident, y) == pytest.approx(0.24)


def test_fit_temperature_recovers_the_temperature_that_generated_the_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=4.0, size=(4000, 4))
    true_probs = _Combiner().combine(logits, None, None, temperature=2.5)
    y = np.array([rng.choice(4, p=p) for p in true_probs])
    assert fit_temperature(_Combiner(), logits, list(range(4000)), y) == pytest.approx(2.5, rel=0.1)


def test_coverage_curve_starts_at_full_coverage_and_shrinks():
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.55, 0.45], [0.3, 0.7]])
    curve = coverage_curve(probs, np.array([0, 1, 0, 1]))
    assert curve[0]["coverage"] == 1.0 and curve[0]["precision"] == 0.75
    assert [c["coverage"] for c in curve] == sorted((c["coverage"] for c in curve), reverse=True)
    at_07 = next(c for c in curve if c["min_confidence"] >= 0.7)
    assert at_07["precision"] == 1.0


def test_bootstrap_interval_brackets_the_point_estimate():
    rng = np.random.default_rng(1)
    y_true = list(rng.choice(LABELS, 300))
    y_pred = [t if rng.random() < 0.8 else LABELS[0] for t in y_true]
    low, high = bootstrap_macro_f1(y_true, y_pred, LABELS, rounds=300)
    point = classification_metrics(y_true, y_pred, LABELS)["macro_f1"]
    assert low < point < high and high - low < 0.2


def _metrics(f1):
    per_class = {label: {"f1": f1} for label in LABELS}
    return {"macro_f1": f1, "macro_f1_ci95": (f1 - 0.05, f1 + 0.05), "accuracy": f1, "ece": 0.1, "per_class": per_class}


def test_comparison_table_is_sorted_by_macro_f1():
    table = comparison_table({"weak": _metrics(0.5), "strong": _metrics(0.9)}, LABELS)
    rows = [line for line in table.splitlines() if line.startswith("| weak") or line.startswith("| strong")]
    assert rows[0].startswith("| strong") and "0.850-0.950" in rows[0]


def test_error_report_lists_confident_mistakes_first_with_texts():
    rows = [{"text": "Troops took Kerel.", "label": "military_advance"}, {"text": "Talks in Oslo.", "label": "diplomacy"},
            {"text": "Shelling hit Amar.", "label": "attack"}]
    predictions = [{"label": "attack", "score": 0.6}, {"label": "other", "score": 0.95}, {"label": "attack", "score": 0.9}]
    report = error_report(rows, predictions, {"macro_f1": 0.3, "accuracy": 0.33}, "dev")
    assert "2 of 3 paragraphs wrong" in report
    assert report.index("Talks in Oslo.") < report.index("Troops took Kerel.")
    assert "### diplomacy read as other (1)" in report and "Shelling hit Amar." not in report


def test_mixed_sources_get_their_own_figures(tmp_path):
    from event_classifier.evaluation import evaluate_rows
    from event_classifier.inference import Predictor
    from conftest import make_corpus, save_tiny_model

    save_tiny_model(tmp_path / "m")
    rows = [dict(r, source="authored" if i % 2 else "case") for i, r in enumerate(make_corpus()[:40])]
    metrics = evaluate_rows(Predictor(tmp_path / "m"), rows)
    assert set(metrics["by_source"]) == {"authored", "case"}
    assert sum(m["n"] for m in metrics["by_source"].values()) == 40


def test_recall_by_source_label_counts_each_source_label_against_its_mapped_label():
    from event_classifier.metrics import recall_by_source_label

    rows = [{"label": "attack", "source_label": "SUIC_BOMB"}, {"label": "attack", "source_label": "SUIC_BOMB"},
            {"label": "other", "source_label": "MAN_MADE_DISASTER"}, {"label": "other"}]
    got = recall_by_source_label(rows, ["attack", "other", "attack", "other"])
    assert got == {"MAN_MADE_DISASTER": {"label": "other", "n": 1, "right": 0, "recall": 0.0},
                   "SUIC_BOMB": {"label": "attack", "n": 2, "right": 1, "recall": 0.5}}
    assert recall_by_source_label([{"label": "other"}], ["attack"]) == {}


def test_evaluating_codebook_data_reports_recall_per_source_label(tmp_path, capsys):
    """`evaluate --data case=PATH` scores each CASE subtype against the label its codebook maps it to: in metrics.json,
    in predictions.jsonl (each row's subtype), in errors.md and on the terminal, weakest first."""
    import json

    from event_classifier.cli import evaluate_main
    from conftest import save_tiny_model

    save_tiny_model(tmp_path / "m")
    snippets = [("GOV_REGAINS_TERIT", "Army units moved back into the river town after the militia left it."),
                ("ARMED_CLASH", "Two armed groups traded fire for an hour near the quarry road."),
                ("ARMED_CLASH", "Soldiers and rebels fought through the night outside the old mill."),
                ("DIPLO", "The two foreign ministers met to discuss the border crossings."),
                ("MAN_MADE_DISASTER", "A fire broke out at a paint factory and spread to a warehouse."),
                ("PEACE_PROTEST", "Hundreds of teachers marched to the ministry to ask for their pay.")]
    data = tmp_path / "case.tsv"
    data.write_text("id\tEventSnippet\tSubType\n" + "".join(f"{i}\t{t}\t{s}\n" for i, (s, t) in enumerate(snippets)))
    assert evaluate_main([str(tmp_path / "m"), "--data", f"case={data}", "--output-dir", str(tmp_path / "ev")]) == 0
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    predictions = [json.loads(line) for line in (tmp_path / "ev" / "predictions.jsonl").read_text().splitlines()]
    assert [p["source_label"] for p in predictions] == [s for s, _ in snippets]
    clashes = [p for p in predictions if p["source_label"] == "ARMED_CLASH"]
    right = sum(p["label"] == "attack" for p in clashes)
    assert metrics["by_source_label"]["ARMED_CLASH"] == {"label": "attack", "n": 2, "right": right, "recall": right / 2}
    assert sum(m["n"] for m in metrics["by_source_label"].values()) == len(snippets)
    assert sum(m["right"] for m in metrics["by_source_label"].values()) == round(metrics["accuracy"] * len(snippets))
    out = capsys.readouterr().out
    assert "recall per source label, weakest first" in out and "MAN_MADE_DISASTER" in out
    shown = [line.split()[0] for line in out.splitlines() if " -> " in line]
    recalls = [metrics["by_source_label"][name]["recall"] for name in shown]
    assert sorted(shown) == sorted(metrics["by_source_label"]) and recalls == sorted(recalls)
    assert "| ARMED_CLASH | attack |" in (tmp_path / "ev" / "errors.md").read_text()
    save_tiny_model(tmp_path / "m2")  # two models side by side: the comparison holds their recall per subtype too
    assert evaluate_main([str(tmp_path / "m"), str(tmp_path / "m2"), "--data", f"case={data}", "--output-dir", str(tmp_path / "cmp")]) == 0
    comparison = (tmp_path / "cmp" / "comparison.md").read_text()
    row = next(line for line in comparison.splitlines() if line.startswith("| ARMED_CLASH |"))
    assert "## Recall per source label" in comparison and row == f"| ARMED_CLASH | attack | 2 | {right / 2:.2f} | {right / 2:.2f} |"


def test_the_source_label_table_puts_models_side_by_side_and_marks_what_one_lacks():
    from event_classifier.comparison import source_label_table

    a = {"by_source_label": {"CHEM_WEAP": {"label": "attack", "n": 22, "right": 6, "recall": 0.273},
                             "DIPLO": {"label": "diplomacy", "n": 26, "right": 26, "recall": 1.0}}}
    b = {"by_source_label": {"CHEM_WEAP": {"label": "attack", "n": 22, "right": 15, "recall": 0.682}}}
    table = source_label_table({"before": a, "after": b, "no codebook": {}}).splitlines()
    assert table[0] == "| source label | maps to | n | before | after |"
    assert table[2:] == ["| CHEM_WEAP | attack | 22 | 0.27 | 0.68 |", "| DIPLO | diplomacy | 26 | 1.00 | - |"]
    assert source_label_table({"x": {}}) == ""
