"""Calibrated P(A better): a position bias and a temperature fitted on the validation pairs.

The model's raw verdict in one order is the decision logit d = log P(" A") - log P(" B") at the
decision position (P(first shown is better) = sigmoid(d)). Two things keep that from being a
probability a user can act on: a position bias (the base model says "A" to most prompts, and a
few hundred training rows remove only part of it) and a scale (a briefly fine-tuned model's
logits are far too timid, or after long training too bold). Calibration maps, per order,

    d  ->  (d - bias) / temperature

and then averages the two orders as before: P(A) = (p_ab + 1 - p_ba) / 2. Both numbers are
fitted by maximum likelihood on the validation pairs in both orders (Platt scaling with the
slope kept positive, i.e. "contextual calibration" of the bias plus temperature scaling), never
on test pairs. They are stored with the adapter (`filingcontrast.json`, key `calibration`) and
applied by compare, rank and evaluate; evaluate also reports the uncalibrated figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from filingcontrast.errors import UserError

MIN_PAIRS = 8
"""Fewer validation pairs than this and no calibration is fitted (identity)."""
TEMPERATURE_RANGE = (0.02, 50.0)
"""Bounds of the fitted temperature: a few dozen validation pairs must not produce 0 or inf."""
_EPS = 1e-6


def logit(p: Any) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def sigmoid(z: Any) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


@dataclass(frozen=True)
class Calibration:
    """Per-order map d -> (d - bias) / temperature; the identity by default."""

    temperature: float = 1.0
    """Divides the decision logit (< 1 sharpens a timid model, > 1 softens a bold one)."""
    bias: float = 0.0
    """The decision logit the model gives the first-shown filing regardless of content."""
    n_pairs: int = 0
    """Validation pairs it was fitted on (0 = not fitted)."""
    log_loss_before: float | None = None
    """Per-order validation log-loss of the raw probabilities."""
    log_loss_after: float | None = None
    """Per-order validation log-loss after calibration."""

    def __post_init__(self) -> None:
        lo, hi = TEMPERATURE_RANGE
        if not (np.isfinite(self.temperature) and lo <= self.temperature <= hi):
            raise ValueError(f"temperature must be in [{lo}, {hi}], got {self.temperature}")
        if not np.isfinite(self.bias):
            raise ValueError(f"bias must be finite, got {self.bias}")

    @property
    def fitted(self) -> bool:
        return self.n_pairs > 0

    def per_order(self, p_first: Any) -> np.ndarray:
        """Calibrated P(first shown is better) from the raw one."""
        if not self.fitted:
            return np.asarray(p_first, dtype=np.float64)
        return sigmoid((logit(p_first) - self.bias) / self.temperature)

    def apply(self, p_ab: Any, p_ba: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(p_a, p_ab, p_ba) calibrated; p_a averages the two orders."""
        ab, ba = self.per_order(p_ab), self.per_order(p_ba)
        return (ab + 1.0 - ba) / 2.0, ab, ba

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Calibration:
        """From an adapter's metadata; `where` names the file for the one-line error."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise UserError(f"{where}: field calibration: expected an object")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise UserError(f"{where}: field calibration.{sorted(unknown)[0]}: unknown key")
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise UserError(f"{where}: field calibration: {exc}") from None


def _per_order_targets(p_ab: Any, p_ba: Any, winners: Sequence[str]) -> tuple[np.ndarray, ...]:
    """Stack both orders: raw P(first) and whether the first shown won."""
    a_won = np.array([w == "A" for w in winners], dtype=np.float64)
    p = np.concatenate([np.asarray(p_ab, float), np.asarray(p_ba, float)])
    y = np.concatenate([a_won, 1.0 - a_won])
    return p, y


def _nll(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, _EPS, 1 - _EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def fit_calibration(p_ab: Any, p_ba: Any, winners: Sequence[str]) -> Calibration:
    """Maximum-likelihood bias and temperature on labelled pairs scored in both orders
    (`p_ab` = P(first) with A first, `p_ba` = P(first) with B first, winners "A"/"B")."""
    from scipy.optimize import minimize

    if len(winners) < MIN_PAIRS:
        return Calibration()
    p, y = _per_order_targets(p_ab, p_ba, winners)
    d = logit(p)
    lo, hi = np.log(TEMPERATURE_RANGE)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        log_t, bias = theta
        t = np.exp(log_t)
        q = sigmoid((d - bias) / t)
        # d/dz of the mean NLL is (q - y) / n; chain rule through z = (d - bias) / t.
        g = (q - y) / d.size
        grad = np.array([np.sum(g * -(d - bias) / t), np.sum(g * -1.0 / t)])
        return _nll(q, y), grad

    start = np.array([0.0, float(np.mean(d))])
    res = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=[(lo, hi), (None, None)])
    log_t, bias = (float(v) for v in res.x)
    cal = Calibration(float(np.clip(np.exp(log_t), *TEMPERATURE_RANGE)), bias, len(winners))
    before, after = _nll(p, y), _nll(cal.per_order(p), y)
    return Calibration(cal.temperature, cal.bias, cal.n_pairs, before, after)
