"""User expressions (`measure`, `filter`, `formula`): parsed with SQLGlot, checked against an allow-list.

An expression is never pasted into SQL. It is parsed into a syntax tree, every node is checked
against the constructs allowed for its role, every column is checked against the model, and the
compiler then rewrites the tree (qualifying columns) before generating SQL for the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from kpilot.model.errors import did_you_mean, one_of

AGGREGATES: dict[type[exp.Expr], str] = {
    exp.Sum: "sum",
    exp.Count: "count",
    exp.Avg: "avg",
    exp.Min: "min",
    exp.Max: "max",
    exp.Median: "median",
    exp.CountIf: "count_if",
    exp.ApproxDistinct: "approx_count_distinct",
    exp.PercentileCont: "quantile_cont",
}

SCALAR_FUNCTIONS: dict[type[exp.Expr], str] = {
    exp.Lower: "lower",
    exp.Upper: "upper",
    exp.Coalesce: "coalesce",
    exp.Abs: "abs",
    exp.Round: "round",
    exp.Nullif: "nullif",
    exp.Greatest: "greatest",
    exp.Least: "least",
    exp.Trim: "trim",
    exp.Length: "length",
    exp.Substring: "substring",
    exp.Concat: "concat",
    exp.If: "if",
    exp.Case: "case",
    exp.Cast: "cast",
    exp.TryCast: "try_cast",
    exp.Floor: "floor",
    exp.Ceil: "ceil",
    exp.Ln: "ln",
    exp.Sqrt: "sqrt",
}

OPERATORS: tuple[type[exp.Expr], ...] = (
    exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.Neg, exp.Paren,
    exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ,
    exp.And, exp.Or, exp.Not, exp.Is, exp.In, exp.Between, exp.Like, exp.ILike,
    exp.Literal, exp.Boolean, exp.Null, exp.Column, exp.Identifier, exp.DataType, exp.Tuple,
    exp.DPipe,
)

FORMULA_FUNCTIONS = ("offset", "coalesce", "abs", "nullif", "greatest", "least", "round")


class ExpressionError(ValueError):
    """An expression is invalid; `position` is a 0-based character offset when known."""

    def __init__(self, message: str, position: int | None = None, fix: str = ""):
        super().__init__(message)
        self.message = message
        self.position = position
        self.fix = fix


@dataclass(frozen=True)
class ColumnRef:
    table: str | None  # a joined model key, or None for the metric's own model
    name: str

    def __str__(self) -> str:
        return f"{self.table}.{self.name}" if self.table else self.name


def _parse(text: str, role: str) -> exp.Expr:
    if ";" in text:
        raise ExpressionError(f"a {role} is a single expression; ';' is not allowed", text.index(";"))
    try:
        tree = sqlglot.parse_one(text, read="duckdb")
    except (ParseError, TokenError) as exc:
        pos = None
        errors = getattr(exc, "errors", None) or []
        if errors:
            col = errors[0].get("col")
            pos = max(int(col) - 1, 0) if col is not None else None
            desc = errors[0].get("description") or str(exc)
        else:
            desc = str(exc).splitlines()[0]
        raise ExpressionError(f"cannot parse {role} '{text}': {desc}", pos) from None
    if tree is None:
        raise ExpressionError(f"empty {role}")
    if isinstance(tree, exp.Query | exp.Command | exp.DDL | exp.DML):
        raise ExpressionError(f"a {role} must be an expression, not a statement: '{text}'")
    return tree


def _position(text: str, node: exp.Expr) -> int | None:
    name = node.sql(dialect="duckdb") if not isinstance(node, exp.Column) else node.name
    idx = text.lower().find(name.lower()) if name else -1
    return idx if idx >= 0 else None


def _function_name(node: exp.Expr) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.this)
    if isinstance(node, exp.Func):
        return str(node.sql_name()).lower()
    return type(node).__name__.lower()


def _check_nodes(text: str, tree: exp.Expr, role: str, allow_aggregates: bool) -> None:
    allowed_names = sorted({*SCALAR_FUNCTIONS.values(), *(AGGREGATES.values() if allow_aggregates else ())})
    for node in tree.walk():
        if isinstance(node, OPERATORS) or type(node) in SCALAR_FUNCTIONS:
            continue
        if isinstance(node, exp.Star):
            parent = node.parent
            if isinstance(parent, exp.Count):
                continue
            raise ExpressionError(f"'*' is only allowed in count(*) in a {role}", _position(text, node))
        if isinstance(node, exp.Distinct) and isinstance(node.parent, exp.Count):
            continue
        if type(node) in AGGREGATES:
            if not allow_aggregates:
                raise ExpressionError(
                    f"aggregate {AGGREGATES[type(node)]}() is not allowed in a {role}",
                    _position(text, node),
                    fix="a filter selects rows; put aggregates in `measure`",
                )
            if node.find_ancestor(*AGGREGATES.keys()):
                raise ExpressionError(f"nested aggregates are not allowed: '{node.sql()}'", _position(text, node))
            continue
        if isinstance(node, exp.Func):
            name = _function_name(node)
            raise ExpressionError(
                f"function '{name}' is not allowed in a {role};{did_you_mean(name, allowed_names) or ''}"
                f" allowed functions: {', '.join(allowed_names)}",
                _position(text, node),
            )
        raise ExpressionError(
            f"'{node.sql(dialect='duckdb')}' ({type(node).__name__}) is not allowed in a {role}",
            _position(text, node),
        )


def columns_of(tree: exp.Expr) -> list[ColumnRef]:
    out: list[ColumnRef] = []
    for col in tree.find_all(exp.Column):
        out.append(ColumnRef(col.table or None, col.name))
    return out


@lru_cache(maxsize=4096)
def parse_measure(text: str) -> exp.Expr:
    """An aggregate expression over a model's rows, e.g. sum(amount), count(*), sum(a) - sum(b).

    The tree is cached and shared: callers must not modify it in place (use copy or transform).
    """
    tree = _parse(text, "measure")
    _check_nodes(text, tree, "measure", allow_aggregates=True)
    if not any(True for _ in tree.find_all(*AGGREGATES.keys())):
        raise ExpressionError(
            f"measure '{text}' has no aggregate",
            0,
            fix=f"wrap it in an aggregate, e.g. sum({text}); allowed: {', '.join(sorted(AGGREGATES.values()))}",
        )
    for col in tree.find_all(exp.Column):
        if not col.find_ancestor(*AGGREGATES.keys()):
            raise ExpressionError(
                f"column '{col.sql()}' in measure '{text}' is outside an aggregate",
                _position(text, col),
                fix=f"aggregate it, e.g. sum({col.sql()}), or move the condition to `filter`",
            )
    return tree


@lru_cache(maxsize=4096)
def parse_filter(text: str) -> exp.Expr:
    """A row condition, e.g. stage = 'won', is_mql, channel in ('seo', 'ads'). Cached and shared, like measures."""
    tree = _parse(text, "filter")
    _check_nodes(text, tree, "filter", allow_aggregates=False)
    return tree


def check_columns(
    text: str, tree: exp.Expr, available: Mapping[str | None, Mapping[str, str]], where: str
) -> list[ExpressionError]:
    """Check every column of `tree` against `available` (table key or None -> columns -> type)."""
    problems: list[ExpressionError] = []
    for ref in columns_of(tree):
        cols = available.get(ref.table)
        if cols is None:
            tables = [t for t in available if t]
            problems.append(
                ExpressionError(
                    f"unknown model '{ref.table}' in '{ref}' in {where};"
                    f"{did_you_mean(ref.table or '', tables)} joined models: {one_of(tables)}",
                    text.find(str(ref)),
                    fix="add a join to that model, or remove the prefix",
                )
            )
            continue
        if ref.name not in cols:
            lowered = {c.lower(): c for c in cols}
            if ref.name.lower() in lowered:
                continue  # SQL identifiers are case-insensitive unless quoted
            problems.append(
                ExpressionError(
                    f"unknown column '{ref.name}' in {where};{did_you_mean(ref.name, cols)}"
                    f" columns: {one_of(cols)}",
                    _position(text, exp.column(ref.name)),
                )
            )
    return problems


@dataclass(frozen=True)
class FormulaRef:
    """A metric read by a formula, at an offset in periods (0 = same period, -1 = previous)."""

    metric: str
    offset: int = 0

    @property
    def column(self) -> str:
        if self.offset == 0:
            return self.metric
        return f"{self.metric}__off{'m' if self.offset < 0 else 'p'}{abs(self.offset)}"


def parse_formula(text: str, known: Mapping[str, FormulaRef]) -> tuple[exp.Expr, list[FormulaRef]]:
    """Parse a derived formula over metrics; `known` maps names usable in it to metric refs.

    `offset(name, n)` reads a metric n periods away (n = -1: previous period).
    Returns the tree with every reference replaced by a column named after `FormulaRef.column`,
    and the distinct refs it reads.
    """
    tree = _parse(text, "formula")
    refs: dict[str, FormulaRef] = {}

    def unknown(name: str) -> ExpressionError:
        return ExpressionError(
            f"unknown metric '{name}' in formula '{text}';{did_you_mean(name, known)} metrics: {one_of(known)}",
            text.find(name),
            fix="define that metric, or list it under `inputs` with an alias",
        )

    def rewrite(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Anonymous) and str(node.this).lower() == "offset":
            args = node.expressions
            if len(args) != 2 or not isinstance(args[0], exp.Column):
                raise ExpressionError("offset() takes a metric and a number of periods: offset(mrr, -1)",
                                      text.find("offset"))
            amount = args[1]
            sign = -1 if isinstance(amount, exp.Neg) else 1
            lit = amount.this if isinstance(amount, exp.Neg) else amount
            if not isinstance(lit, exp.Literal) or lit.is_string or not str(lit.this).lstrip("-").isdigit():
                raise ExpressionError("the offset in offset() must be a whole number of periods", text.find("offset"))
            name = args[0].name
            if name not in known:
                raise unknown(name)
            base = known[name]
            ref = FormulaRef(base.metric, base.offset + sign * int(lit.this))
            refs[ref.column] = ref
            return exp.column(ref.column, quoted=True)
        if isinstance(node, exp.Column):
            if node.table or node.name not in known:
                raise unknown(node.sql())
            ref = known[node.name]
            refs[ref.column] = ref
            return exp.column(ref.column, quoted=True)
        return node

    out = tree.transform(rewrite)
    for node in out.walk():
        if isinstance(node, OPERATORS) and not isinstance(node, exp.In | exp.Like | exp.ILike | exp.Is):
            continue
        if type(node) in (exp.Coalesce, exp.Abs, exp.Nullif, exp.Greatest, exp.Least, exp.Round):
            continue
        if isinstance(node, exp.Func):
            name = _function_name(node)
            raise ExpressionError(
                f"function '{name}' is not allowed in a formula;{did_you_mean(name, FORMULA_FUNCTIONS)}"
                f" allowed: {', '.join(FORMULA_FUNCTIONS)}",
                text.lower().find(name.lower()),
            )
        raise ExpressionError(f"'{node.sql()}' is not allowed in a formula", None)
    if not refs:
        raise ExpressionError(f"formula '{text}' reads no metric", 0)
    return out, list(refs.values())
