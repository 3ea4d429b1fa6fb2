"""Batch prediction on Ray Data: `predict --engine ray`.

JSONL, CSV/TSV or Parquet files are read with `ray.data`, labelled by the one `inference.Predictor` inside a
`map_batches` actor pool (each actor loads the model once), and written as a folder of JSONL or Parquet files. Every
input column is kept; `label`, `score` and `probs` (one field per label) are added, as the local engine adds them.
Ray is started locally unless an address is given (`--ray-address` or `RAY_ADDRESS`), e.g. `ray://head:10001`.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from event_classifier.errors import EventClassifierError
from event_classifier.io import atomic_directory
from event_classifier.runs import resolve_model_dir

INPUT_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet"}
OUTPUT_FORMATS = ("jsonl", "parquet")
PREDICTION_COLUMNS = ("label", "score", "probs", "low_confidence")


@dataclass
class RayOptions:
    """How a Ray prediction runs: where Ray is, how many actors, how many rows each call gets."""

    address: str | None = None  # a cluster (ray://head:10001, auto); None = RAY_ADDRESS, else a local Ray
    num_cpus: int | None = None  # CPUs of a local Ray (None = all of this machine's)
    actors: int | None = None  # actors in the pool; None = the cluster's CPUs / cpus_per_actor
    cpus_per_actor: float = 1.0  # CPUs each actor reserves (and torch threads it runs)
    rows_per_call: int = 512  # rows handed to an actor at once (the Predictor batches and length-sorts within them)
    predictor: dict = field(default_factory=dict)  # Predictor settings: batch_size, min_confidence, quantize


def is_uri(path: str) -> bool:
    return "://" in path


def input_format(inputs: list[str]) -> str:
    """The one reader the inputs need (json, csv, tsv or parquet), from their suffixes or, for local folders, from
    the files inside them."""
    suffixes = set()
    for spec in inputs:
        path = Path(spec)
        if not is_uri(spec) and not path.exists():
            raise EventClassifierError(f"{spec}: file not found; check the path")
        if not is_uri(spec) and path.is_dir():
            found = {p.suffix.lower() for p in path.rglob("*") if p.is_file() and p.suffix.lower() in INPUT_FORMATS}
            if not found:
                raise EventClassifierError(f"{spec}: no {', '.join(INPUT_FORMATS)} files in this folder; "
                                           "--engine ray reads tables of paragraphs")
            suffixes |= found
        else:
            suffixes.add(path.suffix.lower())
    formats = {INPUT_FORMATS.get(suffix) for suffix in suffixes}
    if None in formats:
        raise EventClassifierError(f"{', '.join(inputs)}: --engine ray reads {', '.join(INPUT_FORMATS)} files, got "
                                   f"{', '.join(sorted(s or '(no suffix)' for s in suffixes))}; convert them, or use "
                                   "--engine local for articles, pages and URLs")
    if len(formats) > 1:
        raise EventClassifierError(f"{', '.join(inputs)}: mixed input formats {sorted(formats)}; give files of one "
                                   "format per run")
    return formats.pop()


def read_dataset(inputs: list[str], text_column: str = "text", id_column: str | None = None):
    """A Ray Dataset of the inputs, its text column named `text` and its id column (if named) `id`."""
    import pyarrow as pa
    import pyarrow.csv
    import ray.data

    fmt = input_format(inputs)
    paths = [str(Path(p).resolve()) if not is_uri(p) else p for p in inputs]
    # ids and texts stay strings ("007" is not 7); other CSV columns get Arrow's type inference
    as_text = pyarrow.csv.ConvertOptions(column_types={c: pa.string() for c in (text_column, id_column or "id")})
    if fmt == "json":
        ds = ray.data.read_json(paths)
    elif fmt == "parquet":
        ds = ray.data.read_parquet(paths, file_extensions=["parquet"])
    else:
        ds = ray.data.read_csv(paths, file_extensions=[fmt], convert_options=as_text,
                               parse_options=pyarrow.csv.ParseOptions(delimiter="\t" if fmt == "tsv" else ","))
    try:
        columns = ds.schema().names
    except Exception as exc:  # Ray wraps the reader's error (broken JSON, bad CSV) in its own types
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise EventClassifierError(f"{', '.join(inputs)}: Ray Data could not read it ({reason[:300]}); fix the file") from None
    for wanted, option in ((text_column, "--text-column"), (id_column, "--id-column")):
        if wanted is not None and wanted not in columns:
            raise EventClassifierError(f"{', '.join(inputs)}: no column {wanted!r} (columns: {', '.join(columns)}); "
                                       f"name the right one with {option}")
    renames = {old: new for old, new in ((text_column, "text"), (id_column, "id")) if old is not None and old != new}
    return ds.rename_columns(renames) if renames else ds


class BatchPredictor:
    """The Ray Data callable class: `__init__` loads the model once per actor, `__call__` labels one Arrow batch.

    Rows whose text is empty or missing are kept, with empty predictions, so the output has every input row.
    """

    def __init__(self, model_dirs: list[str], **settings):
        from event_classifier.inference import load_predictor

        self.predictor = load_predictor(model_dirs, **settings)

    def __call__(self, batch):
        import pyarrow as pa

        texts = batch.column("text").to_pylist()
        chosen = [i for i, text in enumerate(texts) if isinstance(text, str) and text.strip()]
        predictions: list[dict | None] = [None] * len(texts)
        # the local engine's whitespace folding, so that both engines give the model the same text
        for i, prediction in zip(chosen, self.predictor.predict([" ".join(texts[i].split()) for i in chosen])):
            predictions[i] = prediction
        types = {"label": pa.string(), "score": pa.float64(), "low_confidence": pa.bool_(),
                 "probs": pa.struct([(label, pa.float64()) for label in self.predictor.labels])}
        names = [name for name in PREDICTION_COLUMNS if name != "low_confidence" or self.predictor.min_confidence]
        batch = batch.drop_columns([name for name in names if name in batch.column_names])  # as {**row, **prediction}
        for name in names:
            batch = batch.append_column(name, pa.array([p and p[name] for p in predictions], type=types[name]))
        return batch


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[None]:
    """Connect to `address` (else RAY_ADDRESS) or start a local Ray without its dashboard; stop what was started.
    A Ray already initialised by the caller is used as it is."""
    import ray

    if ray.is_initialized():
        yield
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, logging_level=logging.WARNING)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level=logging.WARNING)
    try:
        yield
    finally:
        ray.shutdown()


def write_dataset(ds, output: str, fmt: str) -> None:
    """A folder of JSONL or Parquet files; a local folder appears only when complete (written beside, renamed)."""
    def write(path: str) -> None:
        if fmt == "parquet":
            ds.write_parquet(path)
        else:
            ds.write_json(path)  # one JSON object per line

    if is_uri(output):
        write(output)
        return
    with atomic_directory(output) as tmp:
        write(str(tmp))


def count_rows(output: str | Path, fmt: str) -> int:
    """Rows in a local output folder (Parquet footers, or JSONL lines)."""
    import pyarrow.parquet as pq

    files = sorted(p for p in Path(output).iterdir() if p.is_file() and not p.name.startswith("."))
    if fmt == "parquet":
        return sum(pq.ParquetFile(p).metadata.num_rows for p in files)
    return sum(sum(1 for line in open(p, "rb") if line.strip()) for p in files)


def predict_on_ray(inputs: list[str], output: str, model_dirs: list[str], fmt: str = "jsonl",
                   text_column: str = "text", id_column: str | None = None, options: RayOptions | None = None,
                   progress: bool = False) -> int | None:
    """Label every row of `inputs` on Ray and write them to the folder `output`; returns the rows written (None
    for a remote output, which is not read back)."""
    import ray
    import ray.data

    options = options or RayOptions()
    if fmt not in OUTPUT_FORMATS:
        raise EventClassifierError(f"--format {fmt}: --engine ray writes {' or '.join(OUTPUT_FORMATS)}")
    if not is_uri(output) and Path(output).is_file():
        raise EventClassifierError(f"--output {output}: is a file; --engine ray writes a folder of {fmt} files")
    input_format(inputs)  # a missing file, a wrong type or a missing model is reported before Ray starts
    for model in model_dirs:
        resolve_model_dir(model)
    with ray_session(options.address, options.num_cpus):
        ray.data.DataContext.get_current().enable_progress_bars = progress
        ds = read_dataset(inputs, text_column, id_column)
        actors = options.actors or max(1, int(ray.cluster_resources().get("CPU", 1) // options.cpus_per_actor))
        ds = ds.map_batches(BatchPredictor, fn_constructor_kwargs={"model_dirs": list(model_dirs), **options.predictor},
                            batch_size=options.rows_per_call, batch_format="pyarrow", num_cpus=options.cpus_per_actor,
                            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=actors), udf_modifying_row_count=False)
        write_dataset(ds, output, fmt)
    return None if is_uri(output) else count_rows(output, fmt)
