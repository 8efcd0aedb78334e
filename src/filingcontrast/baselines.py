"""Baselines the fine-tuned model must beat, computed on the same pairs in the same run.

- `majority`: predict the winner position that was more frequent in the training split, with
  its training frequency as probability. Pairs are balanced by construction, so this is ~0.5.
- `signal_rule`: `signals.signal_score` of A's text vs B's; the higher expected return wins,
  ties are a coin flip (p = 0.5, half credit).
- `tfidf_logreg`: TF-IDF fitted on the training digests; a pair's feature vector is
  tfidf(A) - tfidf(B); logistic regression without intercept on the training pairs in both orders,
  so that P(A over B) = 1 - P(B over A) exactly (no position bias possible).
- `zero_shot` (in evaluate.py): the base model without the adapter, same prompt, same scoring.

Every function returns P(A better) per test pair (a numpy array), so all baselines share the
metric code.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from filingcontrast.pairs import a_won


def majority(train_rows: Sequence[dict], test_rows: Sequence[dict]) -> np.ndarray:
    """Constant P(A) = share of training pairs won by the first-shown filing (0.5 if no train)."""
    share = float(a_won(train_rows).mean()) if len(train_rows) else 0.5
    return np.full(len(test_rows), share)


def _digest(row: dict, side: str) -> str:
    return row["meta"][side].get("digest") or ""


def signal_rule(test_rows: Sequence[dict]) -> np.ndarray:
    """1 if signal_score(A) > signal_score(B), 0 if lower, 0.5 on ties (incl. no signals)."""
    from filingcontrast.signals import extract_signals, signal_score

    scores: dict[str, float] = {}  # a filing appears in several pairs: read each digest once

    def score(digest: str) -> float:
        if digest not in scores:
            scores[digest] = signal_score(extract_signals(digest))
        return scores[digest]

    out = np.empty(len(test_rows))
    for n, row in enumerate(test_rows):
        sa, sb = score(_digest(row, "a")), score(_digest(row, "b"))
        out[n] = 0.5 if sa == sb else float(sa > sb)
    return out


def tfidf_logreg(
    train_rows: Sequence[dict], test_rows: Sequence[dict], seed: int = 0, c: float = 1.0
) -> np.ndarray:
    """P(A better) from logistic regression on TF-IDF differences (see module docstring)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    y = a_won(train_rows)
    if len(train_rows) == 0 or len(test_rows) == 0:
        return np.full(len(test_rows), 0.5)
    texts = list(dict.fromkeys(_digest(r, s) for r in train_rows for s in ("a", "b")))
    vec = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=1, max_features=50000)
    vec.fit(texts)
    xa = vec.transform([_digest(r, "a") for r in train_rows])
    xb = vec.transform([_digest(r, "b") for r in train_rows])
    from scipy.sparse import vstack

    # Both orders: (A - B, y) and (B - A, 1 - y) make the fitted model antisymmetric.
    x = vstack([xa - xb, xb - xa])
    target = np.concatenate([y, 1 - y])
    clf = LogisticRegression(C=c, fit_intercept=False, max_iter=2000, random_state=seed)
    clf.fit(x, target)
    ta = vec.transform([_digest(r, "a") for r in test_rows])
    tb = vec.transform([_digest(r, "b") for r in test_rows])
    return clf.predict_proba(ta - tb)[:, 1]
