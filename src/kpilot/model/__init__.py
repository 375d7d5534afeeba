"""The domain: workspace, vision, metrics, targets, decision rules; YAML loading and validation.

Imports nothing else of kpilot.
"""

from kpilot.model.errors import Issue, KpilotError, Location, WorkspaceInvalid
from kpilot.model.loader import WORKSPACE_FILE, load_workspace, parse_workspace, workspace_file
from kpilot.model.periods import Grain, WeekStart
from kpilot.model.validate import Schema, validate
from kpilot.model.workspace import (
    Bands,
    DecisionRule,
    Direction,
    Kind,
    Metric,
    MetricType,
    Model,
    RatioPart,
    Source,
    Status,
    Target,
    Team,
    When,
    Workspace,
)

__all__ = [
    "WORKSPACE_FILE", "Bands", "DecisionRule", "Direction", "Grain", "Issue", "Kind", "KpilotError",
    "Location", "Metric", "MetricType", "Model", "RatioPart", "Schema", "Source", "Status", "Target", "Team",
    "WeekStart", "When", "Workspace", "WorkspaceInvalid", "load_workspace", "parse_workspace", "validate",
    "workspace_file",
]
