"""Errors and findings meant for people: what is wrong, where, and how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Location:
    """A place in a file: 1-based line and column; either may be unknown."""

    file: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        parts = [self.file]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)


@dataclass(frozen=True)
class Issue:
    """One problem found in a definition or a data file."""

    severity: Severity
    code: str
    message: str
    location: Location | None = None
    path: str = ""
    fix: str = ""

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        field_ = f"{self.path}: " if self.path else ""
        fix = f" Fix: {self.fix}" if self.fix else ""
        return f"{where}{self.severity}: {field_}{self.message}{fix}"

    def to_dict(self) -> dict[str, object]:
        loc = self.location
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "path": self.path,
            "fix": self.fix,
            "file": loc.file if loc else None,
            "line": loc.line if loc else None,
            "column": loc.column if loc else None,
        }


class KpilotError(Exception):
    """Base of every error kpilot raises on purpose; its text is shown to the user as is."""


class WorkspaceInvalid(KpilotError):
    """The workspace definition has errors; `issues` lists all of them (warnings included)."""

    def __init__(self, issues: Sequence[Issue]):
        self.issues = list(issues)
        errors = [i for i in self.issues if i.severity == "error"]
        head = f"{len(errors)} error(s) in the workspace definition"
        super().__init__(head + ":\n" + "\n".join(f"  {i}" for i in errors))


@dataclass
class IssueList:
    """Collects issues during a validation pass."""

    items: list[Issue] = field(default_factory=list)

    def add(self, issue: Issue) -> None:
        self.items.append(issue)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.items if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.items if i.severity == "warning"]


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """Return " did you mean 'x'?" for the closest candidate, or an empty string."""
    pool = list(dict.fromkeys(candidates))
    lowered = {c.lower(): c for c in pool}
    if word.lower() in lowered and lowered[word.lower()] != word:
        return f" did you mean '{lowered[word.lower()]}'?"
    close = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    return f" did you mean '{close[0]}'?" if close else ""


def one_of(candidates: Iterable[str], limit: int = 12) -> str:
    """Format a short list of valid choices for an error message."""
    pool = list(dict.fromkeys(candidates))
    shown = ", ".join(f"'{c}'" for c in pool[:limit])
    more = f" (and {len(pool) - limit} more)" if len(pool) > limit else ""
    return shown + more if pool else "(none)"
