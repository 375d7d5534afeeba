"""Root-cause localisation: planted causes at depths 1 to 3 are found exactly, with numbers checked by hand.

Cells are generated here (small grids, fixed seeds): every cell is a base value with a relative noise between the
two periods, and the cells of a planted cause move by a common fraction. Expected numbers are plain sums over the
generated cells, never the code's own.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from kpilot.analysis.rootcause import explain_additive, explain_ratio, localize_additive, localize_ratio
from kpilot.analysis.rootcause_search import _sigma_for_median, depth_for
from kpilot.model.errors import KpilotError

DIMS = ["region", "segment", "channel", "product"]
VALUES = [["north", "south", "east", "west", "centre"], ["PME", "ETI", "GE", "TPE"],
          ["seo", "linkedin_ads", "outbound", "referral"], ["core", "addon", "services"]]
Cells = dict[tuple[str, ...], float]


def grid(seed: int, noise: float = 0.05) -> tuple[list[tuple[str, ...]], np.ndarray, np.ndarray]:
    """Every combination of the values, a skewed base value (some cells empty) and a relative noise."""
    rng = np.random.default_rng(seed)
    keys = list(itertools.product(*VALUES))
    base = rng.weibull(0.8, len(keys)) * 100 * (rng.random(len(keys)) > 0.1)
    before = base * (1 + rng.normal(0, noise, len(keys)))
    after = base * (1 + rng.normal(0, noise, len(keys)))
    return keys, before, after


def under(key: tuple[str, ...], element: dict[str, str]) -> bool:
    return all(key[DIMS.index(d)] == v for d, v in element.items())


def plant(keys: list[tuple[str, ...]], values: np.ndarray, element: dict[str, str], factor: float,
          base: np.ndarray | None = None) -> None:
    """The cells under `element` take `factor` times their value in `base` (default: their own value)."""
    source = values.copy() if base is None else base
    for i, key in enumerate(keys):
        if under(key, element):
            values[i] = source[i] * factor


def name(element: dict[str, str]) -> str:
    return "&".join(f"{d}={element[d]}" for d in DIMS if d in element)


def cells(keys: list[tuple[str, ...]], values: np.ndarray) -> Cells:
    return {k: float(v) for k, v in zip(keys, values, strict=True)}


@pytest.mark.parametrize("element", [
    {"segment": "PME"},
    {"segment": "PME", "channel": "linkedin_ads"},
    {"region": "north", "channel": "seo", "product": "addon"},
], ids=["depth 1", "depth 2", "depth 3"])
def test_a_planted_cause_is_found_exactly(element: dict[str, str]) -> None:
    keys, before, after = grid(seed=len(element))
    plant(keys, after, element, 0.4)  # its cells fell by 60 %
    found = localize_additive(cells(keys, before), cells(keys, after), DIMS)
    assert [c.element for c in found.causes] == [name(element)]
    cause = found.causes[0]
    inside = [i for i, k in enumerate(keys) if under(k, element)]
    assert cause.before == pytest.approx(math.fsum(before[i] for i in inside), rel=1e-12)
    assert cause.after == pytest.approx(math.fsum(after[i] for i in inside), rel=1e-12)
    total = math.fsum(after) - math.fsum(before)
    assert cause.change == pytest.approx(cause.after - cause.before, rel=1e-12)
    assert cause.share == pytest.approx(cause.change / total, rel=1e-12)
    assert cause.cells == sum(1 for i in inside if before[i] != 0 or after[i] != 0)
    assert cause.effect == "level" and cause.evidence > 0
    assert found.explained == pytest.approx(cause.change, rel=1e-12)
    assert found.noise == pytest.approx(0.05 * math.sqrt(2), rel=0.25)  # 5 % of noise on each period


def test_several_causes_at_depths_one_to_three_overlapping() -> None:
    keys, before, after = grid(seed=7)
    planted = [({"region": "east"}, 0.5), ({"segment": "ETI", "channel": "outbound"}, 0.3),
               ({"region": "west", "segment": "TPE", "product": "core"}, 0.0)]  # the last one fell to nothing
    clean = after.copy()
    for element, factor in planted:  # a cell under two causes moves as the last one says
        plant(keys, after, element, factor, clean)
    found = localize_additive(cells(keys, before), cells(keys, after), DIMS)
    assert sorted(c.element for c in found.causes) == sorted(name(e) for e, _ in planted)
    union = [i for i, k in enumerate(keys) if any(under(k, e) for e, _ in planted)]
    assert found.explained == pytest.approx(math.fsum(after[i] - before[i] for i in union), rel=1e-9)
    assert [abs(c.change) for c in found.causes] == sorted((abs(c.change) for c in found.causes), reverse=True)


def test_a_rise_is_localised_like_a_fall() -> None:
    keys, before, after = grid(seed=11)
    element = {"channel": "referral", "product": "services"}
    plant(keys, after, element, 2.5)
    found = localize_additive(cells(keys, before), cells(keys, after), DIMS)
    assert [c.element for c in found.causes] == [name(element)]
    assert found.causes[0].change > 0


def test_noise_alone_and_a_move_of_everything_name_no_cause() -> None:
    keys, before, after = grid(seed=3, noise=0.1)
    assert localize_additive(cells(keys, before), cells(keys, after), DIMS).causes == ()
    # Every cell 20 % lower: the whole moved, no part of it explains more than the whole.
    found = localize_additive(cells(keys, before), cells(keys, after * 0.8), DIMS)
    assert found.causes == ()
    assert found.explained == 0.0


def test_explain_gives_the_same_causes_and_says_them_in_json() -> None:
    keys, before, after = grid(seed=5)
    plant(keys, after, {"segment": "GE", "channel": "seo"}, 0.3)
    b, a = cells(keys, before), cells(keys, after)
    ex = explain_additive(b, a, DIMS, pairs=False)
    assert ex.causes == localize_additive(b, a, DIMS).causes
    out = ex.to_dict()
    causes = out["causes"]
    assert isinstance(causes, list)
    assert [c["element"] for c in causes] == ["segment=GE&channel=seo"]
    assert causes[0]["dimensions"] == ["segment", "channel"] and causes[0]["values"] == ["GE", "seo"]
    assert out["explained"] == pytest.approx(causes[0]["change"])


def ratio_cells(seed: int) -> tuple[list[tuple[str, ...]], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Leads (denominator) and deals won (numerator) per cell, about 25 % won, both periods with noise."""
    rng = np.random.default_rng(seed)
    keys = list(itertools.product(*VALUES[1:3]))  # segment x channel: 16 cells
    leads = rng.integers(200, 400, len(keys)).astype(float)
    d0 = leads * (1 + rng.normal(0, 0.03, len(keys)))
    d1 = leads * (1 + rng.normal(0, 0.03, len(keys)))
    n0 = d0 * 0.25 * (1 + rng.normal(0, 0.03, len(keys)))
    n1 = d1 * 0.25 * (1 + rng.normal(0, 0.03, len(keys)))
    return keys, n0, d0, n1, d1


def by_hand(keys: list[tuple[str, ...]], element: tuple[str, str], n0: np.ndarray, d0: np.ndarray, n1: np.ndarray,
            d1: np.ndarray) -> tuple[float, float, float, float]:
    """(own ratio before, after, rate effect, mix effect) of a segment, by the symmetric shift-share formulas."""
    inside = [i for i, k in enumerate(keys) if k == element]
    sn0, sd0, sn1, sd1 = (math.fsum(x[i] for i in inside) for x in (n0, d0, n1, d1))
    big_r0, big_r1 = math.fsum(n0) / math.fsum(d0), math.fsum(n1) / math.fsum(d1)
    w0, w1 = sd0 / math.fsum(d0), sd1 / math.fsum(d1)
    r0, r1 = sn0 / sd0, sn1 / sd1
    return r0, r1, (r1 - r0) * (w0 + w1) / 2, (w1 - w0) * ((r0 + r1) / 2 - (big_r0 + big_r1) / 2)


def test_a_ratio_whose_rate_fell_in_one_combination() -> None:
    keys, n0, d0, n1, d1 = ratio_cells(seed=1)
    target = ("PME", "linkedin_ads")
    n1[keys.index(target)] *= 0.4  # its deals won fell, its leads did not
    before = {k: (float(n), float(d)) for k, n, d in zip(keys, n0, d0, strict=True)}
    after = {k: (float(n), float(d)) for k, n, d in zip(keys, n1, d1, strict=True)}
    found = localize_ratio(before, after, ["segment", "channel"])
    assert [(c.element, c.effect) for c in found.causes] == [("segment=PME&channel=linkedin_ads", "rate")]
    cause = found.causes[0]
    r0, r1, rate, mix = by_hand(keys, target, n0, d0, n1, d1)
    assert (cause.before, cause.after) == pytest.approx((r0, r1), rel=1e-12)
    assert (cause.rate, cause.mix) == pytest.approx((rate, mix), rel=1e-9, abs=1e-15)
    assert cause.change == pytest.approx(rate + mix, rel=1e-9)
    total = math.fsum(n1) / math.fsum(d1) - math.fsum(n0) / math.fsum(d0)
    assert cause.share == pytest.approx(cause.change / total, rel=1e-9)
    assert explain_ratio(before, after, ["segment", "channel"]).causes == found.causes


def test_a_ratio_moved_by_mix_when_a_weak_segment_grew() -> None:
    keys, n0, d0, n1, d1 = ratio_cells(seed=2)
    weak = ("ETI", "outbound")
    i = keys.index(weak)
    n0[i], n1[i] = d0[i] * 0.05, d1[i] * 0.05  # it converts at 5 % in both periods
    n1[i], d1[i] = n1[i] * 4, d1[i] * 4        # and brings four times the leads
    before = {k: (float(n), float(d)) for k, n, d in zip(keys, n0, d0, strict=True)}
    after = {k: (float(n), float(d)) for k, n, d in zip(keys, n1, d1, strict=True)}
    found = localize_ratio(before, after, ["segment", "channel"])
    assert [(c.element, c.effect) for c in found.causes] == [("segment=ETI&channel=outbound", "mix")]
    cause = found.causes[0]
    r0, r1, rate, mix = by_hand(keys, weak, n0, d0, n1, d1)
    assert (cause.before, cause.after) == pytest.approx((r0, r1), rel=1e-12)  # 5 % both times
    assert (cause.rate, cause.mix) == pytest.approx((rate, mix), rel=1e-9, abs=1e-15)
    assert cause.mix is not None and cause.mix < 0 and abs(cause.mix) > 10 * abs(rate)


def test_bad_cells_are_refused_with_a_reason() -> None:
    with pytest.raises(KpilotError, match="1 value"):
        localize_additive({("PME",): 1.0}, {("PME",): 2.0}, ["segment", "channel"])
    with pytest.raises(KpilotError, match="denominator is 0"):
        localize_ratio({("PME",): (1.0, 0.0)}, {("PME",): (1.0, 2.0)}, ["segment"])
    with pytest.raises(KpilotError, match="not a finite number"):
        localize_additive({("PME",): math.nan}, {("PME",): 2.0}, ["segment"])


def test_the_noise_level_read_from_the_median_gap_matches_a_simulation() -> None:
    # The noise model: one value is the other times (1 + e), e ~ N(0, 0.2), either way round; gap = |v - f| / max.
    rng = np.random.default_rng(0)
    e = rng.normal(0, 0.2, 400_000)
    gap = np.where(e < 0, -e, e / (1 + e))
    gap = gap[e > -1]
    assert _sigma_for_median(float(np.median(gap))) == pytest.approx(0.2, rel=0.01)


def test_every_depth_is_searched_unless_the_cells_are_too_many() -> None:
    assert depth_for(48_000, 5) == 5
    assert depth_for(100_000, 12) == 2
    assert depth_for(10, 1) == 1


def test_with_few_cells_against_the_change_the_noise_is_not_taken_from_one_cell() -> None:
    # Seven cells fell, one rose by 1 %: measured on that cell alone the noise would be 1 %, and the cells that fell
    # by 4-6 % would all pass for causes. Measured on every cell, only the one that fell by 65 % does.
    before = {(r, c): 100.0 for r in ("north", "south") for c in ("seo", "ads", "outbound", "referral")}
    after = {k: v * f for (k, v), f in zip(before.items(), [0.95, 0.94, 0.96, 0.955, 0.945, 0.35, 0.95, 1.01],
                                            strict=True)}
    found = localize_additive(before, after, ["region", "channel"])
    assert [c.element for c in found.causes] == ["region=south&channel=ads"]
    assert found.causes[0].change == pytest.approx(-65.0)


@pytest.mark.parametrize("element", [
    {"channel": "seo"},
    {"region": "south", "segment": "GE"},
    {"region": "east", "segment": "PME", "channel": "referral"},
], ids=["depth 1", "depth 2", "depth 3"])
def test_a_planted_rate_fall_is_found_at_its_depth(element: dict[str, str]) -> None:
    rng = np.random.default_rng(len(element))
    keys = list(itertools.product(*VALUES[:3]))  # region x segment x channel: 80 cells
    d0 = rng.integers(200, 400, len(keys)).astype(float)
    d1 = d0 * (1 + rng.normal(0, 0.03, len(keys)))
    n0 = d0 * 0.25 * (1 + rng.normal(0, 0.03, len(keys)))
    n1 = d1 * 0.25 * (1 + rng.normal(0, 0.03, len(keys)))
    inside = [i for i, k in enumerate(keys) if under(k, element)]
    n1[inside] *= 0.5  # half the rate in the planted combination
    before = {k: (float(n), float(d)) for k, n, d in zip(keys, n0, d0, strict=True)}
    after = {k: (float(n), float(d)) for k, n, d in zip(keys, n1, d1, strict=True)}
    found = localize_ratio(before, after, DIMS[:3])
    assert [(c.element, c.effect) for c in found.causes] == [(name(element), "rate")]
    cause = found.causes[0]
    r0 = math.fsum(n0[inside]) / math.fsum(d0[inside])
    r1 = math.fsum(n1[inside]) / math.fsum(d1[inside])
    assert (cause.before, cause.after) == pytest.approx((r0, r1), rel=1e-12)
    assert cause.rate is not None and cause.rate < 0
    assert found.explained == pytest.approx(cause.change, rel=1e-12)
