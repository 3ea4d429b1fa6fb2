"""Turning text into label probabilities: batched, length-sorted, long paragraphs split into windows."""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch
from scipy.special import expit, softmax
from tqdm.auto import tqdm

from event_classifier.calibration import NEVER, UNTUNED
from event_classifier.errors import EventClassifierError
from event_classifier.lexical import LexicalModel
from event_classifier.meta import ModelMeta
from event_classifier.model import load_checkpoint, resolve_precision
from event_classifier.onnx_backend import OnnxModel, keep_in_fp32


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """int8 dynamic quantization of the encoder's nn.Linear layers with per-channel weights (faster on a CPU); the
    layers `onnx_backend.keep_in_fp32` names (the head, the feed-forward outputs) stay fp32. The ONNX export's int8
    rule differs (`onnx_backend.ONNX_INT8_OPS`): there, feed-forward outputs in int8 measured no cost on dev."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    chosen = {name: per_channel_dynamic_qconfig for name, module in model.named_modules()
              if isinstance(module, torch.nn.Linear) and not keep_in_fp32(name)}
    with warnings.catch_warnings():  # torch marks the int8 tensor API deprecated; it is still the fast CPU path
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, chosen, dtype=torch.qint8)


class Predictor:
    """Loads a saved model once and predicts label probabilities for any number of paragraphs.

    Inference settings (window length, stride, batch size, temperature, fallback label) come from the model's
    ModelMeta; `batch_size` and `stride` given here override them for this predictor only.
    """

    def __init__(self, model_dir: str | Path, batch_size: int | None = None, stride: int | None = None,
                 precision: str = "auto", min_confidence: float = 0.0, quantize: bool = False):
        model, tokenizer, meta, directory = load_checkpoint(model_dir)
        self._setup(model, tokenizer, meta, directory, batch_size, stride, precision, min_confidence, quantize)

    @classmethod
    def from_parts(cls, model, tokenizer, meta: ModelMeta, precision: str = "auto") -> "Predictor":
        """A predictor around a model in memory (e.g. right after training), without a round trip through disk."""
        predictor = cls.__new__(cls)
        model.eval()
        predictor._setup(model, tokenizer, meta, None, None, None, precision, 0.0, False)
        return predictor

    @property
    def temperature(self) -> float:
        """The transformer's calibration temperature: the model's metadata holds it (saved with the model)."""
        return float(self.meta.temperature)

    @temperature.setter
    def temperature(self, value: float) -> None:
        self.meta.temperature = float(value)

    def _setup(self, model, tokenizer, meta: ModelMeta, directory: Path | None, batch_size: int | None,
               stride: int | None, precision: str, min_confidence: float, quantize: bool) -> None:
        self.model, self.tokenizer, self.meta, self.directory = model, tokenizer, meta, directory
        self.labels: list[str] = meta.label_names
        self.max_length = int(meta.max_length)
        self.stride = max(0, min(meta.stride if stride is None else stride, self.max_length // 4))
        self.batch_size = batch_size or meta.batch_size
        self.backend = "onnx" if isinstance(model, OnnxModel) else "torch"
        self.precision = "fp32" if self.backend == "onnx" else resolve_precision(precision)  # ONNX Runtime runs what was exported
        self.min_confidence = min_confidence
        # the TF-IDF companion saved beside the weights (train.lexical_weight); a model in memory gets it from its trainer
        self.lexical = LexicalModel.load(directory, self.labels) if meta.lexical_weight and directory is not None else None
        if quantize and self.backend == "onnx":
            raise EventClassifierError(f"{directory}: an ONNX export is quantized when it is written; "
                                       "use `event-classifier export --int8` instead of --quantize")
        if quantize:
            self.model = quantize_int8(self.model)
            self.precision = "fp32"

    def windows(self, texts: list[str]) -> tuple[list[list[int]], list[int]]:
        """Token windows covering every token of every text, and the text each window came from.

        A text longer than max_length becomes several windows that overlap by `stride` tokens.
        """
        encoded = self.tokenizer(
            texts, truncation=True, max_length=self.max_length, stride=self.stride,
            return_overflowing_tokens=True, padding=False,
        )
        return encoded["input_ids"], list(encoded["overflow_to_sample_mapping"])

    def _autocast(self):
        if self.precision == "bf16":
            return torch.autocast(device_type=self.model.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def window_logits(self, ids: list[list[int]], progress: bool = False) -> np.ndarray:
        """Raw logits of each token window, computed in length-sorted batches."""
        order = np.argsort([len(w) for w in ids], kind="stable")  # similar lengths share a batch: little padding
        logits = np.zeros((len(ids), len(self.labels)), dtype=np.float64)
        batches = range(0, len(order), self.batch_size)
        with torch.inference_mode(), self._autocast():
            for start in tqdm(batches, desc="predicting", unit="batch", disable=not progress, leave=False):
                chosen = order[start : start + self.batch_size]
                batch = self.tokenizer.pad({"input_ids": [ids[i] for i in chosen]}, return_tensors="pt")
                logits[chosen] = self.model(**batch).logits.float().numpy()
        return logits

    def combine(self, logits: np.ndarray, owner: list[int], n_texts: int, temperature: float | None = None) -> np.ndarray:
        """Temperature-scaled softmax per window (a sigmoid per label for a multi_label model), averaged over the
        windows of each text."""
        scaled = logits / (self.temperature if temperature is None else temperature)
        window_probs = expit(scaled) if self.meta.multi_label else softmax(scaled, axis=1)
        owner = np.asarray(owner)
        probs = np.zeros((n_texts, len(self.labels)), dtype=np.float64)
        np.add.at(probs, owner, window_probs)
        return probs / np.bincount(owner, minlength=n_texts)[:, None]

    def predict_proba(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """Probabilities (n_texts x n_labels); the windows of a long text are averaged."""
        if not texts:
            return np.zeros((0, len(self.labels)))
        ids, owner = self.windows(texts)
        return self.blend(self.combine(self.window_logits(ids, progress), owner, len(texts)), self.companion_proba(texts))

    def companion_proba(self, texts: list[str]) -> np.ndarray | None:
        """The lexical companion's probabilities for `texts`; None when the model has no companion."""
        return None if self.lexical is None else self.lexical.predict_proba(texts)

    def blend(self, probs: np.ndarray, companion_probs: np.ndarray | None, temperature: float | None = None) -> np.ndarray:
        """The transformer's probabilities with the companion's (`companion_proba`) mixed in at meta.lexical_weight,
        scaled by the companion's blend temperature (or `temperature`), when the model has a companion."""
        if self.lexical is None:
            return probs
        return self.lexical.mix(probs, companion_probs, self.meta.lexical_weight, temperature)

    def predict(self, texts: list[str], progress: bool = False) -> list[dict]:
        """For each text: the label, its probability, the probability of every label, and `labels`.

        See `decide`."""
        return [self.decide(p) for p in self.predict_proba(texts, progress)]

    def decide(self, probs: np.ndarray) -> dict:
        """One text's probabilities as a prediction: `label`, the most probable label (the main one) and `score`, its
        probability; `probs`; `labels`, the main label and, for a multi_label model, every other label whose
        probability reaches its threshold (most probable first; a threshold of 1.0 means never; a single-label model
        gives the main label alone).

        With min_confidence, a prediction whose score is below it is flagged `low_confidence` and routed to the
        model's fallback label (when it has one); no label of it is then kept, since none is more probable.
        """
        best = int(probs.argmax())
        cuts = [self.meta.thresholds.get(label, UNTUNED) for label in self.labels] if self.meta.multi_label else []
        others = [i for i in np.argsort(-probs, kind="stable") if cuts and i != best and cuts[i] < NEVER and probs[i] >= cuts[i]]
        result = {
            "label": self.labels[best],
            "labels": [self.labels[i] for i in [best, *others]],
            "score": round(float(probs[best]), 6),
            "probs": {label: round(float(v), 6) for label, v in zip(self.labels, probs)},
        }
        if self.min_confidence:  # every row carries the flag, so CSV columns stay the same
            result["low_confidence"] = bool(probs[best] < self.min_confidence)
            if result["low_confidence"] and self.meta.fallback_label is not None:
                result["label"] = self.meta.fallback_label
                result["labels"] = [self.meta.fallback_label]
        return result

    def predict_records(self, records: Iterable[dict], chunk_size: int = 1024, progress: bool = False) -> Iterator[dict]:
        """Stream records (each with `text`) through the model in chunks, so memory stays flat on any input size."""
        bar = tqdm(desc="paragraphs", unit="para", disable=not progress)
        chunk: list[dict] = []
        for record in records:
            chunk.append(record)
            if len(chunk) >= chunk_size:
                yield from self._predict_chunk(chunk)
                bar.update(len(chunk))
                chunk = []
        if chunk:
            yield from self._predict_chunk(chunk)
            bar.update(len(chunk))
        bar.close()

    def _predict_chunk(self, chunk: list[dict]) -> Iterator[dict]:
        for record, prediction in zip(chunk, self.predict([r["text"] for r in chunk])):
            yield {**record, **prediction}


class Ensemble(Predictor):
    """Several models with the same labels as one predictor: the mean of their calibrated probabilities.

    Low-confidence routing, the fallback label and (multi_label) the thresholds come from the first model.
    """

    def __init__(self, model_dirs: list[str | Path], batch_size: int | None = None, precision: str = "auto",
                 min_confidence: float = 0.0, quantize: bool = False):
        self.members = [Predictor(m, batch_size=batch_size, precision=precision, quantize=quantize) for m in model_dirs]
        check_same_labels(model_dirs, self.members, "an ensemble needs models of one label set")
        check_same_task(model_dirs, self.members, "an ensemble needs models of one task")
        first = self.members[0]
        self.model, self.tokenizer, self.meta, self.directory = None, first.tokenizer, first.meta, first.directory
        self.labels, self.max_length, self.stride, self.batch_size = first.labels, first.max_length, first.stride, first.batch_size
        self.precision, self.min_confidence = first.precision, min_confidence  # temperature: the first model's meta
        self.lexical = None  # each member blends its own

    def predict_proba(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """The mean over members of each one's calibrated, window-averaged probabilities."""
        return np.mean([member.predict_proba(texts, progress) for member in self.members], axis=0)


def check_same_labels(names: list[str | Path], predictors: list[Predictor], fix: str) -> None:
    """Models used together must share one label set in one order; the error names the first that differs."""
    first = predictors[0].labels
    for name, predictor in zip(names, predictors):
        if predictor.labels != first:
            raise EventClassifierError(f"{name}: its labels {predictor.labels} differ from {names[0]}'s {first}; {fix}")


def check_same_task(names: list[str | Path], predictors: list[Predictor], fix: str) -> None:
    """Models used together must share one task (single_label or multi_label); the error names the first that differs."""
    first = predictors[0].meta.task
    for name, predictor in zip(names, predictors):
        if predictor.meta.task != first:
            raise EventClassifierError(f"{name}: a {predictor.meta.task} model cannot join {names[0]}, a {first} one; {fix}")


def load_predictor(model_dirs: list[str | Path], **settings) -> Predictor:
    """One model folder gives a Predictor; several give an Ensemble averaging their probabilities."""
    if len(model_dirs) == 1:
        return Predictor(model_dirs[0], **settings)
    return Ensemble(model_dirs, **settings)
