"""The delivery channels against real local receivers: an aiosmtpd SMTP server and HTTP servers standing in for
Slack, Microsoft Teams Workflows and a webhook receiver. The payloads are checked against the formats each service
documents, the webhook's signature is recomputed independently, and every outcome is checked for secrets."""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from dataclasses import replace
from email.message import EmailMessage

import pytest

from kpilot.alerting.channels import (
    Delivery,
    deliver,
    email_message,
    slack_payload,
    teams_payload,
    verify_signature,
    webhook_body,
)
from kpilot.alerting.message import Fact, Item, Message
from kpilot.model.channels import Channel
from tests.alerting.receivers import HttpReceiver, SmtpReceiver, free_port, png

SLACK_SECRET = "T0001/B0002/s3cr3tSlackToken"
TEAMS_SECRET = "sig=s3cr3tTeamsSig"
HMAC_SECRET = "whsec-s3cr3t-signing-key"
PASSWORD = "p4ss-w0rd-s3cr3t"
SECRETS = (SLACK_SECRET, "s3cr3tSlackToken", TEAMS_SECRET, "s3cr3tTeamsSig", HMAC_SECRET, PASSWORD)
TIMEOUT = 0.5


def no_secret(delivery: Delivery) -> Delivery:
    for secret in SECRETS:
        assert secret not in delivery.detail, delivery.detail
    return delivery


def slack_channel() -> Channel:
    return Channel(key="direction", type="slack", url_env="SLACK_URL")


def teams_channel() -> Channel:
    return Channel(key="sales", type="teams", url_env="TEAMS_URL")


def hook_channel(secret: bool = True) -> Channel:
    return Channel(key="erp", type="webhook", url_env="HOOK_URL", secret_env="HOOK_SECRET" if secret else None)


def env(slack: HttpReceiver | None = None, teams: HttpReceiver | None = None, hook: HttpReceiver | None = None,
        port: int | None = None) -> dict[str, str]:
    base = f"http://127.0.0.1:{port}" if port else None
    return {
        "SLACK_URL": (slack.url() if slack else f"{base}/")[:-1] + f"/services/{SLACK_SECRET}",
        "TEAMS_URL": (teams.url() if teams else f"{base}/")[:-1] + f"/workflows/1/invoke?api-version=1&{TEAMS_SECRET}",
        "HOOK_URL": (hook.url() if hook else f"{base}/")[:-1] + "/kpilot",
        "HOOK_SECRET": HMAC_SECRET,
    }


def env_for(kind: str, receiver: HttpReceiver) -> dict[str, str]:
    receivers = {kind: receiver}
    return env(slack=receivers.get("slack"), teams=receivers.get("teams"), hook=receivers.get("hook"))


def send(channel: Channel, message: Message, environ: dict[str, str],
         secrets: dict[str, str] | None = None) -> Delivery:
    return no_secret(deliver(channel, message, environ, timeout=TIMEOUT, secrets=secrets))


# --- Slack: Block Kit within Slack's limits ---------------------------------------------------------------------

def test_slack_payload_follows_block_kit(message: Message) -> None:
    payload = slack_payload(message)
    assert payload["text"] == "[kpilot] Chiffre d'affaires : en retard"
    types = [b["type"] for b in payload["blocks"]]
    assert types == ["header", "section", "section", "section", "context", "actions"]
    header = payload["blocks"][0]
    assert header["text"] == {"type": "plain_text", "text": "⛔ Chiffre d'affaires en retard : 82 k€ sur 100 k€",
                              "emoji": True}
    lines = payload["blocks"][1]["text"]
    assert lines == {"type": "mrkdwn", "text": "La prévision de fin de mois est de 88 k€ &lt; objectif.\n"
                                               "Cause principale : leads qualifiés en baisse."}
    assert payload["blocks"][2]["fields"] == [{"type": "mrkdwn", "text": "*Valeur*\n82 k€"},
                                              {"type": "mrkdwn", "text": "*Objectif*\n100 k€"},
                                              {"type": "mrkdwn", "text": "*Responsable*\nÉlodie"}]
    assert payload["blocks"][3]["text"]["text"] == ("⚠️ *<https://kpilot.example.com/m/leads|Leads qualifiés>*\n"
                                                    "−18 % sur 4 semaines")
    assert payload["blocks"][4]["elements"] == [
        {"type": "mrkdwn", "text": "📈 Courbe du chiffre d'affaires : 82 k€, sous l'objectif"},
        {"type": "mrkdwn", "text": "kpilot · Acmé &amp; Cie"}]
    assert payload["blocks"][5]["elements"] == [{
        "type": "button", "action_id": "kpilot-open", "url": "https://kpilot.example.com/m/revenue", "style": "primary",
        "text": {"type": "plain_text", "text": "Ouvrir dans kpilot", "emoji": True}}]
    assert "image" not in json.dumps(payload)  # an incoming webhook cannot upload the PNG


def test_slack_payload_keeps_within_limits(message: Message) -> None:
    big = replace(message, headline="H" * 400, lines=(*("l" * 1000 + str(i) for i in range(7)), "<" * 4000),
                  facts=tuple(Fact(f"label {i}", "v" * 2500) for i in range(13)),
                  items=tuple(Item(f"KPI {i}", "texte " * 600) for i in range(60)), link_text="B" * 100)
    blocks = slack_payload(big)["blocks"]
    assert len(blocks) == 50
    assert len(blocks[0]["text"]["text"]) == 150
    sections = [b for b in blocks if b["type"] == "section"]
    assert max(len(b["text"]["text"]) for b in sections if "text" in b) == 3000
    fields = [b["fields"] for b in sections if "fields" in b]
    assert [len(f) for f in fields] == [10, 3]
    assert max(len(f["text"]) for group in fields for f in group) == 2000
    escaped = next(b["text"]["text"] for b in sections if "text" in b and b["text"]["text"].startswith("&lt;"))
    assert re.search(r"&[a-z]*…$", escaped) is None  # never an entity cut in half
    assert blocks[-3]["text"]["text"].startswith("… (+")  # the entries left out are counted
    assert len(blocks[-1]["elements"][0]["text"]["text"]) == 75


# --- Teams: an Adaptive Card in the envelope Workflows expects ---------------------------------------------------

def test_teams_payload_is_an_adaptive_card(message: Message, chart: bytes) -> None:
    payload = teams_payload(message)
    assert payload["type"] == "message"
    [attachment] = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["contentUrl"] is None
    card = attachment["content"]
    assert (card["$schema"], card["type"], card["version"]) == (
        "http://adaptivecards.io/schemas/adaptive-card.json", "AdaptiveCard", "1.4")
    assert card["body"][0] == {"type": "TextBlock", "text": "⛔ Chiffre d'affaires en retard : 82 k€ sur 100 k€",
                               "wrap": True, "size": "Large", "weight": "Bolder", "color": "Attention"}
    [facts] = [b for b in card["body"] if b["type"] == "FactSet"]
    assert facts["facts"] == [{"title": "Valeur", "value": "82 k€"}, {"title": "Objectif", "value": "100 k€"},
                              {"title": "Responsable", "value": "Élodie"}]
    [image] = [b for b in card["body"] if b["type"] == "Image"]
    assert image["url"].startswith("data:image/png;base64,")
    assert base64.b64decode(image["url"].split(",", 1)[1]) == chart
    assert image["altText"] == "Courbe du chiffre d'affaires : 82 k€, sous l'objectif"
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Ouvrir dans kpilot",
                                "url": "https://kpilot.example.com/m/revenue"}]


def test_teams_payload_drops_a_chart_too_large_for_teams(message: Message) -> None:
    payload = teams_payload(replace(message, chart_png=png(120, 120, noise=True)))
    body = payload["attachments"][0]["content"]["body"]
    assert [b for b in body if b["type"] == "Image"] == []
    assert {"type": "TextBlock", "text": message.chart_alt, "wrap": True, "isSubtle": True} in body
    assert len(json.dumps(payload, ensure_ascii=False).encode()) <= 27_000


# --- Webhook: compact sorted JSON, signed -----------------------------------------------------------------------

def test_webhook_body_is_compact_sorted_json_without_images(message: Message) -> None:
    body = webhook_body(message)
    parsed = json.loads(body)
    assert list(parsed) == sorted(["delivery_id", "kind", "workspace", "metric", "verdict", "subject", "headline",
                                   "lines", "facts", "items", "link", "data"])
    assert body == json.dumps(parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert parsed["facts"][2] == {"label": "Responsable", "value": "Élodie"}
    assert parsed["items"] == [{"title": "Leads qualifiés", "text": "−18 % sur 4 semaines", "verdict": "at_risk",
                                "link": "https://kpilot.example.com/m/leads"}]
    assert parsed["data"] == {"value": 82000, "target": 100000}
    assert webhook_body(message) == body


def test_verify_signature(message: Message) -> None:
    body = webhook_body(message)
    good = "sha256=" + hmac.new(HMAC_SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert verify_signature(body, good, HMAC_SECRET) is True
    assert verify_signature(body + b" ", good, HMAC_SECRET) is False
    assert verify_signature(body, good, "another secret") is False
    assert verify_signature(body, good.removeprefix("sha256="), HMAC_SECRET) is False
    assert verify_signature(body, "sha256=é", HMAC_SECRET) is False


# --- Deliveries over HTTP ---------------------------------------------------------------------------------------

def test_slack_delivery_posts_the_payload(slack: HttpReceiver, message: Message) -> None:
    outcome = send(slack_channel(), message, env(slack=slack))
    assert outcome == Delivery("sent", "Slack accepted the message (HTTP 200).")
    [request] = slack.requests
    assert request.path == f"/services/{SLACK_SECRET}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == "kpilot"
    assert json.loads(request.body) == slack_payload(message)


def test_teams_delivery_posts_the_card(teams: HttpReceiver, message: Message) -> None:
    outcome = send(teams_channel(), message, env(teams=teams))
    assert outcome == Delivery("sent", "Microsoft Teams accepted the message (HTTP 202).")
    [request] = teams.requests
    assert json.loads(request.body) == teams_payload(message)


def test_webhook_delivery_is_signed_and_keeps_its_id(hook: HttpReceiver, message: Message) -> None:
    environ = env(hook=hook)
    assert send(hook_channel(), message, environ).outcome == "sent"
    assert send(hook_channel(), message, environ).outcome == "sent"
    first, second = hook.requests
    assert first.body == second.body == webhook_body(message)
    expected = hmac.new(HMAC_SECRET.encode(), first.body, hashlib.sha256).hexdigest()
    assert first.headers["X-Kpilot-Signature"] == f"sha256={expected}"
    assert first.headers["X-Kpilot-Delivery"] == second.headers["X-Kpilot-Delivery"] == message.delivery_id
    assert first.headers["Content-Type"] == "application/json"


def test_webhook_without_secret_is_not_signed(hook: HttpReceiver, message: Message) -> None:
    assert send(hook_channel(secret=False), message, env(hook=hook)).outcome == "sent"
    assert "X-Kpilot-Signature" not in hook.requests[0].headers


CHANNELS = [("slack", slack_channel, "Slack"), ("teams", teams_channel, "Microsoft Teams"),
            ("hook", hook_channel, "The webhook at 127.0.0.1")]


@pytest.mark.parametrize(("kind", "make", "who"), CHANNELS, ids=[c[0] for c in CHANNELS])
def test_http_answers_map_to_outcomes(kind: str, make: Callable[[], Channel], who: str, message: Message) -> None:
    channel = make()
    with HttpReceiver() as receiver:
        environ = env_for(kind, receiver)
        receiver.respond(400, b"invalid_payload")
        refused = send(channel, message, environ)
        assert refused.outcome == "failed"
        assert refused.detail.startswith(f"{who}")
        assert "HTTP 400 (invalid_payload)" in refused.detail
        receiver.respond(404, b"<html>not here</html>")
        assert "<html>" not in send(channel, message, environ).detail  # only short error codes are quoted
        receiver.respond(500)
        assert send(channel, message, environ) == Delivery("retry", f"{who}{_port(receiver, kind)} answered HTTP 500, "
                                                                    "a temporary refusal.")
        receiver.respond(429, headers={"Retry-After": "7"})
        limited = send(channel, message, environ)
        assert (limited.outcome, limited.retry_after) == ("retry", 7.0)
        receiver.respond(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})  # a date in the past
        assert send(channel, message, environ).retry_after == 0.0
        receiver.respond(408)
        assert send(channel, message, environ).outcome == "retry"
        receiver.respond(302, headers={"Location": receiver.url("/elsewhere")})
        moved = send(channel, message, environ)
        assert moved.outcome == "failed"
        assert "redirect" in moved.detail
        assert [r.path for r in receiver.requests].count("/elsewhere") == 0  # not followed
        receiver.respond(200, hang=3)
        assert send(channel, message, environ) == Delivery("retry", f"{who}{_port(receiver, kind)} did not answer "
                                                                    f"within {TIMEOUT:g} seconds.")


def _port(receiver: HttpReceiver, kind: str) -> str:
    return f":{receiver.server.server_address[1]}" if kind == "hook" else ""


@pytest.mark.parametrize(("kind", "make", "who"), CHANNELS, ids=[c[0] for c in CHANNELS])
def test_connection_refused_is_retried(kind: str, make: Callable[[], Channel], who: str, message: Message) -> None:
    port = free_port()  # nothing listens there
    outcome = send(make(), message, env(port=port))
    assert outcome == Delivery("retry", f"kpilot could not connect to 127.0.0.1:{port}: connection refused.")


def test_missing_or_bad_settings_fail_without_quoting_them(hook: HttpReceiver, message: Message) -> None:
    assert send(slack_channel(), message, {}) == Delivery(
        "failed", "Channel 'direction' reads its webhook URL from SLACK_URL, which is not set where kpilot runs.")
    environ = env(hook=hook)
    del environ["HOOK_SECRET"]
    unsigned = send(hook_channel(), message, environ)
    assert unsigned.outcome == "failed"
    assert "HOOK_SECRET" in unsigned.detail
    assert hook.requests == []  # never sent unsigned
    bad = send(slack_channel(), message, {"SLACK_URL": f"file:///etc/{SLACK_SECRET}"})
    assert bad == Delivery("failed", "Channel 'direction' reads its webhook URL from SLACK_URL, whose value is not "
                                     "an http(s) URL.")


def test_secrets_are_read_before_the_environment(slack: HttpReceiver, message: Message) -> None:
    environ = {"SLACK_URL": "http://127.0.0.1:1/wrong"}
    secrets = {"SLACK_URL": env(slack=slack)["SLACK_URL"]}
    assert send(slack_channel(), message, environ, secrets=secrets).outcome == "sent"
    assert len(slack.requests) == 1


# --- E-mail through a real SMTP server --------------------------------------------------------------------------

def mail_channel() -> Channel:
    return Channel(key="board", type="email", to=["direction@example.com", "ventes@example.com"])


def parse(raw: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_email_is_sent_once_to_every_address(smtp: SmtpReceiver, message: Message, chart: bytes) -> None:
    review = replace(message, attachment=b"%PDF-1.4 revue", attachment_name="revue.pdf")
    outcome = send(mail_channel(), review, {"KPILOT_SMTP_URL": smtp.url()})
    assert outcome == Delivery("sent", f"The SMTP server 127.0.0.1:{smtp.port} accepted the e-mail for 2 addresses.")
    [envelope] = smtp.envelopes
    assert envelope.mail_from == "kpilot@127.0.0.1"
    assert envelope.rcpt_tos == ["direction@example.com", "ventes@example.com"]
    mail = parse(envelope.content)
    assert mail["Subject"] == "[kpilot] Chiffre d'affaires : en retard"
    assert mail["To"] == "direction@example.com, ventes@example.com"
    assert mail["Message-ID"] == f"<{message.delivery_id}@kpilot>"
    assert mail["X-Kpilot-Delivery"] == message.delivery_id
    text = mail.get_body(preferencelist=("plain",))
    html = mail.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    plain = text.get_content()
    assert "La prévision de fin de mois est de 88 k€ < objectif." in plain
    assert "Responsable: Élodie" in plain
    assert "Ouvrir dans kpilot: https://kpilot.example.com/m/revenue" in plain
    markup = html.get_content()
    assert '<html lang="fr">' in markup
    assert "88 k€ &lt; objectif." in markup
    assert "Acmé &amp; Cie" in markup
    [cid] = re.findall(r'src="cid:([^"]+)"', markup)
    [image] = [p for p in mail.walk() if p.get_content_type() == "image/png"]
    assert image["Content-ID"] == f"<{cid}>"
    assert image.get_content() == chart
    assert [p.get_content_type() for p in mail.walk()][:5] == [
        "multipart/mixed", "multipart/alternative", "text/plain", "multipart/related", "text/html"]
    [pdf] = list(mail.iter_attachments())
    assert (pdf.get_filename(), pdf.get_content()) == ("revue.pdf", b"%PDF-1.4 revue")


def test_email_html_badge_says_the_verdict(message: Message) -> None:
    mail = email_message(message, "kpilot@example.com", ["a@example.com"])
    html = mail.get_body(preferencelist=("html",))
    assert html is not None
    markup = html.get_content()
    badge = re.search(r'<div style="[^"]*background:(#[0-9a-f]{6})[^"]*">(.*?)</div>', markup)
    assert badge is not None
    assert badge.group(1) == "#c53030"
    assert badge.group(2) == '<span aria-hidden="true">✗</span> Chiffre d&#x27;affaires en retard : 82 k€ sur 100 k€'
    assert '<a href="https://kpilot.example.com/m/revenue"' in markup
    assert "<link" not in markup and "<style" not in markup  # inline CSS only


@pytest.mark.parametrize(("reply", "outcome"), [("451 4.3.0 Try again later", "retry"),
                                                ("550 5.7.1 Message rejected", "failed")])
def test_smtp_refusals(reply: str, outcome: str, message: Message) -> None:
    with SmtpReceiver(reply=reply) as server:
        result = send(mail_channel(), message, {"KPILOT_SMTP_URL": server.url()})
    assert result.outcome == outcome
    assert reply.split()[0] in result.detail


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # plain text on 127.0.0.1 only
def test_smtp_password_comes_from_the_secret_store(message: Message) -> None:
    with SmtpReceiver(auth=("kpilot", PASSWORD)) as server:
        environ = {"KPILOT_SMTP_URL": server.url("kpilot"), "KPILOT_SMTP_FROM": "Pilotage <pilotage@acme.example>",
                   "KPILOT_SMTP_PASSWORD": "stale password"}
        assert send(mail_channel(), message, environ, secrets={"KPILOT_SMTP_PASSWORD": PASSWORD}).outcome == "sent"
        wrong = send(mail_channel(), message, {**environ, "KPILOT_SMTP_PASSWORD": PASSWORD + "x"})
        missing = send(mail_channel(), message, {"KPILOT_SMTP_URL": server.url("kpilot")})
    assert server.logins == [("kpilot", True), ("kpilot", False), ("kpilot", False)]  # smtplib tries PLAIN, LOGIN
    assert [e.mail_from for e in server.envelopes] == ["pilotage@acme.example"]
    assert parse(server.envelopes[0].content)["From"] == "Pilotage <pilotage@acme.example>"
    assert wrong.outcome == "failed"
    assert "refused the user name or password (535" in wrong.detail
    assert PASSWORD + "x" not in wrong.detail
    assert missing == Delivery("failed", "KPILOT_SMTP_URL names the user kpilot, and KPILOT_SMTP_PASSWORD is not set "
                                         "where kpilot runs.")


def test_smtp_settings_and_connection(smtp: SmtpReceiver, message: Message) -> None:
    assert send(mail_channel(), message, {}) == Delivery(
        "failed", "E-mail is sent through an SMTP server, and KPILOT_SMTP_URL is not set where kpilot runs; set it "
                  "to smtp://user@mail.example.com:587.")
    assert send(mail_channel(), message, {"KPILOT_SMTP_URL": "http://mail.example.com"}).outcome == "failed"
    port = free_port()  # nothing listens there
    assert send(mail_channel(), message, {"KPILOT_SMTP_URL": f"smtp://127.0.0.1:{port}"}) == Delivery(
        "retry", f"kpilot could not connect to the SMTP server 127.0.0.1:{port}: connection refused.")
    tls = send(mail_channel(), message, {"KPILOT_SMTP_URL": f"smtps://127.0.0.1:{smtp.port}"})  # a plain server
    assert tls.outcome == "failed"
    assert tls.detail.startswith(f"The TLS handshake with the SMTP server 127.0.0.1:{smtp.port} failed")
    sender = send(mail_channel(), message, {"KPILOT_SMTP_URL": smtp.url(), "KPILOT_SMTP_FROM": "kpilot\nBcc: x@y.z"})
    assert sender.outcome == "failed"
    assert sender.detail.startswith("KPILOT_SMTP_FROM is not an e-mail address")
    required = send(mail_channel(), message, {"KPILOT_SMTP_URL": smtp.url(query="starttls=required")})
    assert required == Delivery("failed", f"The SMTP server 127.0.0.1:{smtp.port} does not offer STARTTLS, which "
                                          "KPILOT_SMTP_URL requires (starttls=required).")
    assert smtp.envelopes == []


def test_smtp_refused_addresses(message: Message) -> None:
    with SmtpReceiver(refuse={"ventes@example.com": "550 5.1.1 No such user"}) as server:
        partly = send(mail_channel(), message, {"KPILOT_SMTP_URL": server.url()})
    assert partly == Delivery("sent", f"The SMTP server 127.0.0.1:{server.port} accepted the e-mail for 1 of 2 "
                                      "addresses and refused ventes@example.com (550).")
    assert [e.rcpt_tos for e in server.envelopes] == [["direction@example.com"]]
    busy = "450 4.2.1 Mailbox busy"
    with SmtpReceiver(refuse={"direction@example.com": busy, "ventes@example.com": busy}) as server:
        later = send(mail_channel(), message, {"KPILOT_SMTP_URL": server.url()})
    assert later == Delivery("retry", f"The SMTP server 127.0.0.1:{server.port} refused every address: "
                                      "direction@example.com (450), ventes@example.com (450), a temporary refusal.")
