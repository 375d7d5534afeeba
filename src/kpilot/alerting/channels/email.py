"""A message as an e-mail: a plain-text part readable on its own, and an HTML alternative with inline CSS only (mail
clients drop style sheets), the verdict as a coloured badge with a symbol, the facts as a table, the chart inline
(multipart/related, referenced by cid:) and a link button; the review's PDF attached when there is one.

The Message-ID is derived from the delivery id, so a retry is recognisable as the same message.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate

from kpilot.alerting.channels.delivery import delivery_token, link_label, safe_link, style
from kpilot.alerting.message import Message

FONT = "-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif"
INK = "#1a202c"
SUBTLE = "#4a5568"
LINE = "#e2e8f0"
BUTTON = "#2b6cb0"


def message_id(delivery_id: str) -> str:
    return f"<{delivery_token(delivery_id)}@kpilot>"


def chart_cid(delivery_id: str) -> str:
    """The Content-ID of the chart (without angle brackets); the HTML shows it as `cid:<this>`."""
    return f"chart.{delivery_token(delivery_id)}@kpilot"


def _one_line(text: str) -> str:
    # A header value may not hold a line break (it would start a new header).
    return " ".join(text.split())


def email_text(message: Message) -> str:
    """The plain-text part: the headline, the lines, the facts as "label: value", the items, the link."""
    verdict = style(message.verdict)
    blocks = [f"{verdict.symbol} {message.headline}" if message.verdict else message.headline]
    if message.lines:
        blocks.append("\n".join(message.lines))
    if message.facts:
        blocks.append("\n".join(f"{f.label}: {f.value}" for f in message.facts))
    for item in message.items:
        symbol = f"{style(item.verdict).symbol} " if item.verdict else ""
        entry = f"- {symbol}{item.title}" + (f": {item.text}" if item.text else "")
        link = safe_link(item.link)
        blocks.append(entry + (f"\n  {link}" if link else ""))
    if message.chart_alt:
        blocks.append(message.chart_alt)
    link = safe_link(message.link)
    if link:
        blocks.append(f"{link_label(message.link_text)}: {link}")
    blocks.append(f"-- \nkpilot · {message.workspace}")
    return "\n\n".join(blocks) + "\n"


def _facts_html(message: Message) -> str:
    e = html.escape
    rows = "".join(
        f'<tr><td style="padding:6px 12px 6px 0;color:{SUBTLE};border-bottom:1px solid {LINE};vertical-align:top;">'
        f'{e(f.label)}</td><td style="padding:6px 0;font-weight:600;border-bottom:1px solid {LINE};'
        f'vertical-align:top;">{e(f.value)}</td></tr>' for f in message.facts)
    return (f'<table role="presentation" cellpadding="0" cellspacing="0" style="border-collapse:collapse;width:100%;'
            f'font-size:14px;">{rows}</table>')


def _items_html(message: Message) -> str:
    e = html.escape
    entries = []
    for item in message.items:
        link = safe_link(item.link)
        title = (f'<a href="{e(link)}" style="color:{BUTTON};">{e(item.title)}</a>' if link else e(item.title))
        badge = ""
        if item.verdict:
            s = style(item.verdict)
            badge = (f'<span style="display:inline-block;min-width:18px;text-align:center;background:{s.colour};'
                     f'color:{s.ink};border-radius:9px;font-size:12px;font-weight:700;margin-right:6px;">'
                     f'{e(s.symbol)}</span>')
        text = f'<br><span style="color:{SUBTLE};">{e(item.text)}</span>' if item.text else ""
        entries.append(f'<li style="margin:0 0 10px;">{badge}<strong>{title}</strong>{text}</li>')
    return f'<ul style="list-style:none;padding:0;margin:0;">{"".join(entries)}</ul>'


def email_html(message: Message) -> str:
    """The HTML part: inline CSS only, every text escaped."""
    e = html.escape
    verdict = style(message.verdict)
    rows = [
        f'<div style="display:inline-block;background:{verdict.colour};color:{verdict.ink};border-radius:4px;'
        f'padding:6px 12px;font-weight:600;font-size:16px;"><span aria-hidden="true">{e(verdict.symbol)}</span> '
        f'{e(message.headline)}</div>']
    if message.lines:
        rows.append("".join(f'<p style="margin:0 0 8px;">{e(line)}</p>' for line in message.lines))
    if message.facts:
        rows.append(_facts_html(message))
    if message.items:
        rows.append(_items_html(message))
    if message.chart_png:
        alt = message.chart_alt or message.headline
        rows.append(f'<img src="cid:{e(chart_cid(message.delivery_id))}" alt="{e(alt)}" width="552" '
                    f'style="display:block;width:100%;max-width:552px;height:auto;border:0;">')
    elif message.chart_alt:
        rows.append(f'<p style="margin:0;color:{SUBTLE};font-style:italic;">{e(message.chart_alt)}</p>')
    link = safe_link(message.link)
    if link:
        rows.append(f'<a href="{e(link)}" style="display:inline-block;background:{BUTTON};color:#ffffff;'
                    f'text-decoration:none;border-radius:4px;padding:10px 18px;font-weight:600;">'
                    f'{e(link_label(message.link_text))}</a>')
    cells = "".join(f'<tr><td style="padding:12px 24px;">{row}</td></tr>' for row in rows)
    footer = (f'<tr><td style="padding:12px 24px 20px;font-size:12px;color:{SUBTLE};border-top:1px solid {LINE};">'
              f'kpilot · {e(message.workspace)}</td></tr>')
    return (
        f'<!DOCTYPE html>\n<html lang="{e(message.language)}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{e(message.subject)}</title>'
        f'</head><body style="margin:0;padding:0;background:#f4f5f7;">'
        f'<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f4f5f7;">'
        f'<tr><td align="center" style="padding:24px 12px;">'
        f'<table role="presentation" width="600" cellpadding="0" cellspacing="0" style="width:100%;max-width:600px;'
        f'background:#ffffff;border:1px solid {LINE};border-radius:6px;font-family:{FONT};color:{INK};'
        f'font-size:15px;line-height:1.5;text-align:left;">{cells}{footer}</table>'
        f'</td></tr></table></body></html>\n'
    )


def email_message(message: Message, sender: str, to: Sequence[str]) -> EmailMessage:
    """The e-mail for `to`: plain text and HTML alternatives, the chart inline, the PDF attached when present."""
    mail = EmailMessage()
    mail["Subject"] = _one_line(message.subject)
    mail["From"] = sender
    mail["To"] = ", ".join(to)
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = message_id(message.delivery_id)
    mail["X-Kpilot-Delivery"] = delivery_token(message.delivery_id)
    mail["Content-Language"] = message.language
    # An automatic message (RFC 3834): out-of-office replies and Exchange's auto-answers stay quiet.
    mail["Auto-Submitted"] = "auto-generated"
    mail["X-Auto-Response-Suppress"] = "All"
    mail.set_content(email_text(message))
    mail.add_alternative(email_html(message), subtype="html")
    if message.chart_png:
        html_part = mail.get_body(preferencelist=("html",))
        assert html_part is not None  # added just above
        html_part.add_related(message.chart_png, maintype="image", subtype="png",
                              cid=f"<{chart_cid(message.delivery_id)}>", disposition="inline",
                              filename="chart.png")
    if message.attachment:
        mail.add_attachment(message.attachment, maintype="application", subtype="pdf",
                            filename=message.attachment_name or "kpilot.pdf")
    return mail


__all__ = ["chart_cid", "email_html", "email_message", "email_text", "message_id"]
