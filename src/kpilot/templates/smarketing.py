"""Smarketing template: the B2B funnel shared by marketing and sales, with pipeline generated as the key shared KPI.

The sample data is a year of the demo company's funnel (`kpilot.templates.demo_company`): web sessions, ad spend,
leads, meetings and deals, ending at `today`, with targets set from its own history.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from kpilot.templates.demo import TargetRule, write_template

TABLES = ("web_sessions", "ad_spend", "leads", "meetings", "deals")
TARGETS = (
    TargetRule("new_bookings", factor=0.9),
    TargetRule("pipeline_generated", factor=0.9),
    TargetRule("mql_to_sql", trend=False),
    TargetRule("demos_booked", factor=0.95),
    TargetRule("win_rate", trend=False, factor=0.97),
    TargetRule("sales_cycle", trend=False),
)


def write(target: Path, language: str, today: date) -> None:
    """Write kpilot.yaml (from templates/files/smarketing.<language>.yaml) and data/*.csv sample data into target."""
    write_template(target, "smarketing", language, today, TABLES, TARGETS)
