"""The "Christmas tree" audit: is each metric, board tile or dashboard chart worth its place?

A dashboard where everything blinks tells no story. A number earns its place when it triggers a
decision (if it changes, someone knows what to do), has an owner and a target, predicts an outcome
that matters, does not reward pure volume owned by one team, and says something no other number
already says — or when it does a job for the rest of the workspace. Each metric gets a verdict —
keep, fix or delete — with the reasons, and each fix says in words what to change and where.

A metric's jobs (`MetricUse`): a part of a ratio, an input of a derived metric's formula, a stage of
the marketing-sales funnel (found by kpilot.insights, passed in), the quality counter-metric of a volume
someone owns (a ratio over the same model), or a leading indicator measured to lead an outcome.

Verdict rules, in order:
  * the North Star is never deleted: keep when it has a decision rule, an owner and a target, else fix;
  * a duplicate (|correlation| >= threshold) of a better-placed metric that is kept: fix for a board tile
    (a person picks which tile goes), else delete unless it does a job;
  * a metric steered as a KPI or worth being one (a decision rule, a lagging outcome, or it predicts
    one): fix when it lacks a decision rule, an owner or a target, is pure volume owned by one team, or
    is a leading metric that predicts nothing; else keep;
  * a metric that does a job for others: keep (it needs no decision rule of its own); fix when it is
    pure volume owned by one team, or a funnel stage or counter-metric that no team answers for;
  * anything else: delete.

"Outcomes" are the North Star and the lagging metrics (the followers of lead-lag discovery). A metric
"predicts" an outcome when a chain of lead-lag edges (lag >= 1, p-value <= max_p_value) leads from it
to one. Without any edge (the lead-lag analysis was not run), whether a metric predicts is unknown.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from kpilot.analysis.leadlag import EdgeLike
from kpilot.model.errors import N_, KpilotError, Location, Message, Number, did_you_mean, msg, verbatim
from kpilot.model.periods import Grain
from kpilot.model.validate import dependencies
from kpilot.model.workspace import Direction, Kind, Metric, MetricType, Workspace

VOLUME_MEASURE = re.compile(r"^\s*(count|sum)\s*\(", re.IGNORECASE)
VOLUME_TYPES = (MetricType.simple, MetricType.cumulative, MetricType.snapshot)
# What a metric's settings form edits (kpilot.web.settings): a fix of one of them is made there (or in kpilot.yaml).
SETTINGS_FIELDS = ("decision", "owners", "targets")
# Jobs that make a metric an ingredient of another: it needs no owner of its own.
INGREDIENT_ROLES = ("numerator", "denominator", "input")
USE_WORDS = {
    "numerator": N_("used by {metric} as its numerator"),
    "denominator": N_("used by {metric} as its denominator"),
    "input": N_("input of {metric}"),
    "funnel_stage": N_("the {metric} stage of the marketing-sales funnel"),
    "counter_metric": N_("quality counter-metric of {metric}: it tells whether volume comes at the cost of quality"),
}
LAG_WORDS = {Grain.day: (N_("{n} day ahead"), N_("{n} days ahead")),
             Grain.week: (N_("{n} week ahead"), N_("{n} weeks ahead")),
             Grain.month: (N_("{n} month ahead"), N_("{n} months ahead")),
             Grain.quarter: (N_("{n} quarter ahead"), N_("{n} quarters ahead")),
             Grain.year: (N_("{n} year ahead"), N_("{n} years ahead"))}


@dataclass(frozen=True)
class MetricUse:
    """A job a metric does: `by` (a metric key, or a funnel stage's name) uses it as `role`
    ('numerator' | 'denominator' | 'input' | 'funnel_stage' | 'counter_metric'); `title` names `by`."""

    by: str
    title: str
    role: str

    def to_dict(self) -> dict[str, object]:
        return {"by": self.by, "title": self.title, "role": self.role}


@dataclass(frozen=True)
class AuditFix:
    """What to change, in people's words, and where: 'settings' (the metric's settings form edits `field`,
    as kpilot.yaml does), 'workspace' (kpilot.yaml only) or 'inventory' (the dashboard's CSV file)."""

    text: Message
    where: str
    field: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {"text": str(self.text), "where": self.where, "field": self.field}


@dataclass(frozen=True)
class AuditVerdict:
    """keep | fix | delete for one metric or chart, with the checks behind it.

    `checks`: 'decision', 'owner', 'target', 'predicts' are True when passed; 'incentive_risk' and
    'duplicate_of' are True when the problem is there. None = unknown (no data to tell).
    `fixes`: what turns a 'fix' into a 'keep' (empty for the other verdicts). `used_by`: the metric's jobs.
    """

    key: str
    title: str
    verdict: str
    reasons: tuple[Message, ...]
    checks: dict[str, bool | None]
    question: Message | None = None
    role: str = "metric"  # 'north_star' | 'board' | 'metric' | 'chart'
    duplicate_of: str | None = None
    metric: str | None = None  # the workspace metric behind the row, when known
    fixes: tuple[AuditFix, ...] = ()
    used_by: tuple[MetricUse, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "key": self.key,
            "title": self.title,
            "verdict": self.verdict,
            "role": self.role,
            "metric": self.metric,
            "reasons": [str(r) for r in self.reasons],
            "checks": dict(self.checks),
            "question": str(self.question) if self.question is not None else None,
            "duplicate_of": self.duplicate_of,
            "fixes": [f.to_dict() for f in self.fixes],
            "used_by": [u.to_dict() for u in self.used_by],
        }


@dataclass(frozen=True)
class InventoryRow:
    """One chart of an existing dashboard; `line` is its line in the inventory file."""

    title: str
    metric: str | None = None
    owner: str | None = None
    decision: str | None = None
    line: int = 0

    def to_dict(self) -> dict[str, object]:
        return {"title": self.title, "metric": self.metric, "owner": self.owner, "decision": self.decision,
                "line": self.line}


# --- the context every verdict is judged in -------------------------------------------------------


@dataclass
class _Context:
    ws: Workspace | None
    edges: Sequence[EdgeLike]
    correlations: Mapping[tuple[str, str], float]
    threshold: float
    max_p_value: float
    funnel: Sequence[tuple[str, str]] = ()
    outcomes: set[str] = field(default_factory=set)
    forward: dict[str, list[EdgeLike]] = field(default_factory=dict)
    uses: dict[str, list[MetricUse]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (ws := self.ws) is not None:
            # The same outcomes as lead-lag discovery's followers: the North Star and every lagging metric.
            self.outcomes = {m.key for m in ws.metrics if m.key == ws.north_star or m.kind is Kind.lagging}
            self.uses = metric_uses(ws, self.funnel)
        for e in self.edges:
            if e.leader != e.follower and e.lag >= 1 and (e.p_value is None or e.p_value <= self.max_p_value):
                self.forward.setdefault(e.leader, []).append(e)

    def label(self, key: str) -> str:
        return self.ws.metric(key).label if self.ws is not None and key in self.ws.metric_keys else key

    def predicts(self, key: str) -> tuple[bool | None, Message]:
        """Whether `key` is an outcome or leads to one through lead-lag edges, and why."""
        if self.ws is not None and key == self.ws.north_star:
            return True, msg("the North Star: the outcome everything else serves")
        if key in self.outcomes:
            if self.ws is not None and not self.ws.metric(key).targets:
                return True, msg("a lagging outcome: it matters by itself")
            return True, msg("a lagging outcome with a target: it matters by itself")
        if not self.edges or self.ws is None:
            return None, msg("unknown whether it predicts an outcome: run the lead-lag analysis")
        path = self._path_to_outcome(key)
        if path is None:
            return False, msg("predicts no outcome (North Star, lagging KPI): no lead-lag edge leads from it to one")
        outcome = self.label(path[-1].follower)
        if len(path) == 1:
            e = path[0]
            grain: Grain = getattr(e, "grain", None) or self.ws.metric(e.follower).grain  # the lag's unit
            one, many = LAG_WORDS[grain]
            return True, msg("leading indicator of {outcome}, {lag} (correlation {correlation})",
                             outcome=outcome, lag=msg(one if e.lag == 1 else many, n=e.lag),
                             correlation=Number(e.correlation))
        chain = " → ".join(self.label(k) for k in [path[0].leader, *(e.follower for e in path)])
        return True, msg("leading indicator of {outcome} through {chain}", outcome=outcome, chain=chain)

    def _path_to_outcome(self, key: str) -> list[EdgeLike] | None:
        """Shortest chain of edges from `key` to an outcome (breadth first)."""
        queue: deque[tuple[str, list[EdgeLike]]] = deque([(key, [])])
        seen = {key}
        while queue:
            node, path = queue.popleft()
            for e in sorted(self.forward.get(node, []), key=lambda e: (e.follower not in self.outcomes, e.lag)):
                if e.follower in self.outcomes:
                    return [*path, e]
                if e.follower not in seen:
                    seen.add(e.follower)
                    queue.append((e.follower, [*path, e]))
        return None

    def correlation(self, a: str, b: str) -> float | None:
        r = self.correlations.get((a, b), self.correlations.get((b, a)))
        return None if r is None else float(r)

    def duplicate(self, key: str, kept: Sequence[str]) -> tuple[bool | None, str | None, float | None]:
        """The first kept metric `key` duplicates: |correlation| >= threshold. None when nothing is known."""
        if not self.correlations:
            return None, None, None
        for other in kept:
            r = self.correlation(key, other)
            if other != key and r is not None and abs(r) >= self.threshold:
                return True, other, r
        return False, None, None


def _is_volume(m: Metric) -> bool:
    return m.type in VOLUME_TYPES and bool(m.measure and VOLUME_MEASURE.match(m.measure)) and \
        m.direction is Direction.up


def _counter_metrics(ws: Workspace, m: Metric) -> list[str]:
    """Ratios over the same model as volume `m`: quality measures it could be paired with."""
    out = []
    for other in ws.metrics:
        if other.type is MetricType.ratio and other.key != m.key:
            models = {p.model for p in (other.numerator, other.denominator) if p is not None}
            if m.model in models:
                out.append(other.key)
    return out


def metric_uses(ws: Workspace, funnel: Sequence[tuple[str, str]] = ()) -> dict[str, list[MetricUse]]:
    """metric -> the jobs it does: ratio part, formula input, funnel stage (`funnel`: (stage, metric) pairs),
    quality counter-metric of a volume some team owns. Leading an outcome is read from lead-lag edges."""
    uses: dict[str, list[MetricUse]] = {}

    def add(key: str, use: MetricUse) -> None:
        if key in ws.metric_keys and key != use.by and use not in uses.get(key, []):
            uses.setdefault(key, []).append(use)

    for m in ws.metrics:
        for role, part in (("numerator", m.numerator), ("denominator", m.denominator)):
            if part is not None and part.metric:
                add(part.metric, MetricUse(m.key, m.label, role))
        if m.type is MetricType.derived:
            for dep in dependencies(ws, m):
                add(dep, MetricUse(m.key, m.label, "input"))
        if _is_volume(m) and m.owners:
            for c in _counter_metrics(ws, m):
                add(c, MetricUse(m.key, m.label, "counter_metric"))
    for stage, key in funnel:
        add(key, MetricUse(stage, stage, "funnel_stage"))
    return uses


def _use_reasons(uses: Sequence[MetricUse]) -> list[Message]:
    """The jobs in words: one line per ratio part, the inputs and counter-metric roles each on one line."""
    out: list[Message] = []
    for role, template in USE_WORDS.items():
        found = [u for u in uses if u.role == role]
        if role in ("input", "counter_metric") and found:
            out.append(msg(template, metric=", ".join(u.title for u in found)))
        elif found:  # a funnel stage's name is translated
            out += [msg(template, metric=msg(u.title) if role == "funnel_stage" else u.title) for u in found]
    return out


def _team_name(ws: Workspace | None, key: str) -> str:
    """A team's name as people know it (its key when the workspace does not list it)."""
    return ws.team_name(key) if ws is not None else key


def _incentive(ws: Workspace, m: Metric) -> tuple[bool, Message | None]:
    if not (_is_volume(m) and len(m.owners) == 1):
        return False, None
    counters = ", ".join(ws.metric(k).label for k in _counter_metrics(ws, m))
    such = msg("such as {counters}", counters=counters) if counters else msg("(a conversion rate, a ratio)")
    return True, msg("pure volume owned by {team} alone: pushing it invites quantity over quality; share it with "
                     "another team, or pair it with a quality counter-metric {such}", team=_team_name(ws, m.owners[0]),
                     such=such)


def _rank(ws: Workspace, m: Metric) -> tuple[int, int, int]:
    """Which of two duplicates stays: North Star, then board, then the most complete, then file order."""
    place = 0 if m.key == ws.north_star else 1 if m.key in ws.board else 2
    return place, -sum((m.decision is not None, bool(m.owners), bool(m.targets))), ws.metric_keys.index(m.key)


FIX_DECISION = AuditFix(msg("Write its decision rule: when it moves, who acts and what they do"), "settings",
                        "decision")
FIX_OWNER = AuditFix(msg("Name the team that answers for it"), "settings", "owners")
FIX_TARGET = AuditFix(msg("Set the value it should reach, period by period"), "settings", "targets")
FIX_SHARE = AuditFix(msg("Add a second team to its owners, so that volume alone does not win"), "settings", "owners")
FIX_KIND = AuditFix(msg("Check what it should lead (kpilot leads): no outcome follows it in the data; if none "
                        "does, stop calling it a leading indicator"), "workspace", "kind")


def audit_workspace(ws: Workspace, edges: Sequence[EdgeLike], correlations: Mapping[tuple[str, str], float], *,
                    funnel: Sequence[tuple[str, str]] = (), duplicate_threshold: float = 0.95,
                    max_p_value: float = 0.05) -> list[AuditVerdict]:
    """A verdict for every metric: North Star first, then the board tiles, then the other metrics.

    `edges` come from the lead-lag analysis; `correlations` map metric pairs (either order) to the
    correlation of their period-over-period changes — levels of two growing series always correlate.
    `funnel`: the marketing-sales funnel's (stage name, metric key) pairs (kpilot.insights.funnel).
    """
    ctx = _Context(ws, edges, correlations, duplicate_threshold, max_p_value, funnel)
    ordered = sorted(ws.metrics, key=lambda m: _rank(ws, m))
    kept: list[str] = []
    by_key: dict[str, AuditVerdict] = {}
    for m in ordered:
        verdict = _audit_metric(ctx, ws, m, kept)
        by_key[m.key] = verdict
        if verdict.verdict != "delete":
            kept.append(m.key)
    for key, v in by_key.items():
        # An ingredient kept only for metrics the audit deletes: say what deleting them frees.
        users = [u for u in v.used_by if u.role in INGREDIENT_ROLES]
        if v.verdict == "keep" and users and len(users) == len(v.used_by) and not v.checks["decision"] \
                and not v.checks["predicts"] and all(by_key[u.by].verdict == "delete" for u in users):
            note = msg("if {metric} goes, this one can go too", metric=", ".join(u.title for u in users))
            by_key[key] = replace(v, reasons=(*v.reasons, note))
    order = ([ws.north_star] if ws.north_star in by_key else []) + [k for k in ws.board if k in by_key]
    order += [k for k in ws.metric_keys if k not in order]
    return [by_key[k] for k in order]


def _audit_metric(ctx: _Context, ws: Workspace, m: Metric, kept: Sequence[str]) -> AuditVerdict:
    ns, board = m.key == ws.north_star, m.key in ws.board
    uses = ctx.uses.get(m.key, [])
    predicts, why = ctx.predicts(m.key)
    risk, risk_why = _incentive(ws, m)
    dup, dup_of, r = (False, None, None) if ns else ctx.duplicate(m.key, kept)
    checks: dict[str, bool | None] = {
        "decision": m.decision is not None, "owner": bool(m.owners), "target": bool(m.targets),
        "predicts": predicts, "incentive_risk": risk, "duplicate_of": dup,
    }
    is_outcome = m.key in ctx.outcomes
    steered = ns or m.decision is not None or is_outcome or predicts is True  # a KPI, or one worth making
    serves = bool(uses) or (predicts is True and not is_outcome)  # it does a job for other numbers
    other = ctx.label(dup_of) if dup_of is not None else ""
    fixes: list[AuditFix] = []
    if dup and (board or not serves):
        verdict = "fix" if board else "delete"
        fixes.append(AuditFix(msg("Take {title} or {other} off the board: they move together", title=m.label,
                                  other=other), "workspace", "board"))
    elif steered:
        fixes += [f for f, ok in ((FIX_DECISION, checks["decision"]), (FIX_OWNER, checks["owner"]),
                                  (FIX_TARGET, checks["target"])) if not ok]
        if risk:
            fixes.append(FIX_SHARE)
        if m.kind is Kind.leading and predicts is False and not ns:
            fixes.append(FIX_KIND)
        verdict = "fix" if fixes else "keep"
    elif serves:
        if not m.owners and any(u.role not in INGREDIENT_ROLES for u in uses):
            fixes.append(FIX_OWNER)
        if risk:
            fixes.append(FIX_SHARE)
        verdict = "fix" if fixes else "keep"
    else:
        verdict = "delete"
    reasons: list[Message] = [why] if ns else []
    if m.decision is not None:
        reasons.append(msg("decision rule: {owner} acts — {action}", owner=_team_name(ws, m.decision.owner),
                           action=m.decision.action))
    elif steered or verdict == "delete":
        reasons.append(msg("no decision rule: if {title} changes, nobody knows what to do", title=m.label))
    if not ns and (steered or verdict == "delete"):
        reasons.append(why)
    reasons += _use_reasons(uses)
    if not steered and verdict != "delete":
        reasons.append(msg("its job needs no decision rule of its own"))
    if not m.owners and (steered or verdict == "delete" or FIX_OWNER in fixes):
        reasons.append(msg("no owner: no team answers for it"))
    if not m.targets and (steered or verdict == "delete"):
        reasons.append(msg("no target: nobody can tell a good value from a bad one"))
    if risk_why is not None:
        reasons.append(risk_why)
    if dup and r is not None:
        if verdict == "delete" or board:
            reasons.append(msg("duplicate of {other} (correlation {correlation}): it tells nothing {other} does not",
                               other=other, correlation=Number(r)))
        else:
            reasons.append(msg("moves like {other} (correlation {correlation}): no need to show both, but the "
                               "metrics that use it need its definition", other=other, correlation=Number(r)))
    if verdict == "fix" and not dup and m.decision is None and predicts:
        if is_outcome:
            reasons.append(msg("an outcome without a decision: worth turning into a KPI (decision rule, owner, "
                               "target)"))
        else:
            reasons.append(msg("it predicts an outcome: worth turning into a KPI (decision rule, owner, target)"))
    if verdict == "delete" and not serves:
        reasons.append(msg("nothing depends on it: no metric is computed from it, it is no funnel stage and it "
                           "leads no KPI"))
    role = "north_star" if ns else "board" if board else "metric"
    return AuditVerdict(key=m.key, title=m.label, verdict=verdict, reasons=tuple(reasons), checks=checks,
                        role=role, duplicate_of=dup_of, metric=m.key, fixes=tuple(fixes) if verdict == "fix" else (),
                        used_by=tuple(uses))


# --- the inventory of an existing dashboard --------------------------------------------------------


def audit_inventory(rows: Sequence[InventoryRow], ws: Workspace | None, edges: Sequence[EdgeLike],
                    correlations: Mapping[tuple[str, str], float], *, funnel: Sequence[tuple[str, str]] = (),
                    duplicate_threshold: float = 0.95, max_p_value: float = 0.05) -> list[AuditVerdict]:
    """A verdict for every chart of an existing dashboard, in the inventory's order.

    A chart naming a workspace metric takes that metric's owner, target and decision rule when its own
    columns are empty. A chart without a decision is asked: if this number changes, what decision do we take?
    A chart is judged as a chart: deleting it never deletes the metric behind it.
    """
    ctx = _Context(ws, edges, correlations, duplicate_threshold, max_p_value, funnel)
    out: list[AuditVerdict] = []
    shown: dict[str, str] = {}  # metric -> title of the first chart kept that shows it
    for row in rows:
        out.append(_audit_row(ctx, ws, row, shown))
    return out


def _decide_chart(*, protected: bool, board: bool, checks: Mapping[str, bool | None], is_outcome: bool,
                  is_leading: bool) -> str:
    if protected:
        complete = all(checks.get(c) is not False for c in ("decision", "owner", "target"))
        return "keep" if complete and not checks.get("incentive_risk") else "fix"
    if checks.get("duplicate_of"):
        return "fix" if board else "delete"
    if not checks.get("decision") and not is_outcome and checks.get("predicts") is not True:
        return "delete"
    failed = [c for c in ("decision", "owner", "target") if checks.get(c) is False]
    if failed or checks.get("incentive_risk") or (is_leading and checks.get("predicts") is False):
        return "fix"
    return "keep"


def _audit_row(ctx: _Context, ws: Workspace | None, row: InventoryRow, shown: dict[str, str]) -> AuditVerdict:
    reasons: list[Message] = []
    fixes: list[AuditFix] = []
    m: Metric | None = None
    if row.metric and ws is not None:
        if row.metric in ws.metric_keys:
            m = ws.metric(row.metric)
        else:
            reasons.append(msg("metric '{metric}' is not in the workspace;{hint} its checks are unknown",
                               metric=row.metric, hint=did_you_mean(row.metric, ws.metric_keys)))
    has_decision = bool(row.decision) or (m is not None and m.decision is not None)
    has_owner = bool(row.owner) or (m is not None and bool(m.owners))
    predicts: bool | None = None
    if m is not None:
        predicts, why = ctx.predicts(m.key)
        reasons.append(why)
    risk: bool | None = None
    if m is not None and ws is not None:
        risk, risk_why = _incentive(ws, m)
        if risk_why is not None:
            reasons.append(risk_why)
    dup: bool | None = None
    dup_of: str | None = None
    if row.metric and row.metric in shown:
        dup, dup_of = True, shown[row.metric]
        reasons.append(msg("shows the same metric as the chart '{other}'", other=dup_of))
    elif row.metric:
        dup, other_metric, r = ctx.duplicate(row.metric, list(shown))
        if dup and other_metric is not None and r is not None:
            dup_of = shown[other_metric]
            reasons.append(msg("duplicate of the chart '{other}' ({metric}, correlation {correlation}): it tells "
                               "nothing that chart does not", other=dup_of, metric=ctx.label(other_metric),
                               correlation=Number(r)))
    checks: dict[str, bool | None] = {
        "decision": has_decision, "owner": has_owner, "target": None if m is None else bool(m.targets),
        "predicts": predicts, "incentive_risk": risk, "duplicate_of": dup,
    }
    question = None
    if row.decision:
        reasons.append(msg("decision: {decision}", decision=row.decision))
    elif m is not None and m.decision is not None:
        reasons.append(msg("decision rule: {owner} acts — {action}", owner=_team_name(ws, m.decision.owner),
                           action=m.decision.action))
    else:
        question = msg("If {title} changes, what decision do we take?", title=row.title)
        reasons.append(msg("no decision: nobody has said what to do when it changes"))
        fixes.append(AuditFix(msg("Write in the decision column what this chart should trigger"), "inventory",
                              "decision"))
    if not has_owner:
        reasons.append(msg("no owner: no team answers for it"))
        fixes.append(AuditFix(msg("Write in the owner column the team that answers for it"), "inventory", "owner"))
    if m is not None and not m.targets:
        reasons.append(msg("no target: nobody can tell a good value from a bad one"))
        fixes.append(AuditFix(msg("Set the value {metric} should reach, period by period", metric=m.label),
                              "settings", "targets"))
    if m is not None and risk:
        fixes.append(AuditFix(msg("Add a second team to the owners of {metric}, so that volume alone does not win",
                                  metric=m.label), "settings", "owners"))
    ns = ws is not None and row.metric is not None and row.metric == ws.north_star
    board = ws is not None and row.metric is not None and row.metric in ws.board
    verdict = _decide_chart(protected=ns, board=board, checks=checks,
                            is_outcome=row.metric is not None and row.metric in ctx.outcomes,
                            is_leading=m is not None and m.kind is Kind.leading)
    if verdict == "fix" and dup:  # a board metric shown twice
        fixes = [AuditFix(msg("Keep one of the charts {title} and {other}", title=row.title, other=dup_of),
                          "inventory")]
    if verdict == "fix" and not has_decision and predicts:
        reasons.append(msg("it predicts an outcome: write the decision this chart should trigger"))
    if verdict == "delete" and not has_decision:
        reasons.append(msg("if nobody can answer the question, delete the chart"))
    if verdict == "delete" and m is not None and ctx.uses.get(m.key):
        reasons += [msg("the chart goes, the metric stays: {job}", job=job) for job in _use_reasons(ctx.uses[m.key])]
    if row.metric and verdict != "delete" and row.metric not in shown:
        shown[row.metric] = row.title
    return AuditVerdict(key=row.title, title=row.title, verdict=verdict, reasons=tuple(reasons), checks=checks,
                        question=question, role="chart", duplicate_of=dup_of, metric=m.key if m else row.metric,
                        fixes=tuple(fixes) if verdict == "fix" else (),
                        used_by=tuple(ctx.uses.get(m.key, [])) if m is not None else ())


_COLUMNS = {
    "title": ("title", "titre", "chart", "graphique"),
    "metric": ("metric", "metrique", "indicateur", "kpi"),
    "owner": ("owner", "responsable", "proprietaire"),
    "decision": ("decision",),
}


def _normal(header: str) -> str:
    text = unicodedata.normalize("NFKD", header.strip().lower())
    return re.sub(r"[\s\-]+", "_", "".join(ch for ch in text if not unicodedata.combining(ch)))


def parse_inventory(text: str, source: str) -> list[InventoryRow]:
    """The charts of a dashboard from CSV text: a header, then one line per chart.

    Columns title (required), metric, owner, decision — or in French titre, métrique, responsable,
    décision; other columns are ignored. The delimiter (comma, semicolon or tab) is read from the header.
    """
    text = text.lstrip("\ufeff")
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip(" \t,;")), None)
    if first is None:
        raise KpilotError(msg("{source}: the file is empty. Fix: write a header line (title, metric, owner, "
                              "decision), then one line per chart.", source=source))
    delimiter = max(",;\t", key=lambda d: lines[first].count(d))
    reader = csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter)
    try:
        records = [(reader.line_num, rec) for rec in reader]
    except csv.Error as exc:
        raise KpilotError(msg("{where}: {reason}. Fix: check the quotes on this line.",
                              where=str(Location(source, reader.line_num)), reason=verbatim(str(exc)))) from None
    records = [(n, rec) for n, rec in records if any(c.strip() for c in rec)]
    header_line, header = records[0]
    where = str(Location(source, header_line))
    columns: dict[str, int] = {}
    for i, name in enumerate(header):
        norm = _normal(name)
        for col, aliases in _COLUMNS.items():
            if norm in aliases:
                if col in columns:
                    raise KpilotError(msg("{where}: columns '{first}' and '{second}' are both the '{column}' column. "
                                          "Fix: keep one of them.", where=where, first=header[columns[col]].strip(),
                                          second=name.strip(), column=col))
                columns[col] = i
    if "title" not in columns:
        guesses = (did_you_mean(_normal(n), aliases) for n in header for aliases in (("title",), _COLUMNS["title"]))
        hint = next((h for h in guesses if h), verbatim(""))
        raise KpilotError(msg("{where}: no title column in the header ({columns});{hint} Fix: name the column of "
                              "chart titles 'title' (or 'titre').", where=where,
                              columns=", ".join(n.strip() for n in header), hint=hint))
    rows: list[InventoryRow] = []
    for line, rec in records[1:]:
        at = str(Location(source, line))
        if len(rec) > len(header):
            raise KpilotError(msg("{where}: {n} values for {m} columns. Fix: quote the values that hold the "
                                  "delimiter '{delimiter}'.", where=at, n=len(rec), m=len(header),
                                  delimiter=delimiter))

        def cell(col: str, rec: list[str] = rec) -> str | None:
            i = columns.get(col)
            value = rec[i].strip() if i is not None and i < len(rec) else ""
            return value or None

        title = cell("title")
        if title is None:
            raise KpilotError(msg("{where}: this chart has no title. Fix: give every chart a title.", where=at))
        rows.append(InventoryRow(title=title, metric=cell("metric"), owner=cell("owner"), decision=cell("decision"),
                                 line=line))
    if not rows:
        raise KpilotError(msg("{where}: no chart under the header. Fix: add one line per chart of the dashboard.",
                              where=where))
    return rows
