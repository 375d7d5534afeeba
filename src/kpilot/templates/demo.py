"""The demo workspace (`kpilot demo`) and the sample data of the saas and smarketing templates, from the demo
company of `kpilot.templates.demo_company`: targets set from its generated history, the way a leader sets a plan
from last year's run rate, and the workspaces written from the templates' YAML.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from kpilot.i18n import format_value
from kpilot.model.errors import KpilotError, msg
from kpilot.model.periods import Grain, add_months, label, next_start, period_start, periods_between, shift
from kpilot.templates import (
    check_destinations,
    check_folder,
    check_language,
    install,
    render_workspace,
    staged_files,
    staging,
    writing,
)
from kpilot.templates.demo_company import MARKER, SEED, DemoCalendar, _Generator, day_no, write_tables

_MONTHS = "WITH months AS (SELECT unnest(generate_series($start::DATE, $today::DATE, INTERVAL 1 MONTH))::DATE AS m)"
_ACTIVE_AT = "start_date <= last_day(m) AND (end_date IS NULL OR end_date > last_day(m))"
# Reference computations in plain DuckDB SQL over the generated tables: (period start, value) rows.
# Each key is the metric whose targets the series sets, at that metric's grain (the grain its targets
# are written for); tests/test_demo.py checks every entry against the metric's YAML definition
# computed by kpilot.
SERIES: dict[str, tuple[Grain, str]] = {
    "pipeline_generated": (Grain.week, "SELECT date_trunc('week', created_at)::DATE, sum(amount) FROM deals "
                                       "GROUP BY 1"),
    "demos_booked": (Grain.week, "SELECT date_trunc('week', booked_at)::DATE, count(*) FROM meetings "
                                 "WHERE type = 'demo' GROUP BY 1"),
    "mrr": (Grain.month, f"{_MONTHS} SELECT m, (SELECT sum(mrr) FROM subscriptions WHERE {_ACTIVE_AT}) FROM months"),
    "net_new_mrr": (Grain.month, f"{_MONTHS}, s AS (SELECT m, (SELECT sum(mrr) FROM subscriptions "
                                 f"WHERE {_ACTIVE_AT}) AS v FROM months) "
                                 "SELECT m, v - lag(v) OVER (ORDER BY m) FROM s"),
    "logo_churn": (Grain.month, f"{_MONTHS}, s AS (SELECT m, (SELECT count(*) FROM subscriptions WHERE {_ACTIVE_AT}) "
                                "AS a, (SELECT count(*) FROM subscriptions WHERE date_trunc('month', end_date) = m) "
                                "AS c FROM months) SELECT m, c / lag(a) OVER (ORDER BY m) FROM s"),
    # Won revenue per month: smarketing's new_bookings. (The demo's won_revenue is the same sum per week.)
    "new_bookings": (Grain.month, "SELECT date_trunc('month', closed_at)::DATE, sum(amount) FROM deals "
                                  "WHERE stage = 'won' GROUP BY 1"),
    "win_rate": (Grain.month, "SELECT date_trunc('month', closed_at)::DATE, avg((stage = 'won')::INT) FROM deals "
                              "WHERE stage IN ('won', 'lost') GROUP BY 1"),
    "sales_cycle": (Grain.month, "SELECT date_trunc('month', closed_at)::DATE, avg(cycle_days) FROM deals "
                                 "WHERE stage = 'won' GROUP BY 1"),
    "mql_to_sql": (Grain.month, "SELECT m, s / q FROM (SELECT date_trunc('month', sql_at)::DATE AS m, count(*) AS s "
                                "FROM leads WHERE is_sql GROUP BY 1) JOIN (SELECT date_trunc('month', mql_at)::DATE "
                                "AS m, count(*) AS q FROM leads WHERE is_mql GROUP BY 1) USING (m)"),
    "demo_to_win": (Grain.month, "SELECT m, w / d FROM (SELECT date_trunc('month', closed_at)::DATE AS m, count(*) "
                                 "AS w FROM deals WHERE stage = 'won' GROUP BY 1) JOIN (SELECT date_trunc('month', "
                                 "scheduled_at)::DATE AS m, count(*) AS d FROM meetings WHERE type = 'demo' AND held "
                                 "GROUP BY 1) USING (m)"),
}


@dataclass(frozen=True)
class TargetRule:
    """How a generated workspace sets one KPI's targets from its own history (its entry in SERIES)."""

    metric: str
    trend: bool = True          # grows with the business: a trend, one target per quarter
    factor: float = 1.0         # the plan's ambition against the trend (or against last year, for rates)
    degree: int = 1             # 2 lets the trend bend: a base that grows slower as it gets bigger


def series(tables: Mapping[str, pa.Table], cal: DemoCalendar, key: str) -> list[tuple[date, float]]:
    """A reference series over the complete periods of the data, oldest first."""
    grain, sql = SERIES[key]
    con = duckdb.connect()
    try:
        for name, table in tables.items():
            con.register(name, table)
        params = {"start": cal.start, "today": cal.today}
        rows = con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql}).fetchall()
    finally:
        con.close()
    return sorted((p, float(v)) for p, v in rows
                  if v is not None and p >= cal.start and next_start(p, grain) <= cal.today)


def _is_holiday(period: date) -> bool:
    """Periods in the seasonal dips (August, Christmas week), left out of a plan's trend."""
    return period.month == 8 or (period.month, period.day) >= (12, 18) or (period.month, period.day) <= (1, 3)


def _trend(points: list[tuple[date, float]], degree: int) -> Callable[[date], float]:
    """The growth trend of a series, fitted in log space outside the seasonal dips (they would lower the plan)."""
    ref = [(p, v) for p, v in points if v > 0 and not _is_holiday(p)]
    t = np.array([day_no(p) for p, _ in ref], dtype=float)
    t0 = float(t.mean())
    y = np.log([v for _, v in ref])
    fit = np.polyfit(t - t0, y, degree)
    if degree == 1:
        # A year of weekly data swings with campaigns: keep the plan's growth between flat and +50 %.
        fit[0] = np.clip(fit[0], 0.0, math.log(1.5) / 365.25)
        fit[1] = float(np.mean(y))
    return lambda d: float(np.exp(np.polyval(fit, day_no(d) - t0)))


def compute_targets(tables: Mapping[str, pa.Table], cal: DemoCalendar,
                    rules: Iterable[TargetRule]) -> dict[str, list[tuple[str, float]]]:
    """Targets per metric as (period, value): per quarter for growth metrics, per year for rates.

    The last 13 weeks are left out of the reference, so the story's events do not lower the plan.
    Values are not rounded: `kpilot.templates.target_number` writes them as a planner would.
    """
    out: dict[str, list[tuple[str, float]]] = {}
    cutoff = cal.today - timedelta(weeks=13)
    for rule in rules:
        points = [(p, v) for p, v in series(tables, cal, rule.metric) if p < cutoff]
        targets = []
        if rule.trend:
            trend = _trend(points, rule.degree)
            last = add_months(period_start(cal.today, Grain.month), 3)  # a plan for the next quarter too
            for quarter in periods_between(cal.start, last, Grain.quarter):
                targets.append((label(quarter, Grain.quarter), trend(quarter + timedelta(days=45)) * rule.factor))
        else:
            for year in periods_between(cal.start, cal.today, Grain.year):
                before = [v for p, v in points if shift(year, Grain.year, -1) <= p < year]
                during = [v for p, v in points if year <= p < next_start(year, Grain.year)]
                ref = before if len(before) >= 6 else during or before
                if ref:  # a first year with no complete period needs no target
                    targets.append((label(year, Grain.year), float(np.mean(ref)) * rule.factor))
        out[rule.metric] = targets
    return out


def story_values(cal: DemoCalendar) -> dict[str, object]:
    """Dates of the story, for the comments of the demo's kpilot.yaml (last days are inclusive)."""
    return {
        "today": cal.today.isoformat(), "start": cal.start.isoformat(),
        "pause_start": cal.pause_start.isoformat(), "pause_end": (cal.pause_end - timedelta(days=1)).isoformat(),
        "catch_up_end": (cal.catch_up_end - timedelta(days=1)).isoformat(),
        "incident_start": cal.incident_start.isoformat(),
        "incident_end": (cal.incident_end - timedelta(days=1)).isoformat(),
    }


DEMO_TARGETS = (
    TargetRule("mrr", factor=0.97, degree=2),
    TargetRule("pipeline_generated", factor=0.9),
    TargetRule("demos_booked", factor=0.95),
    TargetRule("net_new_mrr", factor=0.8),
    TargetRule("logo_churn", trend=False, factor=1.0),
)


# --- Workspaces: the demo, and the sample data of the saas and smarketing templates.

def generate_demo(target: Path, *, today: date | None = None, seed: int = SEED, language: str = "en",
                  years: int = 3) -> Path:
    """Write a complete demo workspace (kpilot.yaml + data/*.csv) into `target` and return the kpilot.yaml path.

    Writes straight into `target`, whatever it holds; `create_demo` is the safe door for people.
    """
    check_language(language)
    if seed < 0:
        raise KpilotError(msg("the seed must be 0 or more, not {seed}. Fix: pass a whole number such as "
                              "`--seed 7`.", seed=seed))
    cal = DemoCalendar.around(today or date.today(), years)
    tables = _Generator(cal, seed).run()
    write_tables(tables, target / "data")
    mrr_goal = math.ceil(series(tables, cal, "mrr")[-1][1] * 1.6 / 5e5) * 5e5
    story = {**story_values(cal), "mrr_goal": format_value(mrr_goal, "EUR", language)}
    return render_workspace(target, "demo", language, cal.today, targets=compute_targets(tables, cal, DEMO_TARGETS),
                            start=cal.start, values=story)


def create_demo(target: Path, *, language: str = "en", seed: int = SEED, today: date | None = None) -> Path:
    """Generate the demo company into `target` for `kpilot demo`; returns its kpilot.yaml path.

    `target` must be missing, empty, or a folder an earlier run generated (it holds MARKER), which is
    regenerated. The files are put in place all or nothing, as by `kpilot init`.
    """
    check_folder(target)
    with writing():
        if target.is_dir() and any(target.iterdir()) and not (target / MARKER).exists():
            raise KpilotError(msg("{path} exists and is not a kpilot demo folder; pass --dir to choose another "
                                  "folder", path=str(target)))
        with staging(target) as staged:
            manifest = generate_demo(staged, today=today, seed=seed, language=language)
            (staged / MARKER).write_text("generated by `kpilot demo`; regenerated at each run\n", encoding="utf-8")
            files = staged_files(staged)
            check_destinations(target, files, "demo")
            install(staged, target, files)
    return target / manifest.name


def write_template(target: Path, name: str, language: str, today: date, tables: Iterable[str],
                   rules: Iterable[TargetRule]) -> Path:
    """Write a template workspace from a year of the demo company: `templates/files/<name>.<language>.yaml`
    with targets set from the sample by `rules`, and the listed tables in data/; returns the kpilot.yaml path."""
    cal = DemoCalendar.around(today, 1)
    data = _Generator(cal, SEED).run()
    write_tables(data, target / "data", tables)
    return render_workspace(target, name, language, today, targets=compute_targets(data, cal, rules),
                            start=cal.start)
