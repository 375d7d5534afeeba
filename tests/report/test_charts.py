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
    assert spec["layer"][0]["encoding"]["y"]["axis"]["format"] == ".1%"  # as tiles write a share: 28.4%


def _axis_labels(svg: str) -> list[str]:
    """The y axis's tick labels of a rendered chart (right-aligned texts: the x axis's are centred)."""
    return re.findall(r'<text[^>]*text-anchor="end"[^>]*>([^<]*)</text>', svg)


def _rows(values: list[float]) -> list[dict[str, object]]:
    return [{"period": f"2026-{m:02d}-01", "label": f"2026-{m:02d}", "value": v, "target": None, "status": "none",
             "complete": True} for m, v in enumerate(values, start=1)]


def test_axis_labels_follow_the_one_number_rule() -> None:
    """The y axis (a Vega expression) writes each tick as the tiles write a value (Python): in full below a
    million, short from a million on, counts as whole numbers, in the language's conventions."""
    from kpilot.i18n import format_value

    cases = [("EUR", "fr", [210_000.0, 480_000.0, 930_000.0]), ("EUR", "en", [210_000.0, 480_000.0, 930_000.0]),
             ("EUR", "fr", [1_100_000.0, 2_600_000.0, 4_400_000.0]), ("USD", "en", [1_100_000.0, 4_400_000.0]),
             ("count", "en", [0.0, 1.0, 3.0]), (None, "fr", [1.5, 2.25, 2.75]),
             ("percent", "fr", [0.012, 0.018, 0.025])]
    for unit, lang, values in cases:
        spec = charts.history(_rows(values), unit=unit, labels={}, lang=lang, currency=unit if unit == "USD" else "EUR")
        labels = _axis_labels(charts.to_svg(spec, lang, currency=unit if unit == "USD" else "EUR"))
        assert len(labels) >= 2, (unit, lang, labels)
        for text in labels:
            tick = _parse_tick(text, lang)
            assert text == format_value(tick, unit, lang, currency=unit if unit == "USD" else "EUR"), (unit, lang, labels)
        if unit == "count":
            assert all(float(t).is_integer() for t in labels), labels  # no tick at half a lead


def _parse_tick(text: str, lang: str) -> float:
    """A tick label read back as a number (independently of the formatting code)."""
    t = text.replace("\u202f", "").replace("\u00a0", "").replace("€", "").replace("$", "")
    scale = 1.0
    if t.endswith("%"):
        t, scale = t[:-1], 0.01
    if t.endswith("M"):
        t, scale = t[:-1], 1e6
    t = t.replace(",", ".") if lang == "fr" else t.replace(",", "")
    return float(t) * scale


def test_tooltips_say_values_as_the_tiles_do() -> None:
    from kpilot.i18n import format_value

    rows = _rows([1_234_567.0, 987_654.0])
    spec = charts.history(rows, unit="EUR", labels={}, lang="fr")
    data = spec["data"]["values"]
    assert [r["value_text"] for r in data] == [format_value(1_234_567.0, "EUR", "fr"), format_value(987_654.0, "EUR", "fr")]
    tooltips = [t for layer in spec["layer"] for t in layer.get("encoding", {}).get("tooltip", [])]
    assert tooltips and all(t["field"] != "value" for t in tooltips)  # the text, never d3's own format of the number


def test_history_gives_each_status_a_shape_targets_as_steps_and_notes_to_hover() -> None:
    labels = {"green": "Dans la cible", "red": "Hors cible", "amber": "À risque", "none": "Sans objectif"}
    rows = [*ROWS[:3], {**ROWS[3], "status": "amber"}]
    notes = [{"period": "2026-02-01", "label": "2026-02", "text": "Campagne LinkedIn arrêtée"}]
    spec = charts.history(rows, unit="EUR", labels=labels, lang="fr", annotations=notes)
    done = spec["layer"][2]
    shape = done["encoding"]["shape"]
    assert dict(zip(shape["scale"]["domain"], shape["scale"]["range"], strict=True)) == {
        "Hors cible": "diamond", "À risque": "triangle-up"}
    assert shape["field"] == done["encoding"]["color"]["field"]  # one legend: colour and shape together
    assert spec["layer"][0]["mark"]["interpolate"] == "step-after"  # a target holds from its period's start
    svg = charts.to_svg(spec, "fr")
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert "Campagne LinkedIn arrêtée" not in texts  # in a tooltip, not printed over the chart
    marks = [layer for layer in spec["layer"] if layer.get("data", {}).get("values") == notes]
    assert any(m["mark"]["type"] == "point" and m["encoding"]["tooltip"] for m in marks)  # a marker to hover


def test_the_time_axis_says_the_year() -> None:
    spec = charts.history(ROWS, unit="EUR", labels={}, lang="en")
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", charts.to_svg(spec, "en"))
    assert any("2026" in t for t in texts), texts
    weekly = [{"period": f"2026-{(9 + (d // 30)):02d}-{(d % 30) + 1:02d}", "value": 5.0, "target": None,
               "status": "none", "complete": True} for d in range(0, 91, 7)]
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", charts.to_svg(charts.history(weekly, unit=None, labels={},
                                                                               lang="fr"), "fr"))
    assert any("2026" in t for t in texts), texts


def test_server_rendering_uses_the_same_spec_and_locale() -> None:
    spec = charts.history(ROWS, unit="EUR", labels={"red": "rouge", "green": "vert"}, lang="fr")
    svg = charts.to_svg(spec, "fr")
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert {"rouge", "vert", "160\u00a0€"} <= set(texts), texts
    assert any("juil." in t for t in texts), texts
    assert charts.STATUS_COLORS["red"] in svg
    png = charts.to_png(charts.sparkline(ROWS, unit="EUR"), "en", width=200)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
