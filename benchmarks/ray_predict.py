"""Batch prediction speed: `predict --engine ray` against the single-process engine, on the same rows.

    python benchmarks/ray_predict.py --model runs/latest [--rows 4000] [--cpus 2] [--threads N] [--output ray.json]

Both engines run end to end through the command line (read a JSONL file, load the model, predict, write), on our own
paragraphs repeated to --rows rows. Ray's start-up (a local Ray on --cpus CPUs, no dashboard) is timed apart; its
actors' model loads are inside its figure, as the single process's model load is inside its own.
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from pathlib import Path

import ray
import torch

from event_classifier.cli import predict_main
from event_classifier.config import PROJECT_ROOT
from event_classifier.io import atomic_write_json, atomic_write_jsonl, iter_jsonl


def corpus_texts(folder: Path = PROJECT_ROOT / "data" / "paragraphs") -> list[str]:
    """Our labelled paragraphs (b*.jsonl), in file order."""
    return [obj["text"] for path in sorted(folder.glob("b*.jsonl")) for _, obj in iter_jsonl(path)]


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    if predict_main(argv) != 0:
        raise SystemExit(f"predict {' '.join(argv)} failed")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a run or model folder")
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray (the single process uses torch's "
                                                            "default threads)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads of the single process (default: "
                                                                   "torch's own, one per core)")
    parser.add_argument("--output", default=None, help="also write the figures as JSON")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="ec_ray_bench"))
    texts = list(itertools.islice(itertools.cycle(corpus_texts()), args.rows))
    source = work / "rows.jsonl"
    atomic_write_jsonl(source, ({"id": f"r{i}", "text": t} for i, t in enumerate(texts)))

    local_s = timed(["--model", args.model, str(source), "--output", str(work / "local.jsonl")])
    start = time.perf_counter()
    ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level="WARNING")
    startup_s = time.perf_counter() - start
    try:
        ray_s = timed(["--engine", "ray", "--model", args.model, str(source), "--output", str(work / "ray")])
    finally:
        ray.shutdown()
    results = {"rows": args.rows, "torch_threads_single_process": torch.get_num_threads(), "ray_cpus": args.cpus,
               "single_process_rows_per_s": round(args.rows / local_s, 1), "ray_rows_per_s": round(args.rows / ray_s, 1),
               "ray_startup_s": round(startup_s, 1), "model": args.model}
    print(f"single process: {results['single_process_rows_per_s']:7.1f} rows/s ({args.rows} rows, "
          f"{results['torch_threads_single_process']} torch threads, model load included)")
    print(f"ray           : {results['ray_rows_per_s']:7.1f} rows/s ({args.cpus} CPUs, actors' model loads included; "
          f"Ray start-up {results['ray_startup_s']} s apart)")
    print(json.dumps(results))
    if args.output:
        atomic_write_json(args.output, results)


if __name__ == "__main__":
    main()
