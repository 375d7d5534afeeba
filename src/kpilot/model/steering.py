"""The steering method's rules, checked on a workspace: one North Star, 3 to 5 KPIs each with a target, an owner and
a decision rule (else a vanity metric), a target for the current period, and no team measured on volume alone."""

from __future__ import annotations

from datetime import date
from typing import Protocol

from kpilot.model.errors import did_you_mean, joined, msg, one_of
from kpilot.model.periods import label, period_start
from kpilot.model.targets import native_target
from kpilot.model.workspace import Metric, MetricType, Workspace
from kpilot.model.yamlsrc import PathKey

VOLUME_WORDS = ("lead", "session", "visit", "view", "click", "impression", "call", "email", "signup",
                "download", "follower", "contact", "post", "demo", "meeting", "activity", "activities")


class Checks(Protocol):
    """Where the validation pass collects issues (see kpilot.model.validate)."""

    ws: Workspace

    def error(self, path: PathKey, code: str, message: str, fix: str = "", *, key: bool = False,
              offset: int | None = None) -> None: ...

    def warn(self, path: PathKey, code: str, message: str, fix: str = "", *, key: bool = False) -> None: ...


def check_current_targets(ctx: Checks, today: date) -> None:
    """Warn about the North Star and board KPIs that have targets, but none for the period holding `today`
    (the workspace's today: the caller reads the clock). Without any target, the vanity warning asks for one."""
    ws = ctx.ws
    roles = [(ws.north_star, True)] if ws.north_star else []
    roles += [(key, False) for key in ws.board if key != ws.north_star]
    index = {m.key: i for i, m in enumerate(ws.metrics)}
    for key, north_star in roles:
        if key not in index:
            continue  # reported as an unknown metric
        metric = ws.metrics[index[key]]
        current = period_start(today, metric.grain, ws.week_start)
        if not metric.targets or native_target(metric, current) is not None:
            continue
        period = label(current, metric.grain, ws.week_start)
        what = (msg("the North Star '{metric}' has no target for its current period {period}: its status cannot "
                    "be judged", metric=key, period=period) if north_star else
                msg("board KPI '{metric}' has no target for its current period {period}: its status cannot be "
                    "judged", metric=key, period=period))
        ctx.warn(("metrics", index[key], "targets"), "no_current_target", what,
                 msg("add a target covering {period}, e.g. `{{from: {period}, value: ...}}` (without `to:`, a target "
                     "lasts until the next one starts)", period=period), key=True)


def check_board(ctx: Checks) -> None:
    ws = ctx.ws
    keys = ws.metric_keys
    if ws.north_star is not None and ws.north_star not in keys:
        ctx.error(("north_star",), "unknown_metric", msg("north_star '{metric}' is not a metric;{hint} metrics: "
                                                         "{metrics}", metric=ws.north_star,
                                                         hint=did_you_mean(ws.north_star, keys), metrics=one_of(keys)))
    elif ws.north_star is None and ws.metrics:
        ctx.warn(("workspace",), "no_north_star", msg("no North Star metric: every strategy needs exactly one"),
                 msg("add `north_star: <metric key>` (MRR for a SaaS, occupancy rate for an ESN)"), key=True)
    seen: set[str] = set()
    for j, key in enumerate(ws.board):
        if key not in keys:
            ctx.error(("board", j), "unknown_metric", msg("board metric '{metric}' is not defined;{hint} metrics: "
                                                          "{metrics}", metric=key, hint=did_you_mean(key, keys),
                                                          metrics=one_of(keys)))
        if key in seen:
            ctx.error(("board", j), "duplicate_tile", msg("'{metric}' is on the board twice", metric=key))
        seen.add(key)
        if key == ws.north_star:
            ctx.warn(("board", j), "north_star_on_board", msg("the North Star is shown above the board already"),
                     msg("remove it from `board:` and pick another KPI"))
    n = len(ws.board)
    if ws.metrics and not 3 <= n <= 5:
        ctx.warn(("board",), "board_size", msg("the board has {n} KPI(s); the method asks for 3 to 5 beside the "
                                               "North Star", n=n),
                 msg("keep only the KPIs that, if they turn green, make the vision happen") if n > 5
                 else msg("add the 3 to 5 KPIs that predict or deliver the North Star"), key=True)
    for j, key in enumerate([*ws.board, *([ws.north_star] if ws.north_star else [])]):
        if key not in keys:
            continue
        metric = ws.metric(key)
        missing = [w for w, ok in ((msg("target"), metric.targets), (msg("owner"), metric.owners),
                                   (msg("decision rule"), metric.decision)) if not ok]
        if missing:
            path: PathKey = ("board", j) if j < len(ws.board) else ("north_star",)
            ctx.warn(path, "vanity_metric", msg("'{metric}' is on the board without {missing}: a number that "
                                                "triggers no decision is a vanity metric", metric=key,
                                                missing=joined(", ", missing)),
                     msg("give it a target, an owner and a `decision: {{when, owner, action}}`, or take it off the "
                         "board"))


def is_volume_metric(metric: Metric) -> bool:
    """A pure volume count (leads, sessions...): more is not necessarily better, and easy to game."""
    if metric.type is not MetricType.simple or not metric.measure:
        return False
    text = metric.measure.replace(" ", "").lower()
    if text.startswith("count(") or text.startswith("count_if("):
        return (metric.unit or "").upper() not in {"EUR", "USD", "GBP", "CHF"}
    if text.startswith("sum(") and (metric.unit is None or metric.unit.lower() == "count"):
        return any(w in text for w in VOLUME_WORDS)
    return False


def check_incentives(ctx: Checks) -> None:
    ws = ctx.ws
    shared_quality: dict[str, list[str]] = {}
    for m in ws.metrics:
        if len(m.owners) >= 2 and not is_volume_metric(m):
            for o in m.owners:
                shared_quality.setdefault(o, []).append(m.key)
    for i, m in enumerate(ws.metrics):
        if is_volume_metric(m) and len(m.owners) == 1 and not shared_quality.get(m.owners[0]):
            ctx.warn(("metrics", i, "owners"), "incentive_risk",
                     msg("'{metric}' is a pure volume metric owned by {team} alone, with no shared quality KPI "
                         "beside it: a team measured on volume alone will push volume, whatever its quality",
                         metric=m.key, team=m.owners[0]),
                     msg("share a quality KPI with the next team (e.g. pipeline generated or a conversion rate, "
                         "owned by {team} and sales), or add a co-owner", team=m.owners[0]))


__all__ = ["VOLUME_WORDS", "Checks", "check_board", "check_current_targets", "check_incentives", "is_volume_metric"]
