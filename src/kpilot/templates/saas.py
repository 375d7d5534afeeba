"""SaaS template: MRR as North Star, net new MRR, churn, demo-to-win and pipeline on the board.

The sample data is a year of the demo company's funnel (`kpilot.templates.demo_company`): leads, demos, deals,
subscriptions and monthly product usage, ending at `today`, with targets set from its own trend.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from kpilot.templates.demo import TargetRule, write_template

TABLES = ("leads", "meetings", "deals", "subscriptions", "product_usage")
TARGETS = (
    TargetRule("mrr", factor=0.99),
    TargetRule("net_new_mrr", factor=0.85),
    TargetRule("logo_churn", trend=False),
    TargetRule("demo_to_win", trend=False, factor=0.95),
    TargetRule("pipeline_generated", factor=0.93),
)


def write(target: Path, language: str, today: date) -> None:
    """Write kpilot.yaml (from templates/files/saas.<language>.yaml) and data/*.csv sample data into target."""
    write_template(target, "saas", language, today, TABLES, TARGETS)
