"""Benchmark: kpilot's root-cause localisation on multi-dimensional cases, scored like the RiskLoc/Squeeze papers.

    python benchmarks/rootcause.py --data ../shared/data/rootcause/S_dev [--format json] [--predictions FILE]

DIR holds one case per file, `<case>.csv` or `<case>.csv.gz`: one row per leaf (one value of every dimension),
the dimension columns, `real` (the value observed) and `predict` (the value expected). Each case runs through
`kpilot.analysis.rootcause.localize_additive`, the function `kpilot explain` uses, with its defaults (one
parameter set for every case and folder), `predict` as the period before and `real` as the period after.

When DIR holds the label file `injection_info.csv` (columns `timestamp`, the case name, and `set`, the true
elements: `a=a4&b=b1;c=c2`), the run is scored: an element is a hit only when it is exactly a true one (the order
of its pairs aside); hits, false positives and misses are added up over the folder, then turned into one
precision, recall and F1 (a micro average). A labelled case absent from DIR counts as an empty prediction.
Without the label file, the elements and times are printed unscored.

`--predictions FILE` writes `{"<case>.csv": ["a=a1&b=b2", ...]}` (the scorer's format; `.csv` also for a
`.csv.gz` case). Seconds per case are the localisation's own time (the CSV reading excluded, as in the published
runs), on this machine.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from kpilot.analysis.rootcause import localize_additive
from kpilot.model.errors import KpilotError, render

LABELS = "injection_info.csv"
VALUE_COLUMNS = ("real", "predict")

Element = frozenset[tuple[str, str]]


class BadInput(Exception):
    """A case or label file that cannot be read; the message says which and why."""


@dataclass(frozen=True)
class Case:
    name: str                     # the case's name: its file name without .csv / .csv.gz
    dimensions: list[str]
    before: dict[tuple[str, ...], float]
    after: dict[tuple[str, ...], float]


@dataclass
class Result:
    name: str
    seconds: float
    predicted: list[str]
    truth: list[str] | None = None
    hits: list[str] = field(default_factory=list)

    @property
    def counts(self) -> tuple[int, int, int]:
        """True positives, false positives, false negatives (0s when unlabelled)."""
        if self.truth is None:
            return 0, 0, 0
        predicted, truth = {element(e) for e in self.predicted}, {element(e) for e in self.truth}
        return len(predicted & truth), len(predicted - truth), len(truth - predicted)


def element(text: str) -> Element:
    """`b=b1&a=a4` -> {(a, a4), (b, b1)}: the order of the pairs does not matter."""
    pairs = []
    for part in text.split("&"):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise BadInput(f"'{text}' is not an element: write dimension=value pairs joined by '&' (a=a1&b=b2)")
        pairs.append((name.strip(), value.strip()))
    return frozenset(pairs)


def case_files(data: Path) -> dict[str, Path]:
    """Case name -> file: every `<case>.csv` or `<case>.csv.gz` but the label file (plain .csv first)."""
    if not data.is_dir():
        raise BadInput(f"{data} is not a folder: give the folder holding the <case>.csv files")
    found: dict[str, Path] = {}
    for path in sorted(data.iterdir(), key=lambda p: (p.name.endswith(".gz"), p.name)):
        name = path.name
        if name in (LABELS, LABELS + ".gz") or not path.is_file():
            continue
        for suffix in (".csv", ".csv.gz"):
            if name.endswith(suffix):
                found.setdefault(name[: -len(suffix)], path)
    return dict(sorted(found.items()))


def read_case(name: str, path: Path) -> Case:
    try:
        raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        text = raw.decode("utf-8-sig")
    except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile) as exc:
        raise BadInput(f"{path}: cannot be read ({exc})") from None
    rows = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(rows, [])]
    missing = [c for c in VALUE_COLUMNS if c not in header]
    if missing:
        raise BadInput(f"{path}: no column {', '.join(missing)} (the header is {','.join(header) or 'empty'}); "
                       "a case needs the dimension columns, real and predict")
    dims = [h for h in header if h not in VALUE_COLUMNS]
    if not dims:
        raise BadInput(f"{path}: no dimension column besides real and predict")
    at = [header.index(d) for d in dims]
    real, predict = header.index("real"), header.index("predict")
    before: dict[tuple[str, ...], float] = {}
    after: dict[tuple[str, ...], float] = {}
    for line, row in enumerate(rows, start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise BadInput(f"{path}, line {line}: {len(row)} fields for {len(header)} columns")
        key = tuple(row[i] for i in at)
        if key in after:
            raise BadInput(f"{path}, line {line}: the leaf {dict(zip(dims, key, strict=True))} appears twice")
        try:
            after[key], before[key] = float(row[real]), float(row[predict])
        except ValueError:
            raise BadInput(f"{path}, line {line}: real and predict must be numbers, got "
                           f"{row[real]!r} and {row[predict]!r}") from None
        if not (math.isfinite(after[key]) and math.isfinite(before[key])):
            raise BadInput(f"{path}, line {line}: real and predict must be finite numbers")
    return Case(name, dims, before, after)


def read_labels(path: Path) -> dict[str, list[str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or not {"timestamp", "set"} <= set(reader.fieldnames):
                raise BadInput(f"{path}: the label file needs the columns timestamp and set")
            out = {}
            for row in reader:
                truth = [e for e in (row["set"] or "").split(";") if e.strip()]
                for e in truth:
                    element(e)
                out[row["timestamp"].strip()] = truth
            return out
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot be read ({exc})") from None


def localise(case: Case) -> Result:
    start = time.perf_counter()
    found = localize_additive(case.before, case.after, case.dimensions)
    seconds = time.perf_counter() - start
    return Result(case.name, seconds, [c.element for c in found.causes])


def totals(results: list[Result]) -> dict[str, float | int | None]:
    tp, fp, fn = (sum(r.counts[i] for r in results) for i in range(3))
    return {"tp": tp, "fp": fp, "fn": fn,
            "precision": tp / (tp + fp) if tp + fp else None,
            "recall": tp / (tp + fn) if tp + fn else None,
            "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None}


def run(data: Path) -> tuple[list[Result], list[str]]:
    """Every case localised; scored when the label file is there. Returns the results and the labelled cases absent."""
    files = case_files(data)
    if not files:
        raise BadInput(f"{data} holds no <case>.csv or <case>.csv.gz file")
    labels = read_labels(data / LABELS) if (data / LABELS).exists() else None
    results = []
    for name, path in files.items():
        result = localise(read_case(name, path))
        if labels is not None:
            result.truth = labels.get(name)
        results.append(result)
    absent = sorted(set(labels) - set(files)) if labels is not None else []
    # A labelled case with no file counts as an empty prediction, as the scorer does.
    results.extend(Result(name, 0.0, [], (labels or {})[name]) for name in absent)
    return results, absent


def _number(x: float | int | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def report(data: Path, results: list[Result], absent: list[str]) -> None:
    scored = any(r.truth is not None for r in results)
    ran = [r for r in results if r.name not in absent]
    print(f"{data}: {len(ran)} cases, kpilot localize_additive (the defaults of kpilot explain)")
    head = f"{'case':<14}{'seconds':>8}  " + ("  tp  fp  fn  " if scored else "") + "elements"
    print(head)
    for r in results:
        tp, fp, fn = r.counts
        counts = f"{tp:>4}{fp:>4}{fn:>4}  " if scored else ""
        mark = " (file absent)" if r.name in absent else ("" if r.truth is not None or not scored else " (no label)")
        print(f"{r.name:<14}{r.seconds:>8.3f}  {counts}{';'.join(r.predicted) or '-'}{mark}")
    seconds = [r.seconds for r in ran]
    print(f"seconds per case: mean {sum(seconds) / len(seconds):.3f}, max {max(seconds):.3f}")
    if scored:
        t = totals(results)
        print(f"F1 {_number(t['f1'])}  precision {_number(t['precision'])}  recall {_number(t['recall'])}  "
              f"(tp {t['tp']}, fp {t['fp']}, fn {t['fn']}, micro over the folder)")
    else:
        print(f"not scored: no {LABELS} in {data}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of <case>.csv(.gz) files")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--predictions", type=Path, help="write the elements found per case to this JSON file")
    args = parser.parse_args(argv)
    try:
        results, absent = run(args.data)
    except (BadInput, KpilotError) as exc:
        print(f"error: {render(exc.message) if isinstance(exc, KpilotError) else exc}", file=sys.stderr)
        return 2
    if args.predictions is not None:
        predictions = {f"{r.name}.csv": r.predicted for r in results if r.name not in absent}
        try:
            args.predictions.write_text(json.dumps(predictions, indent=1) + "\n", encoding="utf-8")
        except OSError as exc:
            print(f"error: cannot write {args.predictions}: {exc}", file=sys.stderr)
            return 2
    if args.format == "json":
        ran = [r.seconds for r in results if r.name not in absent]
        payload = {"data": str(args.data), "cases": [
            {"case": r.name, "seconds": r.seconds, "predicted": r.predicted, "truth": r.truth,
             **(dict(zip(("tp", "fp", "fn"), r.counts, strict=True)) if r.truth is not None else {})}
            for r in results], "absent": absent, "seconds_mean": sum(ran) / len(ran), "seconds_max": max(ran),
            "scored": any(r.truth is not None for r in results),
            **totals(results)}
        print(json.dumps(payload, indent=1))
    else:
        report(args.data, results, absent)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
