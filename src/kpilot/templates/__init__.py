"""Workspace templates: a commented kpilot.yaml plus a year of sample data, ready to validate and compute.

Each template is a module `kpilot.templates.<name>` with `write(target, language, today)`; its YAML
lives in `files/<name>.<language>.yaml`. The helpers below are shared by the template modules.
"""

from __future__ import annotations

import csv
import importlib
import re
import shutil
import string
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from importlib import resources
from pathlib import Path

from kpilot.model.errors import KpilotError, did_you_mean, msg, one_of

TEMPLATES = ("saas", "esn", "smarketing", "ecommerce")
LANGUAGES = ("en", "fr")
WORKSPACE_FILE = "kpilot.yaml"

Cell = str | int | float | bool | date | None


def init_workspace(
    target: Path,
    template: str = "saas",
    language: str = "en",
    *,
    today: date | None = None,
    force: bool = False,
) -> Path:
    """Create a workspace in `target` from a template; returns the path of its kpilot.yaml.

    Writes kpilot.yaml (in `language`) and data/*.csv sample files. Refuses to overwrite an existing
    kpilot.yaml, or a data file named like a sample file, unless `force`.
    The sample data ends at `today` (default: the current date), so the workspace computes right away.
    """
    if template not in TEMPLATES:
        raise KpilotError(msg(
            "unknown template '{template}';{hint} templates: {templates}. Fix: pass one of them, e.g. "
            "`--template esn`.", template=template, hint=did_you_mean(template, TEMPLATES), templates=one_of(TEMPLATES)
        ))
    if language not in LANGUAGES:
        raise KpilotError(msg(
            "unknown language '{language}';{hint} languages: {languages}. Fix: pass `--language en` or "
            "`--language fr`.", language=language, hint=did_you_mean(language, LANGUAGES),
            languages=one_of(LANGUAGES)
        ))
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise KpilotError(msg("{path} is a file, not a folder. Fix: pass the folder the workspace should live in.",
                              path=str(target)))
    manifest = target / WORKSPACE_FILE
    if manifest.exists() and not force:
        raise KpilotError(msg(
            "{path} already exists: kpilot init does not overwrite a workspace. Fix: pick an empty "
            "folder, or pass --force to replace kpilot.yaml and the template's sample files in data/.",
            path=str(manifest)
        ))
    try:
        module = importlib.import_module(f"{__name__}.{template}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{template}":
            raise
        raise KpilotError(msg("template '{template}' is not installed in this copy of kpilot; reinstall kpilot, or "
                              "pick another template: {templates}", template=template,
                              templates=one_of(TEMPLATES))) from None
    # Build in a scratch folder first: nothing is written to `target` until we know which files
    # would be replaced, so a user's real data file named like a sample file is never lost silently.
    with tempfile.TemporaryDirectory(prefix="kpilot-init-") as scratch:
        # Same folder name as the target: templates derive the workspace key from it.
        staged = Path(scratch) / (target.resolve().name or "workspace")
        staged.mkdir()
        module.write(staged, language, today or date.today())
        files = sorted(p.relative_to(staged) for p in staged.rglob("*") if p.is_file())
        clashes = [f for f in files if (target / f).exists() and f != Path(WORKSPACE_FILE)]
        if clashes and not force:
            shown = ", ".join(str(target / f) for f in clashes[:5])
            if len(clashes) > 5:
                shown = msg("{choices} (and {n} more)", choices=shown, n=len(clashes) - 5)
            raise KpilotError(msg(
                "the {template} template would overwrite existing files: {files}. Fix: move them "
                "away, pick an empty folder, or pass --force to replace them with sample data.", template=template,
                files=shown
            ))
        for f in files:
            (target / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(staged / f, target / f)
    return manifest


def template_text(template: str, language: str) -> str:
    """The raw text of `files/<template>.<language>.yaml`, placeholders included."""
    source = resources.files(__name__).joinpath("files", f"{template}.{language}.yaml")
    try:
        return source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KpilotError(msg("the {language} file of the {template} template is missing from this copy of kpilot "
                              "({source}); reinstall kpilot, or pick the other language", language=language,
                              template=template, source=str(source))) from None


def sample_start(today: date) -> date:
    """First day of the sample data: the first of the month twelve months before `today`.

    Starting on a month boundary gives twelve full months to compare, plus the month in progress.
    """
    index = today.year * 12 + today.month - 1 - 12
    return date(index // 12, index % 12 + 1, 1)


def workspace_key(target: Path, fallback: str) -> str:
    """A workspace key derived from the folder name, so `kpilot init acme-esn` yields `acme-esn`."""
    key = re.sub(r"[^A-Za-z0-9_-]+", "-", target.resolve().name).strip("-")
    return key if key and re.match(r"^[A-Za-z0-9_]", key) else fallback


TARGET_LINE = re.compile(r"^(?P<indent>[ \t]*)\$\{targets:(?P<metric>\w+)\}[ \t]*$", re.MULTILINE)


def render_workspace(target: Path, template: str, language: str, today: date,
                     targets: Mapping[str, Sequence[tuple[str, float]]] | None = None, **extra: object) -> Path:
    """Write `target/kpilot.yaml` from the template file, filling its placeholders.

    Placeholders (`${name}`, Python string.Template syntax, `$$` for a literal dollar):
    workspace, last_year, this_year, next_year, first_month (first month of sample data),
    horizon (last day of next year), plus any `extra` given by the template module. A line holding
    only `${targets:<metric>}` becomes that metric's list of `{from: <period>, value: <v>}` targets.
    """
    values: dict[str, object] = {
        "workspace": workspace_key(target, template),
        "last_year": today.year - 1,
        "this_year": today.year,
        "next_year": today.year + 1,
        "first_month": sample_start(today).strftime("%Y-%m"),
        "horizon": date(today.year + 1, 12, 31).isoformat(),
        **extra,
    }

    text = fill_template(template_text(template, language), values, targets or {})
    target.mkdir(parents=True, exist_ok=True)
    path = target / WORKSPACE_FILE
    path.write_text(text, encoding="utf-8")
    return path


def fill_template(text: str, values: Mapping[str, object], targets: Mapping[str, Sequence[tuple[str, float]]],
                  number: Callable[[float], str] | None = None) -> str:
    """Fill `${name}` placeholders; a line holding only `${targets:<metric>}` becomes its target list."""
    fmt = number or _number

    def target_lines(m: re.Match[str]) -> str:
        rows = targets[m["metric"]]
        return "\n".join(f"{m['indent']}- {{from: {period}, value: {fmt(value)}}}" for period, value in rows)

    return string.Template(TARGET_LINE.sub(target_lines, text)).substitute({k: str(v) for k, v in values.items()})


def _number(value: float) -> str:
    """A target as a person writes it: 170000, not 170000.0 nor 1.7e+05."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        # Two decimals at most (cents, half days), but always a decimal point so that the file's
        # type sniffing sees a number with decimals, not an integer.
        text = f"{value:.2f}".rstrip("0")
        return text + "0" if text.endswith(".") else text
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> None:
    """Write one sample table: ISO dates, `true`/`false` booleans, empty cells for missing values."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(header)
        for row in rows:
            out.writerow([_cell(v) for v in row])


__all__ = ["LANGUAGES", "TEMPLATES", "init_workspace", "render_workspace", "sample_start", "template_text",
           "workspace_key", "write_csv"]
