"""The push API's bodies and their checks: metric values (`{metric, period, value}`, `{values: [...]}`) or rows of a
table a push source declares (`{table, rows: [...]}`), each refused with a 422 naming the field at fault."""

from __future__ import annotations

from pydantic import Field, TypeAdapter, ValidationError

from kpilot.model.errors import Message, did_you_mean, msg, render
from kpilot.model.periods import Grain, parse_period
from kpilot.model.workspace import KEY_PATTERN, Workspace
from kpilot.service import push
from kpilot.web.api_common import ApiError, Body, bad_field, invalid, metric_key
from kpilot.web.locale import web_translator

MAX_PUSH = 10_000  # values or rows in one push


class PushValue(Body):
    """One value of a metric for one period, computed by another system."""

    metric: str = Field(min_length=1, max_length=200, description="the metric's key")
    period: str = Field(min_length=1, max_length=40, description="a period of the metric's grain: 2026-11, "
                        "2026-W46, 2026-11-15, 2026-Q4 or 2026")
    value: float = Field(allow_inf_nan=False, strict=True, description="a JSON number (not a string, not a boolean)")


class PushValues(Body):
    """Several metric values at once."""

    values: list[PushValue] = Field(min_length=1, max_length=MAX_PUSH)


Scalar = str | int | float | bool | None


class PushRows(Body):
    """Rows of a table, as objects of column -> value."""

    table: str = Field(pattern=KEY_PATTERN, max_length=200, description="the table's name")
    rows: list[dict[str, Scalar]] = Field(min_length=1, max_length=MAX_PUSH)


PushBody = PushValue | PushValues | PushRows
PUSH_SCHEMAS = TypeAdapter(PushBody).json_schema(ref_template="#/components/schemas/{model}")


def push_body(data: object) -> PushValue | PushValues | PushRows:
    """The push's body as one of its three forms, or a 422 naming the fields at fault."""
    if not isinstance(data, dict):
        raise ApiError(422, msg("the body must be a JSON object. Fix: send {{\"metric\", \"period\", \"value\"}}, "
                                "{{\"values\": [...]}} or {{\"table\", \"rows\": [...]}}."))
    model: type[PushValue | PushValues | PushRows]
    if "table" in data or "rows" in data:
        model = PushRows
    elif "values" in data:
        model = PushValues
    elif "metric" in data:
        model = PushValue
    else:
        raise ApiError(422, msg("the body must be a JSON object. Fix: send {{\"metric\", \"period\", \"value\"}}, "
                                "{{\"values\": [...]}} or {{\"table\", \"rows\": [...]}}."),
                       [{"field": "body", "message": "values, metric or table expected"}])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid(list(exc.errors())) from exc


def push_table(w: Workspace, body: PushRows) -> None:
    """422 unless a push source declares the table and its rows hold what the definitions read from them."""
    tables = push.push_tables(w)
    if body.table not in tables:
        raise ApiError(422, msg("no push source declares table '{table}';{hint} pushed tables: {tables}. Fix: add "
                                "it to a source of type push in kpilot.yaml, e.g. `- {{key: pushed, type: push, "
                                "tables: [{table}]}}`.", table=body.table, hint=did_you_mean(body.table, list(tables)),
                                tables=", ".join(tables) or "—"),
                       [{"field": "table", "message": f"not declared by a push source: '{body.table}'"}])
    problems = push.row_problems(w, body.table, body.rows)
    if problems:
        first = problems[0]
        raise ApiError(422, msg("{field}: {reason}. Fix: correct the field(s) named in `issues` and send again.",
                                field=first.field, reason=first.reason),
                       [{"field": p.field, "message": render(p.reason, web_translator("en"))} for p in problems])


def pushed_value(w: Workspace, v: PushValue, where: str) -> tuple[str, str, float]:
    """(metric, period start as YYYY-MM-DD, value), the period checked against the metric's grain."""
    prefix = f"{where}." if where else ""
    metric_key(w, v.metric, f"{prefix}metric")
    grain = w.metric(v.metric).grain
    try:
        named, start = parse_period(v.period)
    except ValueError as exc:
        raise bad_field(422, f"{prefix}period", exc.args[0]) from exc
    if not push.plausible_year(start.year):
        raise ApiError(422, msg("{field}: '{period}' is outside the years kpilot takes ({first}-{last}). Fix: send "
                                "the period the value is for.", field=f"{prefix}period", period=v.period,
                                first=push.PLAUSIBLE_YEARS[0], last=push.PLAUSIBLE_YEARS[1]),
                       [{"field": f"{prefix}period", "message": "year out of range"}])
    if named is not grain:
        raise ApiError(422, msg("{field}: '{period}' is a {named}, but metric '{metric}' is counted by {grain}. Fix: "
                                "send one value per {grain}, e.g. {example}.", field=f"{prefix}period",
                                period=v.period, named=_grain_word(named), metric=v.metric, grain=_grain_word(grain),
                                example=_EXAMPLES[grain]),
                       [{"field": f"{prefix}period", "message": f"a {grain.value} expected"}])
    return v.metric, start.isoformat(), v.value


def _grain_word(grain: Grain) -> Message:
    """A grain's name, translated with the message it is put in (the catalog has day, week, month...)."""
    return Message(grain.value)


_EXAMPLES = {Grain.day: "2026-11-15", Grain.week: "2026-W46", Grain.month: "2026-11", Grain.quarter: "2026-Q4",
             Grain.year: "2026"}


__all__ = ["MAX_PUSH", "PUSH_SCHEMAS", "PushBody", "PushRows", "PushValue", "PushValues", "push_body", "push_table",
           "pushed_value"]
