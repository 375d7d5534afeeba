"""From a kpilot.yaml file to a validated `Workspace`, with errors that cite file:line:column."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from kpilot.model.errors import N_, Issue, Message, WorkspaceInvalid, did_you_mean, message_of, msg, recognize, verbatim
from kpilot.model.validate import Schema, validate
from kpilot.model.workspace import Workspace
from kpilot.model.yamlsrc import PathKey, SourceMap, load_yaml, read_yaml_file

WORKSPACE_FILE = "kpilot.yaml"

# pydantic's messages for the mistakes a kpilot.yaml can hold, so that they can be translated; others
# stay English. Specific ones first: the last one matches any "Input should be ...".
PYDANTIC_TEXTS = (
    N_("Input should be a valid integer, unable to parse string as an integer"),
    N_("Input should be a valid integer, got a number with a fractional part"),
    N_("Input should be a valid integer"),
    N_("Input should be a valid number, unable to parse string as a number"),
    N_("Input should be a valid number"),
    N_("Input should be a valid string"),
    N_("Input should be a valid boolean, unable to interpret input"),
    N_("Input should be a valid boolean"),
    N_("Input should be a valid list"),
    N_("Input should be a valid dictionary or instance of {name}"),
    N_("Input should be a valid dictionary"),
    N_("Input should be a valid date or datetime, {reason}"),
    N_("Input should be a valid date in the format YYYY-MM-DD, {reason}"),
    N_("Input should be a valid date"),
    N_("Input should be greater than or equal to {limit}"),
    N_("Input should be greater than {limit}"),
    N_("Input should be less than or equal to {limit}"),
    N_("Input should be less than {limit}"),
    N_("Value error, {reason}"),
    N_("Input should be {expected}"),
)
CHOICES = (N_("{choices} or {last}"),)


def _unwrap(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        out: list[Any] = []
        for arg in typing.get_args(annotation):
            out.extend(_unwrap(arg))
        return out
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    return [annotation]


def _fields_at(path: PathKey) -> list[str]:
    """Field names (aliases) allowed in the mapping at `path`, for "did you mean" hints."""
    current: list[Any] = [Workspace]
    for part in path:
        nxt: list[Any] = []
        for ann in current:
            origin = typing.get_origin(ann)
            if isinstance(part, int) and origin in (list, tuple):
                nxt.extend(_unwrap(typing.get_args(ann)[0]))
            elif isinstance(part, str) and isinstance(ann, type) and issubclass(ann, BaseModel):
                for name, info in ann.model_fields.items():
                    if part in (name, info.alias):
                        nxt.extend(_unwrap(info.annotation))
        current = nxt
    names: list[str] = []
    for ann in current:
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            names.extend(info.alias or name for name, info in ann.model_fields.items())
    return names


def _data_path(data: Any, loc: tuple[Any, ...]) -> PathKey:
    """Trim pydantic's error location to the part that exists in the YAML data (drops union tags)."""
    out: list[str | int] = []
    node = data
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            out.append(part)
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str):
            out.append(part)  # a missing or unknown key: keep it, the caller locates its parent
            break
        else:
            continue
    return tuple(out)


def _dotted(path: PathKey) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _pydantic_text(err: Any) -> Message:
    """pydantic's English message for one error, translatable when it is one of PYDANTIC_TEXTS."""
    text = recognize(err["msg"], PYDANTIC_TEXTS)
    params = dict(text.params)
    if "expected" in params:
        params["expected"] = recognize(str(params["expected"]), CHOICES)
    error = err.get("ctx", {}).get("error")
    if isinstance(error, Exception) and str(error) == params.get("reason"):
        # A validator's own text: translated when it raised a Message, else the whole line stays English.
        reason = message_of(error)
        if not isinstance(reason, Message):
            return verbatim(err["msg"])
        params["reason"] = reason
    return Message(text.template, **params)


def pydantic_issues(exc: ValidationError, data: Any, smap: SourceMap) -> list[Issue]:
    issues: list[Issue] = []
    seen: set[tuple[PathKey, str]] = set()
    for err in exc.errors():
        path = _data_path(data, tuple(err["loc"]))
        kind = err["type"]
        if (path, kind) in seen:
            continue
        seen.add((path, kind))
        field = path[-1] if path else ""
        if kind == "extra_forbidden":
            allowed = _fields_at(path[:-1])
            hint = did_you_mean(str(field), allowed)
            text = (msg("unknown field '{field}';{hint}", field=field, hint=hint) if hint
                    else msg("unknown field '{field}'", field=field))
            fix = msg("allowed fields here: {fields}", fields=", ".join(allowed)) if allowed else msg("remove it")
            issues.append(Issue("error", "unknown_field", text, smap.locate(path, key=True), _dotted(path), fix))
        elif kind == "missing":
            issues.append(Issue("error", "missing_field", msg("missing required field '{field}'", field=field),
                                smap.locate(path[:-1]), _dotted(path), msg("add `{field}: ...`", field=field)))
        else:
            value = err.get("input")
            problem = _pydantic_text(err)
            hint = verbatim("")
            if kind in ("enum", "literal_error") and isinstance(value, str):
                expected = err.get("ctx", {}).get("expected", "")
                options = [o.strip(" '") for o in expected.replace(" or ", ",").split(",") if o.strip(" '")]
                hint = did_you_mean(value, options)
            got = value is not None and not isinstance(value, dict | list)
            if got and hint:
                text = msg("{problem} (got {value});{hint}", problem=problem, value=repr(value), hint=hint)
            elif got:
                text = msg("{problem} (got {value})", problem=problem, value=repr(value))
            elif hint:
                text = msg("{problem};{hint}", problem=problem, hint=hint)
            else:
                text = problem
            issues.append(Issue("error", f"invalid_{kind}", text, smap.locate(path), _dotted(path)))
    return issues


def parse_workspace(text: str, file: str = WORKSPACE_FILE) -> tuple[Workspace, SourceMap]:
    """Parse YAML text into a Workspace (shapes and types only); raises WorkspaceInvalid."""
    data, smap = load_yaml(text, file)
    if not isinstance(data, dict):
        raise WorkspaceInvalid([Issue("error", "not_mapping", msg("a workspace file is a mapping of fields "
                                                                  "(workspace:, metrics:, ...)"), smap.locate(()))])
    try:
        ws = Workspace.model_validate(data)
    except ValidationError as exc:
        raise WorkspaceInvalid(pydantic_issues(exc, data, smap)) from None
    return ws, smap


def workspace_file(path: Path) -> Path:
    """The kpilot.yaml of a workspace directory (or the file itself)."""
    return path / WORKSPACE_FILE if path.is_dir() else path


def load_workspace(path: Path, schema: Schema | None = None) -> tuple[Workspace, list[Issue]]:
    """Read, parse and validate a workspace; raises WorkspaceInvalid on errors, returns the warnings."""
    file = workspace_file(path)
    data, smap = read_yaml_file(file)
    if not isinstance(data, dict):
        raise WorkspaceInvalid([Issue("error", "not_mapping", msg("a workspace file is a mapping of fields"),
                                      smap.locate(()))])
    try:
        ws = Workspace.model_validate(data)
    except ValidationError as exc:
        raise WorkspaceInvalid(pydantic_issues(exc, data, smap)) from None
    issues = validate(ws, smap, schema)
    if any(i.severity == "error" for i in issues):
        raise WorkspaceInvalid(issues)
    return ws, issues
