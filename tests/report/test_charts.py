"""Chart specs are plain Vega-Lite dicts; the same spec renders on the server with vl-convert."""

from __future__ import annotations

import json
import re

from kpilot.report import charts

ROWS = [{"period": f"2026-{m:02d}-01", "label": f"2026-{m:02d}", "value": 100.0 + 10 * m, "target": 150.0,
         "status": "green" if 100 + 10 * m >= 150 else "red", "complete": m < 11} for m in range(1, 12)]


def test_sparkline_keeps_the_last_periods_with_target_and_status_colours() -> None:
    spec = charts.sparkline(ROWS, unit="EUR", periods=6)
    assert [r["label"] for r in spec["data"]["values"]] == [f"2026-{m:02d}" for m in range(6, 12)]
    target, value, points, in_progress = spec["layer"]
    assert target["encoding"]["y"]["field"] == "target" and target["mark"]["strokeDash"]
    assert value["encoding"]["y"]["field"] == "value"
    scale = points["encoding"]["color"]["scale"]
    assert dict(zip(scale["domain"], scale["range"], strict=True)) == charts.STATUS_COLORS
    # The period in progress is a hollow point apart; the scale's two ticks are shown.
    assert points["transform"] == [{"filter": "datum.complete"}]
    assert in_progress["transform"] == [{"filter": "!datum.complete"}] and in_progress["mark"]["filled"] is False
    assert target["encoding"]["y"]["axis"]["tickCount"] == 2
    json.dumps(spec)  # JSON values only


def test_chart_legends_name_what_a_status_means() -> None:
    from kpilot.i18n import translator

    assert charts.history_labels(translator("fr"))["red"] == "Hors cible"
    assert charts.history_labels(translator("en"))["green"] == "On track"
    assert charts.history_labels(translator("en"))["none"] == "No target"


def test_history_marks_the_period_in_progress_and_names_statuses() -> None:
    labels = {"green": "vert", "red": "rouge", "amber": "orange", "none": "sans objectif", "value": "Valeur"}
    spec = charts.history(ROWS, unit="percent", labels=labels, lang="fr")
    done, in_progress = spec["layer"][2], spec["layer"][3]
    assert done["transform"] == [{"filter": "datum.complete"}] and done["mark"]["filled"] is True
    assert in_progress["transform"] == [{"filter": "!datum.complete"}] and in_progress["mark"]["filled"] is False
    assert done["encoding"]["color"]["scale"]["domain"] == ["vert", "rouge"]  # the statuses the history has
    assert spec["layer"][0]["encoding"]["y"]["axis"]["format"] == "~%"


def test_money_axis_puts_the_symbol_where_the_language_does() -> None:
    assert charts.number_axis("EUR", "fr")["labelExpr"] == "\"\" + format(datum.value, '~s') + \"\\u00a0\\u20ac\""
    assert charts.number_axis("EUR", "en")["labelExpr"] == "\"\\u20ac\" + format(datum.value, '~s') + \"\""
    assert charts.number_axis(None) == {"format": "~s"}


def test_server_rendering_uses_the_same_spec_and_locale() -> None:
    spec = charts.history(ROWS, unit="EUR", labels={"red": "rouge", "green": "vert"}, lang="fr")
    svg = charts.to_svg(spec, "fr")
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert {"rouge", "vert", "juillet", "160\u00a0€"} <= set(texts), texts
    assert charts.STATUS_COLORS["red"] in svg
    png = charts.to_png(charts.sparkline(ROWS, unit="EUR"), "en", width=200)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
