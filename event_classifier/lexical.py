"""A lexical companion that travels inside a model folder: TF-IDF + logistic regression trained on the same rows as the
transformer, whose probabilities are blended with the transformer's (`train.lexical_weight`).

Word n-grams see what a fine-tuned MiniLM misses on a few hundred real snippets (a toxic agent's name, a stock phrase
of one source), and its errors differ from the transformer's: on the real-news benchmark, the mean of the two beat
the transformer alone for every seed (README "Levers tried"). It is saved as plain JSON (vocabulary, idf, weights),
so that loading a model folder never unpickles code.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.special import softmax

from event_classifier.baseline import train_baseline
from event_classifier.errors import EventClassifierError
from event_classifier.io import atomic_write_json

LEXICAL_FILE = "lexical.json"
ABSENT = -1.0e9  # the bias of a label the training rows never had: probability 0


class LexicalModel:
    """TF-IDF (word 1-2 grams, sublinear tf) and multinomial logistic regression, predicting in `labels` order."""

    def __init__(self, labels: list[str], vocabulary: list[str], idf: np.ndarray, coef: np.ndarray, bias: np.ndarray,
                 ngram_range: tuple[int, int], sublinear_tf: bool, blend_temperature: float = 1.0):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.labels, self.coef, self.bias = labels, coef, bias
        # applied to the log of the blend (transformer + companion), fitted on dev: the companion's probabilities are
        # flatter than the calibrated transformer's, so their mean would be under-confident
        self.blend_temperature = blend_temperature
        self.ngram_range, self.sublinear_tf = tuple(ngram_range), sublinear_tf
        self.vectorizer = TfidfVectorizer(ngram_range=self.ngram_range, sublinear_tf=sublinear_tf,
                                          vocabulary={term: i for i, term in enumerate(vocabulary)})
        self.vectorizer.idf_ = idf  # a fixed vocabulary and idf: transform() needs no fitting

    @classmethod
    def fit(cls, rows: list[dict], labels: list[str], seed: int = 0, blend_temperature: float = 1.0) -> "LexicalModel":
        """Train on labelled rows (`text`, `label`) with the project's TF-IDF baseline recipe."""
        pipeline = train_baseline(rows, seed)
        vectorizer, classifier = pipeline.steps[0][1], pipeline.steps[1][1]
        classes = list(classifier.classes_)
        coef, bias = classifier.coef_, classifier.intercept_
        if len(classes) == 2:  # a binary model keeps one row; softmax([-z/2, z/2]) is its sigmoid(z)
            coef, bias = np.vstack([-coef / 2, coef / 2]), np.array([-bias[0] / 2, bias[0] / 2])
        full_coef = np.zeros((len(labels), coef.shape[1]))
        full_bias = np.full(len(labels), ABSENT)
        for row, label in enumerate(classes):
            full_coef[labels.index(label)], full_bias[labels.index(label)] = coef[row], bias[row]
        vocabulary = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get)
        return cls(labels, vocabulary, vectorizer.idf_, full_coef, full_bias, vectorizer.ngram_range, vectorizer.sublinear_tf,
                   blend_temperature)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return softmax(self.vectorizer.transform(texts) @ self.coef.T + self.bias, axis=1)

    def mix(self, probs: np.ndarray, own: np.ndarray, weight: float, temperature: float | None = None) -> np.ndarray:
        """The transformer's probabilities and this model's (`own`) mixed at `weight`, then scaled by the blend
        temperature (this model's, unless `temperature` is given)."""
        mixed = (1 - weight) * probs + weight * own
        temperature = self.blend_temperature if temperature is None else temperature
        return mixed if temperature == 1 else softmax(np.log(np.clip(mixed, 1e-12, None)) / temperature, axis=1)

    def save(self, directory: Path) -> None:
        vocabulary = sorted(self.vectorizer.vocabulary_, key=self.vectorizer.vocabulary_.get)
        atomic_write_json(Path(directory) / LEXICAL_FILE, {
            "labels": self.labels, "ngram_range": list(self.ngram_range), "sublinear_tf": self.sublinear_tf,
            "blend_temperature": self.blend_temperature,
            "vocabulary": vocabulary, "idf": np.round(self.vectorizer.idf_, 6).tolist(),
            "coef": np.round(self.coef, 6).tolist(), "bias": np.round(self.bias, 6).tolist()})

    @classmethod
    def load(cls, directory: Path, labels: list[str]) -> "LexicalModel":
        path = Path(directory) / LEXICAL_FILE
        fix = "restore the model folder, or retrain it"
        if not path.is_file():
            raise EventClassifierError(f"{path}: missing; this model blends a TF-IDF companion (lexical_weight in "
                                       f"event_classifier.json) saved in that file; {fix}")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            model = cls(raw["labels"], raw["vocabulary"], np.asarray(raw["idf"], dtype=float),
                        np.asarray(raw["coef"], dtype=float), np.asarray(raw["bias"], dtype=float),
                        raw["ngram_range"], bool(raw["sublinear_tf"]), float(raw["blend_temperature"]))
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
            raise EventClassifierError(f"{path}: not a valid lexical model ({type(exc).__name__}); {fix}") from None
        terms = len(model.vectorizer.vocabulary)
        shapes_fit = model.coef.shape == (len(model.labels), terms) and (len(model.bias), len(model.vectorizer.idf_)) == model.coef.shape
        if model.labels != labels or not shapes_fit:
            raise EventClassifierError(f"{path}: labels {model.labels} or weight shapes do not fit the model's labels "
                                       f"{labels}; {fix}")
        return model


def fit_companion(config, rows: list[dict], selected: LexicalModel | None = None) -> LexicalModel | None:
    """The companion a Config asks for (train.lexical_weight), on the rows its transformer trains on; None without.
    For a refit, `selected` is the selection run's companion, whose blend temperature (fitted on dev) is kept."""
    if not config.train.lexical_weight:
        return None
    return LexicalModel.fit(rows, config.label_names, config.train.seed, selected.blend_temperature if selected else 1.0)
