"""A metric's domain: where its values can lie, so that what the analysis shows stays possible.

A count is a whole number, never negative; a sum of non-negative amounts is never negative; a share
(a rate in percent) lies between 0 and 1. Anomaly bands, forecast points and forecast intervals are
kept inside the domain: a normal range of "-12 to 99 orders" or a churn forecast of "-3 %" says
nothing a reader can use. Which domain a metric has is decided where its definition is known
(`kpilot.insights`); this module only applies it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

WHOLE = 1e-9  # a bound this close to a whole number counts as that number (floating-point noise)


@dataclass(frozen=True)
class Domain:
    """The values a metric can take: bounds (None: unbounded) and whether they are whole numbers."""

    lower: float | None = None
    upper: float | None = None
    integer: bool = False

    def clip(self, x: float) -> float:
        """`x` moved to the nearest bound when it lies outside the domain."""
        if self.lower is not None and x < self.lower:
            return self.lower
        if self.upper is not None and x > self.upper:
            return self.upper
        return x

    def interval(self, value: float, lower: float, upper: float) -> tuple[float, float, float]:
        """A point and its interval kept inside the domain.

        For whole numbers the interval is rounded inward (it then holds exactly the whole numbers it held)
        and the point rounded, then moved into the interval; when the interval holds no whole number at
        all, it is left unrounded rather than made to hold one it did not.
        """
        value, lower, upper = self.clip(value), self.clip(lower), self.clip(upper)
        if self.integer:
            low, high = math.ceil(lower - WHOLE), math.floor(upper + WHOLE)
            if low <= high:
                return float(min(max(round(value), low), high)), float(low), float(high)
        return value, lower, upper

    def admitting(self, values: Sequence[float] | npt.ArrayLike) -> Domain:
        """This domain without the bounds the observed values cross (the data knows better than a
        definition: a sum of refunds can be negative, a rate can exceed 100 %), nor whole numbers when
        a value is not one. NaN values are ignored."""
        x = np.asarray(values, dtype=np.float64).ravel()
        x = x[np.isfinite(x)]
        if not len(x):
            return self
        lower = self.lower if self.lower is None or float(x.min()) >= self.lower else None
        upper = self.upper if self.upper is None or float(x.max()) <= self.upper else None
        integer = self.integer and bool(np.all(x == np.round(x)))
        return Domain(lower, upper, integer)


UNBOUNDED = Domain()
NON_NEGATIVE = Domain(lower=0.0)
COUNT = Domain(lower=0.0, integer=True)
SHARE = Domain(lower=0.0, upper=1.0)
