"""Pure evaluation metrics on pairwise verdicts: no model, no torch, no I/O.

Conventions: `p_a` is the predicted probability that filing A had the better abnormal return,
`y` is 1 when A truly won and 0 when B won. A prediction of exactly 0.5 is a coin flip and earns
half credit in `accuracy` (so a constant-0.5 predictor scores 0.5, honestly).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

EPS = 1e-7
# Confidence levels of a verdict from P(A better), consistent with the training labels: pairs
# labels a pair high/medium/low when z = gap / (sqrt(2) * sigma) >= 1.0 / >= 0.5. Under Gaussian
# noise the probability that the expected-better filing wins is Phi(z), so the same levels on
# max(p, 1 - p) are Phi(1.0) = 0.841 and Phi(0.5) = 0.691 (tests check this against pairs.py).
CONFIDENCE_HIGH = 0.8413447460685429
CONFIDENCE_MEDIUM = 0.6914624612740131


def _arrays(p_a: Sequence[float], y: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(p_a, dtype=float)
    t = np.asarray(y, dtype=float)
    if p.shape != t.shape:
        raise ValueError(f"p_a has shape {p.shape}, y has shape {t.shape}")
    if not np.isfinite(p).all():  # NaN > 0.5 is False: it would count as a "B" verdict
        raise ValueError(f"p_a: {int((~np.isfinite(p)).sum())} of {p.size} values not finite")
    return p, t


def correctness(p_a: Sequence[float], y: Sequence[int]) -> np.ndarray:
    """Per-pair credit: 1 right, 0 wrong, 0.5 for an exact coin flip (p == 0.5)."""
    p, t = _arrays(p_a, y)
    hit = ((p > 0.5) == (t > 0.5)).astype(float)
    return np.where(p == 0.5, 0.5, hit)


def accuracy(p_a: Sequence[float], y: Sequence[int]) -> float:
    c = correctness(p_a, y)
    return float(c.mean()) if c.size else float("nan")


SMALL_SAMPLE = 30
"""Below this many pairs an accuracy's interval is Wilson's, not the bootstrap's."""


def wilson_ci(successes: float, n: int, level: float = 0.95) -> list[float]:
    """Wilson score interval of a proportion (`successes` may count ties as halves)."""
    from statistics import NormalDist

    if n <= 0:
        return [float("nan"), float("nan")]
    z = NormalDist().inv_cdf((1 + level) / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [float(max(0.0, centre - half)), float(min(1.0, centre + half))]


def bootstrap_ci(
    values: Sequence[float], n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> list[float]:
    """Interval of the mean of accuracy credits `values` (1 right, 0.5 tie, 0 wrong): the
    percentile bootstrap (the normal approximation if n_boot=0), or the Wilson score interval
    for fewer than SMALL_SAMPLE values or when all are equal, where resampling collapses to a
    point (8 right of 8 is [0.68, 1.0], not [1.0, 1.0]). All coin flips (a constant 0.5, e.g.
    the majority baseline on position-balanced pairs) earn exactly 0.5: [0.5, 0.5]."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return [float("nan"), float("nan")]
    if np.all(v == 0.5):  # every pair a coin flip: exactly 0.5 in expectation, whatever the pairs
        return [0.5, 0.5]
    if v.size < SMALL_SAMPLE or np.all(v == v[0]):
        return wilson_ci(float(v.sum()), int(v.size), level)
    if n_boot <= 0:
        from statistics import NormalDist

        half = NormalDist().inv_cdf((1 + level) / 2) * v.std(ddof=1) / np.sqrt(v.size)
        return [float(v.mean() - half), float(v.mean() + half)]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, v.size, size=(n_boot, v.size))  # (n_boot, n)
    means = v[idx].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return [float(lo), float(hi)]


def paired_comparison(credit_a: Sequence[float], credit_b: Sequence[float]) -> dict:
    """Two predictors on the same pairs: the discordant pairs (right in one, wrong in the
    other; a coin flip, credit 0.5, in either is neither) and McNemar's exact two-sided test on
    them. With ~100 pairs two accuracies' intervals overlap even when one predictor wins most
    of the pairs where they differ; this uses exactly those pairs."""
    from scipy.stats import binomtest

    a = np.asarray(credit_a, dtype=float)
    b = np.asarray(credit_b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"credits have shapes {a.shape} and {b.shape}")
    only_a = int(((a == 1) & (b == 0)).sum())
    only_b = int(((b == 1) & (a == 0)).sum())
    n = only_a + only_b
    return {
        "only_first_right": only_a,
        "only_second_right": only_b,
        "coin_flip_pairs": int(((a == 0.5) | (b == 0.5)).sum()),
        "mcnemar_p": float(binomtest(only_a, n).pvalue) if n else 1.0,
    }


def gap_closed(accuracy: float | None, ceiling: float | None) -> float | None:
    """Share of the distance from chance (0.5) to the Bayes ceiling an accuracy covers (None
    without a ceiling above chance); below 0 under chance, above 1 past the ceiling."""
    if accuracy is None or ceiling is None or ceiling <= 0.5:
        return None
    return (accuracy - 0.5) / (ceiling - 0.5)


def log_loss(p_a: Sequence[float], y: Sequence[int]) -> float:
    """Mean negative log-likelihood of the true winner (natural log; p clipped to [eps, 1-eps])."""
    p, t = _arrays(p_a, y)
    p = np.clip(p, EPS, 1 - EPS)
    return float(-(t * np.log(p) + (1 - t) * np.log(1 - p)).mean())


def brier(p_a: Sequence[float], y: Sequence[int]) -> float:
    p, t = _arrays(p_a, y)
    return float(((p - t) ** 2).mean())


def reliability(p_a: Sequence[float], y: Sequence[int], bins: int = 10) -> list[dict]:
    """Reliability diagram data: equal-width bins of P(A) with mean prediction and win rate of A."""
    p, t = _arrays(p_a, y)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # np.digitize with the right edge folded into the last bin.
    which = np.clip(np.digitize(p, edges[1:-1], right=False), 0, bins - 1)
    rows = []
    for b in range(bins):
        mask = which == b
        n = int(mask.sum())
        rows.append(
            {
                "lo": float(edges[b]),
                "hi": float(edges[b + 1]),
                "n": n,
                "mean_p": float(p[mask].mean()) if n else None,
                "frac_a": float(t[mask].mean()) if n else None,
            }
        )
    return rows


def ece(p_a: Sequence[float], y: Sequence[int], bins: int = 10) -> float:
    """Expected calibration error: sum over bins of (n_b / N) * |mean p - frequency of A|."""
    p, _ = _arrays(p_a, y)
    if p.size == 0:
        return float("nan")
    total = 0.0
    for row in reliability(p_a, y, bins):
        if row["n"]:
            total += row["n"] / p.size * abs(row["mean_p"] - row["frac_a"])
    return float(total)


def swap_consistency(p_ab: Sequence[float], p_ba: Sequence[float]) -> float:
    """Share of pairs where the same filing is chosen in both orders.

    `p_ab` = P(first shown) with A first, `p_ba` = P(first shown) with B first; consistent when
    A is chosen in (A,B) and not chosen (i.e. B loses) in (B,A), or vice versa. An order at
    exactly 0.5 chooses neither: half credit, as a coin flip breaking the tie would earn.
    """
    ab = np.asarray(p_ab, dtype=float)
    ba = np.asarray(p_ba, dtype=float)
    if ab.size == 0:
        return float("nan")
    same = ((ab > 0.5) == (ba < 0.5)).astype(float)
    return float(np.where((ab == 0.5) | (ba == 0.5), 0.5, same).mean())


def confidence_level(p_a: float) -> str:
    """`high` when max(p, 1-p) >= 0.841, `medium` when >= 0.691, else `low`."""
    m = max(p_a, 1 - p_a)
    if m >= CONFIDENCE_HIGH:
        return "high"
    if m >= CONFIDENCE_MEDIUM:
        return "medium"
    return "low"


def prob_metrics(
    p_a: Sequence[float], y: Sequence[int], bins: int = 10, n_boot: int = 1000, seed: int = 0
) -> dict:
    """Accuracy with bootstrap CI plus the probability metrics, as one JSON-ready dict."""
    c = correctness(p_a, y)
    return {
        "n": int(c.size),
        "accuracy": accuracy(p_a, y),
        "accuracy_ci": bootstrap_ci(c, n_boot, seed),
        "log_loss": log_loss(p_a, y),
        "brier": brier(p_a, y),
        "ece": ece(p_a, y, bins),
    }


def grouped_accuracy(
    groups: Sequence[Sequence[str]], credit: Sequence[float], n_boot: int = 0, seed: int = 0
) -> dict[str, dict]:
    """Accuracy per group key; a pair counts in every group it belongs to (e.g. each item)."""
    buckets: dict[str, list[float]] = {}
    for keys, c in zip(groups, credit, strict=True):
        for key in dict.fromkeys(keys):
            buckets.setdefault(key, []).append(float(c))
    out = {}
    for key in sorted(buckets):
        vals = buckets[key]
        row = {"n": len(vals), "accuracy": float(np.mean(vals))}
        if n_boot:
            row["accuracy_ci"] = bootstrap_ci(vals, n_boot, seed)
        out[key] = row
    return out


def spearman_ic(scores: Sequence[float], returns: Sequence[float]) -> float | None:
    """Spearman rank correlation of scores with realized returns (None if undefined)."""
    from scipy.stats import spearmanr

    s = np.asarray(scores, dtype=float)
    r = np.asarray(returns, dtype=float)
    if s.size < 3 or np.all(s == s[0]) or np.all(r == r[0]):
        return None
    rho = spearmanr(s, r).statistic
    return None if np.isnan(rho) else float(rho)


def long_short_spread(
    scores: Sequence[float], returns: Sequence[float], quantiles: int = 5
) -> float | None:
    """Mean return of the top score quantile minus the bottom one (equal weights). Filings
    tied on the score at a quantile's edge share its remaining places equally, so the result
    does not depend on the input order; None when every score is equal (no ranking)."""
    s = np.asarray(scores, dtype=float)
    r = np.asarray(returns, dtype=float)
    if s.size < 2 or np.all(s == s[0]):
        return None
    m = max(1, s.size // quantiles)
    return _quantile_mean(-s, r, m) - _quantile_mean(s, r, m)


def _quantile_mean(s: np.ndarray, r: np.ndarray, m: int) -> float:
    """Mean of `r` over the m lowest `s`, ties at the cut-off weighted by the places left."""
    cut = np.sort(s)[m - 1]
    below, at = s < cut, s == cut
    weights = below.astype(float)
    weights[at] = (m - below.sum()) / at.sum()
    return float((weights * r).sum() / m)
