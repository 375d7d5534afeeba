"""Findings: the early warnings and anomalies the analysis raises about a metric's period, typed.

A finding has a stable id (the same warning about the same period is one finding however often it is raised), so it
is kept once and never lost (`kpilot.findings` in the warehouse). Every door reads these values; `to_dict` is their
JSON (the API, `--format json`, the stored payload).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from kpilot.analysis.anomaly import Anomaly
from kpilot.analysis.warning import EarlyWarning
from kpilot.model import Grain
from kpilot.model.workspace import DecisionRule


@dataclass(frozen=True)
class EarlyWarningFinding:
    """A KPI projected to miss its target in a coming period, because a metric that leads it moved."""

    id: str
    metric: str  # the KPI warned about (the follower)
    period: date  # the period expected to miss
    label: str
    warning: EarlyWarning
    leader_period: date  # the period the leader moved in
    leader_label: str
    decision: DecisionRule | None  # the KPI's rule: who acts, and how
    # The grain of the edge that warned: `leader_period`, `leader_label` and the warning's `lag` count its
    # periods (weeks for a weekly leader of a monthly KPI); `period` and `label` stay in the KPI's grain.
    grain: Grain | None = None

    kind = "early_warning"

    @property
    def severity(self) -> str:
        return self.warning.severity

    def to_dict(self) -> dict[str, Any]:
        decision = None if self.decision is None else {
            "when": self.decision.when.model_dump(exclude_none=True), "owner": self.decision.owner,
            "action": self.decision.action}
        return {"id": self.id, "kind": self.kind, "metric": self.metric, "period": self.period,
                "severity": self.severity, "label": self.label, "leader_period": self.leader_period.isoformat(),
                "leader_label": self.leader_label, **self.warning.to_dict(), "decision": decision,
                "grain": self.grain.value if self.grain is not None else None}


@dataclass(frozen=True)
class AnomalyFinding:
    """A value outside its normal range (kept in the metric's domain)."""

    id: str
    metric: str
    period: date
    label: str
    anomaly: Anomaly
    basis: str  # "value", or "increment" for a running total judged on what each period added

    kind = "anomaly"

    @property
    def severity(self) -> str:
        return self.anomaly.severity

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "metric": self.metric, "period": self.period,
                "severity": self.severity, "label": self.label, **self.anomaly.to_dict(), "basis": self.basis}


Finding = EarlyWarningFinding | AnomalyFinding

__all__ = ["AnomalyFinding", "EarlyWarningFinding", "Finding"]
