"""Workspace templates: a commented kpilot.yaml plus a year of sample data, ready to validate and compute.

Each template is a module `kpilot.templates.<name>` with `write(target, language, today)`; its YAML
lives in `files/<name>.<language>.yaml`. The helpers below are shared by the template modules and by
the demo (`kpilot.templates.demo_company`): one renderer for the YAML, one number format for targets, and one way to put
the files in place (all or nothing).
"""

from __future__ import annotations

import csv
import importlib
import math
import os
import re
import shutil
import string
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import date, datetime
from importlib import resources
from pathlib import Path

from kpilot.model.errors import KpilotError, did_you_mean, msg, one_of
from kpilot.model.periods import Grain, add_months, label, period_start
from kpilot.model.workspace import Language

TEMPLATES = ("saas", "esn", "smarketing", "ecommerce")
LANGUAGES = tuple(lang.value for lang in Language)
WORKSPACE_FILE = "kpilot.yaml"
TARGET_DIGITS = 3  # significant digits of a generated target: 412000, 27.6, 0.0185

Cell = str | int | float | bool | date | None
Targets = Mapping[str, Sequence[tuple[str, float]]]


def check_language(language: str) -> Language:
    """The workspace language named `language`, or an error listing the languages kpilot speaks."""
    try:
        return Language(language)
    except ValueError:
        raise KpilotError(msg(
            "unknown language '{language}';{hint} languages: {languages}. Fix: pass one of them, e.g. "
            "`--language {example}`.", language=language, hint=did_you_mean(language, LANGUAGES),
            languages=one_of(LANGUAGES), example=LANGUAGES[-1]
        )) from None


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
    All or nothing: when a file cannot be written, the files this run wrote are removed again.
    """
    if template not in TEMPLATES:
        raise KpilotError(msg(
            "unknown template '{template}';{hint} templates: {templates}. Fix: pass one of them, e.g. "
            "`--template esn`.", template=template, hint=did_you_mean(template, TEMPLATES), templates=one_of(TEMPLATES)
        ))
    check_language(language)
    target = Path(target)
    check_folder(target)
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
    with writing(), staging(target) as staged:
        module.write(staged, language, today or date.today())
        files = staged_files(staged)
        check_destinations(target, files, template)
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
        install(staged, target, files)
    return manifest


# --- Putting files in place: checked first, then all or nothing.

def check_folder(target: Path) -> None:
    """Refuse a target that is a file, or lies under one (`notes.txt/ws`)."""
    for path in (target, *target.parents):
        if path.exists():
            if not path.is_dir():
                raise KpilotError(msg("{path} is a file, not a folder. Fix: pass the folder the workspace should "
                                      "live in.", path=str(path)))
            return


def check_destinations(target: Path, files: Iterable[Path], template: str) -> None:
    """Refuse to start when a folder stands where a file goes (data/leads.csv/) or a file where a folder goes."""
    for f in files:
        for folder in reversed(f.parents[:-1]):  # data/ for data/leads.csv; the last parent is "."
            path = target / folder
            if path.exists() and not path.is_dir():
                raise KpilotError(msg(
                    "{path} is a file, but the {template} template needs a folder there. Fix: move or rename "
                    "that file, or pick another folder.", path=str(path), template=template))
        if (target / f).is_dir():
            raise KpilotError(msg(
                "{path} is a folder, but the {template} template writes a file there. Fix: move or rename that "
                "folder, or pick another folder.", path=str(target / f), template=template))


def write_error(exc: OSError) -> KpilotError:
    """An operating-system error while writing a workspace, for people: the path, and what to do."""
    path = str(exc.filename) if exc.filename is not None else "?"
    if isinstance(exc, PermissionError):
        return KpilotError(msg(
            "kpilot may not write to {path} (permission denied); nothing was written. Fix: pick a folder "
            "you may write to, or change the permissions of this one.", path=path))
    return KpilotError(msg(
        "could not write to {path}: {reason}; nothing was written. Fix: check the folder and the free "
        "disk space, or pick another folder.", path=path, reason=exc.strerror or str(exc)))


@contextmanager
def writing() -> Iterator[None]:
    """Turn an operating-system error into a KpilotError that names the path and a fix."""
    try:
        yield
    except OSError as exc:
        raise write_error(exc) from None


@contextmanager
def staging(target: Path) -> Iterator[Path]:
    """A scratch folder with the same name as `target` (templates derive the workspace key from it)."""
    with tempfile.TemporaryDirectory(prefix="kpilot-") as scratch:
        staged = Path(scratch) / (target.resolve().name or "workspace")
        staged.mkdir()
        yield staged


def staged_files(staged: Path) -> list[Path]:
    """The files of a scratch folder, relative to it; kpilot.yaml first (see `install`)."""
    files = sorted(p.relative_to(staged) for p in staged.rglob("*") if p.is_file())
    return sorted(files, key=lambda f: f != Path(WORKSPACE_FILE))


def install(staged: Path, target: Path, files: Sequence[Path]) -> None:
    """Copy `files` from `staged` into `target`, all or nothing.

    Each file is first copied beside its destination under a temporary name, then renamed over it,
    kpilot.yaml first: a run that fails (disk full, no permission) removes its temporary files, the
    files it created and the folders it made, so the next run is not refused because of kpilot's own
    sample files, and a user's files are replaced only once every new file is complete.
    """
    made: list[Path] = []
    created: list[Path] = []
    temporary: dict[Path, Path] = {}
    try:
        for f in files:
            dest = target / f
            _make_folders(dest.parent, made)
            temporary[dest] = dest.with_name(f".{dest.name}.kpilot-new")
            shutil.copyfile(staged / f, temporary[dest])
        for dest, temp in temporary.items():
            existed = dest.exists()
            os.replace(temp, dest)
            if not existed:
                created.append(dest)
        ignore_state(target)
    except BaseException:
        for path in (*temporary.values(), *created):
            with suppress(OSError):
                path.unlink(missing_ok=True)
        for folder in reversed(made):
            with suppress(OSError):
                folder.rmdir()
        raise


# What a workspace folder must never commit: its state (warehouse, application database, keys of old versions).
GITIGNORE = """# kpilot: the warehouse, the application database and anything secret stay out of version control
.kpilot/
*.duckdb
*.duckdb.wal
app.db*
secret.key
"""


def ignore_state(target: Path) -> None:
    """Write the workspace's .gitignore, or add kpilot's lines to the one the folder has."""
    path = target / ".gitignore"
    if not path.exists():
        path.write_text(GITIGNORE, encoding="utf-8")
        return
    text = path.read_text(encoding="utf-8", errors="replace")
    missing = [line for line in GITIGNORE.splitlines()[1:] if line not in text.splitlines()]
    if missing:
        with path.open("a", encoding="utf-8") as f:
            f.write(("" if text.endswith("\n") or not text else "\n") + GITIGNORE.splitlines()[0] + "\n"
                    + "\n".join(missing) + "\n")


def _make_folders(folder: Path, made: list[Path]) -> None:
    """Create `folder` and its missing parents, recording each one made (to remove it on failure)."""
    missing: list[Path] = []
    for path in (folder, *folder.parents):
        if path.exists():
            break
        missing.append(path)
    for path in reversed(missing):
        path.mkdir()
        made.append(path)


# --- The workspace file: one renderer for every template and the demo.

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
    return add_months(period_start(today, Grain.month), -12)


def workspace_key(target: Path, fallback: str) -> str:
    """A workspace key derived from the folder name, so `kpilot init acme-esn` yields `acme-esn`."""
    key = re.sub(r"[^A-Za-z0-9_-]+", "-", target.resolve().name).strip("-")
    return key if key and re.match(r"^[A-Za-z0-9_]", key) else fallback


TARGET_LINE = re.compile(r"^(?P<indent>[ \t]*)\$\{targets:(?P<metric>\w+)\}[ \t]*$", re.MULTILINE)


def render_workspace(target: Path, template: str, language: str, today: date, *, targets: Targets | None = None,
                     start: date | None = None, values: Mapping[str, object] | None = None) -> Path:
    """Write `target/kpilot.yaml` from the template file, filling its placeholders; returns its path.

    Placeholders (`${name}`, Python string.Template syntax, `$$` for a literal dollar): workspace (from
    the folder name), first_month (of the sample data, which starts at `start`, by default
    `sample_start(today)`), next_year, horizon (last day of next year), and the template's own `values`
    (the demo's story dates). A line holding only `${targets:<metric>}` becomes that metric's list of
    `{from: <period>, value: <v>}` targets, each value written with `target_number`.
    """
    filled: dict[str, object] = {
        "workspace": workspace_key(target, template),
        "first_month": label(start or sample_start(today), Grain.month),
        "next_year": today.year + 1,
        "horizon": date(today.year + 1, 12, 31).isoformat(),
        **(values or {}),
    }
    rows = targets or {}

    def target_lines(m: re.Match[str]) -> str:
        return "\n".join(f"{m['indent']}- {{from: {period}, value: {target_number(value)}}}"
                         for period, value in rows[m["metric"]])

    text = string.Template(TARGET_LINE.sub(target_lines, template_text(template, language)))
    target.mkdir(parents=True, exist_ok=True)
    path = target / WORKSPACE_FILE
    path.write_text(text.substitute({k: str(v) for k, v in filled.items()}), encoding="utf-8")
    return path


def target_number(value: float) -> str:
    """A generated target as a planner writes it, rounded once to three significant digits:
    412000, 27.6 or 0.0185 (never 412000.0, 4.12e+05 nor 28 for 27.6)."""
    if value == 0 or not math.isfinite(value):
        return "0"
    decimals = TARGET_DIGITS - 1 - math.floor(math.log10(abs(value)))
    text = f"{round(value, decimals):.{max(decimals, 0)}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


# --- Sample data as CSV files.

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


def write_sample(target: Path, template: str, language: str, today: date, headers: Mapping[str, Sequence[str]],
                 tables: Mapping[str, Iterable[Sequence[Cell]]], targets: Targets | None = None) -> Path:
    """Write a template whose sample data are rows: data/<table>.csv for each table, and kpilot.yaml."""
    for table, rows in tables.items():
        write_csv(target / "data" / f"{table}.csv", headers[table], rows)
    return render_workspace(target, template, language, today, targets=targets)


__all__ = ["LANGUAGES", "TEMPLATES", "check_language", "init_workspace", "render_workspace", "sample_start",
           "target_number", "template_text", "workspace_key", "write_csv", "write_sample"]
