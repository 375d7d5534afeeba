"""Settings overrides: values edited in the web app that replace fields of kpilot.yaml's metrics.

An override is JSON-able data (metric key -> {field: value}), stored in the application database. It is
applied on top of the workspace read from kpilot.yaml and checked with the same rules as the file: the
pydantic model (shapes and types), then the semantic pass of `kpilot.model.validate` (teams exist, target
periods are valid and disjoint, ...). Dates travel as text: "2026-01-01" is read as YAML reads a plain
2026-01-01, a date.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from typing import Any

from pydantic import ValidationError

from kpilot.model.errors import Issue, WorkspaceInvalid, did_you_mean, msg
from kpilot.model.loader import pydantic_issues
from kpilot.model.validate import validate
from kpilot.model.workspace import Metric, Workspace
from kpilot.model.yamlsrc import SourceMap

Overrides = Mapping[str, Mapping[str, object]]

# The fields the settings page edits; any other field of a metric may be overridden too, except its key.
EDITABLE = ("targets", "bands", "owners", "decision")
ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ORIGIN = "settings"


def workspace_data(ws: Workspace) -> dict[str, Any]:
    """The workspace as the plain data a kpilot.yaml would hold (field names as written in YAML)."""
    return ws.model_dump(mode="python", by_alias=True, exclude_unset=True)


def _as_yaml_reads(field: str, value: object) -> object:
    """A JSON value as YAML would read it: a target's ISO day (`from`, `to`) is a date."""
    if field == "targets" and isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, Mapping):
                item = {k: date.fromisoformat(v) if k in ("from", "to") and isinstance(v, str) and ISO_DAY.match(v)
                        else v for k, v in item.items()}
            out.append(item)
        return out
    return value


def apply_overrides(ws: Workspace, overrides: Overrides) -> Workspace:
    """`ws` with the overrides' fields replaced, re-validated; raises WorkspaceInvalid (errors at the field's
    path, e.g. `metrics[1].targets[0].value`) when a value breaks a rule kpilot.yaml obeys."""
    if not any(overrides.values()):
        return ws
    data = workspace_data(ws)
    index = {m["key"]: i for i, m in enumerate(data["metrics"])}
    allowed = [name for name in Metric.model_fields if name != "key"]
    issues: list[Issue] = []
    for key, fields in overrides.items():
        if key not in index:
            issues.append(Issue("error", "unknown_metric", msg("unknown metric '{metric}'", metric=key), None,
                                f"metrics.{key}", msg("remove this setting; the metric is no longer in kpilot.yaml")))
            continue
        metric = data["metrics"][index[key]]
        for name, value in fields.items():
            field = "from_" if name == "from" else name
            if field not in allowed:
                issues.append(Issue("error", "unknown_field", msg("unknown field '{field}';{hint}", field=name,
                                                                  hint=did_you_mean(name, allowed)),
                                    None, f"metrics[{index[key]}].{name}"))
            elif value is None:
                metric.pop(name, None)
            else:
                metric[name] = _as_yaml_reads(name, value)
    if issues:
        raise WorkspaceInvalid(issues)
    smap = SourceMap(ORIGIN)
    try:
        merged = Workspace.model_validate(data)
    except ValidationError as exc:
        raise WorkspaceInvalid([replace(i, location=None) for i in pydantic_issues(exc, data, smap)]) from None
    errors = [replace(i, location=None) for i in validate(merged, smap) if i.severity == "error"]
    if errors:
        raise WorkspaceInvalid(errors)
    return merged


def as_json(value: object) -> object:
    """Override data as JSON (dates as ISO text)."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_json(v) for v in value]
    return value


def changed_fields(base: Metric, edited: Metric) -> tuple[dict[str, object], list[str]]:
    """(fields to keep as overrides, fields back to kpilot.yaml's): the editable fields of `edited` that differ
    from kpilot.yaml's `base`, as override data (the field as kpilot.yaml would write it; None: removed, such
    as a decision rule taken away), and those equal to it."""
    from kpilot.model.export import plain

    changed: dict[str, object] = {}
    same: list[str] = []
    for name in EDITABLE:
        if getattr(edited, name) == getattr(base, name):
            same.append(name)
        else:
            value = edited.model_dump(by_alias=True, exclude_unset=True, include={name}).get(name)
            changed[name] = as_json(plain(value))
    return changed, same


def metric_path(ws: Workspace, key: str) -> str:
    """The dotted path of a metric in the workspace, as issues name it: `metrics[3]`."""
    return f"metrics[{ws.metric_keys.index(key)}]"


__all__ = ["EDITABLE", "Overrides", "apply_overrides", "as_json", "changed_fields", "metric_path", "workspace_data"]
