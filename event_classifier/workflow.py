"""The steps a user runs, composed from the modules that own each part: train = run folder -> fit -> calibrate and
evaluate -> export; evaluate = models x data -> metrics and a comparison. Nothing here prints: cli.py does."""

from __future__ import annotations

import copy
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from event_classifier.comparison import baseline_metrics, comparison_table, source_label_table
from event_classifier.config import Config, to_dict
from event_classifier.data import SPLITS, load_split, read_split
from event_classifier.evaluation import Metrics, data_name, evaluate_run
from event_classifier.inference import Ensemble, Predictor, check_same_labels
from event_classifier.io import atomic_write_json, atomic_write_text
from event_classifier.lexical import LexicalModel, fit_companion
from event_classifier.meta import ModelMeta
from event_classifier.model import save_model
from event_classifier.reports import model_card
from event_classifier.runs import Run, check_split_unchanged, data_record, process_rank, run_dir_of
from event_classifier.sources import read_any
from event_classifier.tracking import log_results, stage_run, tracked_run
from event_classifier.training import Fitted, fit, refit


def train(config: Config, resume: bool = False, overwrite: bool = False) -> dict:
    """Fine-tune on the prepared train split, keep the best dev checkpoint, calibrate on dev, evaluate on dev and
    test, export runs/<name>/model/ with its model card. Returns the run's metrics (and its folder)."""
    run, config = Run.create(config, resume, overwrite)
    with tracked_run(config, run.directory, enabled=process_rank()[0] == 0):
        return _train(config, run, resume)


def _train(config: Config, run: Run, resume: bool) -> dict:
    main_process = process_rank()[0] == 0
    rows = {name: load_split(config, name) for name in SPLITS}
    record = data_record(config, rows)
    if resume:
        run.check_resume_matches(config, record)
    work_dir = run.directory if main_process else Path(tempfile.mkdtemp(prefix="event_classifier_rank"))
    if main_process:
        run.record_start(config, record)
    fitted = fit(config, rows, run.directory, resume=resume, is_main_process=main_process, work_dir=work_dir)
    if not fitted.is_main_process:  # the main process alone calibrates, evaluates and exports
        return {"run_dir": str(run.directory), "rank": process_rank()[0]}

    meta = ModelMeta(labels=copy.deepcopy(config.labels), max_length=fitted.max_length, fallback_label=config.fallback_label,
                     stride=config.predict.stride, batch_size=config.predict.batch_size, precision=fitted.precision,
                     backbone=config.model.name, data=record, run=str(run.directory), task=config.model.task,
                     lexical_weight=config.train.lexical_weight)
    predictor = fitted_predictor(config, fitted, meta, rows["train"])
    test_folder = "selection_test" if config.train.refit else "test"
    evaluation = evaluate_run(predictor, {"dev": rows["dev"], test_folder: rows["test"]},
                              {split: run.directory / "evaluation" / split for split in ("dev", test_folder)}, calibrate=True)
    metrics = {"train": {**fitted.stats, "precision": fitted.precision, "max_length": fitted.max_length,
                         "temperature": predictor.temperature}, **evaluation}
    if predictor.lexical is not None:
        metrics["train"]["lexical_blend_temperature"] = predictor.lexical.blend_temperature
    if config.train.refit:
        fitted, predictor = _refit(config, rows, run, fitted, predictor, metrics, resume)
    save_model(fitted.model, fitted.tokenizer, run.model_dir, predictor.meta, predictor.lexical)
    atomic_write_text(run.model_dir / "README.md", model_card(predictor.meta, metrics, to_dict(config)))
    atomic_write_json(run.directory / "metrics.json", metrics)
    run.point_latest()
    log_results(config, run.directory, metrics)
    return {"run_dir": str(run.directory), **metrics}


def fitted_predictor(config: Config, fitted: Fitted, meta: ModelMeta, train: list[dict],
                        selected: LexicalModel | None = None) -> Predictor:
    """A fitted model as a predictor, with its lexical companion trained on `train` (none at weight 0; for a refit,
    `selected` is the selection run's companion, whose blend temperature is kept). The dev-selected model is not
    calibrated yet (evaluate_run(..., calibrate=True) on dev does that)."""
    predictor = Predictor.from_parts(fitted.model, fitted.tokenizer, meta, precision=fitted.precision)
    predictor.lexical = fit_companion(config, train, selected=selected)
    return predictor


def refit_predictor(config: Config, selected: Fitted, calibrated: Predictor, rows: dict[str, list[dict]], run_dir: Path,
                    resume: bool = False) -> tuple[Fitted, Predictor]:
    """The refit (training.refit: train+dev, the epochs dev chose or the configured count) as a predictor with the
    metadata of `calibrated`, the selection run's predictor calibrated on dev (the refit model has seen dev, so it
    cannot be calibrated on it): its temperatures (and thresholds) are kept, its companion is trained again on
    train+dev with the blend temperature it had."""
    with stage_run(config, "refit"):
        fitted = refit(config, selected, rows, run_dir, resume=resume)
    meta = calibrated.meta
    meta.max_length = fitted.max_length
    return fitted, fitted_predictor(config, fitted, meta, rows["train"] + rows["dev"], selected=calibrated.lexical)


def _refit(config: Config, rows: dict[str, list[dict]], run: Run, selected: Fitted, calibrated: Predictor, metrics: dict,
           resume: bool) -> tuple[Fitted, Predictor]:
    """Train again on train+dev for the epoch count dev chose (or train.epochs, with train.epoch_choice fixed) and
    score the refit model on test (refit_predictor). Returns it as a predictor, with its lexical companion."""
    fitted, predictor = refit_predictor(config, selected, calibrated, rows, run.directory, resume)
    metrics["test"] = evaluate_run(predictor, {"test": rows["test"]}, {"test": run.directory / "evaluation" / "test"})["test"]
    metrics["refit"] = {**fitted.stats, "paragraphs": len(rows["train"]) + len(rows["dev"]),
                        "selection_test_macro_f1": metrics["selection_test"]["macro_f1"]}
    return fitted, predictor


def train_seeds(config: Config, seeds: list[int], overwrite: bool = False) -> dict:
    """Train the same config once per seed; report mean and standard deviation of dev and test macro-F1."""
    base = config.train.run_name or datetime.now().strftime("%Y%m%d-%H%M%S")
    runs = {}
    for seed in seeds:
        one = copy.deepcopy(config)
        one.train.seed, one.train.run_name = seed, f"{base}-seed{seed}"
        runs[seed] = train(one, overwrite=overwrite)
    summary: dict = {"runs": {s: r["run_dir"] for s, r in runs.items()}}
    for split in ("dev", "test"):
        scores = np.array([r[split]["macro_f1"] for r in runs.values()])
        summary[split] = {"macro_f1_mean": round(float(scores.mean()), 4), "macro_f1_std": round(float(scores.std(ddof=1)), 4)
                          if len(scores) > 1 else 0.0, "macro_f1": [round(float(x), 4) for x in scores]}
    path = Path(config.train.output_dir) / f"{base}-seeds.json"
    atomic_write_json(path, summary)
    return {"summary_path": str(path), **summary}


@dataclass
class Evaluation:
    """The result of `evaluate`: metrics per model on one data set, and where they were written."""

    data: str
    rows: int
    results: dict[str, Metrics]
    folders: dict[str, Path]
    comparison: Path | None = None  # comparison.md and .json, when several models (or the baseline) were scored
    table: str = ""


def _recorded_test_split(predictor: Predictor, model: str) -> list[dict]:
    """The test split the model was evaluated on at training time, refused if it changed since."""
    path = check_split_unchanged(predictor.meta.data, "test", model)
    return read_split(path, predictor.labels)


def ensemble_name(models: list[str]) -> str:
    return "ensemble of " + " + ".join(Path(m).name for m in models)


def evaluate(models: list[str], data: str | None = None, baseline: bool = False, output_dir: str | None = None,
             batch_size: int | None = None, quantize: bool = False, ensemble: bool = False) -> Evaluation:
    """Evaluate every model on the same rows: `data` (a labelled file or NAME=PATH), else the first model's own
    test split, checked against the hash recorded at training time. With `ensemble`, the models are scored as one
    (the mean of their calibrated probabilities), written beside the first model's results."""
    if ensemble:
        predictors = [Ensemble(models, batch_size=batch_size, quantize=quantize)]
        names = [ensemble_name(models)]
    else:
        predictors = [Predictor(m, batch_size=batch_size, quantize=quantize) for m in models]
        names = list(models)
    check_same_labels(names, predictors, "compare models trained on the same label set")
    labels = predictors[0].labels
    if data:
        rows, name = read_any(data, labels)[0], data_name(data)
    else:
        rows, name = _recorded_test_split(predictors[0], models[0]), "test"
    results: dict[str, Metrics] = {}
    folders: dict[str, Path] = {}
    for model, predictor in zip(names, predictors):
        base = run_dir_of(models[0] if ensemble else model) or predictor.directory
        if output_dir:
            folders[model] = Path(output_dir) / Path(model).name if len(names) > 1 else Path(output_dir)
        else:
            folders[model] = base / "evaluation" / (f"{name}-ensemble-of-{len(models)}" if ensemble else name)
        results[str(model)] = evaluate_run(predictor, {name: rows}, {name: folders[model]})[name]
    if baseline:
        train_path = check_split_unchanged(predictors[0].meta.data, "train", models[0])
        results["tfidf-logreg baseline"] = baseline_metrics(read_split(train_path, labels), rows, labels)
    evaluation = Evaluation(name, len(rows), results, folders)
    if len(results) > 1:
        evaluation.table = comparison_table(results, labels)
        by_source_label = source_label_table(results)  # data read through a codebook: e.g. CASE subtypes side by side
        if by_source_label:
            evaluation.table += f"\n\n## Recall per source label\n\n{by_source_label}"
        out = Path(output_dir) if output_dir else Path(run_dir_of(models[0]) or predictors[0].directory).parent / "comparisons" / name
        atomic_write_json(out / "comparison.json", {"data": name, "rows": len(rows), "results": results})
        atomic_write_text(out / "comparison.md", f"# {name} ({len(rows)} paragraphs)\n\n{evaluation.table}\n")
        evaluation.comparison = out
    return evaluation
