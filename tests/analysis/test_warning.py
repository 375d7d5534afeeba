"""Early warning: planted leads on synthetic series, and the acme scenario (the 2026 demo dip)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from kpilot.analysis import leadlag, warning


@dataclass(frozen=True)
class Edge:
    leader: str
    follower: str
    lag: int
    correlation: float


def planted(n: int = 120, lag: int = 3, dip_at: int | None = None, dip: float = 0.4, seed: int = 1
            ) -> tuple[np.ndarray, np.ndarray]:
    """A leader around 100 and a follower = 2 x leader `lag` periods earlier, plus noise."""
    rng = np.random.default_rng(seed)
    leader = 100 + rng.normal(0, 5, n)
    leader[-3:] = np.median(leader[-16:-3])  # the last periods are ordinary, unless a dip is planted
    if dip_at is not None:
        leader[dip_at] *= 1 - dip
    follower = np.full(n, np.nan)
    follower[lag:] = 2 * leader[:-lag] + rng.normal(0, 4, n - lag)
    follower[:lag] = 200 + rng.normal(0, 4, lag)
    return leader, follower


def test_a_leader_dip_warns_at_the_lag_with_the_projection() -> None:
    leader, follower = planted(dip_at=119)
    found = warning.early_warnings("kpi", follower, {"lead": leader}, [Edge("lead", "kpi", 3, 0.9)],
                                   [190.0] * 3, direction="up", amber=0.9)
    assert len(found) == 1
    w = found[0]
    assert (w.leader, w.lag, w.leader_period, w.period) == ("lead", 3, 119, 122)
    # 2 x the dipped leader: about 2 x 60 = 120 against a target of 190.
    assert w.projected == pytest.approx(2 * leader[119], rel=0.08)
    assert w.confidence > 0.95 and w.severity == "red"
    assert w.leader_change == pytest.approx(leader[119] / np.median(leader[106:119]) - 1, abs=1e-9)


def test_no_warning_without_a_move_or_when_the_move_helps() -> None:
    leader, follower = planted()
    assert warning.early_warnings("kpi", follower, {"lead": leader}, [Edge("lead", "kpi", 3, 0.9)],
                                  [190.0] * 3, direction="up", amber=0.9) == []
    up = leader.copy()
    up[119] *= 1.5  # the leader jumps: good news for a KPI that should go up
    assert warning.early_warnings("kpi", follower, {"lead": up}, [Edge("lead", "kpi", 3, 0.9)],
                                  [190.0] * 3, direction="up", amber=0.9) == []
    # The same jump is bad news for a KPI that should go down (e.g. costs).
    found = warning.early_warnings("kpi", follower, {"lead": up}, [Edge("lead", "kpi", 3, 0.9)],
                                   [210.0] * 3, direction="down", amber=0.9)
    assert [w.period for w in found] == [122]


def test_a_dip_whose_projection_still_meets_the_target_does_not_warn() -> None:
    leader, follower = planted(dip_at=119, dip=0.15)
    found = warning.early_warnings("kpi", follower, {"lead": leader}, [Edge("lead", "kpi", 3, 0.9)],
                                   [100.0] * 3, direction="up", amber=0.9)
    assert found == []


def test_first_red_run() -> None:
    values = np.array([100, 80, 100, 80, 85, 70, 100.0])
    assert warning.first_red_run(values, [100.0] * 7, 0, direction="up", amber=0.9) == 3
    assert warning.first_red_run(values, [100.0] * 7, 0, direction="up", amber=0.9, periods=3) == 3
    assert warning.first_red_run(values, [100.0] * 7, 4, direction="up", amber=0.9) == 4
    assert warning.first_red_run(values, [None] * 7, 0, direction="up", amber=0.9) is None


@pytest.fixture(scope="module")
def acme_weeks(acme_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[date], dict[str, np.ndarray],
                                                                                  list[str]]:
    from kpilot.insights import Insights
    from kpilot.model import Grain
    from kpilot.service import WorkspaceService

    with WorkspaceService(acme_dir, state_dir=tmp_path_factory.mktemp("acme-warning")) as svc:
        ins = Insights(svc)
        leaders, _ = ins.candidates()
        data = ins.aligned([*leaders, "won_revenue"], Grain.week)
    return data.periods, data.values, leaders


def test_acme_demo_dip_warns_weeks_before_won_revenue_turns_red(acme_weeks) -> None:
    periods, values, leaders = acme_weeks
    y = values["won_revenue"]
    # Won revenue has no target in acme: "sign every week as much as in the first half of 2026".
    target = float(np.mean([v for p, v in zip(periods, y, strict=True) if p.year == 2026 and p.month <= 6]))
    # Edges learned on the data up to the end of July 2026, before the dip, as a stored `kpilot leads` run.
    train_end = periods.index(date(2026, 7, 27))
    edges = leadlag.discover({k: v[:train_end + 1] for k, v in values.items()}, leaders, ["won_revenue"], max_lag=12)
    assert {(e.leader, e.lag) for e in edges} == {("demos_booked", 5), ("pipeline_generated", 4)}
    targets = [target] * (len(periods) + 12)
    runs = warning.replay("won_revenue", values, edges, targets, train_end + 1, direction="up", amber=0.9)
    dip = date(2026, 8, 3)
    first_warning = next(c for c, found in runs
                         if any(w.leader == "demos_booked" and periods[w.leader_period] >= dip for w in found))
    # Independent of kpilot: the demo dip is the week of 2026-08-10 (67 demos against ~110).
    assert periods[first_warning] == date(2026, 8, 10)
    turns_red = warning.first_red_run(y, targets, periods.index(dip), direction="up", amber=0.9)
    assert turns_red is not None and periods[turns_red] == date(2026, 9, 21)
    assert turns_red - first_warning == 6  # weeks of warning before two red weeks in a row
    first_red = next(i for i in range(periods.index(dip), len(y)) if y[i] / target < 0.9)
    assert first_red - first_warning == 4  # and before the first red week (2026-09-07)
