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

import dataclasses
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.special import expit as sigmoid
from scipy.special import logit as _scipy_logit

from filingcontrast.errors import UserError
from filingcontrast.metrics import EPS, log_loss

MIN_PAIRS = 8
"""Fewer validation pairs than this and no calibration is fitted (identity)."""
TEMPERATURE_RANGE = (0.02, 50.0)
"""Bounds of the fitted temperature: a few dozen validation pairs must not produce 0 or inf."""


def logit(p: Any) -> np.ndarray:
    """scipy's logit with p clipped like metrics.log_loss (0 and 1 stay finite)."""
    return _scipy_logit(np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS))


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
        for name in ("temperature", "bias", "log_loss_before", "log_loss_after"):
            value = getattr(self, name)
            if value is None and name.startswith("log_loss"):
                continue  # not fitted
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number, got {value!r}")
        if isinstance(self.n_pairs, bool) or not isinstance(self.n_pairs, int) or self.n_pairs < 0:
            raise ValueError(f"n_pairs must be a count (an integer >= 0), got {self.n_pairs!r}")
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
        """(p_a, p_ab, p_ba) calibrated; p_a averages the two orders, written as
        0.5 + (ab - ba) / 2 so that equal orders (a filing against itself) give exactly 0.5
        (`(ab + 1 - ba) / 2` rounds to 0.49999999999999994 for some ab, a "B" verdict)."""
        ab, ba = self.per_order(p_ab), self.per_order(p_ba)
        return 0.5 + (ab - ba) / 2.0, ab, ba

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


def fit_calibration(p_ab: Any, p_ba: Any, winners: Sequence[str]) -> Calibration:
    """Maximum-likelihood bias and temperature on labelled pairs scored in both orders
    (`p_ab` = P(first) with A first, `p_ba` = P(first) with B first, winners "A"/"B")."""
    from scipy.optimize import minimize

    if len(winners) < MIN_PAIRS:
        return Calibration()
    p, y = _per_order_targets(p_ab, p_ba, winners)
    d = logit(p)

    def nll(theta: np.ndarray) -> float:  # theta = (log temperature, bias)
        return log_loss(sigmoid((d - theta[1]) / np.exp(theta[0])), y)

    bounds = [tuple(np.log(TEMPERATURE_RANGE)), (None, None)]
    res = minimize(nll, np.array([0.0, float(np.mean(d))]), method="L-BFGS-B", bounds=bounds)
    temperature = float(np.clip(np.exp(res.x[0]), *TEMPERATURE_RANGE))
    fitted = Calibration(temperature, float(res.x[1]), len(winners))
    return dataclasses.replace(
        fitted, log_loss_before=log_loss(p, y), log_loss_after=log_loss(fitted.per_order(p), y)
    )
