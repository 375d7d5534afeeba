"""Early warning: a leading indicator moved; project its effect on the lagging KPI at the measured lag.

For each lead-lag edge whose follower has targets, the leader's latest `lag` periods are compared with
its own recent normal (median and MAD of the 13 periods before them). When one of them moved by at least
`MOVE_Z` robust standard deviations in the direction that hurts the follower, the follower's next `lag`
periods are projected by a distributed-lag regression on that leader (its values are already known
there), and every projected period whose probability of missing the target is at least `CONFIDENCE`
raises a warning, with the projection, the target and the KPI's decision rule.

The two thresholds are fixed here, not fitted: MOVE_Z = 1.5 (a move that a stable series shows about one
period in seven) and CONFIDENCE = 0.6.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from kpilot.analysis.forecast import Leader, forecast, probability_of_target
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
    for edge in edges:
        if edge.follower != follower_key or edge.leader not in leaders or edge.lag < 1:
            continue
        lead = np.asarray(leaders[edge.leader], dtype=float)
        if len(lead) != n:
            raise ValueError(f"leader {edge.leader} has {len(lead)} periods, the follower {n}")
        # The leader's last `lag` periods drive the follower's next `lag` ones.
        moves: list[tuple[int, float, float, float]] = []
        for i in range(n - edge.lag, n):
            m = leader_move(lead, i)
            if m is None:
                continue
            z, base, rel = m
            hurts = np.sign(edge.correlation) * np.sign(z) * sign < 0
            if abs(z) >= MOVE_Z and hurts:
                moves.append((i, z, base, rel))
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
