"""Corrections from the web app: appended line by line, read back by prepare as a source."""

import json
from concurrent.futures import ThreadPoolExecutor

from event_classifier.cli import prepare_main
from event_classifier.feedback import record_correction

from conftest import LABELS, make_corpus, write_jsonl


def test_concurrent_corrections_are_appended_whole_and_never_interleave(tmp_path):
    text = "A long paragraph about the talks in Lisk. " * 200
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: record_correction(tmp_path, f"{i} {text}", "diplomacy", None, LABELS, "m"), range(64)))
    lines = next(tmp_path.glob("*.jsonl")).read_text().splitlines()
    assert sorted(int(json.loads(line)["text"].split()[0]) for line in lines) == list(range(64))


def test_prepare_learns_from_feedback_latest_correction_wins_corpus_kept(tmp_path):
    corpus = make_corpus()
    write_jsonl(tmp_path / "paragraphs" / "c.jsonl", corpus)
    feedback = tmp_path / "feedback"
    new_text = "Envoys of both sides signed a prisoner exchange agreement in Lisk on Friday."
    record_correction(feedback, new_text, "other", "attack", LABELS, "m1", article="https://news.example/lisk")
    record_correction(feedback, new_text + "  ", "diplomacy", "other", LABELS, "m1", article="https://news.example/lisk")
    record_correction(feedback, corpus[0]["text"], "other", corpus[0]["label"], LABELS, "m1")  # a corpus text
    args = ["--config", "configs/tiny.yaml", f"--data.paragraphs={tmp_path / 'paragraphs'}",
            f"--data.feedback={feedback}", f"--data.prepared_dir={tmp_path / 'prepared'}"]
    assert prepare_main(args) == 0
    rows = [json.loads(line) for split in ("train", "dev", "test") for line in (tmp_path / "prepared" / f"{split}.jsonl").open()]
    from_feedback = [r for r in rows if r["source"] == "feedback"]
    assert [(r["text"], r["label"]) for r in from_feedback] == [(new_text, "diplomacy")]  # the later correction
    assert from_feedback[0]["article_id"] == "feedback:https://news.example/lisk"
    kept = [r for r in rows if r["text"] == corpus[0]["text"]]
    assert len(kept) == 1 and kept[0]["label"] == corpus[0]["label"]  # deduplicated against the corpus, which wins
    manifest = json.loads((tmp_path / "prepared" / "manifest.json").read_text())
    assert any(item["source"] == "feedback" and item["kept"] == 3 for item in manifest["inputs"])
    assert manifest["deduplication"]["exact_duplicates_removed"] == 2


def test_prepare_without_a_feedback_folder_reads_the_corpus_alone(tmp_path):
    write_jsonl(tmp_path / "paragraphs" / "c.jsonl", make_corpus())
    args = ["--config", "configs/tiny.yaml", f"--data.paragraphs={tmp_path / 'paragraphs'}",
            f"--data.feedback={tmp_path / 'none'}", f"--data.prepared_dir={tmp_path / 'prepared'}"]
    assert prepare_main(args) == 0
    manifest = json.loads((tmp_path / "prepared" / "manifest.json").read_text())
    assert [item["source"] for item in manifest["inputs"]] == ["authored"]
