"""Shared fixtures: a small inline labelled corpus and config overrides that point every output into tmp_path."""

import json
import os
import random
from pathlib import Path

import pytest

# pytest.ini runs the suite in parallel workers (pytest-xdist, one per core): each worker and the commands it starts
# use one thread, so that two workers' PyTorch thread pools do not fight over the same cores. Set before torch loads.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")

LABELS = ["military_advance", "attack", "diplomacy", "other"]
# seconds a subprocess that runs a model gets before it counts as hung: a guard against a hang, not a speed check
# (on a machine loaded by a training, predicting three paragraphs took over 120 s)
HANG_GUARD_S = 600
WORDS = {
    "military_advance": ["troops", "captured", "seized", "entered", "retook", "village", "ridge", "town", "control", "positions"],
    "attack": ["shelling", "strike", "drone", "killed", "bombing", "rockets", "ambush", "wounded", "artillery", "explosion"],
    "diplomacy": ["talks", "ministers", "agreement", "ceasefire", "envoy", "summit", "negotiations", "signed", "mediation", "sanctions"],
    "other": ["prices", "flood", "school", "election", "hospital", "harvest", "protest", "court", "weather", "market"],
}
FILLER = ["the", "on", "said", "officials", "near", "after", "in", "a", "of", "late", "region", "monday", "reported"]


def make_corpus(n_articles: int = 28, per_article: int = 4, seed: int = 0) -> list[dict]:
    """Random but label-bearing paragraphs, grouped into articles; every paragraph is distinct."""
    rng = random.Random(seed)
    rows = []
    for a in range(n_articles):
        for p in range(per_article):
            label = LABELS[(a + p) % len(LABELS)]
            words = rng.sample(WORDS[label], 4) + rng.sample(FILLER, 5) + [f"place{a}x{p}", f"name{rng.randint(0, 10**6)}"]
            rng.shuffle(words)
            rows.append({"id": f"t-a{a:02d}-p{p}", "article_id": f"t-a{a:02d}", "text": " ".join(words).capitalize() + ".",
                         "label": label, "source": "authored"})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    write_jsonl(tmp_path / "paragraphs" / "corpus.jsonl", make_corpus())
    return tmp_path / "paragraphs"


@pytest.fixture
def tiny_args(tmp_path: Path, corpus_dir: Path) -> list[str]:
    """Command-line options that run the tiny config on the inline corpus with all outputs in tmp_path."""
    return ["--config", "configs/tiny.yaml", f"--data.paragraphs={corpus_dir}",
            f"--data.prepared_dir={tmp_path / 'prepared'}", f"--train.output_dir={tmp_path / 'runs'}"]


@pytest.fixture(autouse=True)
def _project_root(monkeypatch):
    """Tests run from the project root, as the README's commands do."""
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)


def train_tiny_run(tmp: Path, epochs: int = 20, *options: str) -> tuple[Path, Path]:
    """prepare -> train through the command-line entry points on the inline corpus, with any config `options`
    (e.g. --model.pooling=mean); returns (corpus, run folder). The splits are in tmp/prepared."""
    from event_classifier.cli import prepare_main, train_main

    corpus = write_jsonl(tmp / "paragraphs" / "c.jsonl", make_corpus())
    args = ["--config", "configs/tiny.yaml", f"--data.paragraphs={corpus}", f"--data.prepared_dir={tmp / 'prepared'}",
            f"--train.output_dir={tmp / 'runs'}", "--train.run_name=r1", f"--train.epochs={epochs}", *options]
    os.chdir(Path(__file__).resolve().parent.parent)
    assert prepare_main(args) == 0
    assert train_main(args) == 0
    return corpus, tmp / "runs" / "r1"


def save_tiny_model(directory: Path, max_length: int = 32, labels: list[str] = LABELS, **meta) -> Path:
    """An untrained tiny classifier saved as a model folder with its ModelMeta (no training run needed)."""
    from event_classifier.config import LabelSpec
    from event_classifier.meta import ModelMeta
    from event_classifier.model import load_backbone, save_model

    work = Path(directory).parent / f".{Path(directory).name}-backbone"
    model, tokenizer = load_backbone("tiny-random-bert", labels, work, [r["text"] for r in make_corpus()], seed=0,
                                     task=meta.get("task", "single_label"))
    fallback = meta.pop("fallback_label", "other" if "other" in labels else None)
    save_model(model, tokenizer, Path(directory),
               ModelMeta(labels=[LabelSpec(name) for name in labels], max_length=max_length, fallback_label=fallback, **meta))
    return Path(directory)
