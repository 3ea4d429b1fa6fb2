"""The real-news benchmark runs end to end on the tiny model: folds are unseen, every system is pooled and scored."""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))  # benchmarks are scripts, not a package

import real_news  # noqa: E402

from conftest import make_corpus, write_jsonl  # noqa: E402

SHARED_CASE = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "case2021_task2_dev.tsv"


def _fake_case(path: Path, n: int = 80) -> Path:
    """A CASE-shaped TSV built from the inline corpus (the real file is not needed for this test)."""
    subtype = {"military_advance": "GOV_REGAINS_TERIT", "attack": "AIR_STRIKE", "diplomacy": "DIPLO", "other": "ARREST"}
    lines = ["id\tEventSnippet\tSubType"] + [f"{i}\t{r['text']}\t{subtype[r['label']]}" for i, r in enumerate(make_corpus()[:n])]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_folds_are_disjoint_cover_every_snippet_and_keep_near_duplicates_together():
    rows = [dict(r) for r in make_corpus()[:60]]
    rows.append(dict(rows[0], id="copy", text=rows[0]["text"] + " Again."))  # a near-duplicate of row 0
    folds = real_news.case_folds(rows, 3, seed=1)
    every = np.concatenate(folds)
    assert sorted(every.tolist()) == list(range(len(rows)))
    assert next(i for i, f in enumerate(folds) if 0 in f) == next(i for i, f in enumerate(folds) if len(rows) - 1 in f)


def test_ensemble_members_keep_a_soups_own_members_together():
    assert real_news.ensemble_members("soup(a@seed43+b)+corpus@mean@mp14s1") == ["soup(a@seed43+b)", "corpus@mean@mp14s1"]
    assert real_news.ensemble_members("a+b+c") == ["a", "b", "c"]
    assert real_news.ensemble_members("soup(a+b") == [] and real_news.ensemble_members("a+(b)") == []  # malformed: rejected


def test_benchmark_runs_every_system_on_the_tiny_model(tmp_path):
    from event_classifier.cli import prepare_main

    corpus = write_jsonl(tmp_path / "p" / "c.jsonl", make_corpus(seed=3))
    overrides = ["--model.name=tiny-random-bert", f"--data.paragraphs={corpus}", f"--data.prepared_dir={tmp_path / 'prep'}",
                 "--train.epochs=4", "--train.batch_size=8", "--train.learning_rate=1e-3", "--train.early_stopping_patience=0"]
    assert prepare_main(overrides) == 0
    case = _fake_case(tmp_path / "case.tsv")
    tiny = str(Path(__file__).resolve().parent.parent / "configs" / "tiny.yaml")
    results = real_news.main(["--case", str(case), "--folds", "2", "--epochs", "2", "--output-dir", str(tmp_path / "out"),
                              "--project-config", tiny, "--project-from-corpus", *overrides, "--train.refit=true",
                              "--train.lexical_weight=0.5"])
    assert (tmp_path / "out" / "work" / "project-1" / "refit_train_log.jsonl").is_file()  # the project fold was refit
    fold_work = [p for n in (1, 2) for name in ("plain", "two_stage", "project") for p in (tmp_path / "out" / "work" / f"{name}-{n}").iterdir()]
    assert fold_work and not [p for p in fold_work if p.is_dir()]  # each finished fold's checkpoints were removed, logs kept
    # the base config is default.yaml (mean pooling: NAME@mean); the project config, tiny.yaml, keeps the [CLS] head
    assert set(results) == {"tfidf", "corpus@mean", "plain@mean", "two_stage@mean", "project", "plain@mean+two_stage@mean",
                            "plain@mean+project", "two_stage@mean+project", "plain@mean+tfidf", "two_stage@mean+tfidf"}
    expected = (np.array(results["plain@mean"]["confusion_matrix"]).sum(),
                np.array(results["plain@mean+two_stage@mean"]["confusion_matrix"]).sum())
    assert expected == (80, 80)
    saved = json.loads((tmp_path / "out" / "real_news.json").read_text())
    for name, metrics in saved["results"].items():
        assert metrics["n"] == 80 and 0 <= metrics["macro_f1"] <= 1
        assert sum(v["n"] for v in metrics["by_subtype"].values()) == 80
    table = (tmp_path / "out" / "real_news.md").read_text()
    assert "| plain@mean |" in table and "| two_stage@mean |" in table and "| project |" in table and "GOV_REGAINS_TERIT" in table


@pytest.mark.skipif(not SHARED_CASE.is_file(), reason="../shared/data is not beside the project")
def test_the_real_case_file_gives_balanced_grouped_folds():
    from event_classifier.sources import read_source

    rows, _ = read_source("case", SHARED_CASE, ["military_advance", "attack", "diplomacy", "other"])
    folds = real_news.case_folds(rows, 5, seed=42)
    assert sum(len(f) for f in folds) == 613 and min(len(f) for f in folds) > 100
    for fold in folds:  # every fold has every label, so per-fold scores are meaningful
        assert {rows[i]["label"] for i in fold} == {"military_advance", "attack", "diplomacy", "other"}


def test_an_earlier_run_joins_the_table_only_with_the_same_folds(tmp_path):
    case = _fake_case(tmp_path / "case.tsv")
    first = real_news.main(["--case", str(case), "--folds", "2", "--systems", "tfidf", "--output-dir", str(tmp_path / "a")])
    saved = json.loads((tmp_path / "a" / "real_news.json").read_text())
    assert np.array(saved["oof_probs"]["tfidf"]).shape == (80, 4)
    saved["oof_probs"]["plain"] = saved["oof_probs"]["tfidf"]  # stands in for a trained system of the earlier run
    saved["results"]["plain"] = saved["results"]["tfidf"]
    (tmp_path / "a" / "real_news.json").write_text(json.dumps(saved))
    joined = real_news.main(["--case", str(case), "--folds", "2", "--systems", "tfidf", "--include-from",
                             str(tmp_path / "a" / "real_news.json"), "--output-dir", str(tmp_path / "b")])
    assert joined["plain"]["macro_f1"] == pytest.approx(first["tfidf"]["macro_f1"])
    other_seed = json.loads(json.dumps(saved))  # a second seed trained side by side, joined with the first run
    other_seed["oof_probs"] = {"plain@seed7": (1 - np.array(saved["oof_probs"]["tfidf"])).tolist()}
    other_seed["results"] = {"plain@seed7": saved["results"]["tfidf"]}
    (tmp_path / "a" / "seed7.json").write_text(json.dumps(other_seed))
    both = real_news.main(["--case", str(case), "--folds", "2", "--systems", "tfidf", "--include-from",
                           str(tmp_path / "a" / "real_news.json"), "--include-from", str(tmp_path / "a" / "seed7.json"),
                           "--output-dir", str(tmp_path / "d")])
    assert {"plain", "plain@seed7", "plainx2", "plain+tfidf", "plain@seed7+tfidf", "plainx2+tfidf"} <= set(both)
    saved_probs = {k: np.array(v) for k, v in json.loads((tmp_path / "d" / "real_news.json").read_text())["oof_probs"].items()}
    assert np.allclose(saved_probs["plainx2"], 0.5, atol=1e-5)  # (p + (1 - p)) / 2
    assert np.allclose(saved_probs["plainx2+tfidf"], (saved_probs["plainx2"] + saved_probs["tfidf"]) / 2)
    chosen = real_news.main(["--case", str(case), "--folds", "2", "--systems", "tfidf", "--include-from",
                             str(tmp_path / "a" / "real_news.json"), "--include-from", str(tmp_path / "a" / "seed7.json"),
                             "--ensemble", "plain@seed7+plain+tfidf", "--ensemble", "plain+nothing", "--output-dir", str(tmp_path / "f")])
    chosen_probs = {k: np.array(v) for k, v in json.loads((tmp_path / "f" / "real_news.json").read_text())["oof_probs"].items()}
    assert np.allclose(chosen_probs["plain@seed7+plain+tfidf"], (1 + saved_probs["tfidf"]) / 3, atol=1e-5)  # ((1 - p) + p + p) / 3
    assert "plain+nothing" not in chosen  # a name the table lacks is reported, not scored
    with pytest.raises(SystemExit):
        real_news.main(["--case", str(case), "--folds", "2", "--systems", "tfidf", "--ensemble", "plain", "--output-dir", str(tmp_path / "g")])
    with pytest.raises(SystemExit, match="missing.json: not found"):
        real_news.main(["--case", str(case), "--folds", "2", "--systems", "tfidf", "--include-from",
                        str(tmp_path / "missing.json"), "--output-dir", str(tmp_path / "e")])
    with pytest.raises(SystemExit, match="other folds"):
        real_news.main(["--case", str(case), "--folds", "3", "--systems", "tfidf", "--include-from",
                        str(tmp_path / "a" / "real_news.json"), "--output-dir", str(tmp_path / "c")])


@pytest.mark.parametrize("extra, name, averaged", [(["--train-seed", "7"], "plain@seed7", True),
                                                   (["--label-smoothing", "0.2"], "plain@ls0.2", False),
                                                   (["--epochs", "2"], "plain@ep2", False),
                                                   (["--learning-rate", "1e-3"], "plain@lr0.001", False)],
                         ids=["seed", "smoothing", "epochs", "learning_rate"])
def test_a_second_seed_is_averaged_with_the_first_and_a_lever_stands_apart(tmp_path, extra, name, averaged):
    case = _fake_case(tmp_path / "case.tsv")
    common = ["--case", str(case), "--folds", "2", "--systems", "plain", "--model.name=tiny-random-bert", "--pooling", "cls"]
    real_news.main(common + ["--epochs", "1", "--output-dir", str(tmp_path / "a")])
    results = real_news.main(common + (extra if "--epochs" in extra else ["--epochs", "1", *extra]) + ["--include-from", str(tmp_path / "a" / "real_news.json"),
                                               "--output-dir", str(tmp_path / "b")])
    assert {"plain", name} <= set(results) and ("plainx2" in results) == averaged  # a lever is not averaged like a seed
    probs = {k: np.array(v) for k, v in json.loads((tmp_path / "b" / "real_news.json").read_text())["oof_probs"].items()}
    assert not np.allclose(probs["plain"], probs[name])  # another seed, or the smoothed recipe, trains another model
    if averaged:
        assert np.allclose(probs["plainx2"], (probs["plain"] + probs[name]) / 2, atol=1e-6)


def test_a_tagged_run_keeps_every_system_of_the_earlier_run_beside_its_own(tmp_path):
    case = _fake_case(tmp_path / "case.tsv")
    common = ["--case", str(case), "--folds", "2", "--systems", "tfidf"]
    first = real_news.main(common + ["--output-dir", str(tmp_path / "a")])
    tagged = real_news.main(common + ["--tag", "b12", "--include-from", str(tmp_path / "a" / "real_news.json"),
                                      "--output-dir", str(tmp_path / "b")])
    assert set(tagged) == {"tfidf", "tfidf@b12"}  # a new corpus batch is a lever: both rows, not one replacing the other
    assert tagged["tfidf"]["macro_f1"] == pytest.approx(first["tfidf"]["macro_f1"])
    assert "| tfidf@b12 |" in (tmp_path / "b" / "real_news.md").read_text()
    with pytest.raises(SystemExit):
        real_news.main(common + ["--tag", "new batch", "--output-dir", str(tmp_path / "c")])


def test_seeds_of_one_recipe_are_averaged_per_lever_and_averages_are_not_joined_again():
    names = ["two_stage", "two_stage@seed43", "two_stage@ep8", "two_stage@seed43@ep8", "two_stage@seed44@ep8",
             "two_stage@ls0.1", "tfidf", "tfidf@b12"]
    assert real_news.seed_groups(names) == {"two_stagex2": ["two_stage", "two_stage@seed43"],
                                            "two_stagex3@ep8": ["two_stage@ep8", "two_stage@seed43@ep8", "two_stage@seed44@ep8"]}
    derived = [n for n in ["two_stagex3", "two_stagex3@ep8", "plain+two_stage", "two_stage+tfidf", "two_stage@ep8", "tfidf"]
               if real_news.is_derived(n)]
    assert derived == ["two_stagex3", "two_stagex3@ep8", "plain+two_stage", "two_stage+tfidf"]


def test_a_rerun_reads_back_the_folds_already_scored_and_retrains_when_a_setting_changes(tmp_path, monkeypatch, capsys):
    case = _fake_case(tmp_path / "case.tsv", n=40)
    common = ["--case", str(case), "--folds", "2", "--systems", "tfidf,plain", "--output-dir", str(tmp_path / "out"),
              "--model.name=tiny-random-bert", "--train.batch_size=8"]
    first = real_news.main(common + ["--epochs", "1"])
    saved = sorted(p.name for p in (tmp_path / "out" / "work" / "folds").iterdir())
    assert saved == ["plain-1.json", "plain-2.json", "tfidf-1.json", "tfidf-2.json"]  # each fold saved as it ends

    def no_training(*args, **kwargs):
        raise AssertionError("a fold scored with the same settings was trained again")

    monkeypatch.setattr(real_news, "plain_finetune", no_training)
    capsys.readouterr()
    again = real_news.main(common + ["--epochs", "1"])  # as after a crash: every fold is read back
    assert capsys.readouterr().out.count("read back from") == 4
    assert again["plain@mean"]["confusion_matrix"] == first["plain@mean"]["confusion_matrix"]
    assert again["plain@mean"]["macro_f1"] == first["plain@mean"]["macro_f1"]
    with pytest.raises(AssertionError, match="trained again"):  # another epoch count is another setting: it trains
        real_news.main(common + ["--epochs", "2"])


def test_soups_average_the_kept_fold_models_of_two_seeds(tmp_path, capsys):
    from event_classifier.inference import Predictor
    from event_classifier.soup import make_soup

    case = _fake_case(tmp_path / "case.tsv", n=40)
    common = ["--case", str(case), "--folds", "2", "--systems", "plain", "--epochs", "1", "--model.name=tiny-random-bert",
              "--pooling", "cls", "--train.batch_size=8", "--keep-models"]
    real_news.main(common + ["--output-dir", str(tmp_path / "a")])
    kept = [tmp_path / "a" / "work" / "models" / f"plain-{n}" for n in (1, 2)]
    assert all((k / "config.json").is_file() for k in kept)
    results = real_news.main(common + ["--train-seed", "7", "--include-from", str(tmp_path / "a" / "real_news.json"),
                                       "--soup", "plain+plain@seed7", "--soup", "plain+nothing",
                                       "--ensemble", "soup(plain+plain@seed7)+plain", "--output-dir", str(tmp_path / "b")])
    assert "soup(plain+plain@seed7)" in results and "soup(plain+nothing)" not in results
    assert "no fold models kept for nothing" in capsys.readouterr().err  # reported, not scored
    saved = json.loads((tmp_path / "b" / "real_news.json").read_text())
    assert saved["fold_models"]["plain"] == [str(k) for k in kept]  # joined runs carry their kept models
    fold = json.loads((tmp_path / "a" / "work" / "folds" / "plain-1.json").read_text())
    texts = [line.split("\t")[1] for line in case.read_text().splitlines()[1:]]
    make_soup([str(kept[0]), saved["fold_models"]["plain@seed7"][0]], tmp_path / "by_hand")
    by_hand = Predictor(tmp_path / "by_hand", precision="fp32").predict_proba([texts[i] for i in fold["test_idx"]])
    soup = np.array(saved["oof_probs"]["soup(plain+plain@seed7)"])[fold["test_idx"]]
    assert np.allclose(soup, by_hand, atol=1e-5)  # fold 1 is predicted by the soup of the two seeds' fold-1 models
    assert not np.allclose(soup, np.array(saved["oof_probs"]["plain"])[fold["test_idx"]], atol=1e-3)
    beside = np.array(saved["oof_probs"]["soup(plain+plain@seed7)+plain"])  # an ensemble may name a soup as a member
    assert np.allclose(beside, (np.array(saved["oof_probs"]["soup(plain+plain@seed7)"]) + np.array(saved["oof_probs"]["plain"])) / 2)
    shutil.rmtree(kept[0])  # a fold whose model is gone is not done: it trains again, the other is read back
    capsys.readouterr()
    real_news.main(common + ["--output-dir", str(tmp_path / "a")])
    assert capsys.readouterr().out.count("read back from") == 1 and (kept[0] / "config.json").is_file()


def test_two_runs_split_the_folds_and_a_last_run_joins_them_without_training(tmp_path, monkeypatch, capsys):
    case = _fake_case(tmp_path / "case.tsv", n=40)
    common = ["--case", str(case), "--folds", "2", "--systems", "tfidf,plain", "--epochs", "1",
              "--model.name=tiny-random-bert", "--train.batch_size=8"]
    whole = real_news.main(common + ["--output-dir", str(tmp_path / "whole")])
    split = common + ["--output-dir", str(tmp_path / "split")]
    assert real_news.main(split + ["--only-folds", "2"]) == {}  # fold 2 only: saved, no table
    folds = tmp_path / "split" / "work" / "folds"
    assert sorted(p.name for p in folds.iterdir()) == ["plain-2.json", "tfidf-2.json"]
    assert not (tmp_path / "split" / "real_news.json").exists()
    real_news.main(split + ["--only-folds", "1"])
    assert sorted(p.name for p in folds.iterdir()) == ["plain-1.json", "plain-2.json", "tfidf-1.json", "tfidf-2.json"]

    def no_training(*args, **kwargs):
        raise AssertionError("a fold saved by an --only-folds run was trained again")

    monkeypatch.setattr(real_news, "plain_finetune", no_training)
    capsys.readouterr()
    joined = real_news.main(split)
    assert capsys.readouterr().out.count("read back from") == 4
    assert joined["plain@mean"]["confusion_matrix"] == whole["plain@mean"]["confusion_matrix"]
    assert joined["tfidf"]["macro_f1"] == whole["tfidf"]["macro_f1"]
    for bad in ("0", "3", "1,x", ","):
        with pytest.raises(SystemExit, match="--only-folds"):
            real_news.main(split + ["--only-folds", bad])
    with pytest.raises(SystemExit, match="needs --corpus-model"):
        real_news.main(common + ["--systems", "corpus", "--only-folds", "1", "--output-dir", str(tmp_path / "c")])


def test_folds_saved_in_one_checkout_folder_are_read_back_from_another(tmp_path, monkeypatch, capsys):
    """A fold's key holds the resolved configs; their paths inside the checkout (or beside it, ../shared) count
    relative to it, so a join from a git worktree of the same commit reads back the folds trained in the main one."""
    import event_classifier.config as config_module

    case = _fake_case(tmp_path / "case.tsv", n=40)
    checkouts = {}
    for name in ("main", "worktree"):
        checkouts[name] = tmp_path / name
        shutil.copytree(config_module.CONFIG_DIR, checkouts[name] / "configs")

    def run(checkout: str, *extra: str) -> int:
        root = checkouts[checkout]
        monkeypatch.setattr(config_module, "PROJECT_ROOT", root)
        monkeypatch.setattr(real_news, "PROJECT_ROOT", root)
        capsys.readouterr()
        real_news.main(["--case", str(case), "--folds", "2", "--systems", "tfidf,plain", "--epochs", "1",
                        "--config", str(root / "configs" / "default.yaml"), "--model.name=tiny-random-bert",
                        "--train.batch_size=8", "--output-dir", str(tmp_path / "out"), *extra])
        return capsys.readouterr().out.count("read back from")

    assert run("main") == 0
    settings = {"configs": [{"data": {"prepared_dir": str(checkouts["main"] / "data" / "prepared"),
                                      "sources": {"case": str(tmp_path / "shared" / "case.tsv")}}}], "epochs": 1}
    moved = json.loads(json.dumps(settings).replace(str(checkouts["main"]), str(checkouts["worktree"])))
    assert real_news.portable(settings, checkouts["main"]) == {
        "configs": [{"data": {"prepared_dir": "data/prepared", "sources": {"case": "../shared/case.tsv"}}}], "epochs": 1}
    assert real_news.fold_key(settings, checkouts["main"])[0] == real_news.fold_key(moved, checkouts["worktree"])[0]
    assert real_news.fold_key(settings, checkouts["main"])[1] != real_news.fold_key(moved, checkouts["worktree"])[1]

    def no_training(*args, **kwargs):
        raise AssertionError("a fold saved in another checkout folder was trained again")

    with monkeypatch.context() as patch:
        patch.setattr(real_news, "plain_finetune", no_training)
        assert run("worktree") == 4  # tfidf and plain, both folds
        with pytest.raises(AssertionError, match="trained again"):  # another setting still trains
            run("worktree", "--train.learning_rate=1e-4")
    # a fold saved before keys were portable (absolute paths) is still read back from the checkout it was trained in
    with monkeypatch.context() as patch:
        patch.setattr(real_news, "portable", lambda value, root: value)
        assert run("main", "--train.warmup_ratio=0.2") == 0
    assert run("main", "--train.warmup_ratio=0.2") == 4
    assert run("worktree", "--train.warmup_ratio=0.2") == 0  # such a fold trains again in another checkout
