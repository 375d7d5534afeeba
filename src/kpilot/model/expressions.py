"""User expressions (`measure`, `filter`, `formula`): parsed with SQLGlot, checked against an allow-list.

An expression is never pasted into SQL. It is parsed into a syntax tree, every node is checked
against the constructs allowed for its role, every column is checked against the model, and the
compiler then rewrites the tree (qualifying columns) before generating SQL for the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from kpilot.model.errors import Message, did_you_mean, msg, one_of, verbatim

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
    exp.Literal, exp.Boolean, exp.Null, exp.Column, exp.Identifier, exp.Tuple,
    exp.DPipe,
)

FORMULA_FUNCTIONS = ("offset", "coalesce", "abs", "nullif", "greatest", "least", "round")

# The types a cast may name: built-in scalar types only. A type SQLGlot does not know is kept as raw text
# and written back verbatim, so a "user-defined" type would carry arbitrary SQL into the emitted query.
CAST_TYPES: dict[exp.DType, str] = {
    exp.DType.BOOLEAN: "boolean", exp.DType.TINYINT: "tinyint", exp.DType.SMALLINT: "smallint",
    exp.DType.INT: "integer", exp.DType.BIGINT: "bigint", exp.DType.FLOAT: "real", exp.DType.DOUBLE: "double",
    exp.DType.DECIMAL: "decimal(p, s)", exp.DType.TEXT: "varchar", exp.DType.VARCHAR: "varchar",
    exp.DType.CHAR: "char", exp.DType.DATE: "date", exp.DType.TIMESTAMP: "timestamp",
    exp.DType.TIMESTAMPNTZ: "timestamp", exp.DType.TIMESTAMPTZ: "timestamptz",
}
# What an engine's dialect may write a checked expression as (SQLite: date(x) and datetime(x) for casts, MySQL:
# DATETIME for TIMESTAMP and timestamp(x) for TIMESTAMPTZ, PostgreSQL: percentile_cont(q) WITHIN GROUP (ORDER BY
# x) for a median); allowed only when reading the emitted SQL back.
EMITTED_FUNCTIONS: tuple[type[exp.Expr], ...] = (exp.Date, exp.Timestamp, exp.WithinGroup, exp.Order, exp.Ordered)
EMITTED_ANONYMOUS = frozenset({"datetime"})
EMITTED_TYPES = frozenset({exp.DType.DATETIME})
# The engines an expression may be written for: each must read back exactly what was checked.
DIALECTS = ("duckdb", "postgres", "mysql", "sqlite")
MAX_LENGTH = 4000  # characters: parsing cost grows faster than length, and no real measure is longer
MAX_DEPTH = 48  # nesting of parentheses


class ExpressionError(ValueError):
    """An expression is invalid; `position` is a 0-based character offset when known."""

    def __init__(self, message: Message, position: int | None = None, fix: str = ""):
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


def _nesting(text: str) -> tuple[int, int]:
    """The deepest nesting of parentheses (outside string literals) and where it is first reached."""
    depth = deepest = where = 0
    quote = ""
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
            if depth > deepest:
                deepest, where = depth, i
        elif ch == ")":
            depth -= 1
    return deepest, where


def _check_text(text: str, role: str) -> None:
    """Refuse what no parser should see: control characters, very long or very deeply nested text."""
    for i, ch in enumerate(text):
        if ord(ch) < 32 and ch not in "\t\n\r":
            raise ExpressionError(msg("a {role} cannot hold the control character U+{code} (at character {at})",
                                      role=role, code=f"{ord(ch):04X}", at=i + 1), i,
                                  fix=msg("remove it: copying from a binary file or a terminal can leave one"))
    if len(text) > MAX_LENGTH:
        raise ExpressionError(msg("a {role} is limited to {limit} characters; this one has {length}", role=role,
                                  limit=MAX_LENGTH, length=len(text)), MAX_LENGTH,
                              fix=msg("split it into several metrics and combine them with a formula"))
    deepest, where = _nesting(text)
    if deepest > MAX_DEPTH:
        raise ExpressionError(msg("a {role} may nest parentheses {limit} deep at most; this one nests {depth}",
                                  role=role, limit=MAX_DEPTH, depth=deepest), where,
                              fix=msg("remove the extra parentheses"))


def _parse(text: str, role: str) -> exp.Expr:
    _check_text(text, role)
    if ";" in text:
        raise ExpressionError(msg("a {role} is a single expression; ';' is not allowed", role=role), text.index(";"))
    try:
        tree = sqlglot.parse_one(text, read="duckdb")
    except RecursionError:
        raise ExpressionError(msg("a {role} is nested too deeply to read", role=role), 0,
                              fix=msg("remove the extra parentheses")) from None
    except (ParseError, TokenError) as exc:
        pos = None
        errors = getattr(exc, "errors", None) or []
        if errors:
            col = errors[0].get("col")
            pos = max(int(col) - 1, 0) if col is not None else None
            desc = errors[0].get("description") or str(exc)
        else:
            desc = str(exc).splitlines()[0]
        raise ExpressionError(msg("cannot parse {role} '{text}': {reason}", role=role, text=text,
                                  reason=verbatim(desc)), pos) from None
    if tree is None:
        raise ExpressionError(msg("empty {role}", role=role))
    for node in tree.walk():
        node.comments = None  # a comment is for the reader of the YAML, never for the engine
    if isinstance(tree, exp.Query | exp.Command | exp.DDL | exp.DML):
        raise ExpressionError(msg("a {role} must be an expression, not a statement: '{text}'", role=role, text=text))
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


def _check_nodes(text: str, tree: exp.Expr, role: str, allow_aggregates: bool, emitted: bool = False) -> None:
    """Every node of `tree` against the allow-list of `role`; `emitted`: the tree is an engine's SQL read back."""
    allowed_names = sorted({*SCALAR_FUNCTIONS.values(), *(AGGREGATES.values() if allow_aggregates else ())})
    for node in tree.walk():
        if isinstance(node, exp.DataType):
            if not (emitted and node.this in EMITTED_TYPES and not node.expressions):
                _check_type(text, node, role)
            continue
        if emitted and (type(node) in EMITTED_FUNCTIONS
                        or (isinstance(node, exp.Anonymous) and str(node.this).lower() in EMITTED_ANONYMOUS)):
            continue
        if isinstance(node, exp.DataTypeParam) and isinstance(node.parent, exp.DataType):
            continue  # checked with its type
        if isinstance(node, OPERATORS) or type(node) in SCALAR_FUNCTIONS:
            continue
        if isinstance(node, exp.Star):
            parent = node.parent
            if isinstance(parent, exp.Count):
                continue
            raise ExpressionError(msg("'*' is only allowed in count(*) in a {role}", role=role), _position(text, node))
        if isinstance(node, exp.Distinct) and isinstance(node.parent, exp.Count):
            continue
        if type(node) in AGGREGATES:
            if not allow_aggregates:
                raise ExpressionError(
                    msg("aggregate {function}() is not allowed in a {role}", function=AGGREGATES[type(node)],
                        role=role),
                    _position(text, node),
                    fix=msg("a filter selects rows; put aggregates in `measure`"),
                )
            if node.find_ancestor(*AGGREGATES.keys()):
                raise ExpressionError(msg("nested aggregates are not allowed: '{expression}'", expression=node.sql()),
                                      _position(text, node))
            continue
        if isinstance(node, exp.Func):
            name = _function_name(node)
            raise ExpressionError(
                msg("function '{function}' is not allowed in a {role};{hint} allowed functions: {functions}",
                    function=name, role=role, hint=did_you_mean(name, allowed_names),
                    functions=", ".join(allowed_names)),
                _position(text, node),
            )
        raise ExpressionError(
            msg("'{expression}' ({kind}) is not allowed in a {role}", expression=node.sql(dialect="duckdb"),
                kind=type(node).__name__, role=role),
            _position(text, node),
        )


def _check_type(text: str, node: exp.DataType, role: str) -> None:
    """A cast's type: a built-in scalar type, with whole-number parameters at most (decimal(18, 2))."""
    params = node.expressions
    plain = all(isinstance(p, exp.DataTypeParam) and isinstance(p.this, exp.Literal) and not p.this.is_string
                and str(p.this.this).isdigit() for p in params)
    if node.this in CAST_TYPES and not node.args.get("kind") and not node.args.get("nested") and plain:
        return
    shown = str(node.args.get("kind") or node.sql(dialect="duckdb"))
    raise ExpressionError(
        msg("type '{type}' is not allowed in a cast in a {role}; allowed types: {types}", type=shown[:60], role=role,
            types=", ".join(sorted(set(CAST_TYPES.values())))),
        _position(text, node) if len(shown) < 60 else None,
        fix=msg("cast to one of these types, without quotes"),
    )


def _check_emitted(text: str, tree: exp.Expr, role: str, check: Callable[[exp.Expr], None]) -> None:
    """What is checked is what runs: the expression as each engine's SQL, read back, must pass the same checks
    and read back to the same SQL (a construct SQLGlot writes back verbatim could otherwise smuggle SQL in)."""
    for dialect in DIALECTS:
        try:
            emitted = tree.sql(dialect=dialect)
            back = sqlglot.parse_one(emitted, read=dialect)
            check(back)
            stable = back.sql(dialect=dialect) == emitted
        except (ExpressionError, ParseError, TokenError, RecursionError, ValueError):
            stable = False
        if not stable:
            raise ExpressionError(
                msg("{role} '{text}' cannot be written safely as SQL for {engine}", role=role, text=text[:200],
                    engine=dialect),
                None, fix=msg("write it with plain columns, literals, operators and the allowed functions"))


def columns_of(tree: exp.Expr) -> list[ColumnRef]:
    out: list[ColumnRef] = []
    for col in tree.find_all(exp.Column):
        out.append(ColumnRef(col.table or None, col.name))
    return out


def counts_rows(measure: str) -> bool:
    """Whether a measure is a count of rows (count, count_if, a distinct count): its values are whole numbers."""
    try:
        tree = parse_measure(measure)
    except ExpressionError:
        return False
    while isinstance(tree, exp.Paren):
        tree = tree.this
    return AGGREGATES.get(type(tree)) in ("count", "count_if", "approx_count_distinct")


@lru_cache(maxsize=4096)
def parse_measure(text: str) -> exp.Expr:
    """An aggregate expression over a model's rows, e.g. sum(amount), count(*), sum(a) - sum(b).

    The tree is cached and shared: callers must not modify it in place (use copy or transform).
    """
    tree = _parse(text, "measure")
    _check_nodes(text, tree, "measure", allow_aggregates=True)
    _check_emitted(text, tree, "measure", lambda t: _check_nodes(text, t, "measure", True, emitted=True))
    if not any(True for _ in tree.find_all(*AGGREGATES.keys())):
        raise ExpressionError(
            msg("measure '{text}' has no aggregate", text=text),
            0,
            fix=msg("wrap it in an aggregate, e.g. sum({text}); allowed: {functions}", text=text,
                    functions=", ".join(sorted(AGGREGATES.values()))),
        )
    for col in tree.find_all(exp.Column):
        if not col.find_ancestor(*AGGREGATES.keys()):
            raise ExpressionError(
                msg("column '{column}' in measure '{text}' is outside an aggregate", column=col.sql(), text=text),
                _position(text, col),
                fix=msg("aggregate it, e.g. sum({column}), or move the condition to `filter`", column=col.sql()),
            )
    return tree


@lru_cache(maxsize=4096)
def parse_filter(text: str) -> exp.Expr:
    """A row condition, e.g. stage = 'won', is_mql, channel in ('seo', 'ads'). Cached and shared, like measures."""
    tree = _parse(text, "filter")
    _check_nodes(text, tree, "filter", allow_aggregates=False)
    _check_emitted(text, tree, "filter", lambda t: _check_nodes(text, t, "filter", False, emitted=True))
    return tree


def unknown_column(name: str, where: str, columns: Iterable[str]) -> Message:
    """ "unknown column 'x' in model m; did you mean 'y'? columns: ..." """
    pool = list(columns)
    return msg("unknown column '{name}' in {where};{hint} columns: {columns}", name=name, where=where,
               hint=did_you_mean(name, pool), columns=one_of(pool))


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
                    msg("unknown model '{model}' in '{ref}' in {where};{hint} joined models: {models}",
                        model=ref.table, ref=str(ref), where=where, hint=did_you_mean(ref.table or "", tables),
                        models=one_of(tables)),
                    text.find(str(ref)),
                    fix=msg("add a join to that model, or remove the prefix"),
                )
            )
            continue
        if ref.name not in cols:
            lowered = {c.lower(): c for c in cols}
            if ref.name.lower() in lowered:
                continue  # SQL identifiers are case-insensitive unless quoted
            problems.append(
                ExpressionError(unknown_column(ref.name, where, cols), _position(text, exp.column(ref.name)))
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


def _check_formula_nodes(text: str, tree: exp.Expr, emitted: bool = False) -> None:
    """Every node of a rewritten formula against its allow-list; `emitted`: an engine's SQL read back (where a
    division may carry a cast to a floating type)."""
    for node in tree.walk():
        if emitted and isinstance(node, exp.Cast):
            continue
        if emitted and isinstance(node, exp.DataType):
            _check_type(text, node, "formula")
            continue
        if isinstance(node, OPERATORS) and not isinstance(node, exp.In | exp.Like | exp.ILike | exp.Is):
            continue
        if type(node) in (exp.Coalesce, exp.Abs, exp.Nullif, exp.Greatest, exp.Least, exp.Round):
            continue
        if isinstance(node, exp.Func):
            name = _function_name(node)
            raise ExpressionError(
                msg("function '{function}' is not allowed in a formula;{hint} allowed: {functions}", function=name,
                    hint=did_you_mean(name, FORMULA_FUNCTIONS), functions=", ".join(FORMULA_FUNCTIONS)),
                text.lower().find(name.lower()),
            )
        raise ExpressionError(msg("'{expression}' is not allowed in a formula", expression=node.sql()), None)


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
            msg("unknown metric '{metric}' in formula '{text}';{hint} metrics: {metrics}", metric=name, text=text,
                hint=did_you_mean(name, known), metrics=one_of(known)),
            text.find(name),
            fix=msg("define that metric, or list it under `inputs` with an alias"),
        )

    def rewrite(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Anonymous) and str(node.this).lower() == "offset":
            args = node.expressions
            if len(args) != 2 or not isinstance(args[0], exp.Column):
                raise ExpressionError(msg("offset() takes a metric and a number of periods: offset(mrr, -1)"),
                                      text.find("offset"))
            amount = args[1]
            sign = -1 if isinstance(amount, exp.Neg) else 1
            lit = amount.this if isinstance(amount, exp.Neg) else amount
            if not isinstance(lit, exp.Literal) or lit.is_string or not str(lit.this).lstrip("-").isdigit():
                raise ExpressionError(msg("the offset in offset() must be a whole number of periods"),
                                      text.find("offset"))
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
    _check_formula_nodes(text, out)
    _check_emitted(text, out, "formula", lambda t: _check_formula_nodes(text, t, emitted=True))
    if not refs:
        raise ExpressionError(msg("formula '{text}' reads no metric", text=text), 0)
    return out, list(refs.values())
