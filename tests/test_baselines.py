"""Baselines: majority and TF-IDF + logistic regression on toy pairs."""

import numpy as np

from filingcontrast import baselines as B
from filingcontrast.metrics import accuracy

GOOD = ["earnings beat raised guidance record revenue", "strong beat guidance raised"]
BAD = ["earnings miss lowered guidance impairment", "ceo departure convertible notes miss"]


def _row(da, db, winner):
    return {"meta": {"winner": winner, "a": {"digest": da}, "b": {"digest": db}}}


def _toy(n, seed):
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        good = GOOD[rng.integers(2)] + f" filler{rng.integers(50)}"
        bad = BAD[rng.integers(2)] + f" filler{rng.integers(50)}"
        rows.append(_row(good, bad, "A") if rng.random() < 0.5 else _row(bad, good, "B"))
    return rows


def test_majority_is_train_share():
    train = [_row("x", "y", "A")] * 3 + [_row("x", "y", "B")]
    p = B.majority(train, [_row("x", "y", "B")] * 2)
    assert np.allclose(p, 0.75)
    assert np.allclose(B.majority([], [_row("x", "y", "A")]), 0.5)


def test_tfidf_logreg_separable_and_antisymmetric():
    train, test = _toy(60, 0), _toy(40, 1)
    p = B.tfidf_logreg(train, test)
    assert accuracy(p, [1 if r["meta"]["winner"] == "A" else 0 for r in test]) == 1.0
    swapped = [_row(r["meta"]["b"]["digest"], r["meta"]["a"]["digest"], "A") for r in test]
    assert np.allclose(B.tfidf_logreg(train, swapped), 1 - p)


def test_signal_rule_prefers_higher_signal_and_ties_are_coin_flips():
    from filingcontrast.signals import extract_signals, signal_score

    beat = "The Company reported quarterly EPS of $1.75 versus consensus of $1.20. Guidance raised."
    miss = (
        "The Company reported quarterly EPS of $0.80 versus consensus of $1.20. Guidance lowered."
    )
    if not signal_score(extract_signals(beat)) > signal_score(extract_signals(miss)):
        import pytest

        pytest.skip("signals.py does not score these phrases")
    p = B.signal_rule([_row(beat, miss, "A"), _row(miss, beat, "B"), _row("x", "x", "A")])
    assert list(p) == [1.0, 0.0, 0.5]


def test_tfidf_is_fitted_on_training_digests_only():
    """No leakage: the test rows neither add terms nor change the IDF weights, so a word only
    the test digests contain changes nothing, and a row's prediction does not depend on which
    other rows are scored with it."""
    train, test = _toy(60, 0), _toy(40, 1)
    p = B.tfidf_logreg(train, test)
    tagged = [
        _row(
            r["meta"]["a"]["digest"] + " unseenword", r["meta"]["b"]["digest"], r["meta"]["winner"]
        )
        for r in test
    ]
    np.testing.assert_allclose(B.tfidf_logreg(train, tagged), p, rtol=0, atol=1e-12)
    np.testing.assert_allclose(B.tfidf_logreg(train, test[:3]), p[:3], rtol=0, atol=1e-12)
