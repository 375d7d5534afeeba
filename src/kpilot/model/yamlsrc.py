"""YAML reading that remembers where every value came from (file, line, column).

YAML 1.2 booleans: only true/false are booleans, so `on: lead_id` in a join stays the key "on"
(PyYAML's YAML 1.1 default would turn it into True).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kpilot.model.errors import N_, Issue, KpilotError, Location, WorkspaceInvalid, msg, recognize

PathKey = tuple[str | int, ...]

# PyYAML's most frequent problems and contexts, so that they can be translated (others stay English).
YAML_TEXTS = (
    N_("mapping values are not allowed here"),
    N_("could not find expected ':'"),
    N_("found character {char} that cannot start any token"),
    N_("expected <block end>, but found {token}"),
    N_("found unexpected end of stream"),
    N_("found undefined alias {alias}"),
    N_("sequence entries are not allowed here"),
    N_("expected ',' or '}}', but got {token}"),
    N_("expected ',' or ']', but got {token}"),
    N_("expected the node content, but found {token}"),
    N_("found unknown escape character {char}"),
    N_("expected a comment or a line break, but found {char}"),
    N_("while scanning a simple key"),
    N_("while scanning a quoted scalar"),
    N_("while scanning a plain scalar"),
    N_("while scanning a block scalar"),
    N_("while scanning an alias"),
    N_("while scanning for the next token"),
    N_("while parsing a block mapping"),
    N_("while parsing a block collection"),
    N_("while parsing a flow mapping"),
    N_("while parsing a flow sequence"),
    N_("while parsing a block node"),
    N_("while parsing a flow node"),
)


class _Loader(yaml.SafeLoader):
    pass


# Drop YAML 1.1 booleans (yes/no/on/off) and keep only true/false.
_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


@dataclass
class SourceMap:
    """Where each value of a parsed YAML document sits in its file."""

    file: str
    values: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    keys: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    quoted: set[PathKey] = field(default_factory=set)

    def locate(self, path: PathKey, *, key: bool = False) -> Location:
        """The location of the value at `path` (or of its key), falling back to the nearest parent."""
        table = self.keys if key else self.values
        probe = tuple(path)
        while probe:
            if probe in table:
                line, col = table[probe]
                return Location(self.file, line, col)
            if probe in self.values:
                line, col = self.values[probe]
                return Location(self.file, line, col)
            probe = probe[:-1]
        return Location(self.file, 1, 1)

    def locate_in_value(self, path: PathKey, offset: int | None) -> Location:
        """The location of character `offset` inside the scalar at `path` (for expression errors)."""
        loc = self.locate(path)
        if offset is None or path not in self.values or loc.column is None:
            return loc
        return Location(loc.file, loc.line, loc.column + offset + (1 if path in self.quoted else 0))


def _construct(node: yaml.Node, loader: _Loader, path: PathKey, smap: SourceMap, issues: list[Issue]) -> Any:
    smap.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int):
                key = str(key)
            child = (*path, key)
            if key in out:
                issues.append(
                    Issue(
                        "error",
                        "yaml.duplicate_key",
                        msg("key '{key}' appears twice in the same mapping", key=key),
                        Location(smap.file, key_node.start_mark.line + 1, key_node.start_mark.column + 1),
                        fix=msg("remove or rename one of them; the second would silently replace the first"),
                    )
                )
            smap.keys[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = _construct(value_node, loader, child, smap, issues)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, loader, (*path, i), smap, issues) for i, item in enumerate(node.value)]
    if isinstance(node, yaml.ScalarNode) and node.style in ("'", '"'):
        smap.quoted.add(path)
    return loader.construct_object(node, deep=True)


def load_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse YAML text into plain Python values plus a SourceMap; syntax errors cite line and column."""
    smap = SourceMap(file)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
        problem = recognize(exc.problem, YAML_TEXTS) if exc.problem else msg("invalid YAML")
        text = (msg("YAML syntax error: {problem} ({context})", problem=problem,
                    context=recognize(exc.context, YAML_TEXTS)) if exc.context
                else msg("YAML syntax error: {problem}", problem=problem))
        raise WorkspaceInvalid(
            [
                Issue(
                    "error",
                    "yaml.syntax",
                    text,
                    loc,
                    fix=msg("check indentation and quoting on this line; quote values containing ': ' or '#'"),
                )
            ]
        ) from None
    finally:
        loader.dispose()
    if node is None:
        return {}, smap
    issues: list[Issue] = []
    data = _construct(node, loader, (), smap, issues)
    if issues:
        raise WorkspaceInvalid(issues)
    return data, smap


def read_yaml_file(path: Path) -> tuple[Any, SourceMap]:
    """Read and parse a YAML file; a missing or unreadable file is a clear error."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KpilotError(msg(
            "{path}: no such file. Run `kpilot init` to create a workspace, or pass --workspace DIR "
            "pointing at the folder that holds kpilot.yaml.", path=str(path)
        )) from None
    except UnicodeDecodeError as exc:
        raise KpilotError(msg("{path}: not valid UTF-8 at byte {byte}; save the file as UTF-8.", path=str(path),
                              byte=exc.start)) from None
    return load_yaml(text, str(path))
