"""Multi-label (issue 13): secondary labels (`also`) in the data, a sigmoid head with thresholds tuned on dev, label-set
metrics, `labels` in predictions and one event-table row per paragraph and label."""

import csv
import io
import json
import random

import numpy as np
import pytest

from event_classifier.calibration import fit_temperature, tune_thresholds
from event_classifier.cli import evaluate_main, predict_main, prepare_main, train_main
from event_classifier.comparison import comparison_table
from event_classifier.config import load_config
from event_classifier.errors import EventClassifierError
from event_classifier.inference import Ensemble, Predictor
from event_classifier.metrics import label_set_metrics
from event_classifier.prediction_output import write_predictions
from event_classifier.sources import read_labelled_file
from event_classifier.training import label_targets, positive_weights

from conftest import LABELS, WORDS, make_corpus, save_tiny_model, write_jsonl


def make_mixed_corpus(n_articles: int = 28, seed: int = 0) -> list[dict]:
    """make_corpus without its one-off place and name tokens (which a tiny model memorises instead of the label
    words), where half the advance and half the diplomacy paragraphs also report an attack: two attack words are
    added and `also: [attack]` is set. A quarter of the paragraphs carry two labels."""
    rng = random.Random(seed)
    rows = make_corpus(n_articles=n_articles, seed=seed)
    for row in rows:
        words = [w for w in row["text"].rstrip(".").lower().split() if not w.startswith(("place", "name"))]
        article = int(row["article_id"].split("-a")[1])
        if (row["label"], article % 2) in {("military_advance", 0), ("diplomacy", 1)}:
            words += rng.sample(WORDS["attack"], 2)
            row["also"] = ["attack"]
        row["text"] = " ".join(words).capitalize() + "."
    return rows


# --- data --------------------------------------------------------------------------------------------------------

def test_also_is_carried_to_the_prepared_splits_and_counted(tmp_path):
    from event_classifier.data import prepare, read_split

    rows = make_mixed_corpus()
    config = load_config("configs/tiny.yaml", [f"--data.paragraphs={write_jsonl(tmp_path / 'c.jsonl', rows)}",
                                               f"--data.prepared_dir={tmp_path / 'prep'}"])
    manifest = prepare(config)
    prepared = {name: read_split(tmp_path / "prep" / f"{name}.jsonl", LABELS) for name in ("train", "dev", "test")}
    expected = {r["id"]: r.get("also") for r in rows}
    assert all(r.get("also") == expected[r["id"]] for part in prepared.values() for r in part)
    assert sum("also" in r for part in prepared.values() for r in part) == sum("also" in r for r in rows) > 0
    for name, part in prepared.items():
        assert manifest["splits"][name]["also"] == ({"attack": sum("also" in r for r in part)} if any("also" in r for r in part) else {})


def test_a_csv_also_cell_lists_labels_separated_by_semicolons(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("text,label,also\nTroops took Kerel after shelling and talks.,military_advance,attack; diplomacy\n"
                    "Talks opened.,diplomacy,\n")
    rows, _ = read_labelled_file(path, LABELS)
    assert rows[0]["also"] == ["attack", "diplomacy"] and "also" not in rows[1]


@pytest.mark.parametrize("also,message", [
    (["riot"], "unknown label 'riot' in 'also'"),
    (["military_advance"], "'also' repeats the main label 'military_advance'"),
    (["attack", "attack"], "'also' lists a label twice"),
    ("attack", None),  # a plain string is one label, as in a CSV cell: accepted
    ({"attack": 1}, "'also' must be a list of labels"),
])
def test_bad_also_names_the_file_and_line(tmp_path, also, message):
    path = write_jsonl(tmp_path / "p.jsonl", [{"text": "Talks.", "label": "diplomacy"},
                                              {"text": "Troops took Kerel.", "label": "military_advance", "also": also}])
    if message is None:
        assert read_labelled_file(path, LABELS)[0][1]["also"] == ["attack"]
        return
    with pytest.raises(EventClassifierError, match=f"p.jsonl:2: {message}".replace("(", r"\(").replace("[", r"\[")):
        read_labelled_file(path, LABELS)


def test_the_task_is_a_typed_config_field():
    assert load_config(None).model.task == "single_label"
    assert load_config(None, ["--model.task=multi_label"]).model.task == "multi_label"
    with pytest.raises(EventClassifierError, match="model.task must be single_label or multi_label, got 'multi'"):
        load_config(None, ["--model.task=multi"])


# --- training targets, thresholds, calibration, metrics -------------------------------------------------------------

def test_targets_are_the_label_set_then_the_main_label_and_pos_weight_balances_each_label():
    rows = [{"label": "attack"}, {"label": "military_advance", "also": ["attack"]}, {"label": "other"}, {"label": "other"}]
    targets = label_targets(rows, LABELS)
    assert targets.tolist() == [[0, 1, 0, 0, 1], [1, 1, 0, 0, 0], [0, 0, 0, 1, 3], [0, 0, 0, 1, 3]]
    # negatives / positives: advance 3/1, attack 2/2, diplomacy has no positives (1), other 2/2
    assert positive_weights(targets[:, :-1]).tolist() == [3.0, 1.0, 1.0, 1.0]


def test_thresholds_are_tuned_per_label_for_its_secondary_occurrences():
    # label b is a secondary label of the paragraphs where its probability is above 0.3; c is never a secondary label
    probs = np.array([[0.9, 0.35, 0.1], [0.8, 0.32, 0.1], [0.9, 0.25, 0.1], [0.7, 0.2, 0.6], [0.1, 0.2, 0.8],
                      [0.2, 0.9, 0.3]])
    y = np.array([[1, 1, 0], [1, 1, 0], [1, 0, 0], [1, 0, 0], [0, 0, 1], [0, 1, 0]])
    main = np.array([0, 0, 0, 0, 2, 1])
    thresholds = tune_thresholds(probs, y, main, ["a", "b", "c"])
    assert 0.25 < thresholds["b"] <= 0.32
    assert thresholds["a"] == thresholds["c"] == 1.0  # no secondary a or c on dev: never added
    assert tune_thresholds(probs, np.eye(3)[main], main, ["a", "b", "c"]) == {"a": 1.0, "b": 1.0, "c": 1.0}


def test_sigmoid_temperature_is_fitted_by_binary_cross_entropy():
    class Sigmoid:
        def combine(self, logits, owner, n, temperature=1.0):
            return 1 / (1 + np.exp(-logits / temperature))

    rng = np.random.default_rng(0)
    logits = rng.normal(scale=4.0, size=(3000, 4))
    y = (rng.random((3000, 4)) < Sigmoid().combine(logits, None, None, temperature=2.0)).astype(int)
    assert fit_temperature(Sigmoid(), logits, list(range(3000)), y) == pytest.approx(2.0, rel=0.1)


def test_label_set_metrics_follow_scikit_learn_and_score_secondary_labels_apart():
    y_true = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1]])
    y_pred = np.array([[1, 1, 0], [0, 1, 1], [0, 0, 1], [1, 0, 0]])
    main = np.array([0, 1, 2, 0])
    sets = label_set_metrics(y_true, y_pred, main, ["a", "b", "c"])
    assert sets["subset_accuracy"] == 0.5 and sets["hamming_loss"] == pytest.approx(2 / 12)
    assert sets["micro_f1"] == pytest.approx(2 * 5 / (2 * 5 + 2))
    # secondary labels: (row 0, b) found; (row 3, c) missed; (row 1, c) predicted wrongly
    assert sets["secondary"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2, "predicted": 2}
    assert sets["per_class"]["c"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}


def test_the_comparison_table_puts_single_and_multi_label_runs_side_by_side():
    def result(f1, sets=None):
        m = {"macro_f1": f1, "macro_f1_ci95": (f1 - 0.05, f1 + 0.05), "accuracy": f1, "ece": 0.1,
             "per_class": {label: {"f1": f1} for label in LABELS}}
        return {**m, "label_sets": sets} if sets else m

    sets = {"micro_f1": 0.8, "macro_f1": 0.7, "secondary": {"f1": 0.6}, "subset_accuracy": 0.5, "hamming_loss": 0.1}
    table = comparison_table({"single": result(0.9), "multi": result(0.91, sets)}, LABELS)
    head, _, multi, single = table.splitlines()
    assert "secondary F1" in head and multi.startswith("| multi |") and "| 0.600 |" in multi
    assert single.startswith("| single |") and single.endswith("| - | - | - | - | - |")


# --- the model folder and the predictor --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def multi_model(tmp_path_factory):
    """An untrained tiny multi-label classifier with thresholds, saved as a model folder."""
    return save_tiny_model(tmp_path_factory.mktemp("multi") / "model", task="multi_label",
                           thresholds={"military_advance": 0.5, "attack": 0.0, "diplomacy": 0.5, "other": 1.0})


def test_a_multi_label_model_folder_loads_its_task_and_thresholds(multi_model):
    config = json.loads((multi_model / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    predictor = Predictor(multi_model)
    assert predictor.meta.multi_label and predictor.meta.thresholds["attack"] == 0.0
    for result in predictor.predict(["Troops took the town.", "Talks opened in Geneva."]):
        assert result["labels"][0] == result["label"] == max(result["probs"], key=result["probs"].get)
        assert "attack" in result["labels"] and "other" not in result["labels"][1:]  # thresholds 0 and 1 (never)
        assert sum(result["probs"].values()) != pytest.approx(1.0)  # a sigmoid per label


def test_min_confidence_routes_a_multi_label_prediction_to_the_fallback_alone(multi_model):
    result = Predictor(multi_model, min_confidence=0.999).predict(["Troops took the town."])[0]
    assert result["low_confidence"] and result["label"] == "other" and result["labels"] == ["other"]


def test_single_label_rows_carry_labels_too(tmp_path):
    result = Predictor(save_tiny_model(tmp_path / "m")).predict(["Troops took the town."])[0]
    assert result["labels"] == [result["label"]]


def test_metadata_of_earlier_versions_loads_as_single_label_and_a_task_that_contradicts_the_weights_is_refused(tmp_path, capsys):
    model = save_tiny_model(tmp_path / "m")
    meta = json.loads((model / "event_classifier.json").read_text())
    del meta["task"]
    meta["format_version"] = 2  # written before the task travelled with the model
    (model / "event_classifier.json").write_text(json.dumps(meta))
    assert not Predictor(model).meta.multi_label
    meta["task"], meta["format_version"] = "multi_label", 3  # a softmax head's folder claiming to be multi-label
    (model / "event_classifier.json").write_text(json.dumps(meta))
    assert predict_main(["--model", str(model), "-"]) == 2
    assert "does not fit config.json's problem_type" in capsys.readouterr().err


def test_a_plain_transformers_folder_takes_its_task_from_problem_type(multi_model, tmp_path):
    import shutil

    plain = tmp_path / "plain"
    shutil.copytree(multi_model, plain)
    (plain / "event_classifier.json").unlink()
    assert Predictor(plain).meta.multi_label


def test_an_ensemble_needs_models_of_one_task(multi_model, tmp_path):
    with pytest.raises(EventClassifierError, match="an ensemble needs models of one task"):
        Ensemble([multi_model, save_tiny_model(tmp_path / "single")])


def test_the_event_table_has_one_row_per_paragraph_and_label(tmp_path):
    records = [{"source": "a.txt", "paragraph": 0, "text": "Troops took Kerel after shelling.", "label": "military_advance",
                "labels": ["military_advance", "attack"], "score": 0.9,
                "probs": {"military_advance": 0.9, "attack": 0.7, "diplomacy": 0.1, "other": 0.05}},
               {"source": "a.txt", "paragraph": 1, "text": "Prices rose.", "label": "other", "labels": ["other"], "score": 0.8,
                "probs": {"military_advance": 0.1, "attack": 0.1, "diplomacy": 0.1, "other": 0.8}}]
    out, events = tmp_path / "out.csv", tmp_path / "events.csv"
    write_predictions(records, str(out), "csv", LABELS, str(events), "other")
    assert [row["labels"] for row in csv.DictReader(io.StringIO(out.read_text()))] == ["military_advance;attack", "other"]
    table = list(csv.DictReader(io.StringIO(events.read_text())))
    assert [(t["paragraph"], t["label"], t["main"], t["confidence"]) for t in table] == [
        ("0", "military_advance", "True", "0.9"), ("0", "attack", "False", "0.7")]


# --- the whole pipeline on the tiny model ---------------------------------------------------------------------------

MIXED = "Troops captured the village and seized positions near the ridge after shelling and rockets, officials said."


@pytest.fixture(scope="module")
def multi_run(tmp_path_factory):
    """prepare -> train a tiny multi-label model on the mixed corpus, through the command lines."""
    tmp = tmp_path_factory.mktemp("multilabel")
    corpus = write_jsonl(tmp / "c.jsonl", make_mixed_corpus())
    args = ["--config", "configs/tiny.yaml", f"--data.paragraphs={corpus}", f"--data.prepared_dir={tmp / 'prep'}",
            f"--train.output_dir={tmp / 'runs'}"]
    assert prepare_main(args) == 0
    assert train_main(args + ["--train.run_name=multi", "--model.task=multi_label"]) == 0
    return tmp, tmp / "runs" / "multi"


def _split(tmp, name):
    return [json.loads(line) for line in (tmp / "prep" / f"{name}.jsonl").read_text().splitlines()]


def test_a_tiny_multi_label_model_learns_the_main_label_and_the_second_one(multi_run):
    tmp, run = multi_run
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["macro_f1"] >= 0.9 and metrics["test"]["task"] == "multi_label"  # the main label
    rows = [r for name in ("train", "dev", "test") for r in _split(tmp, name)]
    predicted = Predictor(run).predict([r["text"] for r in rows])
    mixed = [set(p["labels"]) == {r["label"], *r["also"]} for r, p in zip(rows, predicted) if "also" in r]
    single = [p["labels"] == [r["label"]] for r, p in zip(rows, predicted) if "also" not in r]
    assert len(mixed) == 28 and np.mean(mixed) >= 0.75 and np.mean(single) >= 0.75  # measured: 0.86 and 0.83
    assert Predictor(run).predict([MIXED])[0]["labels"] == ["military_advance", "attack"]  # a paragraph it never saw


def test_thresholds_are_tuned_on_dev_stored_with_the_model_and_reloaded(multi_run):
    _, run = multi_run
    meta = json.loads((run / "model" / "event_classifier.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    assert meta["task"] == "multi_label" and set(meta["thresholds"]) == set(LABELS)
    assert all(0 < t <= 1 for t in meta["thresholds"].values()) and meta["thresholds"]["attack"] < 1  # dev has secondary attacks
    assert metrics["test"]["label_sets"]["thresholds"] == meta["thresholds"] == Predictor(run).meta.thresholds
    assert 0.05 < meta["temperature"] < 20  # calibrated by BCE on dev, not pinned at a bound
    assert "thresholds tuned on dev" in (run / "model" / "README.md").read_text()


def test_evaluate_prints_label_set_metrics_and_compares_with_the_single_label_baseline(multi_run, capsys):
    tmp, run = multi_run
    assert evaluate_main([str(run)]) == 0
    printed = capsys.readouterr().out
    assert "label sets" in printed and "secondary" in printed and "Hamming loss" in printed
    sets = json.loads((run / "evaluation" / "test" / "metrics.json").read_text())["label_sets"]
    assert {"micro_f1", "macro_f1", "subset_accuracy", "hamming_loss", "per_class", "secondary"} <= set(sets)
    assert evaluate_main([str(run), "--baseline", "--output-dir", str(tmp / "cmp")]) == 0
    table = (tmp / "cmp" / "comparison.md").read_text()
    assert "secondary F1" in table and "| tfidf-logreg baseline |" in table
    results = json.loads((tmp / "cmp" / "comparison.json").read_text())["results"]
    assert results["tfidf-logreg baseline"]["label_sets"]["secondary"]["predicted"] <= results[str(run)]["label_sets"]["secondary"]["predicted"]


def test_predict_writes_labels_and_an_event_row_per_label(multi_run, tmp_path):
    _, run = multi_run
    article = tmp_path / "a.txt"
    article.write_text(MIXED + "\n\nMinisters signed the agreement at the summit on monday, officials said.")
    out, events = tmp_path / "out.jsonl", tmp_path / "events.csv"
    assert predict_main(["--model", str(run), str(article), "--output", str(out), "--events", str(events)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["labels"] for r in rows] == [["military_advance", "attack"], ["diplomacy"]]
    table = list(csv.DictReader(io.StringIO(events.read_text())))
    assert [(t["paragraph"], t["label"], t["main"]) for t in table] == [
        ("0", "military_advance", "True"), ("0", "attack", "False"), ("1", "diplomacy", "True")]
    assert float(table[1]["confidence"]) == rows[0]["probs"]["attack"]
    routed = tmp_path / "routed.jsonl"
    assert predict_main(["--model", str(run), str(article), "--output", str(routed), "--min-confidence", "0.9999"]) == 0
    low = [r for r in map(json.loads, routed.read_text().splitlines()) if r["low_confidence"]]
    assert low and all(r["label"] == "other" and r["labels"] == ["other"] for r in low)
