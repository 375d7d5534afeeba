"""The delivery channels of alerts and reviews: e-mail (SMTP), Slack, Microsoft Teams and a signed webhook.

`deliver` sends one rendered `Message` through one `Channel` and says what happened (sent, retry, failed); the
outbox decides when to try again. The formatting functions are pure, so tests and docs show exactly what is sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from kpilot.alerting.channels.delivery import Delivery, Settings, failed
from kpilot.alerting.channels.email import email_message
from kpilot.alerting.channels.http_post import host_of, post_json, url_problem
from kpilot.alerting.channels.slack import slack_payload
from kpilot.alerting.channels.smtp import send_email
from kpilot.alerting.channels.teams import teams_payload
from kpilot.alerting.channels.webhook import signature, verify_signature, webhook_body, webhook_headers
from kpilot.alerting.message import Message
from kpilot.model.channels import Channel


def _json(payload: object) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _unset(channel: Channel, what: str, env: str, consequence: str = "") -> Delivery:
    return failed(f"Channel '{channel.key}' reads {what} from {env}, which is not set where kpilot runs{consequence}.")


def _url(channel: Channel, settings: Settings) -> str | Delivery:
    if channel.url_env:
        url = settings.get(channel.url_env)
        if not url:
            return _unset(channel, "its webhook URL", channel.url_env)
        problem = url_problem(url)
        if problem is not None:
            return failed(f"Channel '{channel.key}' reads its webhook URL from {channel.url_env}, whose value "
                          f"{problem}.")
        return url
    if channel.url:
        return channel.url
    return failed(f"Channel '{channel.key}' has no webhook URL; set `url_env:` (or `url:`).")


def _post(channel: Channel, message: Message, settings: Settings, timeout: float) -> Delivery:
    url = _url(channel, settings)
    if isinstance(url, Delivery):
        return url
    if channel.type == "slack":
        body = _json(slack_payload(message))
        return post_json(url, body, "Slack", timeout=timeout)
    if channel.type == "teams":
        body = _json(teams_payload(message))
        return post_json(url, body, "Microsoft Teams", timeout=timeout)
    secret = None
    if channel.secret_env:
        secret = settings.get(channel.secret_env)
        if not secret:
            return _unset(channel, "its signing secret", channel.secret_env, "; kpilot does not send it unsigned")
    body = webhook_body(message)
    return post_json(url, body, f"the webhook at {host_of(url)}", timeout=timeout,
                     headers=webhook_headers(message, body, secret))


def deliver(channel: Channel, message: Message, environ: Mapping[str, str], *, timeout: float = 10.0,
            secrets: Mapping[str, str] | None = None) -> Delivery:
    """Send one message through one channel. Never raises for a network or server problem: returns the outcome.

    Settings (KPILOT_SMTP_*, the channel's url_env and secret_env) are read from `secrets` first, then `environ`.
    `timeout` bounds each network wait (connecting, each read), not the whole delivery.
    """
    settings = Settings(environ, secrets)
    if channel.type == "email":
        outcome = send_email(channel, message, settings, timeout=timeout)
    elif channel.type in ("slack", "teams", "webhook"):
        outcome = _post(channel, message, settings, timeout)
    else:
        outcome = failed(f"Channel '{channel.key}' has type {channel.type}, which kpilot cannot send to.")
    return settings.scrub(outcome)


__all__ = ["Delivery", "deliver", "email_message", "signature", "slack_payload", "teams_payload", "verify_signature",
           "webhook_body"]
