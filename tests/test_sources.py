"""Codebooks: outside sources read by path and mapped to our labels; nothing dropped silently."""

import subprocess
import sys
from pathlib import Path

import pytest

from event_classifier.errors import EventClassifierError
from event_classifier.sources import SOURCES_DIR, load_codebook, read_any, read_source

from conftest import LABELS

SHARED = Path("../shared/data")
CODEBOOKS = sorted(SOURCES_DIR.glob("*.yaml"))


@pytest.mark.parametrize("path", CODEBOOKS, ids=[p.stem for p in CODEBOOKS])
def test_codebooks_map_only_to_our_labels_or_drop(path):
    codebook = load_codebook(path.stem)
    assert set(codebook["labels"].values()) <= set(LABELS) | {"drop"}
    assert codebook["licence"]


def test_tsv_source_maps_labels_and_counts_drops(tmp_path):
    data = tmp_path / "case.tsv"
    data.write_text("id\tEventSnippet\tSubType\n1\tTroops retook the town.\tGOV_REGAINS_TERIT\n"
                    "2\tTalks began.\tDIPLO\n3\t \tARMED_CLASH\n")
    rows, report = read_source("case", data, LABELS)
    assert [(r["label"], r["source_label"]) for r in rows] == [("military_advance", "GOV_REGAINS_TERIT"), ("diplomacy", "DIPLO")]
    assert report.skipped_empty == 1 and rows[0]["id"] == "case-1"


def test_json_source_drop_is_counted(tmp_path):
    data = tmp_path / "p.json"
    data.write_text('[{"id": "a", "event": "FIGHT", "text": "Rebels fought troops."}, {"id": "b", "event": "DEMAND"}]')
    rows, report = read_source("plover", data, LABELS)
    assert len(rows) == 1 and rows[0]["label"] == "attack" and report.dropped_by_codebook == {"DEMAND": 1}


def test_unmapped_source_label_is_an_error(tmp_path):
    data = tmp_path / "case.tsv"
    data.write_text("id\tEventSnippet\tSubType\n1\tSomething.\tNEW_TYPE\n")
    with pytest.raises(EventClassifierError, match="NEW_TYPE.*map it"):
        read_source("case", data, LABELS)


def test_unknown_source_name_lists_known_ones(tmp_path):
    with pytest.raises(EventClassifierError, match="known sources: .*case"):
        read_any(f"nosuch={tmp_path / 'x.tsv'}", LABELS)


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not beside the project")
@pytest.mark.parametrize("name,file", [("case", "case2021_task2_dev.tsv"), ("plover", "plover_gsr_cameo.json"),
                                       ("cameo", "cameo_class_train.tsv"), ("cameo", "cameo_class_test.tsv"),
                                       ("cameo_conflict@train", "cameo_class_train.tsv"),
                                       ("cameo_conflict@test", "cameo_class_test.tsv")])
def test_real_sources_read_through_their_codebooks(name, file):
    rows, report = read_source(name, SHARED / file, LABELS)
    total = report.kept + report.skipped_empty + sum(report.dropped_by_codebook.values())
    assert rows and total > 0 and {r["label"] for r in rows} <= set(LABELS)
    if name == "case":
        assert report.kept == 613 and {r["label"] for r in rows} == set(LABELS)
    if name.startswith("cameo_conflict"):  # our own labels for class 4, every record of it annotated, the rest dropped
        assert report.kept == {"cameo_class_train.tsv": 221, "cameo_class_test.tsv": 108}[file]
        assert {r["source_label"] for r in rows} == {"4"} and "4" not in report.dropped_by_codebook


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not beside the project")
def test_news_config_names_existing_shared_files():
    from event_classifier.config import load_config

    config = load_config("configs/news.yaml")  # its paths are relative to configs/
    assert config.data.sources
    for name, path in config.data.sources.items():
        assert Path(path).is_file(), path
        assert (SOURCES_DIR / f"{name}.yaml").is_file()


def test_overlap_lists_the_word_runs_a_paragraph_shares_with_outside_texts(tmp_path):
    outside = tmp_path / "case.tsv"  # a source label the codebook drops or maps, the text is compared either way
    outside.write_text("id\tEventSnippet\tSubType\n1\tThe convoy crossed the old stone bridge at dawn on Monday.\tOTHER\n"
                       "2\tWitnesses said the old stone bridge at dawn was empty.\tDIPLO\n")
    ours = tmp_path / "ours.jsonl"
    ours.write_text('{"id": "x-a1-p1", "text": "Rebels blew up The Old Stone-Bridge at dawn, officials said.", "label": "attack"}\n'
                    '{"id": "x-a1-p2", "text": "Nothing here is in the outside file at all today.", "label": "other"}\n')
    done = subprocess.run([sys.executable, "data/overlap.py", str(ours), "--source", f"case={outside}", "--words", "5"],
                          capture_output=True, text=True, check=True)
    lines = done.stdout.splitlines()
    assert lines[0].startswith("2 paragraphs against 2 outside texts: 1 share a run of 5 words")
    assert lines[1:] == ['  x-a1-p1: "old stone bridge at dawn" (2); "the old stone bridge at" (2)']
    missing = subprocess.run([sys.executable, "data/overlap.py", str(ours), "--source", f"case={tmp_path / 'no.tsv'}"],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "no.tsv: not found" in missing.stderr


def _annotated_source(tmp_path: Path, monkeypatch, rows: str) -> Path:
    """A codebook that drops every label of a two-column source file except the records it annotates itself."""
    import event_classifier.sources as sources

    books = tmp_path / "configs" / "sources"
    books.mkdir(parents=True)
    (books / "conflict.yaml").write_text("name: conflict\nlicence: test\nformat: tsv\nheader: false\ntext_field: 0\n"
                                         "label_field: 1\nlabels: {'3': drop, '4': drop}\n"
                                         "annotations: ../../annotations.tsv\n")
    (tmp_path / "annotations.tsv").write_text("file\trecord\tlabel\ttext_sha1\tnote\n" + rows)
    monkeypatch.setattr(sources, "SOURCES_DIR", books)
    return tmp_path


def test_annotations_label_single_records_by_digest_and_the_rest_is_counted_as_dropped(tmp_path, monkeypatch):
    from event_classifier.sources import text_digest

    texts = ["Rebels shelled the market.", "The army took the  ridge.", "Police detained two men."]
    data = tmp_path / "sentences.tsv"
    data.write_text("".join(f"{t}\t4\n" for t in texts))
    _annotated_source(tmp_path, monkeypatch, f"sentences.tsv\t1\tattack\t{text_digest(texts[0])}\tshelling\n"
                                             f"sentences.tsv\t2\tmilitary_advance\t{text_digest(texts[1])}\t\n"
                                             f"other_file.tsv\t3\tattack\t{text_digest('x')}\t\n")
    rows, report = read_source("conflict@train", data, LABELS)
    assert [(r["id"], r["label"], r["source_label"]) for r in rows] == [("conflict@train-1", "attack", "4"),
                                                                         ("conflict@train-2", "military_advance", "4")]
    assert rows[1]["text"] == "The army took the ridge."
    assert report.dropped_by_codebook == {"4": 1}  # the record nobody annotated, counted not lost
    data.write_text("".join(f"{t}\t4\n" for t in [texts[0], "The army took the hill.", texts[2]]))
    with pytest.raises(EventClassifierError, match=r"annotations.tsv: the annotation of sentences.tsv record 2 was made "
                                                   r"for another text"):
        read_source("conflict", data, LABELS)
    data.write_text(f"{texts[0]}\t4\n")
    with pytest.raises(EventClassifierError, match="annotates sentences.tsv record 2, which .* does not have"):
        read_source("conflict", data, LABELS)


def test_a_bad_annotation_is_refused_in_one_line(tmp_path, monkeypatch):
    data = tmp_path / "sentences.tsv"
    data.write_text("Rebels shelled the market.\t4\n")
    _annotated_source(tmp_path, monkeypatch, "sentences.tsv\t1\tbombing\tabc\t\n")
    with pytest.raises(EventClassifierError, match=r"annotations.tsv:2: unknown label 'bombing'"):
        read_source("conflict", data, LABELS)
    (tmp_path / "annotations.tsv").write_text("file\trecord\tlabel\ttext_sha1\nsentences.tsv\t1\tattack\t\n")
    with pytest.raises(EventClassifierError, match=r"annotations.tsv:2: missing text_sha1"):
        read_source("conflict", data, LABELS)
