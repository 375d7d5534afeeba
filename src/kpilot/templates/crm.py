"""Ready CRM workspaces: a HubSpot or Pipedrive source mapped to pipeline generated, demos booked and win rate.

`write(target, crm)` writes `kpilot.yaml` from `files/crm_<crm>.en.yaml`; no sample data: the tables
come from `kpilot sync`. The models name the connector's own tables and columns, so nothing needs SQL.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from kpilot.model.errors import KpilotError, did_you_mean, msg, one_of
from kpilot.templates import render_workspace

CRMS = ("hubspot", "pipedrive")


def write(target: Path, crm: str, today: date | None = None) -> Path:
    """Write `target/kpilot.yaml` for a workspace fed by `crm`; returns its path."""
    if crm not in CRMS:
        raise KpilotError(msg("unknown CRM '{crm}';{hint} CRMs with a ready mapping: {crms}.", crm=crm,
                              hint=did_you_mean(crm, CRMS), crms=one_of(CRMS)))
    return render_workspace(Path(target), f"crm_{crm}", "en", today or date.today())
