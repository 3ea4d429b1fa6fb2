"""The floor every figure is compared with: TF-IDF + logistic regression (scikit-learn) on the same train split."""

from __future__ import annotations

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline


def train_baseline(rows: list[dict], seed: int = 0):
    """Word 1-2 gram TF-IDF and class-balanced logistic regression."""
    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
        LogisticRegression(C=10.0, max_iter=2000, class_weight="balanced", random_state=seed),
    )
    return model.fit([r["text"] for r in rows], [r["label"] for r in rows])

