"""A workspace written back to YAML, without loss: loading the text again gives an equal `Workspace`.

With the original kpilot.yaml, only the values that changed are rewritten (ruamel.yaml's round-trip
editing): comments, order, quoting and layout of everything else stay as the user wrote them. Without
it, or when the edited text would not read back equal, the whole workspace is written afresh. Either
way the text is read back with kpilot's own loader and compared before it is returned, so an export
never hands out a file that means something else.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from datetime import date
from enum import Enum
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from kpilot.model.errors import KpilotError, WorkspaceInvalid, msg
from kpilot.model.loader import parse_workspace
from kpilot.model.overrides import workspace_data
from kpilot.model.workspace import Workspace
from kpilot.model.yamlsrc import load_yaml

# (mapping, sequence, offset) indents tried on the original text: the one that rewrites it unchanged wins.
INDENTS = ((2, 4, 2), (2, 2, 0), (4, 6, 4), (4, 4, 0))
WIDTHS = (4096, 120, 100, 80)  # line widths tried likewise


def export_workspace(ws: Workspace, original: str | None = None) -> str:
    """`ws` as kpilot.yaml text; with `original` (the file it was loaded from), an edit of that text."""
    if original is not None:
        edited = _edit(original, ws)
        if edited is not None:
            return edited
    text = _fresh(ws)
    if not _reads_back(text, ws):
        raise KpilotError(msg("the workspace could not be written to YAML without loss; please report this bug"))
    return text


def plain(value: Any) -> Any:
    """Model data as YAML scalars, lists and mappings: enums as their value, whole floats as integers
    (a float field reads 800000 as 800000.0 again)."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return value


def _fresh(ws: Workspace) -> str:
    """The whole workspace written anew (PyYAML quotes every string YAML 1.1 could read as another type,
    more than kpilot's loader needs)."""
    header = "# kpilot workspace, written by `kpilot export`\n\n"
    return header + yaml.safe_dump(plain(workspace_data(ws)), sort_keys=False, allow_unicode=True, width=4096,
                                   default_flow_style=False)


def _reads_back(text: str, ws: Workspace) -> bool:
    try:
        again, _ = parse_workspace(text, "export")
    except WorkspaceInvalid:
        return False
    return again == ws


def _edit(original: str, ws: Workspace) -> str | None:
    """The original text with the values that differ from `ws` replaced; None when that is not possible."""
    try:
        before, _ = parse_workspace(original, "original")
    except WorkspaceInvalid:
        return None
    if before == ws:
        return original
    new = plain(workspace_data(ws))
    try:
        rt = _closest_layout(original)
        doc = rt.load(original)
        if not isinstance(doc, CommentedMap):
            return None
        _merge(doc, new)
        text = _dump(rt, doc)
    except YAMLError:
        return None
    return text if _reads_back(text, ws) else None


def _closest_layout(original: str) -> YAML:
    """The round-trip settings that rewrite `original` with the fewest changed lines (ideally none: a plain
    text folded over several lines is written on one line at any width but the one it was folded at)."""
    best: tuple[int, YAML] | None = None
    for indent in INDENTS:
        for width in WIDTHS:
            rt = _round_trip(indent, width)
            text = _dump(rt, rt.load(original))
            changed = sum(1 for a, b in zip(text.splitlines(), original.splitlines(), strict=False) if a != b) + \
                abs(len(text.splitlines()) - len(original.splitlines()))
            if best is None or changed < best[0]:
                best = (changed, rt)
            if changed == 0:
                return rt
    assert best is not None
    return best[1]


def _round_trip(indent: tuple[int, int, int], width: int) -> YAML:
    rt = YAML(typ="rt")
    rt.preserve_quotes = True
    rt.width = width
    rt.indent(mapping=indent[0], sequence=indent[1], offset=indent[2])
    return rt


def _dump(rt: YAML, doc: Any) -> str:
    buf = io.StringIO()
    rt.dump(doc, buf)
    return buf.getvalue()


def _same(old: Any, new: Any) -> bool:
    """Whether a value of the original document already holds `new` (80000 and 80000.0 are the same)."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        return old.keys() == new.keys() and all(_same(old[k], new[k]) for k in new)
    if isinstance(old, list) and isinstance(new, list):
        return len(old) == len(new) and all(_same(a, b) for a, b in zip(old, new, strict=True))
    if isinstance(old, bool) or isinstance(new, bool):
        return old is new
    if isinstance(old, date) and isinstance(new, date):
        return old == new and type(old) is type(new)
    return bool(type(old) is type(new) or (isinstance(old, int | float) and isinstance(new, int | float))) \
        and old == new


def _merge(node: CommentedMap, new: Mapping[str, Any]) -> None:
    """Make `node` hold `new`, keeping what is already equal (and its comments) untouched."""
    for key in [k for k in node if k not in new]:
        del node[key]
    previous: str | None = None
    for key, value in new.items():
        old = node.get(key)
        if key not in node:
            # A new field goes after the one before it in the model's order (not after the mapping's last
            # key, which may carry the blank line that separates it from the next item).
            at = list(node).index(previous) + 1 if previous is not None else 0
            node.insert(at, key, _node(value))
        elif _same(old, value):
            pass
        elif isinstance(old, CommentedMap) and isinstance(value, Mapping):
            _merge(old, value)
        elif isinstance(old, CommentedSeq) and isinstance(value, list) and len(old) == len(value):
            _merge_list(old, value)
        else:
            node[key] = _node(value, like=old)
        previous = key


def _merge_list(node: CommentedSeq, new: Sequence[Any]) -> None:
    for i, value in enumerate(new):
        old = node[i]
        if _same(old, value):
            continue
        if isinstance(old, CommentedMap) and isinstance(value, Mapping):
            _merge(old, value)
        else:
            node[i] = _node(value, like=old)


def _node(value: Any, like: Any = None) -> Any:
    """A new value for the document, in the flow or block style of the value it replaces."""
    if isinstance(value, Mapping):
        out = CommentedMap((k, _node(v, _child(like, k))) for k, v in value.items())
        if _flow(like) or (like is None and all(not isinstance(v, Mapping | list) for v in value.values())):
            out.fa.set_flow_style()
        return out
    if isinstance(value, list):
        first = like[0] if isinstance(like, list) and like else None
        seq = CommentedSeq(_node(v, first) for v in value)
        if _flow(like):
            seq.fa.set_flow_style()
        return seq
    if isinstance(value, str) and _needs_quotes(value):
        return DoubleQuotedScalarString(value)
    return value


def _child(like: Any, key: str) -> Any:
    return like.get(key) if isinstance(like, Mapping) else None


def _flow(like: Any) -> bool:
    return isinstance(like, CommentedMap | CommentedSeq) and bool(like.fa.flow_style())


SPECIAL = re.compile(r"[:#\[\]{},&*!|>'\"%@`]|^[-?\s]|\s$")


def _needs_quotes(text: str) -> bool:
    """Whether a string written plain would read back as something else with kpilot's loader."""
    if not text or SPECIAL.search(text):
        return True
    try:
        data, _ = load_yaml(f"v: {text}\n", "probe")
    except WorkspaceInvalid:
        return True
    return not (isinstance(data, dict) and data.get("v") == text)


__all__ = ["export_workspace", "plain"]
