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

from kpilot.model.errors import N_, Issue, KpilotError, Location, Message, WorkspaceInvalid, msg, recognize

PathKey = tuple[str | int, ...]

MAX_BYTES = 4 << 20  # a workspace file is a few kilobytes; this leaves room for hundreds of metrics
MAX_NODES = 200_000  # values once every alias is expanded: aliases of aliases grow exponentially

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
        own = {id(k) for k, _ in node.value}
        loader.flatten_mapping(node)  # merged keys (<<: *base) first, so the mapping's own keys override them
        out: dict[Any, Any] = {}
        mine: set[Any] = set()
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int):
                key = str(key)
            child = (*path, key)
            if id(key_node) in own:
                duplicate = key in mine
                mine.add(key)
            else:
                duplicate = False
            if duplicate:
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


def _invalid(code: str, text: Message, loc: Location, fix: Message) -> WorkspaceInvalid:
    return WorkspaceInvalid([Issue("error", code, text, loc, fix=fix)])


def _at(file: str, text: str, position: int) -> Location:
    """The line and column of a character offset of `text`."""
    before = text[:position]
    return Location(file, before.count("\n") + 1, position - (before.rfind("\n") + 1) + 1)


def _syntax_error(exc: yaml.MarkedYAMLError, file: str) -> WorkspaceInvalid:
    mark = exc.problem_mark or exc.context_mark
    loc = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
    problem = recognize(exc.problem, YAML_TEXTS) if exc.problem else msg("invalid YAML")
    text = (msg("YAML syntax error: {problem} ({context})", problem=problem,
                context=recognize(exc.context, YAML_TEXTS)) if exc.context
            else msg("YAML syntax error: {problem}", problem=problem))
    return _invalid("yaml.syntax", text, loc,
                    msg("check indentation and quoting on this line; quote values containing ': ' or '#'"))


def _check_expansion(root: yaml.Node, file: str) -> None:
    """Refuse a document whose aliases expand to too many values (an "alias bomb") or refer to themselves.

    Sizes are counted once per node (memoized), so the check costs as much as the text, not as the expansion."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            mark = node.start_mark
            raise _invalid("yaml.recursive_alias", msg("an anchor refers to itself through an alias"),
                           Location(file, mark.line + 1, mark.column + 1),
                           msg("an alias (*name) must not appear inside the value its anchor (&name) marks"))
        open_nodes.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(item) for item in node.value)
        open_nodes.discard(key)
        if total > MAX_NODES:
            mark = node.start_mark
            raise _invalid("yaml.too_large",
                           msg("this value expands to more than {limit} values through its aliases", limit=MAX_NODES),
                           Location(file, mark.line + 1, mark.column + 1),
                           msg("use fewer aliases (*name) of aliases; a workspace needs far fewer values"))
        sizes[key] = total
        return total

    size(root)


def load_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse YAML text into plain Python values plus a SourceMap; syntax errors cite line and column.

    Bounded: the text's size, its aliases' expansion and its nesting are capped, each with a clear error."""
    smap = SourceMap(file)
    if len(text) > MAX_BYTES:
        raise _invalid("yaml.too_large", msg("the file holds {size} characters; kpilot reads at most {limit}",
                                             size=len(text), limit=MAX_BYTES), Location(file),
                       msg("a workspace file is a few kilobytes: check that this is the right file"))
    loader: _Loader | None = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
        if node is not None:
            _check_expansion(node, file)
    except RecursionError:
        raise _invalid("yaml.too_deep", msg("the YAML is nested too deeply to read"), Location(file),
                       msg("a workspace nests a few levels deep: check the brackets and indentation")) from None
    except yaml.reader.ReaderError as exc:
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        raise _invalid("yaml.character", msg("the file holds the character {char}, which YAML does not allow",
                                             char=char), _at(file, text, exc.position),
                       msg("remove it: YAML files hold printable text only")) from None
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, file) from None
    finally:
        if loader is not None:
            loader.dispose()
    if node is None:
        return {}, smap
    issues: list[Issue] = []
    try:
        data = _construct(node, loader, (), smap, issues)
    except yaml.MarkedYAMLError as exc:  # a tag kpilot does not read (!!python/object), a bad !!binary...
        raise _syntax_error(exc, file) from None
    except RecursionError:
        raise _invalid("yaml.too_deep", msg("the YAML is nested too deeply to read"), Location(file),
                       msg("a workspace nests a few levels deep: check the brackets and indentation")) from None
    if issues:
        raise WorkspaceInvalid(issues)
    return data, smap


def read_yaml_file(path: Path) -> tuple[Any, SourceMap]:
    """Read and parse a YAML file; a missing or unreadable file is a clear error."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise _invalid("yaml.too_large", msg("the file holds {size} bytes; kpilot reads at most {limit}",
                                                 size=path.stat().st_size, limit=MAX_BYTES), Location(str(path)),
                           msg("a workspace file is a few kilobytes: check that this is the right file"))
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
