"""The weekly review laid out: a self-contained HTML page, a PDF (WeasyPrint, A4) and Markdown.

Every word comes from the `Review` (already in its language) or from the headings below, translated here; the charts
are the web page's Vega-Lite specs drawn on the server by vl-convert and embedded as data URIs, so the page needs
nothing beside itself (an e-mail client that shows no SVG gets PNG with `images="png"`). Markdown carries no charts.
"""

from __future__ import annotations

import base64
from enum import StrEnum
from functools import cache
from typing import Literal

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from kpilot.i18n import Translator, format_day, translator
from kpilot.report import charts
from kpilot.report.review import KpiLine, Review, colon

Images = Literal["svg", "png"]


class ReviewFormat(StrEnum):
    html = "html"
    pdf = "pdf"
    md = "md"


def headings(tr: Translator) -> dict[str, str]:
    """The words of the layout, shared by the three formats."""
    return {
        "review": tr("Weekly review"), "week": tr("Week"), "north_star": tr("North Star"), "board": tr("Board"),
        "changed": tr("What changed this week"), "misses": tr("Predicted misses"),
        "to_take": tr("Decisions to take"), "alerts": tr("Alerts this week"),
        "due": tr("Decisions due for review"), "effects": tr("Effect of past decisions"), "trends": tr("Trends"),
        "kpi": tr("KPI"), "period": tr("Period"), "value": tr("Value"), "target": tr("Target"),
        "verdict": tr("Verdict"), "change": tr("Change"), "projected": tr("Projected"),
        "chance": tr("Chance of target"), "cause": tr("Leading cause"), "action": tr("Action"), "owner": tr("Owner"),
        "condition": tr("Condition"), "evidence": tr("Evidence:"), "kind": tr("Kind"),
        "state": tr("State"), "opened": tr("Opened"), "review_on": tr("Review date"),
        "expected": tr("Expected effect"), "overdue": tr("overdue"), "nothing": tr("Nothing this week."),
        "in_progress": tr("period in progress, judged on its pace."), "decision": tr("Decision"),
    }


def _css_string(text: str) -> Markup:
    """Text as a quoted CSS string (the PDF's running footer): quotes, backslashes and '<' escaped the CSS way."""
    escaped = "".join(f"\\{ord(c):x} " if c in '"\\<\n' else c for c in text)
    return Markup(f'"{escaped}"')


@cache
def _environment() -> Environment:
    env = Environment(loader=PackageLoader("kpilot.report", "templates"), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["css_string"] = _css_string
    return env


def chart_images(review: Review, images: Images = "svg") -> dict[str, str]:
    """Each KPI's chart as a data URI (KPI key -> URI), drawn from its Vega-Lite spec."""
    out: dict[str, str] = {}
    for k in review.kpis:
        if k.chart is None:
            continue
        if images == "png":
            data = charts.to_png(k.chart, review.language, currency=review.currency, width=_width(k))
            out[k.key] = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        else:
            svg = charts.to_svg(k.chart, review.language, currency=review.currency, width=_width(k))
            out[k.key] = "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return out


def _width(k: KpiLine) -> int:
    width = (k.chart or {}).get("width")
    return width if isinstance(width, int) else 300


def to_html(review: Review, *, images: Images = "svg") -> str:
    """The review as one HTML page with its styles and charts inside (A4 when printed)."""
    tr = translator(review.language)
    return _environment().get_template("review.html").render(
        r=review, h=headings(tr), images=chart_images(review, images), colon=colon(tr),
        as_of=tr("board as of {date}").format(date=format_day(review.as_of, review.language)))


def to_pdf(review: Review) -> bytes:
    """The review as an A4 PDF (WeasyPrint, from the HTML page)."""
    import weasyprint

    return bytes(weasyprint.HTML(string=to_html(review)).write_pdf())


def _cell(text: str | None) -> str:
    return (text or "—").replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[str | None]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*out, ""]


def to_markdown(review: Review) -> str:
    """The review as Markdown (GitHub tables; no charts)."""
    tr = translator(review.language)
    h, c, lang = headings(tr), colon(tr), review.language
    out = [f"# {h['review']} — {review.title}", "", f"**{c(h['week'])}** {review.week}", ""]
    if review.vision:
        out += [f"_{review.vision}_", ""]
    if review.north_star:
        n = review.north_star
        out += [f"## {c(h['north_star'])} {n.name}", "",
                f"**{n.value}** ({h['target'].lower()} {n.target}, {n.period}{'*' if n.in_progress else ''}) — "
                f"**{n.verdict_label}**" + (f" ({n.why})" if n.why else ""), ""]
        facts = [f"{c(h['change'])} {n.change}" if n.change else "", f"{c(h['projected'])} {n.projected}"
                 if n.projected else "", f"{c(h['decision'])} {n.decision}" if n.decision else ""]
        if any(facts):
            out += [" · ".join(f for f in facts if f), ""]
    out += [f"## {h['board']}", ""]
    out += _table([h["kpi"], h["period"], h["value"], h["target"], h["verdict"], h["change"], h["projected"]],
                  [[k.name, k.period + ("*" if k.in_progress else ""), k.value, k.target,
                    f"**{k.verdict_label}**" + (f" ({k.why})" if k.why else ""), k.change, k.projected]
                   for k in review.kpis])
    if any(k.in_progress for k in review.kpis):
        out += [f"\\* {h['in_progress']}", ""]
    out += [f"## {h['changed']}", "", *[f"- {c}" for c in review.changes], ""]
    out += [f"## {h['misses']}", ""]
    out += [line for m in review.misses for line in (
        f"- **{m.kpi}** ({m.period}): {h['projected'].lower()} {m.projected}, {h['target'].lower()} {m.target}, "
        f"{h['chance'].lower()} {m.chance}.",
        f"  {c(h['cause'])} {m.cause}", *([f"  {c(h['action'])} {m.action}"] if m.action else []))]
    out += [h["nothing"] if not review.misses else "", ""]
    out += [f"## {h['to_take']}", ""]
    out += [line for d in review.to_take for line in (
        f"- **{d.kpi}** — {c(d.owner)} {d.action}", f"  {c(h['condition'])} {d.condition}",
        *([f"  {h['evidence']} {d.evidence}"] if d.evidence else []))]
    out += [h["nothing"] if not review.to_take else "", ""]
    out += [f"## {h['alerts']}", ""]
    out += (_table([h["kpi"], h["kind"], h["verdict"], h["state"], h["opened"]],
                   [[a.kpi + (f" — {a.text}" if a.text else ""), a.kind, a.severity_label, a.state, a.opened]
                    for a in review.alerts]) if review.alerts else [h["nothing"], ""])
    out += [f"## {h['due']}", ""]
    out += (_table([h["kpi"], h["action"], h["owner"], h["review_on"], h["expected"]],
                   [[d.kpi, d.action, d.owner, d.review_on + (f" ({h['overdue']})" if d.overdue else ""), d.expected]
                    for d in review.due]) if review.due else [h["nothing"], ""])
    out += [f"## {h['effects']}", ""]
    out += [line for e in review.effects for line in (
        f"- **{e.kpi}** — {c(e.owner)} {e.action} ({h['review_on'].lower()} {e.review_on})",
        *[f"  - {c(label)} {value}" for label, value in e.facts])]
    out += [h["nothing"] if not review.effects else "", ""]
    out += [f"_{n}_" for n in review.notes]
    out += ["", f"_{tr('board as of {date}').format(date=format_day(review.as_of, lang))}_", ""]
    text = "\n".join(out)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text


def render(review: Review, fmt: ReviewFormat | str) -> bytes:
    """The review in a format, as bytes (UTF-8 text for HTML and Markdown)."""
    fmt = ReviewFormat(fmt)
    if fmt is ReviewFormat.pdf:
        return to_pdf(review)
    if fmt is ReviewFormat.html:
        return to_html(review).encode("utf-8")
    return to_markdown(review).encode("utf-8")


__all__ = ["ReviewFormat", "chart_images", "headings", "render", "to_html", "to_markdown", "to_pdf"]
