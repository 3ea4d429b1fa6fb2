import json
import subprocess
import sys
from collections import Counter

import pytest

from event_classifier.config import load_config
from event_classifier.data import collect, deduplicate, normalise_text, paragraph_files, prepare, split
from event_classifier.errors import EventClassifierError
from event_classifier.io import iter_jsonl
from event_classifier.sources import read_labelled_file

from conftest import LABELS, make_corpus, write_jsonl


def _config(tmp_path, paragraphs):
    return load_config("configs/tiny.yaml", [f"--data.paragraphs={paragraphs}", f"--data.prepared_dir={tmp_path / 'prep'}"])


def test_normalise_folds_case_punctuation_space():
    assert normalise_text("Troops  TOOK the town!") == normalise_text("troops took, the town")


def test_splits_never_share_articles_or_duplicates(tmp_path):
    rows = make_corpus(n_articles=40)
    # a copy of an early paragraph in another article, differing only in case and punctuation
    copy = dict(rows[0], id="dup-1", article_id="t-a39", text=rows[0]["text"].upper() + "!!")
    near = dict(rows[5], id="near-1", article_id="t-a38", text=rows[5]["text"] + " again")
    path = write_jsonl(tmp_path / "p.jsonl", rows + [copy, near])
    config = _config(tmp_path, path)
    manifest = prepare(config)
    assert manifest["deduplication"]["exact_duplicates_removed"] == 1
    assert manifest["deduplication"]["near_duplicate_pairs_grouped"] >= 1
    splits = {name: [r for _, r in iter_jsonl(tmp_path / "prep" / f"{name}.jsonl")] for name in ("train", "dev", "test")}
    articles = {name: {r["article_id"] for r in part} for name, part in splits.items()}
    texts = {name: {normalise_text(r["text"]) for r in part} for name, part in splits.items()}
    for a, b in (("train", "dev"), ("train", "test"), ("dev", "test")):
        assert not articles[a] & articles[b]
        assert not texts[a] & texts[b]
    # near-duplicate pair (rows[5], near) sits in one split
    where = {name for name, part in splits.items() for r in part if r["id"] in {rows[5]["id"], "near-1"}}
    assert len(where) == 1
    assert sum(len(p) for p in splits.values()) == len(rows) + 1  # only the exact copy was removed


def test_a_glob_pattern_picks_some_batches_of_the_corpus(tmp_path):
    rows = make_corpus(n_articles=12)
    for n, part in enumerate((rows[:10], rows[10:20], rows[20:])):
        write_jsonl(tmp_path / f"b{n + 1}.jsonl", part)
    (tmp_path / "b2.txt").write_text("not a batch", encoding="utf-8")
    assert [p.name for p in paragraph_files(tmp_path / "b[23].*")] == ["b2.jsonl", "b3.jsonl"]
    config = _config(tmp_path, tmp_path / "b[23].jsonl")
    assert [r["id"] for r in collect(config)[0]] == [r["id"] for r in rows[10:]]
    with pytest.raises(EventClassifierError, match=r"b\[89\]\.jsonl: the pattern matches no \*\.jsonl file"):
        paragraph_files(tmp_path / "b[89].jsonl")


def test_stratification_keeps_every_label_in_every_split(tmp_path):
    config = _config(tmp_path, "unused")
    rows, _ = deduplicate(make_corpus(n_articles=60), 0.9)
    parts = split(rows, config)
    total = Counter(r["label"] for r in rows)
    for name, part in parts.items():
        counts = Counter(r["label"] for r in part)
        assert set(counts) == set(LABELS), name
        for label in LABELS:  # each split's share of a label is near the overall share
            assert abs(counts[label] / len(part) - total[label] / len(rows)) < 0.12
    assert 0.10 < len(parts["test"]) / len(rows) < 0.22


def test_unknown_label_names_file_line_and_fix(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"text": "Talks opened.", "label": "diplomacy"}, {"text": "x", "label": "riot"}])
    with pytest.raises(EventClassifierError, match=r"p.jsonl:2: unknown label 'riot'; use one of"):
        read_labelled_file(path, LABELS)


def test_missing_column_is_an_error(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"text": "Talks opened."}])
    with pytest.raises(EventClassifierError, match="missing 'label'"):
        read_labelled_file(path, LABELS)


def test_empty_text_is_skipped_and_counted(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"text": "  ", "label": "other"}, {"text": "Talks opened.", "label": "diplomacy"}])
    rows, report = read_labelled_file(path, LABELS)
    assert len(rows) == 1 and report.skipped_empty == 1


def test_class_missing_from_train_is_an_error(tmp_path):
    rows = [r for r in make_corpus() if r["label"] != "diplomacy"]
    config = _config(tmp_path, write_jsonl(tmp_path / "p.jsonl", rows))
    with pytest.raises(EventClassifierError, match="no train examples for label.*diplomacy"):
        prepare(config)


def test_agreement_compares_a_blind_annotation_with_a_batch_named_by_paragraphs(tmp_path):
    batch = tmp_path / "batch.jsonl"
    batch.write_text("".join(json.dumps({"id": f"x-a1-p{i}", "text": text, "label": label}) + "\n" for i, (text, label) in
                             enumerate([("Troops took the hill.", "military_advance"), ("Shells hit the market.", "attack"),
                                        ("A depot caught fire by accident.", "other")], start=1)))
    blind = tmp_path / "blind.jsonl"
    blind.write_text("".join(json.dumps({"id": f"x-a1-p{i}", "label": label}) + "\n"
                             for i, label in enumerate(["military_advance", "attack", "attack"], start=1)))
    done = subprocess.run([sys.executable, "data/agreement.py", str(blind), "--paragraphs", str(batch)],
                          capture_output=True, text=True, check=True)
    lines = done.stdout.splitlines()
    assert lines[0].startswith("3 paragraphs, 2 agree (66.7%); Cohen's kappa ")
    assert lines[1:] == ["  x-a1-p3: corpus other, blind attack: A depot caught fire by accident."]
    elsewhere = subprocess.run([sys.executable, "data/agreement.py", str(blind), "--paragraphs", str(tmp_path / "none")],
                               capture_output=True, text=True)
    assert elsewhere.returncode == 2 and "none: not found" in elsewhere.stderr
