"""Errors and findings meant for people: what is wrong, where, and how to fix it.

Their text is a `Message`: English as a plain string, plus the template and parameters that let the
doors (CLI, web) show it in the user's language. This layer imports nothing else of kpilot, so it
does not translate: a door passes `render` a `tr` function (see kpilot.i18n.translator).
"""

from __future__ import annotations

import difflib
import re
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Literal

Severity = Literal["error", "warning"]
Translate = Callable[[str], str]


def english(template: str) -> str:
    """The translator that keeps English: templates are written in English."""
    return template


def N_(template: str) -> str:
    """Mark a template kept in a table (the i18n test finds and checks it); returns it unchanged."""
    return template


class Message(str):
    """User-facing text: a str holding the English, plus the template and parameters to translate it.

    Being a str, a message reads, compares and prints as its English text (tests and logs see no
    difference); `render(tr)` gives it in another language. Parameters that are Messages (a "did you
    mean" hint, a place in a file) are rendered with the same `tr`. Immutable.
    """

    template: str
    params: Mapping[str, object]

    def __new__(cls, template: str, /, **params: object) -> Message:
        self = super().__new__(cls, _fill(template, template, params, english))
        object.__setattr__(self, "template", template)
        object.__setattr__(self, "params", MappingProxyType(dict(params)))
        return self

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a Message is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (self.template, dict(self.params))

    def render(self, tr: Translate) -> str:
        """The text in the language of `tr` (English template -> translated template; unknown: English)."""
        return _fill(tr(self.template), self.template, self.params, tr)


class Number:
    """A number in a message, written with the decimal mark of the language it is rendered in (0.62, 0,62): a
    translator may say its mark in a `decimal` attribute (kpilot.i18n.translator does)."""

    __slots__ = ("digits", "value")

    def __init__(self, value: float, digits: int = 2) -> None:
        self.value, self.digits = value, digits

    def render(self, tr: Translate) -> str:
        return f"{self.value:.{self.digits}f}".replace(".", getattr(tr, "decimal", "."))

    def __str__(self) -> str:
        return f"{self.value:.{self.digits}f}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Number) and (self.value, self.digits) == (other.value, other.digits)

    def __hash__(self) -> int:
        return hash((self.value, self.digits))


def _rebuild(template: str, params: dict[str, object]) -> Message:
    return Message(template, **params)


def _fill(translated: str, template: str, params: Mapping[str, object], tr: Translate) -> str:
    values = {k: v.render(tr) if isinstance(v, Message | Number) else v for k, v in params.items()}
    try:
        return translated.format(**values)
    except (KeyError, IndexError, ValueError):  # a broken translation must not hide the error itself
        return template.format(**values)


def msg(template: str, /, **params: object) -> Message:
    """A translatable message: `template` is English with {placeholders}; its French is in the catalog."""
    return Message(template, **params)


def verbatim(text: str) -> Message:
    """Text that is not translated (a file name, an engine's own words); a Message stays as it is."""
    return text if isinstance(text, Message) else Message("{text}", text=text)


def joined(separator: str, parts: Sequence[str]) -> Message:
    """Parts joined by `separator`, each translated on its own (and the separator too, when a Message:
    French writes "a ; b" where English writes "a; b")."""
    template = "{sep}".join(f"{{p{i}}}" for i in range(len(parts)))
    return Message(template, sep=separator, **{f"p{i}": p for i, p in enumerate(parts)})


def either(choices: Sequence[str]) -> Message:
    """'a, b or c'."""
    if len(choices) < 2:
        return verbatim("".join(choices))
    return msg("{choices} or {last}", choices=", ".join(choices[:-1]), last=choices[-1])


def render(text: str, tr: Translate) -> str:
    """`text` in the language of `tr` when it is a Message, else as it is."""
    return text.render(tr) if isinstance(text, Message) else text


def message_of(exc: BaseException) -> str:
    """The message an exception was raised with (a Message stays one), else its text."""
    if len(exc.args) == 1 and isinstance(exc.args[0], str):
        return exc.args[0]
    return str(exc)


@lru_cache(maxsize=256)
def _pattern(template: str) -> re.Pattern[str]:
    out = []
    seen: set[str] = set()
    for literal, name, _, _ in string.Formatter().parse(template):
        out.append(re.escape(literal))
        if name is not None:
            # A placeholder used twice must hold the same text twice (a named group can be defined once).
            out.append(f"(?P={name})" if name in seen else f"(?P<{name}>.+?)")
            seen.add(name)
    return re.compile("".join(out), re.DOTALL)


def recognize(text: str, templates: Iterable[str]) -> Message:
    """English `text` from a library (PyYAML, pydantic) as the first template that produces it exactly,
    so that it can be translated; text that no template produces stays as it is."""
    for template in templates:
        m = _pattern(template).fullmatch(text)
        if m is not None:
            return Message(template, **m.groupdict())
    return verbatim(text)


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
    """One problem found in a definition or a data file; `message` and `fix` are usually Messages."""

    severity: Severity
    code: str
    message: str
    location: Location | None = None
    path: str = ""
    fix: str = ""

    def __str__(self) -> str:
        return self.render(english)

    def render(self, tr: Translate) -> str:
        """The issue on one line, in the language of `tr`."""
        where = f"{self.location}: " if self.location else ""
        field_ = f"{self.path}: " if self.path else ""
        fix = " " + tr("Fix: {fix}").format(fix=render(self.fix, tr)) if self.fix else ""
        label = tr("error:") if self.severity == "error" else tr("warning:")
        return f"{where}{label} {field_}{render(self.message, tr)}{fix}"

    def to_dict(self) -> dict[str, object]:
        loc = self.location
        return {
            "severity": self.severity,
            "code": self.code,
            "message": str(self.message),
            "path": self.path,
            "fix": str(self.fix),
            "file": loc.file if loc else None,
            "line": loc.line if loc else None,
            "column": loc.column if loc else None,
        }


class KpilotError(Exception):
    """Base of every error kpilot raises on purpose; its text is shown to the user as is.

    Raised with a Message, `str(exc)` is the English and `render(tr)` the text in another language.
    """

    @property
    def message(self) -> str:
        """The message the error was raised with (a Message when it can be translated)."""
        return message_of(self)

    def render(self, tr: Translate) -> str:
        return render(self.message, tr)


class WorkspaceInvalid(KpilotError):
    """The workspace definition has errors; `issues` lists all of them (warnings included)."""

    def __init__(self, issues: Sequence[Issue]):
        self.issues = list(issues)
        super().__init__(self.render(english))

    def render(self, tr: Translate) -> str:
        errors = [i for i in self.issues if i.severity == "error"]
        head = tr("{n} error(s) in the workspace definition:").format(n=len(errors))
        return head + "\n" + "\n".join(f"  {i.render(tr)}" for i in errors)


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


def did_you_mean(word: str, candidates: Iterable[str]) -> Message:
    """Return " did you mean 'x'?" for the closest candidate, or an empty message."""
    pool = list(dict.fromkeys(candidates))
    lowered = {c.lower(): c for c in pool}
    if word.lower() in lowered and lowered[word.lower()] != word:
        return msg(" did you mean '{name}'?", name=lowered[word.lower()])
    close = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    return msg(" did you mean '{name}'?", name=close[0]) if close else verbatim("")


def one_of(candidates: Iterable[str], limit: int = 12) -> Message:
    """A short list of valid choices for an error message."""
    pool = list(dict.fromkeys(candidates))
    if not pool:
        return msg("(none)")
    shown = ", ".join(f"'{c}'" for c in pool[:limit])
    if len(pool) > limit:
        return msg("{choices} (and {n} more)", choices=shown, n=len(pool) - limit)
    return verbatim(shown)
