"""Decisions with a measured effect: recorded with the expected effect and a review date, and the forecast made before
them kept as the counterfactual; at the review date, the actual change measured against both.

The measured periods are the complete periods of the KPI's grain that start after the decision and end by the review
date. The counterfactual is what the KPI's own forecast said about those very periods on the day of the decision;
the effect is judged beyond it only when the actual value leaves its 80 % interval:
- `worked`: beyond the interval in the good direction, and at least half the expected change reached;
- `partly`: beyond the interval in the good direction, less than half the expected change;
- `no_clear_effect`: inside the interval (the KPI did what it would have done anyway);
- `backfired`: beyond the interval in the bad direction.
"""

from __future__ import annotations

import math
import re
from contextlib import suppress
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from kpilot.analysis import forecast as forecast_mod
from kpilot.model.errors import msg
from kpilot.model.periods import Grain, label, next_start, period_start, shift
from kpilot.model.workspace import Metric
from kpilot.store import AppStore, DecisionRecord, StoreInvalid, StoreNotFound
from kpilot.store.alert_log import AlertRecord

if TYPE_CHECKING:
    from kpilot.service import WorkspaceService

_SHARE = re.compile(r"([+\-−]?\s*\d+(?:[.,]\d+)?)\s*%")
_WITHIN = re.compile(r"(\d+)\s*(day|jour|week|semaine|month|mois)", re.IGNORECASE)
_DAYS = {"day": 1, "jour": 1, "week": 7, "semaine": 7, "month": 30, "mois": 30}
REVIEW_HORIZON = timedelta(days=5 * 366)  # a review further ahead would forecast for years: refused
DEFAULT_REVIEW = {Grain.day: 14, Grain.week: 28, Grain.month: 92, Grain.quarter: 183, Grain.year: 365}
VERDICTS = ("worked", "partly", "no_clear_effect", "backfired", "not_measurable")


def expected_change(text: str | None) -> float | None:
    """The share a person's words expect: "+15 % demos within 3 weeks" -> 0.15, "-10%" -> -0.10."""
    if not text:
        return None
    m = _SHARE.search(text)
    if m is None:
        return None
    number = m.group(1).replace(" ", "").replace("−", "-").replace(",", ".")
    share = float(number) / 100
    return share if math.isfinite(share) else None  # "+999…9 %" reads as no expectation, not infinity


def review_date(text: str | None, decided: date, grain: Grain, review_after: int | None) -> date:
    """When to measure: "within 3 weeks" in the expected effect, else the rule's `review_after` periods, else a
    default per grain (four weeks for a weekly KPI, a quarter for a monthly one)."""
    m = _WITHIN.search(text or "")
    if m is not None:
        unit = m.group(2).lower()
        days = min(int(m.group(1)[:7]), 10 * 366) * _DAYS[unit]  # "within 99999999 days" is refused, not an overflow
        return decided + timedelta(days=days)
    if review_after:
        return shift(period_start(decided, grain), grain, review_after + 1) - timedelta(days=1)
    return decided + timedelta(days=DEFAULT_REVIEW[grain])


def _window(decided: date, review_on: date, grain: Grain, week_start: Any) -> list[date]:
    """Complete periods starting after the decision and ending by the review date."""
    out = []
    p = next_start(period_start(decided, grain, week_start), grain)
    while next_start(p, grain) - timedelta(days=1) <= review_on:
        out.append(p)
        p = next_start(p, grain)
    return out


def baseline(svc: WorkspaceService, key: str, decided: date, review_on: date) -> dict[str, Any]:
    """The forecast made on the decision's day for the periods its effect is measured on (the counterfactual)."""
    from kpilot.insights import SEASON, Insights

    metric = svc.ws.metric(key)
    grain = metric.grain
    ins = Insights(svc, computer=svc.computer(decided))
    # The KPI's own forecast, as `kpilot forecast` makes it: its history and the leading indicators measured then.
    edges = [e for e in ins.edges() if e.follower == key and e.lag >= 1]
    data = ins.aligned([key, *[e.leader for e in edges]], grain)
    y = data.values[key]
    valid = np.flatnonzero(np.isfinite(y))
    window = _window(decided, review_on, grain, svc.ws.week_start)
    out: dict[str, Any] = {"made_on": decided.isoformat(), "periods": [], "before": None, "method": None}
    if len(valid) < 4 or not window:
        return out
    y = y[valid[0]:]
    last = data.periods[-1]
    steps = [len(_between(last, p, grain, svc.ws.week_start)) for p in window]
    leaders = [forecast_mod.Leader(data.values[e.leader][valid[0]:], e.lag) for e in edges]
    fc = forecast_mod.forecast(y, max(steps), season=SEASON[grain], leaders=leaders)
    out["method"] = fc.method
    out["before"] = float(np.nanmean(y[-len(window):]))
    for p, step in zip(window, steps, strict=True):
        point = fc.points[step - 1]
        out["periods"].append({"period": p.isoformat(), "label": label(p, grain, svc.ws.week_start),
                               "value": point.value, "lower": point.lower, "upper": point.upper})
    return out


def _between(after: date, upto: date, grain: Grain, week_start: Any) -> list[date]:
    out, p = [], next_start(after, grain)
    while p <= upto:
        out.append(p)
        p = next_start(p, grain)
    return out


def review_day(metric: Metric, expected_effect: str | None, review_on: date | None, day: date) -> date:
    """The review date of a decision taken on `day` (the one given, else the expected effect's delay, else the rule's),
    checked: after the decision's day and at most five years later (a later one would forecast for years)."""
    try:
        review = review_on or review_date(expected_effect, day, metric.grain,
                                          metric.decision.review_after if metric.decision else None)
    except (OverflowError, ValueError):
        review = date.max
    if review <= day:
        raise StoreInvalid(msg("the review date {day} must be after the decision's day", day=review.isoformat()))
    if review - day > REVIEW_HORIZON:
        raise StoreInvalid(msg("the review date {day} is more than five years ahead. Fix: pick a date within five "
                               "years.", day=review.isoformat()))
    return review


def answered_alert(store: AppStore, workspace: str, alert_id: int, key: str) -> AlertRecord:
    """The alert a decision on `key` answers: one of the workspace's (StoreNotFound), about that KPI (StoreInvalid)."""
    found = store.alert(workspace, alert_id)
    if found is None:
        raise StoreNotFound(msg("there is no alert {id} in workspace '{workspace}'. Fix: see `kpilot alerts` for the "
                                "ids.", id=alert_id, workspace=workspace))
    if found.metric != key:
        raise StoreInvalid(msg("alert {id} is about {alert_metric}, not {metric}. Fix: decide on {alert_metric}, or "
                               "leave the alert out.", id=alert_id, alert_metric=found.metric, metric=key))
    return found


def decide(svc: WorkspaceService, key: str, *, action: str, by: str | None = None, owner: str | None = None,
           expected_effect: str | None = None, review_on: date | None = None, alert_id: int | None = None,
           today: date | None = None, actor: str | None = None) -> DecisionRecord:
    """Record a decision about a KPI (from an alert, a page, the API or the CLI), with its counterfactual. `by`:
    who decided; `actor`: who recorded it (the audit log; default `by`)."""
    if key not in svc.ws.metric_keys:
        raise StoreNotFound(msg("unknown metric '{metric}'", metric=key))
    metric = svc.ws.metric(key)
    day = today or svc.today()
    rule = metric.decision
    review = review_day(metric, expected_effect, review_on, day)
    store = svc.app_store()
    if alert_id is not None:
        answered_alert(store, svc.ws.workspace, alert_id, key)
    period = label(period_start(day, metric.grain, svc.ws.week_start), metric.grain, svc.ws.week_start)
    svc.load()
    record = store.add_decision(
        svc.ws.workspace, key, period=period, action=action, owner=owner or (rule.owner if rule else None),
        user=by, expected_effect=expected_effect, expected_change=expected_change(expected_effect),
        review_on=review.isoformat(), alert_id=alert_id, baseline=baseline(svc, key, day, review), actor=actor)
    if alert_id is not None:
        # The alert is answered: someone owns it now, and no more messages are sent about it until it resolves.
        with suppress(ValueError):  # resolved meanwhile: nothing left to acknowledge
            store.set_alert_state(svc.ws.workspace, alert_id, "acknowledged", by=by or record.owner, actor=actor)
    return record


def measure(svc: WorkspaceService, decision: DecisionRecord, as_of: date | None = None) -> dict[str, Any]:
    """The effect of a decision whose review date has come: actual change against the expectation and against the
    forecast made before it."""
    metric = svc.ws.metric(decision.metric)
    base = decision.baseline or {}
    periods = base.get("periods") or []
    out: dict[str, Any] = {"measured_on": (as_of or svc.today()).isoformat(),
                           "expected_change": decision.expected_change,
                           "periods": [p["label"] for p in periods]}
    if not periods or base.get("before") in (None, 0):
        return {**out, "verdict": "not_measurable"}
    series = svc.computer(as_of).series(decision.metric, metric.grain)
    actual = [series.value_at(date.fromisoformat(p["period"])) for p in periods]
    values = [float(v) for v in actual if v is not None and np.isfinite(v)]
    if len(values) < len(periods):
        return {**out, "verdict": "not_measurable"}
    mean = float(np.mean(values))
    forecast = float(np.mean([p["value"] for p in periods]))
    lower = float(np.mean([p["lower"] for p in periods]))
    upper = float(np.mean([p["upper"] for p in periods]))
    before = float(base["before"])
    change = mean / before - 1
    sign = 1.0 if metric.direction.value == "up" else -1.0
    if sign * (mean - (upper if sign > 0 else lower)) > 0:
        expected = decision.expected_change
        verdict = "worked" if expected is None or sign * change >= 0.5 * sign * expected else "partly"
    elif sign * (mean - (lower if sign > 0 else upper)) < 0:
        verdict = "backfired"
    else:
        verdict = "no_clear_effect"
    return {**out, "actual": mean, "before": before, "actual_change": change, "counterfactual": forecast,
            "counterfactual_lower": lower, "counterfactual_upper": upper, "vs_counterfactual": mean / forecast - 1
            if forecast else None, "verdict": verdict}


def review_due(svc: WorkspaceService, as_of: date, *, store: AppStore | None = None) -> list[DecisionRecord]:
    """Measure every decision whose review date has come and whose effect is not measured yet. A decision recorded
    without a counterfactual (before kpilot kept one, or through a form that gave no review date) is left for
    people to review: it stays due."""
    store = store or svc.app_store()
    done = []
    for d in store.decisions(svc.ws.workspace):
        if (d.review_on and d.effect is None and d.baseline and d.review_on <= as_of.isoformat()
                and d.metric in svc.ws.metric_keys):
            done.append(store.record_effect(svc.ws.workspace, d.id, measure(svc, d, as_of)))
    return done


__all__ = ["VERDICTS", "answered_alert", "baseline", "decide", "expected_change", "measure", "review_date",
           "review_day", "review_due"]
