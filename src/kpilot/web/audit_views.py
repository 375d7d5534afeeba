"""The audit as its page shows it: each metric's verdict and reasons, and each fix in words with the place
to make it — the metric's settings form when the form edits that field, else kpilot.yaml.

Nothing is judged here: the verdicts come from `kpilot.insights` (through `WorkspaceGate.analysis`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from kpilot.insights import AuditVerdict
from kpilot.model.errors import render
from kpilot.web.views import N_, Page

ROLE_WORDS = {"north_star": N_("North Star"), "board": N_("board KPI"), "metric": N_("metric"), "chart": N_("chart")}
# Where a fix is made, in words, when no form of the web app makes it.
WHERE_WORDS = {"workspace": N_("in kpilot.yaml"), "inventory": N_("in the dashboard's inventory file")}


@dataclass
class FixRow:
    text: str
    field: str | None
    href: str | None  # the metric's settings form, when the fix is made there
    where: str  # the place in words: the link's text, or the file to edit


@dataclass
class AuditRow:
    key: str
    name: str
    role: str
    verdict: str
    verdict_label: str
    reasons: list[str]
    question: str | None
    fixes: list[FixRow] = field(default_factory=list)


def settings_href(key: str, page: Page) -> str:
    """The settings form of a metric: its targets, bands, owners and decision rule."""
    return f"/settings/metric/{key}{page.query()}"


def fix_rows(v: AuditVerdict, page: Page) -> list[FixRow]:
    tr = page.tr
    out = []
    key = v.metric
    for f in v.fixes:
        if f.where == "settings" and key is not None and key in page.ws.metric_keys:
            out.append(FixRow(render(f.text, tr), f.field, settings_href(key, page),
                              tr("in the settings of {metric}").format(metric=page.ws.metric(key).label)))
        else:
            out.append(FixRow(render(f.text, tr), f.field, None, tr(WHERE_WORDS.get(f.where, N_("in kpilot.yaml")))))
    return out


def audit_rows(verdicts: Sequence[AuditVerdict], page: Page) -> list[AuditRow]:
    return [AuditRow(key=v.key, name=str(v.title), role=page.tr(ROLE_WORDS.get(v.role, v.role)), verdict=v.verdict,
                     verdict_label=page.tr(v.verdict), reasons=[render(r, page.tr) for r in v.reasons],
                     question=render(v.question, page.tr) if v.question is not None else None,
                     fixes=fix_rows(v, page))
            for v in verdicts]


__all__ = ["ROLE_WORDS", "AuditRow", "FixRow", "audit_rows", "fix_rows", "settings_href"]
