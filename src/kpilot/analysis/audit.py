"""The "Christmas tree" audit: is each metric, board tile or dashboard chart worth its place?

A dashboard where everything blinks tells no story. A number earns its place when it triggers a
decision (if it changes, someone knows what to do), has an owner and a target, predicts an outcome
that matters, does not reward pure volume owned by one team, and says something no other number
already says. Each metric gets a verdict — keep, fix or delete — with the reasons.

Verdict rules, in order:
  * the North Star is never deleted: keep when it has a decision rule, an owner and a target, else fix;
  * a duplicate (|correlation| >= threshold) of a better-placed metric that is kept: delete (fix for a
    board tile: the board is a deliberate choice, a person picks which tile goes);
  * no decision rule, and it neither is an outcome nor predicts one: delete;
  * no decision rule, owner or target, pure volume owned by one team, or a leading metric that predicts
    nothing: fix;
  * otherwise keep.

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
from dataclasses import dataclass, field

from kpilot.analysis.leadlag import EdgeLike
from kpilot.model.errors import KpilotError, Location, Message, did_you_mean, msg, verbatim
from kpilot.model.workspace import Direction, Kind, Metric, MetricType, Workspace

VOLUME_MEASURE = re.compile(r"^\s*(count|sum)\s*\(", re.IGNORECASE)
VOLUME_TYPES = (MetricType.simple, MetricType.cumulative, MetricType.snapshot)


@dataclass(frozen=True)
class AuditVerdict:
    """keep | fix | delete for one metric or chart, with the checks behind it.

    `checks`: 'decision', 'owner', 'target', 'predicts' are True when passed; 'incentive_risk' and
    'duplicate_of' are True when the problem is there. None = unknown (no data to tell).
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
    outcomes: set[str] = field(default_factory=set)
    forward: dict[str, list[EdgeLike]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.ws is not None:
            ws = self.ws
            # The same outcomes as lead-lag discovery's followers: the North Star and every lagging metric.
            self.outcomes = {m.key for m in ws.metrics if m.key == ws.north_star or m.kind is Kind.lagging}
        for e in self.edges:
            if e.leader != e.follower and e.lag >= 1 and (e.p_value is None or e.p_value <= self.max_p_value):
                self.forward.setdefault(e.leader, []).append(e)

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
        if len(path) == 1:
            e = path[0]
            return True, msg("predicts {outcome}: moves {lag} period(s) ahead of it (correlation {correlation})",
                             outcome=e.follower, lag=e.lag, correlation=f"{e.correlation:.2f}")
        chain = " → ".join([path[0].leader, *(e.follower for e in path)])
        return True, msg("predicts {outcome} through {chain}", outcome=path[-1].follower, chain=chain)

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


def _team_name(ws: Workspace | None, key: str) -> str:
    """A team's name as people know it (its key when the workspace does not list it)."""
    try:
        return ws.team(key).label if ws is not None else key
    except KeyError:
        return key


def _incentive(ws: Workspace, m: Metric) -> tuple[bool, Message | None]:
    if not (_is_volume(m) and len(m.owners) == 1):
        return False, None
    team = _team_name(ws, m.owners[0])
    counters = [ws.metric(k).label for k in _counter_metrics(ws, m)]
    if counters:
        return True, msg("pure volume owned by {team} alone: pushing it invites quantity over quality. Fix: share it "
                         "with another team, or pair it with a quality counter-metric such as {counters}",
                         team=team, counters=", ".join(counters))
    return True, msg("pure volume owned by {team} alone: pushing it invites quantity over quality. Fix: share it "
                     "with another team, or pair it with a quality counter-metric (a conversion rate, a ratio)",
                     team=team)


def _inputs_of(ws: Workspace) -> dict[str, list[str]]:
    """metric -> the metrics computed from it (formulas and ratio parts)."""
    used: dict[str, list[str]] = {}
    for m in ws.metrics:
        refs = [i.metric for i in m.inputs]
        refs += [p.metric for p in (m.numerator, m.denominator) if p is not None and p.metric]
        if m.formula:
            refs += [k for k in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", m.formula) if k in ws.metric_keys]
        for r in dict.fromkeys(refs):
            if r != m.key:
                used.setdefault(r, []).append(m.key)
    return used


def _rank(ws: Workspace, m: Metric) -> tuple[int, int, int]:
    """Which of two duplicates stays: North Star, then board, then the most complete, then file order."""
    place = 0 if m.key == ws.north_star else 1 if m.key in ws.board else 2
    return place, -sum((m.decision is not None, bool(m.owners), bool(m.targets))), ws.metric_keys.index(m.key)


def _decide(*, protected: bool, board: bool, checks: Mapping[str, bool | None], is_outcome: bool,
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


def audit_workspace(ws: Workspace, edges: Sequence[EdgeLike], correlations: Mapping[tuple[str, str], float], *,
                    duplicate_threshold: float = 0.95, max_p_value: float = 0.05) -> list[AuditVerdict]:
    """A verdict for every metric: North Star first, then the board tiles, then the other metrics.

    `edges` come from the lead-lag analysis; `correlations` map metric pairs (either order) to the
    correlation of their period-over-period changes — levels of two growing series always correlate.
    """
    ctx = _Context(ws, edges, correlations, duplicate_threshold, max_p_value)
    used = _inputs_of(ws)
    ordered = sorted(ws.metrics, key=lambda m: _rank(ws, m))
    kept: list[str] = []
    by_key: dict[str, AuditVerdict] = {}
    for m in ordered:
        verdict = _audit_metric(ctx, ws, m, kept, used)
        by_key[m.key] = verdict
        if verdict.verdict != "delete":
            kept.append(m.key)
    order = ([ws.north_star] if ws.north_star in by_key else []) + [k for k in ws.board if k in by_key]
    order += [k for k in ws.metric_keys if k not in order]
    return [by_key[k] for k in order]


def _audit_metric(ctx: _Context, ws: Workspace, m: Metric, kept: Sequence[str],
                  used: Mapping[str, list[str]]) -> AuditVerdict:
    ns, board = m.key == ws.north_star, m.key in ws.board
    reasons: list[Message] = []
    predicts, why = ctx.predicts(m.key)
    risk, risk_why = _incentive(ws, m)
    dup, dup_of, r = (False, None, None) if ns else ctx.duplicate(m.key, kept)
    checks: dict[str, bool | None] = {
        "decision": m.decision is not None, "owner": bool(m.owners), "target": bool(m.targets),
        "predicts": predicts, "incentive_risk": risk, "duplicate_of": dup,
    }
    if m.decision is not None:
        reasons.append(msg("decision rule: {owner} acts — {action}", owner=_team_name(ws, m.decision.owner),
                               action=m.decision.action))
    else:
        reasons.append(msg("no decision rule: if {title} changes, nobody knows what to do. Fix: add `decision`.",
                           title=m.label))
    reasons.insert(0 if ns else len(reasons), why)
    if not m.owners:
        reasons.append(msg("no owner: no team answers for it. Fix: set `owners`."))
    if not m.targets:
        reasons.append(msg("no target: nobody can tell a good value from a bad one. Fix: add `targets`."))
    if risk_why is not None:
        reasons.append(risk_why)
    if dup and dup_of is not None and r is not None:
        reasons.append(msg("duplicate of {other} (correlation {correlation}): it tells nothing {other} does not",
                           other=dup_of, correlation=f"{r:.2f}"))
    verdict = _decide(protected=ns, board=board, checks=checks, is_outcome=m.key in ctx.outcomes,
                      is_leading=m.kind is Kind.leading)
    if verdict == "delete" and used.get(m.key):
        reasons.append(msg("other metrics are computed from it ({metrics}): take it off dashboards, keep its "
                           "definition", metrics=", ".join(used[m.key])))
    if verdict == "fix" and not dup and m.decision is None and predicts:
        if m.key in ctx.outcomes:
            reasons.append(msg("an outcome without a decision: worth turning into a KPI (decision rule, owner, "
                               "target)"))
        else:
            reasons.append(msg("it predicts an outcome: worth turning into a KPI (decision rule, owner, target)"))
    role = "north_star" if ns else "board" if board else "metric"
    return AuditVerdict(key=m.key, title=m.label, verdict=verdict, reasons=tuple(reasons), checks=checks,
                        role=role, duplicate_of=dup_of, metric=m.key)


# --- the inventory of an existing dashboard --------------------------------------------------------


def audit_inventory(rows: Sequence[InventoryRow], ws: Workspace | None, edges: Sequence[EdgeLike],
                    correlations: Mapping[tuple[str, str], float], *, duplicate_threshold: float = 0.95,
                    max_p_value: float = 0.05) -> list[AuditVerdict]:
    """A verdict for every chart of an existing dashboard, in the inventory's order.

    A chart naming a workspace metric takes that metric's owner, target and decision rule when its own
    columns are empty. A chart without a decision is asked: if this number changes, what decision do we take?
    """
    ctx = _Context(ws, edges, correlations, duplicate_threshold, max_p_value)
    out: list[AuditVerdict] = []
    shown: dict[str, str] = {}  # metric -> title of the first chart kept that shows it
    for row in rows:
        out.append(_audit_row(ctx, ws, row, shown))
    return out


def _audit_row(ctx: _Context, ws: Workspace | None, row: InventoryRow, shown: dict[str, str]) -> AuditVerdict:
    reasons: list[Message] = []
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
                               "nothing that chart does not", other=dup_of, metric=other_metric,
                               correlation=f"{r:.2f}"))
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
    if not has_owner:
        reasons.append(msg("no owner: no team answers for it. Fix: fill the owner column."))
    if m is not None and not m.targets:
        reasons.append(msg("no target: nobody can tell a good value from a bad one. Fix: add `targets`."))
    ns = ws is not None and row.metric is not None and row.metric == ws.north_star
    board = ws is not None and row.metric is not None and row.metric in ws.board
    verdict = _decide(protected=ns, board=board, checks=checks,
                      is_outcome=row.metric is not None and row.metric in ctx.outcomes,
                      is_leading=m is not None and m.kind is Kind.leading)
    if verdict == "fix" and not has_decision and predicts:
        reasons.append(msg("it predicts an outcome: write the decision this chart should trigger"))
    if verdict == "delete" and not has_decision:
        reasons.append(msg("if nobody can answer the question, delete the chart"))
    if row.metric and verdict != "delete" and row.metric not in shown:
        shown[row.metric] = row.title
    return AuditVerdict(key=row.title, title=row.title, verdict=verdict, reasons=tuple(reasons), checks=checks,
                        question=question, role="chart", duplicate_of=dup_of, metric=m.key if m else row.metric)


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
