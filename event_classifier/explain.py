"""Why a paragraph got its label: word-level evidence from Captum, aggregated from word pieces to words.

Two attribution methods, both from Captum and both measured in benchmarks/speed.py (cost per paragraph, and how much
the label's probability falls when each paragraph's top 3 evidence words are deleted, against 3 random words):

- `occlusion` (the default): FeatureAblation with one feature per word: each word's pieces are replaced by [PAD] in
  turn and the fall of the label's calibrated log-probability is its weight. On our test split with the default
  model, deleting its top 3 words lowered the label's probability by 0.34 (random words: 0.03).
- `ig`: LayerIntegratedGradients on the word embeddings, from a baseline where every word piece is [PAD] (special
  tokens kept) to the paragraph, for the same log-probability; a word's weight is the sum over its pieces and
  embedding dimensions. About 20 % cheaper, less faithful by the same measure (0.22; random 0.004).

Weights are shares: each word's attribution divided by the sum of absolute attributions over the paragraph's words,
so they lie in [-1, 1]; a positive weight pushed towards the label, a negative one away from it. A paragraph longer
than the model's window is explained window by window (the same windows the Predictor averages) and a word seen in
two overlapping windows gets the mean of its two weights.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from typing import Iterable, Iterator

import numpy as np
import torch

from event_classifier.errors import EventClassifierError
from event_classifier.inference import Predictor

METHODS = ("occlusion", "ig")  # the first is the default: it measured more faithful (see above)
_HAS_WORD_CHARACTER = re.compile(r"\w")


class Explainer:
    """Word-level evidence for a Predictor's labels; shares the Predictor's model, tokenizer and windows."""

    def __init__(self, predictor: Predictor, method: str = METHODS[0], n_steps: int = 24, top_k: int = 8, batch_size: int = 8):
        if method not in METHODS:
            raise EventClassifierError(f"explanation method {method!r}: use one of {', '.join(METHODS)}")
        if predictor.model is None:
            raise EventClassifierError("explanations need one model: give a single --model, not an ensemble")
        if method == "ig" and (not isinstance(predictor.model, torch.nn.Module)
                               or any("quantized" in type(m).__module__ for m in predictor.model.modules())):
            raise EventClassifierError("integrated gradients need the model's PyTorch fp32 weights: drop --quantize, "
                                       "give the model folder rather than its ONNX export, or use --explain-method occlusion")
        self.predictor, self.method, self.n_steps, self.top_k, self.batch_size = predictor, method, n_steps, top_k, batch_size
        tokenizer = predictor.tokenizer
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids)))

    def _log_probability(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        logits = self.predictor.model(input_ids=input_ids, attention_mask=attention_mask).logits.float()
        scaled = logits / self.predictor.temperature
        # each label's own probability: a sigmoid per label for a multi_label model, as the Predictor computes it
        return torch.nn.functional.logsigmoid(scaled) if self.predictor.meta.multi_label else torch.log_softmax(scaled, dim=-1)

    def _token_weights(self, ids: torch.Tensor, mask: torch.Tensor, words: torch.Tensor, targets: list[int]) -> np.ndarray:
        """One weight per token (batch x length): for `ig` a piece's own share, for `occlusion` its word's."""
        from captum.attr import FeatureAblation, LayerIntegratedGradients

        special = torch.isin(ids, self.special_ids)
        baseline = torch.where(special, ids, torch.full_like(ids, self.pad_id))
        if self.method == "ig":
            attribution = LayerIntegratedGradients(self._log_probability, self.predictor.model.get_input_embeddings())
            result = attribution.attribute(ids, baselines=baseline, target=targets, additional_forward_args=(mask,),
                                           n_steps=self.n_steps, internal_batch_size=self.batch_size * self.n_steps)
            return result.sum(dim=-1).detach().numpy()
        with torch.no_grad():
            result = FeatureAblation(self._log_probability).attribute(
                ids, baselines=baseline, target=targets, additional_forward_args=(mask,), feature_mask=words + 1,
                perturbations_per_eval=self.batch_size)  # feature 0: special tokens and padding, never a word
        return result.numpy()

    def explain(self, texts: list[str], targets: list[str] | None = None) -> list[list[dict]]:
        """For each text, its `top_k` words with the largest absolute weight for its target label (default: its most
        probable label), strongest first: [{"token", "weight", "start", "end"}], start/end being character offsets."""
        if not texts:
            return []
        labels = self.predictor.labels
        if targets is None:
            targets = [labels[int(i)] for i in self.predictor.predict_proba(texts).argmax(axis=1)]
        unknown = sorted(set(targets) - set(labels))
        if unknown:
            raise EventClassifierError(f"cannot explain label(s) {unknown}: the model's labels are {labels}")
        encoded = self.predictor.tokenizer(texts, truncation=True, max_length=self.predictor.max_length,
                                           stride=self.predictor.stride, return_overflowing_tokens=True,
                                           return_offsets_mapping=True, padding=False)
        owners = list(encoded["overflow_to_sample_mapping"])
        totals: list[dict[tuple[int, int], list[float]]] = [defaultdict(lambda: [0.0, 0]) for _ in texts]
        order = np.argsort([len(w) for w in encoded["input_ids"]], kind="stable")
        for start in range(0, len(order), self.batch_size):
            chosen = [int(i) for i in order[start : start + self.batch_size]]
            spans, word_index = self._word_spans(encoded, chosen)
            padded = self.predictor.tokenizer.pad({"input_ids": [encoded["input_ids"][i] for i in chosen]}, return_tensors="pt")
            width = padded["input_ids"].shape[1]
            words = torch.tensor([row + [-1] * (width - len(row)) for row in word_index])
            weights = self._token_weights(padded["input_ids"], padded["attention_mask"], words,
                                          [labels.index(targets[owners[i]]) for i in chosen])
            for row, window in enumerate(chosen):
                for word, span in enumerate(spans[row]):
                    positions = [p for p, w in enumerate(word_index[row]) if w == word]
                    value = weights[row, positions].sum() if self.method == "ig" else weights[row, positions[0]]
                    entry = totals[owners[window]][span]
                    entry[0] += float(value)
                    entry[1] += 1
        return [self._top_words(text, total) for text, total in zip(texts, totals)]

    @staticmethod
    def _word_spans(encoded, windows: list[int]) -> tuple[list[list[tuple[int, int]]], list[list[int]]]:
        """Per window: the character span of each word, and the word (-1: none) of each token."""
        spans, word_index = [], []
        for window in windows:
            offsets, word_ids = encoded["offset_mapping"][window], encoded.word_ids(window)
            first: dict[int, int] = {}
            window_spans: list[tuple[int, int]] = []
            row = []
            for (begin, end), word in zip(offsets, word_ids):
                if word is None:
                    row.append(-1)
                    continue
                if word not in first:
                    first[word] = len(window_spans)
                    window_spans.append((begin, end))
                local = first[word]
                window_spans[local] = (min(window_spans[local][0], begin), max(window_spans[local][1], end))
                row.append(local)
            spans.append(window_spans)
            word_index.append(row)
        return spans, word_index

    def _top_words(self, text: str, totals: dict[tuple[int, int], list[float]]) -> list[dict]:
        means = {span: total / count for span, (total, count) in totals.items()}
        scale = sum(abs(v) for v in means.values()) or 1.0
        words = [{"token": text[s:e], "weight": round(v / scale, 4), "start": s, "end": e}
                 for (s, e), v in means.items() if _HAS_WORD_CHARACTER.search(text[s:e])]
        return sorted(words, key=lambda w: -abs(w["weight"]))[: self.top_k]

    def add_evidence(self, records: Iterable[dict], chunk_size: int = 64) -> Iterator[dict]:
        """Predicted records (with `text` and `probs`) with `evidence` added, explaining each one's most probable label."""
        chunk: list[dict] = []
        for record in records:
            chunk.append(record)
            if len(chunk) >= chunk_size:
                yield from self._explain_chunk(chunk)
                chunk = []
        yield from self._explain_chunk(chunk)

    def _explain_chunk(self, chunk: list[dict]) -> Iterator[dict]:
        targets = [max(r["probs"], key=r["probs"].get) for r in chunk]
        for record, evidence in zip(chunk, self.explain([r["text"] for r in chunk], targets)):
            yield {**record, "evidence": evidence}


def without_words(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` with the character spans removed."""
    for start, end in sorted(spans, reverse=True):
        text = text[:start] + text[end:]
    return " ".join(text.split())


def deletion_drop(predictor: Predictor, texts: list[str], evidence: list[list[dict]], k: int = 3,
                  seed: int = 0) -> dict[str, float]:
    """How faithful explanations are: the mean fall of the explained label's probability when each paragraph's `k`
    strongest supporting words are deleted, against deleting `k` words at random. Higher `evidence` than `random` is
    better."""
    rng = random.Random(seed)
    before = predictor.predict_proba(texts)
    targets = before.argmax(axis=1)
    chosen, random_cut = [], []
    for text, words in zip(texts, evidence):
        supporting = [w for w in words if w["weight"] > 0][:k]
        chosen.append(without_words(text, [(w["start"], w["end"]) for w in supporting]))
        spans = [m.span() for m in re.finditer(r"\w+", text)]
        random_cut.append(without_words(text, rng.sample(spans, min(len(supporting), len(spans)))))
    rows = np.arange(len(texts))
    result = {}
    for name, changed in (("evidence", chosen), ("random", random_cut)):
        after = predictor.predict_proba(changed)
        result[name] = round(float(np.mean(before[rows, targets] - after[rows, targets])), 4)
    return result
