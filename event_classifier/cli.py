"""Command lines: parse arguments, call one function, turn package errors into one line on stderr (exit 2)."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from pathlib import Path

from event_classifier.config import load_config
from event_classifier.errors import EventClassifierError

OVERRIDE_HELP = "config overrides as --section.key=value, e.g. --train.epochs=3 --model.name=tiny-random-bert"


def command(func):
    """Run a command's main(argv); a package error becomes `error: ...` on stderr and exit code 2."""
    @functools.wraps(func)
    def wrapper(argv: list[str] | None = None) -> int:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        try:
            return func(argv) or 0
        except EventClassifierError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    return wrapper


def parse_with_overrides(parser: argparse.ArgumentParser, argv: list[str] | None):
    """Known options go to argparse; `--section.key=value` items become config overrides."""
    parser.add_argument("--config", default=None, help="YAML config (default: configs/default.yaml)")
    args, rest = parser.parse_known_args(argv)
    overrides = [item for item in rest if item.startswith("--") and "=" in item and "." in item.split("=", 1)[0]]
    unknown = [item for item in rest if item not in overrides]
    if unknown:
        parser.error(f"unrecognised arguments: {' '.join(unknown)} ({OVERRIDE_HELP})")
    return args, load_config(args.config, overrides)


@command
def prepare_main(argv: list[str] | None = None) -> int:
    from event_classifier.data import prepare
    from event_classifier.sources import parse_source_spec

    parser = argparse.ArgumentParser(description="Read labelled paragraphs and write train/dev/test splits.",
                                     epilog=OVERRIDE_HELP)
    parser.add_argument("--source", action="append", default=[], metavar="NAME=PATH",
                        help="add an outside source read through configs/sources/NAME.yaml (repeatable)")
    args, config = parse_with_overrides(parser, argv)
    extra = dict(parse_source_spec(s) for s in args.source)
    manifest = prepare(config, {k: str(v) for k, v in extra.items()})
    dedup = manifest["deduplication"]
    print(f"removed {dedup['exact_duplicates_removed']} exact duplicates; "
          f"grouped {dedup['near_duplicate_pairs_grouped']} near-duplicate pairs")
    for name, split in manifest["splits"].items():
        print(f"{name:>5}: {split['rows']:5d} paragraphs, {split['articles']:4d} articles  {split['labels']}")
    for report in manifest["inputs"]:
        if report["skipped_empty"] or report["dropped_by_codebook"]:
            print(f"{report['path']}: skipped {report['skipped_empty']} empty; dropped by codebook {report['dropped_by_codebook']}")
    print(f"wrote {config.data.prepared_dir}/{{train,dev,test}}.jsonl and manifest.json")
    return 0


@command
def train_main(argv: list[str] | None = None) -> int:
    from event_classifier.training import train

    parser = argparse.ArgumentParser(description="Fine-tune a classifier on the prepared splits.", epilog=OVERRIDE_HELP)
    parser.add_argument("--resume", action="store_true", help="continue the run (--train.run_name, else runs/latest) from its last checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run folder of the same name")
    args, config = parse_with_overrides(parser, argv)
    result = train(config, resume=args.resume, overwrite=args.overwrite)
    print(f"dev macro-F1 {result['dev']['macro_f1']:.3f}, test macro-F1 {result['test']['macro_f1']:.3f}, "
          f"training {result['train']['runtime_s']} s")
    print(f"run saved in {result['run_dir']} (model in {result['run_dir']}/model)")
    return 0


@command
def evaluate_main(argv: list[str] | None = None) -> int:
    from event_classifier.data import load_split
    from event_classifier.evaluation import data_name, evaluate_rows
    from event_classifier.inference import Predictor
    from event_classifier.metrics import format_table
    from event_classifier.sources import read_any

    parser = argparse.ArgumentParser(description="Evaluate a run or model folder on labelled paragraphs.")
    parser.add_argument("model", help="run folder (runs/NAME) or model folder")
    parser.add_argument("--data", default=None, help="labelled JSONL/CSV/TSV, or NAME=PATH through configs/sources/NAME.yaml "
                                                     "(default: the run's test split)")
    parser.add_argument("--output-dir", default=None, help="where to write metrics (default: MODEL/evaluation/DATA)")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    predictor = Predictor(args.model, batch_size=args.batch_size)
    if args.data:
        rows, _ = read_any(args.data, predictor.labels)
        name = data_name(args.data)
    else:
        config_path = Path(args.model) / "config.yaml"
        if not config_path.exists():
            raise EventClassifierError(f"{args.model}: not a run folder (no config.yaml); pass --data FILE to evaluate a model folder")
        rows, name = load_split(load_config(config_path), "test"), "test"
    base = Path(args.model) if (Path(args.model) / "config.yaml").exists() else predictor.directory
    output_dir = Path(args.output_dir) if args.output_dir else base / "evaluation" / name
    metrics = evaluate_rows(predictor, rows, output_dir, name, progress=sys.stderr.isatty())
    print(format_table(metrics))
    print(f"wrote {output_dir}/metrics.json and confusion_matrix.png")
    return 0


@command
def predict_main(argv: list[str] | None = None) -> int:
    from event_classifier.documents import InputCounts, read_inputs
    from event_classifier.inference import Predictor
    from event_classifier.prediction_output import write_predictions

    parser = argparse.ArgumentParser(description="Label each paragraph of news articles.")
    parser.add_argument("--model", required=True, help="run folder (runs/NAME) or model folder")
    parser.add_argument("inputs", nargs="+", help=".txt articles (blank line between paragraphs), .jsonl with 'text', or - for stdin")
    parser.add_argument("--output", default=None, help="output file (default: stdout)")
    parser.add_argument("--format", choices=["jsonl", "csv"], default=None, help="default: from --output's suffix, else jsonl")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    predictor = Predictor(args.model, batch_size=args.batch_size)
    counts = InputCounts()
    records = predictor.predict_records(read_inputs(args.inputs, counts), progress=sys.stderr.isatty())
    fmt = args.format or ("csv" if args.output and args.output.endswith(".csv") else "jsonl")
    summary = write_predictions(records, args.output, fmt, predictor.labels)
    for source, per_label in summary.items():
        total = sum(per_label.values())
        expected = counts.paragraphs.get(source, total)
        if total != expected:
            raise EventClassifierError(f"{source}: {expected} paragraphs read but {total} predicted; please report this bug")
        skipped = counts.skipped_empty.get(source, 0)
        parts = ", ".join(f"{label} {n}" for label, n in per_label.items() if n)
        print(f"{source}: {total} paragraphs: {parts}" + (f" ({skipped} empty skipped)" if skipped else ""), file=sys.stderr)
    if args.output:
        print(f"wrote {args.output}", file=sys.stderr)
    return 0

