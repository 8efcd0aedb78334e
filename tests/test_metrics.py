"""Pure metrics on hand-computed examples (filingcontrast.metrics)."""

import math

import numpy as np
import pytest

from filingcontrast import metrics as M


def test_accuracy_half_credit_for_coin_flips():
    assert M.accuracy([0.9, 0.2, 0.5, 0.7], [1, 0, 1, 0]) == pytest.approx((1 + 1 + 0.5 + 0) / 4)


def test_non_finite_predictions_are_refused():
    """Regression: NaN > 0.5 is False, so a NaN from the scorer scored as a right "B" verdict."""
    with pytest.raises(ValueError, match="1 of 2 values not finite"):
        M.accuracy([float("nan"), 0.2], [0, 0])


def test_normal_interval_honours_the_level():
    values = [0.0, 1.0] * 20
    wide, narrow = M.bootstrap_ci(values, 0), M.bootstrap_ci(values, 0, level=0.5)
    assert narrow[1] - narrow[0] == pytest.approx((wide[1] - wide[0]) * 0.6745 / 1.96, rel=1e-3)


def test_log_loss_and_brier_by_hand():
    p, y = [0.8, 0.4], [1, 0]
    assert M.log_loss(p, y) == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2)
    assert M.brier(p, y) == pytest.approx((0.2**2 + 0.4**2) / 2)


def test_bootstrap_ci_contains_point_and_narrows_with_n():
    rng = np.random.default_rng(1)
    small = rng.integers(0, 2, 40).astype(float)
    big = rng.integers(0, 2, 4000).astype(float)
    lo, hi = M.bootstrap_ci(small, 500, seed=0)
    assert lo <= small.mean() <= hi
    blo, bhi = M.bootstrap_ci(big, 500, seed=0)
    assert blo <= big.mean() <= bhi
    assert bhi - blo < hi - lo


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1.0] * 8, [0.6756, 1.0]),  # 8 of 8: the bootstrap said [1.0, 1.0]
        ([0.0], [0.0, 0.7935]),  # one pair, wrong
        ([1.0, 0.0, 0.5, 1.0], [0.2194, 0.9081]),  # a tie counts half
        ([1.0] * 60, [0.9398, 1.0]),  # all equal, however many
        ([0.5] * 40, [0.5, 0.5]),  # all coin flips: exactly 0.5, not an interval around it
    ],
)
def test_small_or_uniform_samples_get_the_wilson_interval(values, expected):
    """Regression: by-item and by-confidence cells of a few pairs, all right (or all wrong),
    had zero-width intervals, a certainty the data does not give."""
    for n_boot in (0, 1000):
        assert M.bootstrap_ci(values, n_boot, seed=0) == pytest.approx(expected, abs=1e-4)


def test_wilson_ci_by_hand():
    # 5 of 10 at 95 %: centre 0.5, half-width z*sqrt(.25/10 + z^2/400)/(1 + z^2/10)
    z = 1.959963984540054
    half = z * math.sqrt(0.025 + z * z / 400) / (1 + z * z / 10)
    assert M.wilson_ci(5, 10) == pytest.approx([0.5 - half, 0.5 + half])


def test_ece_perfectly_calibrated_vs_miscalibrated():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 20000)
    y = (rng.uniform(0, 1, p.size) < p).astype(int)  # outcomes drawn with probability p
    assert M.ece(p, y, 10) < 0.02
    over = np.where(p > 0.5, 0.99, 0.01)  # same ranking, overconfident
    assert M.ece(over, y, 10) > 0.2
    # A toy by hand: one bin with p=0.8 and 50% A wins -> ECE 0.3.
    assert M.ece([0.8, 0.8], [1, 0], 10) == pytest.approx(0.3)


def test_reliability_bins_cover_all_rows():
    rows = M.reliability([0.0, 0.05, 0.55, 1.0], [0, 0, 1, 1], 10)
    assert sum(r["n"] for r in rows) == 4
    assert rows[-1]["n"] == 1 and rows[-1]["frac_a"] == 1.0


def test_swap_consistency():
    # pair 1: A in (A,B), B first in (B,A) loses -> consistent; pair 2: first shown always wins.
    assert M.swap_consistency([0.8, 0.7], [0.3, 0.9]) == pytest.approx(0.5)
    # An order at exactly 0.5 chooses neither filing: half credit, never full.
    assert M.swap_consistency([0.5, 0.5], [0.7, 0.5]) == pytest.approx(0.5)


def test_confidence_levels():
    assert [M.confidence_level(p) for p in (0.9, 0.1, 0.75, 0.65)] == [
        "high",
        "high",
        "medium",
        "low",
    ]


def test_confidence_thresholds_match_pairs_labels():
    pairs = pytest.importorskip("filingcontrast.pairs")
    from scipy.stats import norm

    assert M.CONFIDENCE_HIGH == pytest.approx(norm.cdf(pairs.CONFIDENCE_HIGH))
    assert M.CONFIDENCE_MEDIUM == pytest.approx(norm.cdf(pairs.CONFIDENCE_MEDIUM))


def test_quintile_spread_sign_and_ic():
    scores = np.arange(50, dtype=float)
    rets = scores * 0.001
    assert M.long_short_spread(scores, rets) > 0
    assert M.long_short_spread(scores, -rets) < 0
    assert M.spearman_ic(scores, rets) == pytest.approx(1.0)
    assert M.spearman_ic([1, 1, 1], [1, 2, 3]) is None


def test_quintile_spread_does_not_depend_on_the_order_of_tied_scores():
    """Regression: with tied scores the stable sort put whichever filing came first in a
    quintile, so reversing the input flipped the spread's sign (all equal: +8 / -8)."""
    rets = np.arange(10, dtype=float)
    assert M.long_short_spread(np.zeros(10), rets) is None
    scores = np.array([0, 0, 1, 1, 1, 1, 1, 1, 2, 2], dtype=float)
    assert M.long_short_spread(scores, rets) == pytest.approx(17 / 2 - 1 / 2)
    # Four filings tied at the bottom cut-off share its one place left (0.25 each), in any order.
    scores = np.array([0, 1, 1, 1, 1, 2, 3, 4, 5, 6], dtype=float)
    forward = M.long_short_spread(scores, rets)
    backward = M.long_short_spread(scores[::-1], rets[::-1])
    assert forward == pytest.approx(backward)
    assert forward == pytest.approx((8 + 9) / 2 - (0 + 2.5) / 2)


def test_grouped_accuracy_counts_pair_in_each_group():
    out = M.grouped_accuracy([["2.02", "5.02"], ["2.02"]], [1.0, 0.0])
    assert out["2.02"] == {"n": 2, "accuracy": 0.5}
    assert out["5.02"] == {"n": 1, "accuracy": 1.0}


# Regressions from a mutation audit: each test pins a documented formula by hand.


def test_normal_interval_by_hand():
    values = [1.0] * 24 + [0.0] * 12 + [0.5] * 4  # 40 credits, above the Wilson cut-off
    v = np.asarray(values)
    half = 1.959963984540054 * v.std(ddof=1) / math.sqrt(v.size)
    assert M.bootstrap_ci(values, 0) == pytest.approx([v.mean() - half, v.mean() + half])


def test_bootstrap_interval_is_the_central_95_percent():
    """The percentile bootstrap's 2.5 % and 97.5 % quantiles: on 400 coin-like credits they
    agree with the normal interval (a 90 % interval would be 16 % narrower)..."""
    v = np.array([1.0, 0.0] * 200)
    lo, hi = M.bootstrap_ci(v, 4000, seed=3)
    nlo, nhi = M.bootstrap_ci(v, 0)
    assert hi - lo == pytest.approx(nhi - nlo, rel=0.05)
    assert (lo + hi) / 2 == pytest.approx(0.5, abs=0.005)
    # ... and are exactly the quantiles of the same resampled means.
    rng = np.random.default_rng(3)
    means = v[rng.integers(0, v.size, size=(4000, v.size))].mean(axis=1)
    assert [lo, hi] == pytest.approx(list(np.quantile(means, [0.025, 0.975])))


def test_a_pair_counts_once_per_group_even_if_both_filings_share_the_item():
    out = M.grouped_accuracy([["2.02", "2.02"], ["2.02", "5.02"]], [1.0, 0.0])
    assert out["2.02"] == {"n": 2, "accuracy": 0.5}
    assert out["5.02"] == {"n": 1, "accuracy": 0.0}


def test_reliability_bin_edges_belong_to_the_upper_bin_and_ece_by_hand():
    rows = M.reliability([0.5, 0.55], [1, 0], 10)
    assert [r["n"] for r in rows] == [0, 0, 0, 0, 0, 2, 0, 0, 0, 0]  # [0.5, 0.6) holds 0.5
    assert rows[5]["mean_p"] == pytest.approx(0.525) and rows[5]["frac_a"] == 0.5
    assert M.ece([0.5, 0.55], [1, 0], 10) == pytest.approx(0.025)


def test_log_loss_clips_certain_predictions():
    assert M.log_loss([1.0, 0.0], [1, 0]) == pytest.approx(-math.log(1 - 1e-7))
    assert M.log_loss([0.0, 1.0], [1, 0]) == pytest.approx(-math.log(1e-7))  # finite, ~16.1


def test_mcnemar_coin_flips_are_not_discordant():
    a = [0.5, 0.5, 1.0, 0.0, 1.0, 1.0, 1.0]
    b = [1.0, 0.0, 0.0, 1.0, 0.0, 0.5, 1.0]
    out = M.paired_comparison(a, b)
    assert out == {
        "only_first_right": 2,  # pairs 3 and 5
        "only_second_right": 1,  # pair 4; pair 1 (a coin flip vs right) is not discordant
        "coin_flip_pairs": 3,
        "mcnemar_p": pytest.approx(1.0),  # 2 of 3 discordant: two-sided binomial p = 1
    }
    swapped = M.paired_comparison(b, a)
    assert (swapped["only_first_right"], swapped["only_second_right"]) == (1, 2)


def test_swap_consistency_single_orders():
    assert M.swap_consistency([0.8], [0.3]) == 1.0  # A chosen first, A chosen second
    assert M.swap_consistency([0.8], [0.7]) == 0.0  # first shown always wins


def test_confidence_thresholds_are_inclusive():
    assert M.confidence_level(M.CONFIDENCE_HIGH) == "high"
    assert M.confidence_level(M.CONFIDENCE_MEDIUM) == "medium"


def test_thirty_pairs_get_the_bootstrap_not_wilson():
    values = [1.0] * 20 + [0.0] * 10  # exactly SMALL_SAMPLE
    assert M.bootstrap_ci(values, 0) != pytest.approx(M.wilson_ci(20, 30))
    assert M.bootstrap_ci(values[:-1], 0) == pytest.approx(M.wilson_ci(20, 29))
