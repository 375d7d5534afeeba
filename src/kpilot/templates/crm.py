"""Ready workspaces for the SaaS sources: a HubSpot, Pipedrive, Salesforce, GA4 or Brevo source, mapped to its metrics.

`write(target, source)` writes `kpilot.yaml` from `files/<name>.<language>.yaml`, where the name says what the
source feeds: `crm_<type>` (pipeline generated, demos booked, win rate), `web_ga4` (sessions, users, key
events, conversion rate) and `email_brevo` (open and click rates). No sample data: the tables come from
`kpilot sync`. The models name the connector's own tables and columns, so nothing needs SQL.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from kpilot.model.errors import KpilotError, did_you_mean, msg, one_of
from kpilot.templates import check_language, render_workspace

# source type -> template file (without `.<language>.yaml`)
READY: dict[str, str] = {
    "hubspot": "crm_hubspot",
    "pipedrive": "crm_pipedrive",
    "salesforce": "crm_salesforce",
    "ga4": "web_ga4",
    "brevo": "email_brevo",
}
CRMS = ("hubspot", "pipedrive", "salesforce")


def write(target: Path, source: str, today: date | None = None, language: str = "en") -> Path:
    """Write `target/kpilot.yaml` for a workspace fed by the SaaS source type `source`; returns its path."""
    if source not in READY:
        raise KpilotError(msg("no ready workspace for the source type '{source}';{hint} ready: {sources}.",
                              source=source, hint=did_you_mean(source, list(READY)), sources=one_of(list(READY))))
    check_language(language)
    return render_workspace(Path(target), READY[source], language, today or date.today())
