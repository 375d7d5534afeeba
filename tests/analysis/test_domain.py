"""A metric's domain: points and intervals kept inside it, counts whole, bounds the data crosses dropped."""

from __future__ import annotations

import numpy as np

from kpilot.analysis.domain import COUNT, NON_NEGATIVE, SHARE, UNBOUNDED, Domain


def test_clip_moves_a_value_to_the_nearest_bound() -> None:
    assert [SHARE.clip(v) for v in (-0.2, 0.3, 1.4)] == [0.0, 0.3, 1.0]
    assert NON_NEGATIVE.clip(-5.0) == 0.0 and NON_NEGATIVE.clip(1e12) == 1e12
    assert UNBOUNDED.clip(-5.0) == -5.0


def test_an_interval_is_cut_at_the_bounds() -> None:
    assert SHARE.interval(0.98, 0.9, 1.07) == (0.98, 0.9, 1.0)
    assert SHARE.interval(0.01, -0.08, 0.1) == (0.01, 0.0, 0.1)
    assert NON_NEGATIVE.interval(-1.5, -4.0, 1.0) == (0.0, 0.0, 1.0)
    assert UNBOUNDED.interval(-1.5, -4.0, 1.0) == (-1.5, -4.0, 1.0)


def test_a_count_interval_holds_the_same_whole_numbers() -> None:
    # -3.2 .. 7.6 holds the counts 0..7: rounded inward, the interval says so.
    assert COUNT.interval(2.4, -3.2, 7.6) == (2.0, 0.0, 7.0)
    assert COUNT.interval(39.6, 35.0000000001, 46.9999999999) == (40.0, 35.0, 47.0)  # float noise at the edges
    # The rounded point stays inside: 2.3 .. 3.5 holds the count 3 only.
    assert COUNT.interval(2.4, 2.3, 3.5) == (3.0, 3.0, 3.0)
    # 2.3 .. 2.6 holds no count: rounding would make it hold one it did not, so it is left as it is.
    assert COUNT.interval(2.4, 2.3, 2.6) == (2.4, 2.3, 2.6)


def test_the_data_overrules_a_bound_it_crosses() -> None:
    assert NON_NEGATIVE.admitting([3.0, -1.0, 5.0]) == UNBOUNDED  # a sum of refunds and sales
    assert SHARE.admitting([0.2, 1.3]) == Domain(lower=0.0)  # a retention rate above 100 %
    assert COUNT.admitting([1.5, 2.0]) == Domain(lower=0.0)  # not whole: not counted as whole
    assert COUNT.admitting([np.nan, 2.0, 0.0]) == COUNT
    assert SHARE.admitting([]) == SHARE
