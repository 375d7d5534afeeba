"""The import layering of ../shared/STYLE.md, enforced: data flows one way, and no package imports in a circle.

Every `import kpilot...` in src/ (at module level or inside a function: both are real dependencies) is read with
`ast`, and each package may import only the packages its row of the table allows. The imports that break the
table today are listed in KNOWN, each with what must move to remove it: a new one fails the test, and so does an
entry that no longer exists (the list only shrinks).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# STYLE.md's table. i18n (words and number formats) and templates (the workspaces kpilot writes, the demo among
# them) are not in it: i18n sits beside model; templates are set-up code that the CLI calls.
ALLOWED: dict[str, set[str]] = {
    "model": set(),
    "analysis": {"model"},
    "store": {"model"},
    "warehouse": {"model"},
    "compute": {"model", "warehouse"},
    "sources": {"model", "warehouse", "store", "compute.engine"},
    "insights": {"model", "analysis", "compute", "store", "warehouse"},
    # Alerts and the review are worded in the workspace's language: i18n sits beside model.
    "alerting": {"model", "analysis", "compute", "store", "warehouse", "i18n"},
    "report": {"model", "analysis", "compute", "store", "warehouse", "i18n"},
    "i18n": {"model"},
    "templates": {"model", "i18n"},
}
ALLOWED["service"] = {
    "model", "analysis", "compute", "store", "warehouse", "sources", "insights", "alerting", "report", "i18n"}
# The worker drives the syncs, computes and analyses through the one door, the service.
ALLOWED["worker"] = {*ALLOWED["service"], "service"}
# STYLE.md: report/ holds "the chart specs it shares with web"; the pages draw those specs, and nothing else of the
# report is theirs to import.
ALLOWED["web"] = {"service", "worker", "insights", "model", "i18n", "report.charts"}
ALLOWED["cli"] = {"service", "worker", "insights", "model", "i18n", "templates"}

# (importing module, imported module) -> what removes it. The list may only shrink.
KNOWN: dict[tuple[str, str], str] = {
    # The CLI starts the web server: a `serve` entry point registered by web would remove it.
    ("kpilot.cli.web", "kpilot.web"): "serve registered by the web package",
}


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str) -> bool:
    path = SRC.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports() -> dict[str, set[str]]:
    """Module -> the kpilot modules it imports (absolute and relative imports, anywhere in the file)."""
    out: dict[str, set[str]] = defaultdict(set)
    for path in sorted((SRC / "kpilot").rglob("*.py")):
        module = _module(path)
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    names = [".".join([*base, *([node.module] if node.module else [])])]
                else:
                    names = [node.module or ""]
                # `from kpilot.report import charts` imports the module kpilot.report.charts, not the package.
                names = [f"{names[0]}.{a.name}" if _is_module(f"{names[0]}.{a.name}") else names[0]
                         for a in node.names]
            else:
                continue
            out[module].update(n for n in names if n == "kpilot" or n.startswith("kpilot."))
    return out


def _layer(module: str) -> str | None:
    """The row of the table a module belongs to: its top package; None for the package itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _allowed(importer: str, imported: str) -> bool:
    mine, theirs = _layer(importer), _layer(imported)
    if mine is None or theirs is None or mine == theirs:
        return True
    rules = ALLOWED.get(mine)
    assert rules is not None, f"{importer}: package {mine!r} is not in the layering table; add its row"
    if theirs in rules:
        return True
    # A rule naming a module ("compute.engine") allows that module alone.
    return any("." in r and (imported == f"kpilot.{r}" or imported.startswith(f"kpilot.{r}.")) for r in rules)


def test_every_import_follows_the_layering() -> None:
    found = {(a, b) for a, targets in _imports().items() for b in targets if not _allowed(a, b)}
    new = sorted(found - set(KNOWN))
    assert new == [], f"imports against the layering of STYLE.md: {new}"
    gone = sorted(set(KNOWN) - found)
    assert gone == [], f"these no longer break the layering: remove them from KNOWN: {gone}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


# Package-level cycles that KNOWN's moves remove (each named by its members). The list may only shrink.
KNOWN_CYCLES: list[list[str]] = []


def test_no_package_imports_in_a_circle() -> None:
    packages: dict[str, set[str]] = defaultdict(set)
    for importer, targets in _imports().items():
        for imported in targets:
            a, b = _layer(importer), _layer(imported)
            if a and b and a != b:
                packages[a].add(b)
    assert sorted(_cycles(packages)) == sorted(KNOWN_CYCLES)


def test_the_checker_sees_a_bad_import() -> None:
    """The rules themselves: a page reaching the compiler, the model reaching anything, the CLI reaching the
    warehouse's engine are refused; the service reaching sources is allowed."""
    assert not _allowed("kpilot.web.app", "kpilot.compute.compiler")
    assert not _allowed("kpilot.model.workspace", "kpilot.i18n")
    assert not _allowed("kpilot.cli", "kpilot.compute.engine")
    assert not _allowed("kpilot.sources.files", "kpilot.compute.compiler")
    assert _allowed("kpilot.sources.files", "kpilot.compute.engine")
    assert _allowed("kpilot.service", "kpilot.sources.files")
    assert _allowed("kpilot.web.views", "kpilot.report.charts")
    assert not _allowed("kpilot.web.views", "kpilot.report.render")
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
