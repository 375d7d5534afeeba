"""Early warning: a leading indicator moved; project its effect on the lagging KPI at the measured lag.

For each lead-lag edge whose follower has targets, the leader's latest `lag` periods are compared with
its own recent normal (median and MAD of the 13 periods before them). When one of them moved by at least
`MOVE_Z` robust standard deviations in the direction that hurts the follower, the follower's next `lag`
periods are projected by a distributed-lag regression on that leader (its values are already known
there), and every projected period whose probability of missing the target is at least `CONFIDENCE`
raises a warning, with the projection, the target and the KPI's decision rule.

An edge measured at a grain finer than its follower's (a monthly MRR led by weekly pipeline, the lag in weeks)
warns through `rolled_up_warnings`: the leader's move is found at the edge's grain, the follower's values at that
grain are projected the same way, and the projection is turned into the follower's own period (`CoarsePeriod`:
the weeks of a month weighted by their days in it for a flow, the week holding the month's end for a stock) and
compared with that period's target.

The two thresholds are fixed here, not fitted: MOVE_Z = 1.5 (a move that a stable series shows about one
period in seven) and CONFIDENCE = 0.6.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

from kpilot.analysis.forecast import ForecastPoint, Leader, forecast, probability_of_target
from kpilot.analysis.leadlag import EdgeLike

MOVE_Z = 1.5
CONFIDENCE = 0.6
BASELINE = 13


@dataclass(frozen=True)
class EarlyWarning:
    """The follower is projected to miss its target in period `period` (index on the follower's spine)."""

    follower: str
    leader: str
    lag: int
    leader_period: int        # index of the leader's period that moved
    leader_value: float
    leader_baseline: float
    leader_change: float      # relative move of the leader against its baseline (-0.3 = 30 % below)
    period: int               # index of the projected follower period (may be past the history's end)
    projected: float
    lower: float
    upper: float
    target: float
    confidence: float         # probability that the follower misses its target in that period
    severity: str             # 'red' when the projection is under the red line, else 'amber'
    method: str

    def to_dict(self) -> dict[str, object]:
        return {"follower": self.follower, "leader": self.leader, "lag": self.lag,
                "leader_value": self.leader_value, "leader_baseline": self.leader_baseline,
                "leader_change": self.leader_change, "projected": self.projected, "lower": self.lower,
                "upper": self.upper, "target": self.target, "confidence": self.confidence,
                "severity": self.severity, "method": self.method}


@dataclass(frozen=True)
class CoarsePeriod:
    """A period of the follower's own grain, made of periods of the edge's finer grain.

    `parts` are (index on the fine spine, weight): the follower's value over the period is the weighted sum of
    its fine values (a flow: weight = the share of the fine period's days inside it; a stock: the fine period
    holding the period's end, weight 1). Indexes from n on (n = the length of the fine history) lie in the future.
    """

    parts: tuple[tuple[int, float], ...]
    target: float | None


def _moves(lead: np.ndarray, n: int, lag: int, correlation: float, sign: float
           ) -> list[tuple[int, float, float, float]]:
    """The leader's last `lag` periods that moved by MOVE_Z or more in the direction that hurts the follower."""
    out: list[tuple[int, float, float, float]] = []
    for i in range(n - lag, n):
        m = leader_move(lead, i)
        if m is None:
            continue
        z, base, rel = m
        if abs(z) >= MOVE_Z and np.sign(correlation) * np.sign(z) * sign < 0:
            out.append((i, z, base, rel))
    return out


def leader_move(values: np.ndarray, index: int, window: int = BASELINE) -> tuple[float, float, float] | None:
    """(z, baseline, relative change) of values[index] against the `window` values before it; None if unknown."""
    past = values[max(0, index - window):index]
    past = past[np.isfinite(past)]
    x = values[index]
    if len(past) < max(6, window // 2) or not np.isfinite(x):
        return None
    med = float(np.median(past))
    scale = 1.4826 * float(np.median(np.abs(past - med)))
    if scale <= 0:
        scale = float(np.std(past)) or abs(med) * 0.05 or 1.0
    rel = (float(x) - med) / abs(med) if med else 0.0
    return (float(x) - med) / scale, med, rel


def _leading(follower_key: str, leaders: Mapping[str, np.ndarray], edges: Sequence[EdgeLike], n: int
             ) -> Iterator[tuple[EdgeLike, np.ndarray]]:
    """The edges that lead the follower (a positive lag, a leader given), each with its leader's values on the
    follower's spine of `n` periods."""
    for edge in edges:
        if edge.follower != follower_key or edge.leader not in leaders or edge.lag < 1:
            continue
        lead = np.asarray(leaders[edge.leader], dtype=float)
        if len(lead) != n:
            raise ValueError(f"leader {edge.leader} has {len(lead)} periods, the follower {n}")
        yield edge, lead


def early_warnings(follower_key: str, follower: np.ndarray, leaders: Mapping[str, np.ndarray],
                   edges: Sequence[EdgeLike], targets: Sequence[float | None], *, direction: str,
                   amber: float) -> list[EarlyWarning]:
    """Warnings for one follower from the edges that lead it.

    `follower` and every leader array hold complete periods on the same spine (same length n). `targets`
    holds the follower's target for periods n, n+1, ... (at least the longest lag). Achievement is
    value/target for direction 'up' and target/value for 'down', as for the board's status.
    """
    n = len(follower)
    sign = 1.0 if direction == "up" else -1.0
    out: list[EarlyWarning] = []
    for edge, lead in _leading(follower_key, leaders, edges, n):
        # The leader's last `lag` periods drive the follower's next `lag` ones.
        moves = _moves(lead, n, edge.lag, edge.correlation, sign)
        if not moves:
            continue
        fc = forecast(follower, edge.lag, leaders=[Leader(lead, edge.lag)], methods=["distributed_lag"])
        for point in fc.points:
            period = n - 1 + point.step
            source = period - edge.lag  # the leader period this projection rests on
            moved = [m for m in moves if m[0] == source]
            if not moved or point.step - 1 >= len(targets):
                continue
            target = targets[point.step - 1]
            if target is None or not np.isfinite(target) or target == 0:
                continue
            p_meet = probability_of_target(point, target, direction=direction, level=fc.level)
            confidence = 1.0 - p_meet
            if confidence < CONFIDENCE:
                continue
            i, _, base, rel = moved[0]
            achievement = point.value / target if direction == "up" else (
                target / point.value if point.value > 0 else 0.0)
            out.append(EarlyWarning(
                follower=follower_key, leader=edge.leader, lag=edge.lag, leader_period=i,
                leader_value=float(lead[i]), leader_baseline=base, leader_change=rel, period=period,
                projected=point.value, lower=point.lower, upper=point.upper, target=float(target),
                confidence=confidence, severity="red" if achievement < amber else "amber", method=fc.method))
    out.sort(key=lambda w: (w.period, -w.confidence))
    return out


def rolled_up_warnings(follower_key: str, follower: np.ndarray, leaders: Mapping[str, np.ndarray],
                       edges: Sequence[EdgeLike], coarse: Sequence[CoarsePeriod], *, direction: str,
                       amber: float) -> list[EarlyWarning]:
    """Warnings for one follower from edges measured at a grain finer than its own, judged on its own periods.

    `follower` (the follower computed at the edges' grain) and the leaders hold complete fine periods on one
    spine (length n). Each projected fine period rests on the leader's value `lag` periods earlier, as in
    `early_warnings`; a coarse period is judged when every fine period it is made of is known or projected
    (index < n + lag) and one of the projected ones rests on a move of the leader. Its projection is the
    weighted sum of known values and projections; its spread the weighted sum of the projections' spreads
    (their errors taken as fully correlated: the widest, most cautious case). The projected fine periods alone must
    also miss their share of the target, so that the warning rests on the leader's effect, not on fine periods
    already known. `EarlyWarning.period` is the index
    in `coarse`; `leader_period` and `lag` count fine periods.
    """
    n = len(follower)
    sign = 1.0 if direction == "up" else -1.0
    out: list[EarlyWarning] = []
    for edge, lead in _leading(follower_key, leaders, edges, n):
        moves = {m[0]: m for m in _moves(lead, n, edge.lag, edge.correlation, sign)}
        if not moves:
            continue
        fc = forecast(follower, edge.lag, leaders=[Leader(lead, edge.lag)], methods=["distributed_lag"])
        points = {n - 1 + p.step: p for p in fc.points}
        z = float(special.ndtri(0.5 + fc.level / 2))
        for k, period in enumerate(coarse):
            target = period.target
            if target is None or not np.isfinite(target) or target == 0 or not period.parts:
                continue
            value = spread = ahead = ahead_weight = 0.0
            moved = [moves[i - edge.lag] for i, _ in period.parts if i in points and i - edge.lag in moves]
            if not moved:
                continue
            ok = True
            for i, weight in period.parts:
                if i < n and np.isfinite(follower[i]):
                    value += weight * float(follower[i])
                elif i in points:
                    p = points[i]
                    value += weight * p.value
                    ahead += weight * p.value
                    ahead_weight += weight
                    spread += weight * (p.upper - p.lower) / (2 * z)
                else:
                    ok = False
                    break
            if not ok:
                continue
            point = ForecastPoint(0, value, value - z * spread, value + z * spread)
            confidence = 1.0 - probability_of_target(point, target, direction=direction, level=fc.level)
            # The miss must come from what the leader drives: the projected fine periods alone miss their share of
            # the target (prorated by weight), not only the known ones (a bad week already seen is no warning).
            share = target * ahead_weight / sum(weight for _, weight in period.parts)
            part = ForecastPoint(0, ahead, ahead - z * spread, ahead + z * spread)
            if min(confidence, 1.0 - probability_of_target(part, share, direction=direction, level=fc.level)) \
                    < CONFIDENCE:
                continue
            i, _, base, rel = moved[0]
            achievement = value / target if direction == "up" else (target / value if value > 0 else 0.0)
            out.append(EarlyWarning(
                follower=follower_key, leader=edge.leader, lag=edge.lag, leader_period=i,
                leader_value=float(lead[i]), leader_baseline=base, leader_change=rel, period=k,
                projected=value, lower=point.lower, upper=point.upper, target=float(target),
                confidence=confidence, severity="red" if achievement < amber else "amber", method=fc.method))
    out.sort(key=lambda w: (w.period, -w.confidence))
    return out


def replay(follower_key: str, series: Mapping[str, np.ndarray], edges: Sequence[EdgeLike],
           targets: Sequence[float | None], start: int, *, direction: str, amber: float
           ) -> list[tuple[int, list[EarlyWarning]]]:
    """The warnings the system would have raised at the end of each period from `start` on.

    `series` hold the whole history (same spine); at each period c only values up to c are seen.
    `targets` are the follower's targets on that spine, extended past its end by the longest lag.
    """
    n = len(series[follower_key])
    out: list[tuple[int, list[EarlyWarning]]] = []
    for c in range(start, n):
        seen = {k: np.asarray(v[:c + 1], dtype=float) for k, v in series.items()}
        ahead = list(targets[c + 1:])
        out.append((c, early_warnings(follower_key, seen[follower_key], seen, edges, ahead, direction=direction,
                                      amber=amber)))
    return out


def first_red_run(values: np.ndarray, targets: Sequence[float | None], start: int, *, direction: str,
                  amber: float, periods: int = 2) -> int | None:
    """The first period from `start` that opens a run of `periods` red periods (achievement under amber)."""
    red = []
    for v, t in zip(values, targets, strict=False):
        if t is None or not np.isfinite(v) or t == 0:
            red.append(False)
            continue
        achievement = v / t if direction == "up" else (t / v if v > 0 else 0.0)
        red.append(achievement < amber)
    for i in range(start, len(red) - periods + 1):
        if all(red[i:i + periods]):
            return i
    return None
