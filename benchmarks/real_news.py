"""Real-news benchmark: k-fold cross-validation over the shared CASE 2021 snippets, every system in one run.

    python benchmarks/real_news.py [--folds 5] [--epochs 6] [--systems tfidf,plain,corpus,two_stage]
                                   [--case ../shared/data/case2021_task2_dev.tsv] [--output-dir runs/benchmarks/real_news]

The CASE snippets are split into k folds, stratified by label and grouped like prepare's splits (near-duplicates
stay together). Each fold is unseen by the models scored on it; their out-of-fold predictions are pooled, and the
pooled macro-F1 gets a bootstrap 95 % interval, per-class F1 and per-CASE-subtype recall. Systems:

- tfidf:     TF-IDF + logistic regression on the other CASE folds.
- plain:     a plain fine-tune of the backbone on the other CASE folds (HF Trainer, class weights, `--epochs`
             epochs, fp32, last epoch kept: no dev set, no extras): the reference to beat.
- corpus:    the default config trained once on our own corpus (its prepared train/dev splits), no CASE at all:
             every snippet is cross-domain.
- two_stage: the `corpus` model fine-tuned further on the other CASE folds with exactly the `plain` recipe: what
             our corpus adds on top of the real snippets.
- A+B:       for every two trained systems, the ensemble averaging their probabilities (what
             `predict.py --model A --model B` does), from the same folds at no extra training; with tfidf in the
             run, also every plain and two_stage run (each seed and lever) and seed average + tfidf: the
             transformer with its lexical companion at weight 0.5 (`train.lexical_weight`; a project config carries
             its own).
- NAME@mean: a trained system whose head reads the mean of the token states (its config's model.pooling, as in
             default.yaml and news.yaml, or `--pooling mean`); without the tag it reads BERT's pooler over [CLS].
- soup(A+B): `--soup A+B[+C]`: per fold, the weights of those systems' fold models averaged into one model
             (`event-classifier soup`), which predicts the fold: an ensemble's members at one model's cost. The
             systems must have kept their fold models (`--keep-models`, about 90 MB each).
- NAMExK:    the average of K runs of one recipe that differ only by seed (`--train-seed` runs joined by
             `--include-from`), e.g. two_stagex3, or two_stagex3@ep8 for three seeds at 8 epochs.
- project:   a project config (`--project-config`, default configs/news.yaml) trained the way `train.py` trains it:
             its own data (our corpus and sources other than CASE, if it names them) plus the other CASE folds,
             deduplicated and split into train/dev by article, the epoch count its train.epoch_choice gives (fixed, or
             the best on dev), refit on train+dev when the config says so. `--project-from-corpus` starts it from the `corpus` model (what
             `model.name: ../runs/corpus/model` does for a user).

Writes real_news.md and real_news.json, and prints the table and the wall time. Nothing here is tuned on a test
fold: every setting is fixed before the folds are scored.

Each system's out-of-fold probabilities are saved after every fold (OUTPUT_DIR/work/folds/NAME-N.json, with the
settings that produced them). Run the same command again after a crash or a stop and the folds already scored with
the same settings, snippets and corpus model are read back instead of trained again; delete that folder to retrain.
With `--keep-models`, each trained fold's model is kept too (OUTPUT_DIR/work/models/NAME-N), and a fold counts as
done only when its model is there. `--only-folds 1,2,3` trains and saves only those folds and writes no table, so
that two processes (or machines sharing the folder) can split one run's folds, e.g. `--only-folds 1,2,3` and
`--only-folds 4,5` at one thread each; the same command without it then reads every fold back and writes the table.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import re
import shutil
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from sklearn.model_selection import StratifiedGroupKFold
from transformers import DataCollatorWithPadding, Trainer, TrainingArguments, set_seed

from event_classifier.baseline import train_baseline
from event_classifier.comparison import comparison_table, source_label_table
from event_classifier.config import PROJECT_ROOT, Config, LabelSpec, load_config, to_dict
from event_classifier.data import SPLITS, collect, deduplicate, load_split, take_fold
from event_classifier.evaluation import evaluate_run, score_predictions
from event_classifier.inference import Predictor
from event_classifier.io import atomic_write_json, atomic_write_text, sha256_of
from event_classifier.meta import ModelMeta
from event_classifier.metrics import recall_by_source_label
from event_classifier.model import POOLING, load_backbone, save_model
from event_classifier.sources import read_source
from event_classifier.training import _weighted_loss, choose_max_length, class_weights, fit
from event_classifier.workflow import refit_predictor, fitted_predictor

SYSTEMS = ("tfidf", "plain", "corpus", "two_stage", "project")
TRAINED = ("plain", "two_stage", "project")  # the systems a recipe lever (seed, smoothing, learning rate, epochs) changes


def is_derived(name: str) -> bool:
    """An ensemble or a seed average, which a run computes again from the systems it holds."""
    return "+" in name or bool(re.fullmatch(r"[a-z_]+x\d+(@.*)?", name))


def seed_groups(names: list[str]) -> dict[str, list[str]]:
    """The runs of one trained recipe that differ only by seed, under their average's name: two_stage and
    two_stage@seed43 -> two_stagex2; two_stage@ep8 and two_stage@seed43@ep8 -> two_stagex2@ep8."""
    groups: dict[tuple[str, tuple[str, ...]], list[str]] = defaultdict(list)
    for name in names:
        base, *tags = name.split("@")
        if base in TRAINED:
            groups[(base, tuple(t for t in tags if not re.fullmatch(r"seed\d+", t)))].append(name)
    return {f"{base}x{len(runs)}" + "".join(f"@{t}" for t in tags): runs for (base, tags), runs in groups.items() if len(runs) > 1}


def ensemble_members(spec: str) -> list[str]:
    """The systems an `--ensemble` spec joins by '+': A+B+soup(C+D) -> [A, B, soup(C+D)], a soup's own '+' kept inside
    its parentheses (the soups are scored before the ensembles). A spec that does not parse gives no member."""
    members = re.findall(r"soup\([^()]+\)|[^+()]+", spec)
    return members if "+".join(members) == spec else []


def case_folds(rows: list[dict], k: int, seed: int) -> list[np.ndarray]:
    """Test indices of k folds, stratified by label and grouped so that near-duplicates share a fold."""
    grouped, _ = deduplicate([dict(r) for r in rows], threshold=0.9)
    if len(grouped) != len(rows):
        raise SystemExit("the CASE file has exact duplicates; deduplicate it before benchmarking")
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    labels, groups = [r["label"] for r in grouped], [r["group"] for r in grouped]
    return [test for _, test in splitter.split(np.zeros(len(rows)), labels, groups)]


def fold_numbers(spec: str, k: int) -> set[int]:
    """`--only-folds 1,3` as a set of fold numbers, each between 1 and k."""
    try:
        numbers = {int(part) for part in spec.split(",") if part.strip()}
    except ValueError:
        numbers = set()
    if not numbers or not numbers <= set(range(1, k + 1)):
        raise SystemExit(f"--only-folds {spec!r}: give fold numbers from 1 to {k} separated by commas, e.g. 1,2")
    return numbers


def plain_finetune(init: str, train_rows: list[dict], labels: list[str], epochs: float, seed: int, work: Path,
                   batch_size: int = 16, learning_rate: float = 5e-5, label_smoothing: float = 0.0,
                   pooling: str = "cls") -> Predictor:
    """The plain recipe: Trainer, class-weighted loss, fixed epochs, fp32, the last epoch's weights (and, as levers,
    label smoothing and the head's pooling)."""
    set_seed(seed)
    texts = [r["text"] for r in train_rows]
    model, tokenizer = load_backbone(init, labels, work, texts, seed, pooling=pooling)
    max_length = choose_max_length(tokenizer, model, texts, None)
    ids = {label: i for i, label in enumerate(labels)}
    data = Dataset.from_dict({"text": texts, "label": [ids[r["label"]] for r in train_rows]}).map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=max_length), batched=True, remove_columns=["text"])
    args = TrainingArguments(output_dir=str(work / "trainer"), num_train_epochs=epochs, per_device_train_batch_size=batch_size,
                             learning_rate=learning_rate, weight_decay=0.01, warmup_steps=0.1, seed=seed, data_seed=seed,
                             save_strategy="no", eval_strategy="no", logging_steps=50, report_to="none",
                             use_cpu=True, disable_tqdm=True)
    weights = class_weights(labels, [r["label"] for r in train_rows])
    trainer = Trainer(model=model, args=args, train_dataset=data, processing_class=tokenizer,
                      data_collator=DataCollatorWithPadding(tokenizer), compute_loss_func=_weighted_loss(weights, label_smoothing))
    trainer.train()
    meta = ModelMeta(labels=[LabelSpec(label) for label in labels], max_length=max_length)
    return Predictor.from_parts(trainer.model, tokenizer, meta, precision="fp32")


def train_corpus_model(config: Config, work: Path) -> Path:
    """The default config fitted on our own corpus (prepared train/dev splits); saved so two_stage can start from it."""
    from event_classifier.model import save_model

    rows = {name: load_split(config, name) for name in SPLITS}
    fitted = fit(config, rows, work / "corpus_run")
    meta = ModelMeta(labels=copy.deepcopy(config.labels), max_length=fitted.max_length, fallback_label=config.fallback_label,
                     task=config.model.task)
    save_model(fitted.model, fitted.tokenizer, work / "corpus_model", meta)
    return work / "corpus_model"


def project_fit(config: Config, case_train: list[dict], work: Path) -> Predictor:
    """Train `config` as train.py would, with the CASE source replaced by this fold's CASE training snippets."""
    config = copy.deepcopy(config)
    config.data.sources = {name: path for name, path in config.data.sources.items() if name != "case"}
    rows = collect(config)[0] if config.data.paragraphs or config.data.sources else []
    rows, _ = deduplicate(rows + [dict(r) for r in case_train], config.data.near_duplicate_threshold)
    train, dev = take_fold(rows, config.data.dev_fraction, config.data.split_seed)
    for row in train + dev:
        row.pop("group", None)
    fitted = fit(config, {"train": train, "dev": dev}, work)
    meta = ModelMeta(labels=copy.deepcopy(config.labels), max_length=fitted.max_length, task=config.model.task,
                     lexical_weight=config.train.lexical_weight)
    predictor = fitted_predictor(config, fitted, meta, train)
    evaluate_run(predictor, {"dev": dev}, calibrate=True)  # the temperatures, fitted on dev as train.py fits them
    if config.train.refit:  # the refit keeps them, and its companion sees train+dev too
        predictor = refit_predictor(config, fitted, predictor, {"train": train, "dev": dev}, work)[1]
    return predictor


def drop_checkpoints(folder: Path) -> None:
    """Remove a finished fold's training checkpoints (about 1 GB a fold); its logs stay. The fold's probabilities are
    saved, and a fold cut off before that is trained again from the start, so nothing reads them."""
    for sub in folder.iterdir() if folder.is_dir() else ():
        if sub.is_dir():
            shutil.rmtree(sub)


def model_digest(folder: str | None) -> str | None:
    """sha256 of a model folder's weights, so that a saved fold is not reused for another model at the same path."""
    if folder is None:
        return None
    weights = sorted(Path(folder).glob("*.safetensors")) + sorted(Path(folder).glob("*.bin"))
    return sha256_of(weights[0]) if weights else str(Path(folder).resolve())


def portable(value, root: Path):
    """value with every path inside the checkout `root` written relative to it, and every path beside it (../shared)
    relative to its parent, so that the same settings read the same from another checkout folder (a git worktree)."""
    if isinstance(value, dict):
        return {key: portable(item, root) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(item, root) for item in value]
    if isinstance(value, (str, Path)):
        for base, prefix in ((root, ""), (root.parent, "../")):
            if str(value).startswith(f"{base}/"):
                return prefix + str(value)[len(f"{base}/"):]
    return value


def fold_key(settings: dict, root: Path = PROJECT_ROOT) -> tuple[str, str]:
    """A fold's key: sha256 of the settings that produce it with paths relative to the checkout (see portable), and
    the key runs before that wrote (absolute paths: only the checkout they ran in reads them back), still accepted."""
    digest = [hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
              for value in (portable(settings, root), settings)]
    return digest[0], digest[1]


def saved_fold(path: Path, keys: tuple[str, ...], test_idx: np.ndarray) -> tuple[np.ndarray, float] | None:
    """A fold's probabilities saved by an earlier run of the same settings (any of `keys`), or None (absent, other
    settings, torn)."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if saved.get("key") not in keys or saved.get("test_idx") != test_idx.tolist():
        return None
    return np.array(saved["probs"]), float(saved["seconds"])


def soup_folds(members: list[list[str]], folds: list[np.ndarray], rows: list[dict], labels: list[str],
               work: Path) -> tuple[np.ndarray, float]:
    """Per fold, the soup of the members' fold models (event-classifier soup) predicting that fold's snippets; returns
    the out-of-fold probabilities and the seconds the soups took."""
    from event_classifier.soup import make_soup

    start, probs = time.perf_counter(), np.zeros((len(rows), len(labels)))
    for number, test_idx in enumerate(folds):
        models = [folder[number] for folder in members]
        for folder in models:
            if not (Path(folder) / "config.json").exists():
                raise SystemExit(f"{folder}: fold model not found; rerun its system with --keep-models")
        make_soup(models, work, overwrite=True)
        probs[test_idx] = Predictor(work / "model", precision="fp32").predict_proba([rows[i]["text"] for i in test_idx])
    return probs, time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help="config of the corpus model and its backbone (default: configs/default.yaml)")
    parser.add_argument("--case", default=str(Path(__file__).resolve().parent.parent.parent / "shared" / "data" /
                                              "case2021_task2_dev.tsv"), help="the CASE 2021 snippets (TSV)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=float, default=6.0, help="epochs of the plain recipe (plain and two_stage); "
                        "joined by --include-from to runs of another count, its systems are named NAME@epN")
    parser.add_argument("--seed", type=int, default=42, help="seed of the folds and, unless --train-seed, of training")
    parser.add_argument("--train-seed", type=int, default=None, help="another training seed on the same folds: its "
                        "systems are named NAME@seedN, and with --include-from the seeds of a system are also averaged")
    parser.add_argument("--label-smoothing", type=float, default=0.0, help="a lever: label smoothing for every trained "
                        "system (plain, two_stage, project); they are named NAME@lsX, apart from the seeds' average")
    parser.add_argument("--learning-rate", type=float, default=5e-5, help="a lever: peak learning rate of every trained "
                        "system (plain, two_stage, project); another value than 5e-5 names them NAME@lrX")
    parser.add_argument("--pooling", choices=("cls", "mean"), default=None, help="a lever: what the head of every "
                        "trained system reads (model.pooling; default: each config's own, mean in default.yaml and news.yaml), "
                        "the corpus model's too when trained here; a system whose head reads the mean is named NAME@mean "
                        "(and corpus@mean for a corpus model with a mean-pooling head)")
    parser.add_argument("--tag", default=None, help="a lever no other flag names (e.g. a new batch of our corpus): every "
                        "system of this run is named NAME@TAG, so that --include-from keeps the earlier run's rows beside it")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated subset of {', '.join(SYSTEMS)}")
    parser.add_argument("--corpus-model", default=None, help="an already trained corpus model folder (skips training it)")
    parser.add_argument("--project-config", default=str(Path(__file__).resolve().parent.parent / "configs" / "news.yaml"),
                        help="the config the `project` system trains per fold")
    parser.add_argument("--project-from-corpus", action="store_true", help="start the project system from the corpus model")
    parser.add_argument("--include-from", action="append", default=[], help="real_news.json of an earlier run with the "
                        "same folds, seed and snippets: its systems' out-of-fold probabilities join this table (and its "
                        "ensembles); repeat it to join several runs, e.g. seeds trained side by side")
    parser.add_argument("--ensemble", action="append", default=[], help="A+B[+C...]: also score the mean of these "
                        "systems' probabilities (any in the table, joined ones too), e.g. plain@mean+two_stage@ep8+tfidf")
    parser.add_argument("--keep-models", action="store_true", help="keep each trained fold's model in "
                        "OUTPUT_DIR/work/models/NAME-N (about 90 MB each) for --soup, in this run or one that joins it")
    parser.add_argument("--soup", action="append", default=[], help="A+B[+C...]: also score, per fold, the soup of these "
                        "systems' fold models (weights averaged into one model); they must have run with --keep-models")
    parser.add_argument("--only-folds", default=None, help="comma-separated fold numbers (from 1): train and save only "
                        "these, e.g. to run one seed's folds on two cores or machines into one OUTPUT_DIR; no table is "
                        "written, and the same command without it reads every saved fold back and writes the table")
    parser.add_argument("--output-dir", default="runs/benchmarks/real_news")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N snippets (smoke tests)")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. --model.name=tiny-random-bert")
    args, rest = parser.parse_known_args(argv)
    started = time.perf_counter()
    config = load_config(args.config, rest + args.overrides)
    systems = [s for s in args.systems.split(",") if s]
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown systems {sorted(unknown)}; choose from {', '.join(SYSTEMS)}")
    labels = config.label_names
    rows, _ = read_source("case", Path(args.case), labels)
    project = load_config(args.project_config, rest + args.overrides) if "project" in systems else None
    for each in (config, project):  # each config keeps its own pooling unless --pooling is given
        if each is not None and args.pooling:
            each.model.pooling = args.pooling
    case_hash = sha256_of(args.case)
    rows = rows[: args.limit] if args.limit else rows
    folds = case_folds(rows, args.folds, args.seed)
    only = fold_numbers(args.only_folds, len(folds)) if args.only_folds else None
    earlier_runs = []  # checked before any training, so that a wrong file cannot waste a long run
    for earlier_path in args.include_from:
        if not Path(earlier_path).is_file():
            raise SystemExit(f"{earlier_path}: not found; --include-from takes the real_news.json that an earlier run wrote")
        earlier = json.loads(Path(earlier_path).read_text(encoding="utf-8"))
        same = (earlier["folds"], earlier["seed"], earlier["rows"], earlier.get("case_sha256")) == (args.folds, args.seed, len(rows), case_hash)
        if not same:
            raise SystemExit(f"{earlier_path}: other folds, seed or snippets; rerun those systems here instead")
        earlier_runs.append(earlier)
    for flag, specs, members in (("--ensemble", args.ensemble, ensemble_members), ("--soup", args.soup, lambda spec: spec.split("+"))):
        if any(len(members(spec)) < 2 for spec in specs):  # each flag checked with the parse that later reads it
            parser.error(f"{flag} {specs}: name two or more systems joined by '+', e.g. plain+tfidf")
    if args.tag is not None and not re.fullmatch(r"[\w.-]+", args.tag):
        parser.error(f"--tag {args.tag!r}: use letters, digits, '.', '_' or '-'")
    train_seed = args.seed if args.train_seed is None else args.train_seed
    other_learning_rate = args.learning_rate != parser.get_default("learning_rate")
    other_epochs = bool(earlier_runs) and args.epochs not in {earlier["epochs"] for earlier in earlier_runs}
    # another seed or a lever: the trained systems get a tag per change, apart from the base ones in the table; --tag
    # names every system of the run
    run_tag = f"@{args.tag}" if args.tag else ""
    levers = "".join(tag for tag, chosen in [(f"@seed{train_seed}", train_seed != args.seed),
                                             (f"@ls{args.label_smoothing:g}", bool(args.label_smoothing)),
                                             (f"@lr{args.learning_rate:g}", other_learning_rate),
                                             (f"@ep{args.epochs:g}", other_epochs)] if chosen)

    def suffix(name: str) -> str:  # a trained system's tags: the levers, its own pooling, the run's tag
        pooling = (project if name == "project" else config).model.pooling
        return levers + ("@mean" if pooling == "mean" else "") + run_tag

    if project is not None:
        project.train.seed = train_seed
        project.train.label_smoothing = args.label_smoothing or project.train.label_smoothing
        if other_learning_rate:
            project.train.learning_rate = args.learning_rate
    out = Path(args.output_dir)
    work = out / "work"
    probs = {name: np.zeros((len(rows), len(labels))) for name in systems}
    seconds: dict[str, float] = defaultdict(float)
    corpus_model = args.corpus_model
    corpus_tag = ""  # the corpus system's tag beyond the run's --tag: @mean for a mean-pooling head
    if {"corpus", "two_stage"} & set(systems) or args.project_from_corpus:
        if corpus_model is None and only is not None:
            raise SystemExit("--only-folds needs --corpus-model for the corpus, two_stage and --project-from-corpus "
                             "systems, so that the runs sharing OUTPUT_DIR start from one corpus model: train it once "
                             "(python train.py, or this benchmark without --only-folds) and pass its model folder")
        if corpus_model is None:
            start = time.perf_counter()
            corpus_model = str(train_corpus_model(config, work))
            seconds["corpus"] += (time.perf_counter() - start) * len(folds)  # one model serves every fold
            print(f"corpus model trained in {time.perf_counter() - start:.0f} s", flush=True)
        if project is not None and args.project_from_corpus:
            project.model.name = corpus_model
    if "corpus" in systems:
        corpus = Predictor(corpus_model, precision="fp32")
        corpus_tag = "@mean" if getattr(corpus.model.config, POOLING, "cls") == "mean" else ""
        probs["corpus"] = corpus.predict_proba([r["text"] for r in rows])
    settings = {k: v for k, v in vars(args).items()
                if k not in {"include_from", "ensemble", "soup", "keep_models", "output_dir", "systems", "only_folds"}}
    settings.update(case_sha256=case_hash, corpus_model_sha256=model_digest(corpus_model),  # the resolved configs, so
                    configs=[to_dict(c) for c in (config, project) if c is not None])  # an edited file is not reused
    fold_keys = {name: fold_key(dict(settings, system=name), PROJECT_ROOT)
                 for name in systems if name != "corpus"}  # the corpus model is trained once, before the folds
    for number, test_idx in enumerate(folds, start=1):
        if only is not None and number not in only:
            continue
        train_rows = [rows[i] for i in range(len(rows)) if i not in set(test_idx)]
        test_texts = [rows[i]["text"] for i in test_idx]
        for name in systems:
            fold_file, keys = work / "folds" / f"{name}-{number}.json", fold_keys.get(name)
            kept = work / "models" / f"{name}-{number}"
            training = work / f"{name}-{number}"  # the fold's checkpoints and logs
            reused = saved_fold(fold_file, keys, test_idx) if keys else None
            if reused is not None and (not args.keep_models or name not in TRAINED or (kept / "config.json").exists()):
                probs[name][test_idx], seconds_then = reused
                seconds[name] += seconds_then
                print(f"fold {number}/{len(folds)}: {name} read back from {fold_file} (same settings)", flush=True)
                continue
            start = time.perf_counter()
            if name == "tfidf":
                model = train_baseline(train_rows)
                raw = model.predict_proba(test_texts)
                probs[name][test_idx] = raw[:, [list(model.classes_).index(label) for label in labels]]
            elif name in {"plain", "two_stage"}:
                init = config.model.name if name == "plain" else corpus_model
                predictor = plain_finetune(init, train_rows, labels, args.epochs, train_seed, training,
                                           learning_rate=args.learning_rate, label_smoothing=args.label_smoothing,
                                           pooling=config.model.pooling)
                probs[name][test_idx] = predictor.predict_proba(test_texts)
            elif name == "project":
                predictor = project_fit(project, train_rows, training)
                probs[name][test_idx] = predictor.predict_proba(test_texts)
            elapsed = time.perf_counter() - start
            seconds[name] += elapsed
            if args.keep_models and name in TRAINED:
                save_model(predictor.model, predictor.tokenizer, kept, predictor.meta, predictor.lexical)
            if keys:
                atomic_write_json(fold_file, {"key": keys[0], "test_idx": test_idx.tolist(), "seconds": elapsed,
                                              "probs": probs[name][test_idx].tolist()})
            drop_checkpoints(training)
        done = {n: score_predictions([rows[i] for i in test_idx], probs[n][test_idx], labels)["macro_f1"] for n in systems}
        print(f"fold {number}/{len(folds)}: " + ", ".join(f"{n} {f:.3f}" for n, f in done.items()), flush=True)
    if only is not None:
        print(f"folds {', '.join(map(str, sorted(only)))} saved in {work / 'folds'}; no table written (--only-folds): the "
              f"same command without --only-folds reads the saved folds back, trains any missing and writes the table")
        return {}
    trained = []  # this run's trained systems under their tagged names, then the earlier runs' untagged ones
    fold_models: dict[str, list[str]] = {}  # kept fold models (--keep-models) by tagged name, this run's and joined ones
    for name in list(probs):
        tagged = name + (suffix(name) if name in TRAINED else (corpus_tag if name == "corpus" else "") + run_tag)
        if tagged != name:
            probs[tagged], seconds[tagged] = probs.pop(name), seconds.pop(name)
        if name in TRAINED:
            trained.append(tagged)
            if args.keep_models:
                fold_models[tagged] = [str(work / "models" / f"{name}-{n}") for n in range(1, len(folds) + 1)]
    systems = list(probs)
    for earlier in earlier_runs:
        fold_models.update({k: v for k, v in earlier.get("fold_models", {}).items() if k not in fold_models})
        for name, saved in earlier["oof_probs"].items():
            if name not in probs and not is_derived(name):
                probs[name] = np.array(saved)
                seconds[name] = earlier["results"][name]["train_seconds"] * len(folds)
                systems.append(name)
    trained += [name for name in TRAINED if name in systems and name not in trained]
    averaged = []
    for average, seeds in seed_groups(systems).items():  # the seeds of one recipe averaged: predict.py --model A --model B
        probs[average] = np.mean([probs[name] for name in seeds], axis=0)
        seconds[average] = sum(seconds[name] for name in seeds)
        averaged.append(average)
    pairs = [(a, b) for i, a in enumerate(trained) for b in trained[i + 1:]  # two recipes (seeds: the averages)
             if a.split("@")[0] != b.split("@")[0]]
    if "tfidf" in probs:  # every trained run with its lexical companion: what train.lexical_weight=0.5 ships (a project
        # config carries its own train.lexical_weight)
        pairs += [(name, "tfidf") for name in systems + averaged
                  if re.sub(r"x\d+$", "", name.split("@")[0]) in {"plain", "two_stage"}]
    for spec in args.soup:  # one model per fold, its weights the members' mean: no extra training
        members = spec.split("+")
        missing = [name for name in members if name not in fold_models]
        if missing:
            print(f"--soup {spec}: not scored, no fold models kept for {', '.join(missing)} (run them with "
                  f"--keep-models; kept: {', '.join(sorted(fold_models)) or 'none'})", file=sys.stderr)
            continue
        name = f"soup({spec})"
        probs[name], seconds[name] = soup_folds([fold_models[m] for m in members], folds, rows, labels, work / "soup")
        seconds[name] += sum(seconds.get(m, 0.0) for m in members)
    ensembles = pairs + [tuple(ensemble_members(spec)) for spec in args.ensemble]
    for members in ensembles:  # the mean of their probabilities (predict.py --model A --model B): no extra training
        missing = [name for name in members if name not in probs]
        if missing:
            print(f"--ensemble {'+'.join(members)}: not scored, no system {', '.join(missing)} in this table "
                  f"(it holds {', '.join(sorted(probs))})", file=sys.stderr)
            continue
        probs["+".join(members)] = np.mean([probs[name] for name in members], axis=0)
        seconds["+".join(members)] = sum(seconds[name] for name in members)
    results = {}
    for name in probs:
        metrics = score_predictions(rows, probs[name], labels)
        metrics["train_seconds"] = seconds[name] / len(folds)
        metrics["by_subtype"] = recall_by_source_label(rows, [labels[i] for i in probs[name].argmax(axis=1)])
        results[name] = metrics
    wall = time.perf_counter() - started
    text = (f"# Real-news benchmark: {len(rows)} CASE 2021 snippets, {len(folds)}-fold pooled out-of-fold\n\n"
            f"`python benchmarks/real_news.py {' '.join(argv if argv is not None else sys.argv[1:])}` "
            f"(backbone {config.model.name}, seed {args.seed}); wall time {wall / 60:.1f} min on {torch.get_num_threads()} threads.\n\n"
            f"{comparison_table(results, labels)}\n\nTraining time per fold: "
            + ", ".join(f"{name} {m['train_seconds']:.0f} s" for name, m in results.items()) + ".\n")
    text += "\n## Recall per CASE subtype\n\n" + source_label_table(results, key="by_subtype") + "\n"
    atomic_write_text(out / "real_news.md", text)
    atomic_write_json(out / "real_news.json", {"folds": args.folds, "epochs": args.epochs, "seed": args.seed, "rows": len(rows),
                                               "case_sha256": case_hash, "wall_seconds": round(wall, 1), "results": results,
                                               "fold_models": fold_models,
                                               "oof_probs": {name: np.round(p, 6).tolist() for name, p in probs.items()}})
    print(text)
    print(f"wall time {wall:.0f} s; wrote {out}/real_news.md and real_news.json")
    return results


if __name__ == "__main__":
    main()
