"""A model soup: several models fine-tuned from one backbone on the same data (e.g. one run per seed) averaged weight
by weight into one model (Wortsman et al., 2022, "uniform soup"), which predicts at the cost of one model where an
ensemble costs one pass per member. Calibrated on the members' dev split when they were selected on it; scored on
their test split; written as a run folder (model/, metrics.json, evaluation/) that every command loads."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
import yaml

from event_classifier.data import read_split
from event_classifier.errors import EventClassifierError
from event_classifier.evaluation import evaluate_run
from event_classifier.inference import Predictor, check_same_labels, check_same_task
from event_classifier.io import atomic_write_json, atomic_write_text, read_json
from event_classifier.model import save_model
from event_classifier.onnx_backend import is_onnx_folder
from event_classifier.reports import model_card
from event_classifier.runs import CONFIG_FILE, MODEL_DIR, check_split_unchanged, resolve_model_dir, run_dir_of

CONFIG_KEYS_IGNORED = {"_name_or_path", "transformers_version", "torch_dtype", "dtype", "id2label", "label2id"}


def _run_config_text(model: str) -> str:
    """The training config (YAML) of the run a model belongs to ("" for a model folder on its own)."""
    run = run_dir_of(model)
    return (run / CONFIG_FILE).read_text(encoding="utf-8") if run else ""


def _check_members(models: list[str], members: list[Predictor]) -> None:
    """One label set, one task, one architecture and one tokenizer: else the weights do not average into a model."""
    check_same_labels(models, members, "a soup needs models of one label set")
    check_same_task(models, members, "a soup needs models of one task")
    first, first_config = members[0], members[0].model.config.to_dict()
    for name, member in zip(models[1:], members[1:]):
        config = member.model.config.to_dict()
        keys = (set(config) | set(first_config)) - CONFIG_KEYS_IGNORED
        differs = sorted(k for k in keys if config.get(k) != first_config.get(k))
        if differs:
            raise EventClassifierError(f"{name}: its architecture differs from {models[0]}'s ({', '.join(differs[:3])}); "
                                       "a soup needs models fine-tuned from one backbone with one head")
        if member.tokenizer.get_vocab() != first.tokenizer.get_vocab():
            raise EventClassifierError(f"{name}: its tokenizer differs from {models[0]}'s; a soup needs models of one backbone")
        if (member.lexical is None) != (first.lexical is None) or member.lexical is not None and (
                member.lexical.vectorizer.vocabulary != first.lexical.vectorizer.vocabulary
                or not np.allclose(member.lexical.coef, first.lexical.coef, rtol=1e-4, atol=1e-6)):  # BLAS may differ
            raise EventClassifierError(f"{name}: its lexical companion differs from {models[0]}'s (trained on other rows "
                                       "or another weight); a soup needs models trained on the same data")


def _average_weights(members: list[Predictor]):
    """The first member's model with every floating-point weight replaced by the members' mean."""
    model = copy.deepcopy(members[0].model)
    states = [m.model.state_dict() for m in members]
    averaged = {}
    for key, value in states[0].items():
        shapes = {tuple(s[key].shape) for s in states}
        if len(shapes) > 1:
            raise EventClassifierError(f"weight {key}: shapes {sorted(shapes)} differ; a soup needs one architecture")
        averaged[key] = (torch.stack([s[key].float() for s in states]).mean(0).to(value.dtype)
                         if value.is_floating_point() else value)
    model.load_state_dict(averaged)
    return model.eval()


def _shared_split(members: list[Predictor], split: str, models: list[str]) -> list[dict] | None:
    """The split every member recorded, unchanged since (one sha256), or None when they differ or have none."""
    records = [m.meta.data.get(split) for m in members]
    if not all(r and r.get("sha256") for r in records) or len({r["sha256"] for r in records}) > 1:
        return None
    return read_split(check_split_unchanged(members[0].meta.data, split, models[0]), members[0].labels)


def make_soup(models: list[str], output: str | Path, overwrite: bool = False) -> dict:
    """Average `models` into one, calibrate it, score it, and write it to `output` (a run folder). Returns its metrics."""
    if len(models) < 2:
        raise EventClassifierError("a soup needs at least two models: give --model once per model")
    output = Path(output)
    if output.exists() and any(output.iterdir()) and not overwrite:
        raise EventClassifierError(f"--output {output}: exists and is not empty; choose another folder or add --overwrite")
    for model in models:
        if is_onnx_folder(resolve_model_dir(model)):
            raise EventClassifierError(f"{model}: an ONNX export has no trainable weights to average; give the run folder "
                                       "it was exported from")
        if output.resolve() in (Path(model).resolve(), resolve_model_dir(model).resolve()):
            raise EventClassifierError(f"--output {output}: is one of the models; choose another folder")
    members = [Predictor(m, precision="fp32") for m in models]
    _check_members(models, members)
    texts = [_run_config_text(m) for m in models]
    configs = [yaml.safe_load(t) or {} for t in texts]
    refit = [c.get("train", {}).get("refit") for c in configs]
    meta = copy.deepcopy(members[0].meta)
    meta.run, meta.temperature = str(output), float(np.mean([m.meta.temperature for m in members]))
    if meta.multi_label:
        meta.thresholds = {k: float(np.mean([m.meta.thresholds.get(k, 0.5) for m in members])) for k in meta.thresholds}
    soup = Predictor.from_parts(_average_weights(members), members[0].tokenizer, meta, precision="auto")
    if members[0].lexical is not None:
        soup.lexical = copy.deepcopy(members[0].lexical)
        soup.lexical.blend_temperature = float(np.mean([m.lexical.blend_temperature for m in members]))
    dev, test = _shared_split(members, "dev", models), _shared_split(members, "test", models)
    # members selected on dev (no refit) leave dev unseen by their weights: calibrate the soup on it; a refit member
    # has trained on dev, so the soup keeps the mean of the members' own dev-fitted temperatures instead
    calibrate = dev is not None and all(r is False for r in refit)
    splits = {**({"dev": dev} if dev is not None else {}), **({"test": test} if test is not None else {})}
    results = evaluate_run(soup, splits, {s: output / "evaluation" / s for s in splits}, calibrate=calibrate) if splits else {}
    metrics = {**results,
               "soup": {"members": [str(m) for m in models], "calibration": "fitted on dev" if calibrate else
                        "the mean of the members' temperatures", "temperature": soup.temperature,
                        "members_test_macro_f1": [_member_test_f1(m) for m in models]}}
    save_model(soup.model, soup.tokenizer, output / MODEL_DIR, soup.meta, soup.lexical)
    if "dev" in results and "test" in results:
        card = model_card(soup.meta, metrics, configs[0], origin=f"`event-classifier soup`, the weights averaged over "
                          f"{len(models)} models ({', '.join(str(m) for m in models)}); temperature: "
                          f"{metrics['soup']['calibration']},")
        atomic_write_text(output / MODEL_DIR / "README.md", card)
    if texts[0]:  # the first member's config makes the soup a run folder: evaluate.py writes beside it, like a run's
        atomic_write_text(output / CONFIG_FILE, texts[0])
    atomic_write_json(output / "metrics.json", metrics)
    return {"run_dir": str(output), **metrics}


def _member_test_f1(model: str) -> float | None:
    """A member's own test macro-F1, from its run's metrics.json (None for a model folder on its own)."""
    run = run_dir_of(model)
    if run is None or not (run / "metrics.json").exists():
        return None
    return read_json(run / "metrics.json").get("test", {}).get("macro_f1")
