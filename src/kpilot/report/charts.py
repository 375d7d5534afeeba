"""Chart definitions: Vega-Lite specs built in Python, one definition for the browser and the server.

The browser renders a spec with the vendored vega-embed; `to_svg`/`to_png` render the same spec on the
server with vl-convert (reports, e-mails). Specs are plain dicts of JSON values. Numbers and dates in
axes follow the language through d3 format locales (`format_locale`), given to both renderers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from itertools import pairwise
from typing import Any

from kpilot.i18n import COMPACT_FROM, COUNT_UNITS, STATUS_WORDS, format_value, format_values, is_currency

SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"  # an identifier for vega-embed; never fetched
VL_VERSION = "6.4"  # the vendored vega-lite's minor version, for vl-convert

# A period's status by shape as well as colour (the tiles' verdict shapes: ● ▲ ◆ ○).
STATUS_SHAPES: dict[str, str] = {"green": "circle", "amber": "triangle-up", "red": "diamond", "none": "circle"}
# The status colours, shared by the tiles' CSS (static/app.css) and the charts.
STATUS_COLORS: dict[str, str] = {"green": "#2f855a", "amber": "#d69e2e", "red": "#c53030", "none": "#a0aec0"}
STATUSES = ("green", "amber", "red", "none")
FORECAST_COLOR = "#3182ce"  # the forecast and its interval (no status: it has not happened yet)
ANNOTATION_COLOR = "#718096"  # notes on the history: neutral, they judge nothing
INK = "#2d3748"
MUTED = "#718096"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"

_D3_LOCALES: dict[str, dict[str, Any]] = {
    "en": {"decimal": ".", "thousands": ",", "grouping": [3], "currency": ["€", ""]},
    "fr": {"decimal": ",", "thousands": "\u202f", "grouping": [3], "currency": ["", "\u00a0€"],
           "percent": "\u202f%"},
}
_D3_TIME_LOCALES: dict[str, dict[str, Any]] = {
    "en": {"dateTime": "%x, %X", "date": "%-m/%-d/%Y", "time": "%-I:%M:%S %p", "periods": ["AM", "PM"],
           "days": ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"],
           "shortDays": ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"],
           "months": ["January", "February", "March", "April", "May", "June", "July", "August", "September",
                      "October", "November", "December"],
           "shortMonths": ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]},
    "fr": {"dateTime": "%A %e %B %Y à %X", "date": "%d/%m/%Y", "time": "%H:%M:%S", "periods": ["AM", "PM"],
           "days": ["dimanche", "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi"],
           "shortDays": ["dim.", "lun.", "mar.", "mer.", "jeu.", "ven.", "sam."],
           "months": ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
                      "octobre", "novembre", "décembre"],
           "shortMonths": ["janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.",
                           "nov.", "déc."]},
}


def format_locale(lang: str, currency: str = "EUR") -> dict[str, Any]:
    """The d3 number-format locale of a language (vega-embed's formatLocale, vl-convert's format_locale)."""
    loc = dict(_D3_LOCALES.get(lang, _D3_LOCALES["en"]))
    symbol = {"EUR": "€", "USD": "$", "GBP": "£", "CHF": "CHF"}.get(currency, currency)
    loc["currency"] = ["", f"\u00a0{symbol}"] if lang == "fr" else [symbol, ""]
    return loc


def time_format_locale(lang: str) -> dict[str, Any]:
    return _D3_TIME_LOCALES.get(lang, _D3_TIME_LOCALES["en"])


def _is_money(unit: str | None) -> bool:
    u = (unit or "").strip()
    return is_currency(u) or u.lower() == "currency"


def _is_percent(unit: str | None) -> bool:
    return (unit or "").strip().lower() in ("percent", "%", "pct")


def number_axis(unit: str | None, lang: str = "en", currency: str = "EUR") -> dict[str, Any]:
    """A y axis's tick labels by the rule `kpilot.i18n.format_value` writes values with (a Vega expression doing
    what the Python does): percent with one decimal; money and numbers in full below a million and short from it
    on ("€1.2M", "1,2 M €"); counts whole; the language's separators and currency placement. No unit words on an
    axis."""
    u = (unit or "").strip()
    if _is_percent(u):
        return {"format": ".1%"}
    v = "abs(datum.value)"
    short = f"format({v}, '.3~s')"
    short = (f"replace(replace({short}, 'G', '\u00a0Md'), 'M', '\u00a0M')" if lang == "fr"
             else f"replace({short}, 'G', 'B')")
    if _is_money(u):
        prefix, suffix = format_locale(lang, u if is_currency(u) else currency)["currency"]
        full = f"{v} >= 100 || {v} == floor({v}) ? format({v}, ',.0f') : format({v}, ',.2f')"
        body = f"({v} >= {COMPACT_FROM} ? {short} : ({full}))"
        expr = f"(datum.value < 0 ? '-' : '') + {json.dumps(prefix)} + {body} + {json.dumps(suffix)}"
        return {"labelExpr": expr}
    if u.lower() in COUNT_UNITS:
        full = f"format(round({v}), ',.0f')"
        extra: dict[str, Any] = {"tickMinStep": 1}
    else:
        full = f"{v} >= 100 ? format({v}, ',.0f') : format({v}, ',.2~f')"
        extra = {}
    return {"labelExpr": f"(datum.value < 0 ? '-' : '') + ({v} >= {COMPACT_FROM} ? {short} : ({full}))", **extra}


def tooltip_format(unit: str | None) -> str:
    """d3's format for numbers no row gives a text for (a share of target, a chance)."""
    return ".1%" if _is_percent(unit) else ",.4~f"


def time_axis(periods: Sequence[str], *, most: int = 6) -> dict[str, Any]:
    """The time axis of a history: ticks on periods themselves (every k-th, the latest labelled), written with
    their year: "Nov 2026" for months and longer, "30 Nov 2026" for weeks and days."""
    if not periods:
        return {"grid": False}
    days = sorted({p[:10] for p in periods})
    step = max(1, -(-len(days) // most))
    ticks = days[::-1][::step][::-1]
    gaps = [(date.fromisoformat(b) - date.fromisoformat(a)).days for a, b in pairwise(days)]
    monthly = bool(gaps) and min(gaps) >= 28
    # Tick values as ISO dates: the browser's vega (expression interpreter, for the CSP) ignores timestamps here.
    return {"grid": False, "values": ticks, "format": "%b %Y" if monthly else "%-d %b %Y",
            "labelOverlap": True, "labelFlush": False}


def _base(width: int | str, height: int) -> dict[str, Any]:
    return {
        "$schema": SCHEMA,
        "width": width,
        "height": height,
        "background": None,
        "config": {
            "font": FONT,
            "view": {"stroke": None},
            "axis": {"labelColor": MUTED, "titleColor": MUTED, "gridColor": "#edf2f7", "domainColor": "#cbd5e0",
                     "tickColor": "#cbd5e0", "labelFontSize": 11},
            "legend": {"labelColor": INK, "titleColor": MUTED},
        },
    }


def _status_scale() -> dict[str, Any]:
    return {"domain": list(STATUSES), "range": [STATUS_COLORS[s] for s in STATUSES]}


def _number(v: object) -> float | None:
    return float(v) if isinstance(v, int | float) else None


def _rows(rows: Sequence[Mapping[str, object]], unit: str | None, lang: str, currency: str
          ) -> list[dict[str, object]]:
    """The fields a chart reads, as JSON values (a missing status is 'none'), with the value and the target as the
    tiles write them (for tooltips)."""
    def text(v: object) -> str:
        return format_value(_number(v), unit, lang, currency=currency)

    return [{"period": r["period"], "label": r.get("label", r["period"]), "value": r.get("value"),
             "target": r.get("target"), "status": r.get("status") or "none", "complete": bool(r.get("complete", True)),
             "value_text": text(r.get("value")), "target_text": text(r.get("target"))}
            for r in rows]


def _target_and_value(y_axis: dict[str, Any] | None, *, dash: list[int], width: float) -> list[dict[str, Any]]:
    """The target as a dashed line in steps (a target holds from its period's start to the next; it carries the y
    axis, not from zero) and the value as a line."""
    return [
        {"mark": {"type": "line", "strokeDash": dash, "color": MUTED, "strokeWidth": width,
                  "interpolate": "step-after"},
         "encoding": {"y": {"field": "target", "type": "quantitative", "axis": y_axis, "scale": {"zero": False}}}},
        {"mark": {"type": "line", "color": INK, "strokeWidth": 1.5},
         "encoding": {"y": {"field": "value", "type": "quantitative"}}},
    ]


def sparkline(rows: Sequence[Mapping[str, object]], *, unit: str | None, periods: int = 12,
              width: int | str = "container", height: int = 44, lang: str = "en",
              currency: str = "EUR") -> dict[str, Any]:
    """The last `periods` values as a line, the target as a dashed line, each point in its status colour; the
    period in progress as a hollow point (judged on its pace, not yet a value like the others); the scale's lowest
    and highest ticks on the left, so a small move does not look like a cliff."""
    data = _rows(rows[-periods:], unit, lang, currency)
    x = {"field": "period", "type": "temporal", "scale": {"type": "utc"}, "axis": None}
    tooltip = [{"field": "label", "type": "nominal", "title": " "},
               {"field": "value_text", "type": "nominal", "title": "value"},
               {"field": "target_text", "type": "nominal", "title": "target"}]
    y_axis = {**number_axis(unit, lang, currency), "title": None, "tickCount": 2, "grid": False, "domain": False,
              "ticks": False, "labelFontSize": 9, "labelPadding": 2, "labelColor": "#4a5568"}
    color = {"field": "status", "type": "nominal", "scale": _status_scale(), "legend": None}
    shape = {"field": "status", "type": "nominal", "legend": None,
             "scale": {"domain": list(STATUSES), "range": [STATUS_SHAPES[st] for st in STATUSES]}}
    spec = _base(width, height)
    spec.update({
        "data": {"values": data},
        "encoding": {"x": x},
        "layer": [
            *_target_and_value(y_axis, dash=[4, 3], width=1),
            {"transform": [{"filter": "datum.complete"}],
             "mark": {"type": "point", "filled": True, "size": 22, "opacity": 1},
             "encoding": {"y": {"field": "value", "type": "quantitative"}, "color": color, "shape": shape,
                          "tooltip": tooltip}},
            {"transform": [{"filter": "!datum.complete"}],
             "mark": {"type": "point", "filled": False, "size": 40, "strokeWidth": 1.5, "opacity": 1},
             "encoding": {"y": {"field": "value", "type": "quantitative"}, "color": color, "tooltip": tooltip}},
        ],
        "resolve": {"scale": {"y": "shared"}},
    })
    spec["padding"] = 2
    return spec


def _forecast_layers(rows: Sequence[Mapping[str, object]], forecast: Sequence[Mapping[str, object]],
                     labels: Mapping[str, str], unit: str | None, lang: str, currency: str) -> list[dict[str, Any]]:
    """The forecast as a band (its interval, shaded and edged so that it shows even when narrow) and points,
    fanning out from the last complete value."""
    def texts(p: Mapping[str, object]) -> dict[str, str]:  # read together, in one form (i18n.format_values)
        found = format_values([_number(p[k]) for k in ("value", "lower", "upper")], unit, lang, currency=currency)
        return dict(zip(("value_text", "lower_text", "upper_text"), found, strict=True))

    points = [{"period": p["period"], "label": p.get("label", p["period"]), "value": p["value"], "lower": p["lower"],
               "upper": p["upper"], "probability": p.get("probability"), "anchor": False, **texts(p)}
              for p in forecast if p.get("value") is not None and p.get("lower") is not None]
    if not points:
        return []
    done = [r for r in rows if r.get("complete", True) and r.get("value") is not None
            and str(r["period"]) < str(points[0]["period"])]
    last = done[-1] if done else None
    anchor = [{"period": last["period"], "label": last.get("label"), "value": last["value"], "lower": last["value"],
               "upper": last["value"], "probability": None, "anchor": True}] if last else []
    data = {"values": [*anchor, *points]}
    tooltip = [{"field": "label", "type": "nominal", "title": labels.get("period", "period")},
               {"field": "value_text", "type": "nominal", "title": labels.get("forecast", "forecast")},
               {"field": "lower_text", "type": "nominal", "title": labels.get("lower", "low")},
               {"field": "upper_text", "type": "nominal", "title": labels.get("upper", "high")},
               {"field": "probability", "type": "quantitative", "format": ".0%",
                "title": labels.get("probability", "chance of target")}]
    edge = {"type": "line", "color": FORECAST_COLOR, "strokeWidth": 1, "opacity": 0.6}
    return [
        {"data": data, "mark": {"type": "area", "color": FORECAST_COLOR, "opacity": 0.28},
         "encoding": {"y": {"field": "lower", "type": "quantitative"}, "y2": {"field": "upper"}}},
        {"data": data, "mark": edge, "encoding": {"y": {"field": "lower", "type": "quantitative"}}},
        {"data": data, "mark": edge, "encoding": {"y": {"field": "upper", "type": "quantitative"}}},
        {"data": data, "mark": {"type": "line", "color": FORECAST_COLOR, "strokeDash": [3, 3], "strokeWidth": 1.5},
         "encoding": {"y": {"field": "value", "type": "quantitative"}}},
        {"data": data, "transform": [{"filter": "!datum.anchor"}],
         "mark": {"type": "point", "filled": True, "size": 60, "opacity": 1, "color": FORECAST_COLOR,
                  "shape": "diamond"},
         "encoding": {"y": {"field": "value", "type": "quantitative"}, "tooltip": tooltip}},
    ]


def _annotation_layers(annotations: Sequence[Mapping[str, object]], labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """The annotations as vertical rules at their period, each with a marker at the top to hover (or tap) for its
    note."""
    if not annotations:
        return []
    tooltip = [{"field": "label", "type": "nominal", "title": labels.get("period", "period")},
               {"field": "text", "type": "nominal", "title": labels.get("annotation", "note")}]
    data = {"values": [dict(a) for a in annotations]}
    return [{"data": data,
             "mark": {"type": "rule", "color": ANNOTATION_COLOR, "strokeDash": [2, 2], "strokeWidth": 2},
             "encoding": {"tooltip": tooltip}},
            {"data": data,
             "mark": {"type": "point", "shape": "triangle-down", "filled": True, "size": 90, "color": ANNOTATION_COLOR,
                      "opacity": 1, "cursor": "pointer"},
             "encoding": {"y": {"value": 0}, "tooltip": tooltip}}]


def history(rows: Sequence[Mapping[str, object]], *, unit: str | None, labels: Mapping[str, str], lang: str = "en",
            currency: str = "EUR", width: int | str = "container", height: int = 260,
            forecast: Sequence[Mapping[str, object]] = (),
            annotations: Sequence[Mapping[str, object]] = ()) -> dict[str, Any]:
    """Every period: the value as a line with points in their status colour (hollow while in progress),
    the target as a dashed step line; the `forecast` points (period, label, value, lower, upper,
    probability) as diamonds in a band of their interval, from the last complete value on; the
    `annotations` (period, label, text) as vertical rules with the note in their tooltip. `labels` names
    the legend and tooltips (translated by the caller): keys value, target, status, period, forecast,
    lower, upper, probability, annotation, and one per status."""
    data = _rows(rows, unit, lang, currency)
    for r in data:
        r["status_label"] = labels.get(str(r["status"]), str(r["status"]))
    periods = [str(r["period"]) for r in data] + [str(p["period"]) for p in forecast if p.get("value") is not None]
    x = {"field": "period", "type": "temporal", "scale": {"type": "utc"}, "title": None, "axis": time_axis(periods)}
    y_axis = {**number_axis(unit, lang, currency), "title": None, "tickCount": 5}
    tooltip = [{"field": "label", "type": "nominal", "title": labels.get("period", "period")},
               {"field": "value_text", "type": "nominal", "title": labels.get("value", "value")},
               {"field": "target_text", "type": "nominal", "title": labels.get("target", "target")},
               {"field": "status_label", "type": "nominal", "title": labels.get("status", "status")}]
    present = [s for s in STATUSES if any(r["status"] == s for r in data)] or ["none"]  # the legend lists these
    domain = [labels.get(s, s) for s in present]
    color = {"field": "status_label", "type": "nominal", "title": None,
             "scale": {"domain": domain, "range": [STATUS_COLORS[s] for s in present]},
             "legend": {"orient": "top", "direction": "horizontal"}}
    shape = {"field": "status_label", "type": "nominal", "title": None,  # the same legend as the colour
             "scale": {"domain": domain, "range": [STATUS_SHAPES[s] for s in present]}}
    size = 40 if len(data) <= 40 else 26  # large enough for its shape to show
    spec = _base(width, height)
    spec.update({
        "data": {"values": data},
        "encoding": {"x": x},
        "layer": [
            *_target_and_value(y_axis, dash=[5, 4], width=1.5),
            {"transform": [{"filter": "datum.complete"}],
             "mark": {"type": "point", "filled": True, "size": size, "opacity": 1},
             "encoding": {"y": {"field": "value", "type": "quantitative"}, "color": color, "shape": shape,
                          "tooltip": tooltip}},
            # The period in progress: a hollow point, judged on its pace.
            {"transform": [{"filter": "!datum.complete"}],
             "mark": {"type": "point", "filled": False, "size": size * 2, "strokeWidth": 2, "opacity": 1},
             "encoding": {"y": {"field": "value", "type": "quantitative"}, "color": color, "shape": shape,
                          "tooltip": tooltip}},
            *_forecast_layers(rows, forecast, labels, unit, lang, currency),
            *_annotation_layers(annotations, labels),
        ],
        "resolve": {"scale": {"y": "shared"}},
    })
    return spec


def history_labels(tr: Callable[[str], str]) -> dict[str, str]:
    """The history chart's legend and tooltip words in a language (`tr` translates)."""
    labels = {"value": tr("Value"), "target": tr("Target"), "status": tr("Status"), "period": tr("Period"),
              "forecast": tr("Forecast"), "lower": tr("Low (80 %)"), "upper": tr("High (80 %)"),
              "probability": tr("Chance of target"), "annotation": tr("Annotation")}
    labels.update({st: tr(STATUS_WORDS[st]) for st in STATUSES})  # what a status means, never a colour's name
    return labels


def embed_options(lang: str, currency: str = "EUR") -> dict[str, Any]:
    """vega-embed's options: no action menu (it links outside), SVG, the language's number and date formats."""
    return {"actions": False, "renderer": "svg", "formatLocale": format_locale(lang, currency),
            "timeFormatLocale": time_format_locale(lang)}


def _sized(spec: Mapping[str, Any], width: int) -> dict[str, Any]:
    """A server rendering has no container to fill: a 'container' width becomes a number."""
    out = dict(spec)
    if out.get("width") == "container":
        out["width"] = width
    return out


def to_svg(spec: Mapping[str, Any], lang: str = "en", *, currency: str = "EUR", width: int = 640) -> str:
    """The chart rendered on the server (vl-convert), with the same spec and formats as in the browser."""
    import vl_convert as vlc

    return str(vlc.vegalite_to_svg(_sized(spec, width), vl_version=VL_VERSION,
                                   format_locale=format_locale(lang, currency),
                                   time_format_locale=time_format_locale(lang)))


def to_png(spec: Mapping[str, Any], lang: str = "en", *, currency: str = "EUR", width: int = 640,
           scale: float = 2.0) -> bytes:
    import vl_convert as vlc

    return bytes(vlc.vegalite_to_png(_sized(spec, width), vl_version=VL_VERSION, scale=scale,
                                     format_locale=format_locale(lang, currency),
                                     time_format_locale=time_format_locale(lang)))


__all__ = ["FORECAST_COLOR", "STATUS_COLORS", "STATUS_SHAPES", "embed_options", "format_locale", "history",
           "history_labels", "number_axis", "sparkline", "time_axis", "time_format_locale", "to_png", "to_svg"]
