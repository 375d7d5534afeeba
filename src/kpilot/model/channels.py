"""Where alerts and the weekly review go: channels (e-mail, Slack, Microsoft Teams, a signed webhook), the alert
settings, and the review's schedule.

Secrets never go in kpilot.yaml: a Slack or Teams webhook URL is named by `url_env` (an environment variable), a
webhook's signing secret by `secret_env`, the SMTP server by `KPILOT_SMTP_URL`.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kpilot.model.errors import msg
from kpilot.model.schedule import parse_cron

ENV_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
CHANNEL_KEY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*$"
# An address as people write it: something@domain.tld, no spaces, no display name.
EMAIL = re.compile(r"^[^@\s<>(),;:\"\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
CHANNEL_TYPES = ("email", "slack", "teams", "webhook")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def is_email(text: str) -> bool:
    return bool(EMAIL.match(text))


def check_http_url(url: str) -> str:
    """`url` when it is an absolute http(s) URL, else a ValueError saying how to write one."""
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(msg("'{url}' is not an http(s) URL. Fix: write the whole address, e.g. "
                             "https://hooks.example.com/kpilot", url=url))
    return url


class Channel(_Spec):
    """A place alerts are delivered to."""

    key: str = Field(pattern=CHANNEL_KEY_PATTERN)
    type: Literal["email", "slack", "teams", "webhook"]
    to: list[str] = Field(default=[], description="e-mail: the addresses that receive the messages")
    url: str | None = Field(default=None, description="webhook: the address the JSON is posted to (no secret in it)")
    url_env: str | None = Field(default=None, pattern=ENV_PATTERN,
                                description="environment variable holding the webhook URL (Slack, Teams: the URL "
                                            "is a secret)")
    secret_env: str | None = Field(default=None, pattern=ENV_PATTERN,
                                   description="webhook: environment variable holding the HMAC-SHA256 signing secret")

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if not is_email(address):
                raise ValueError(msg("'{address}' is not an e-mail address. Fix: write it as name@example.com",
                                     address=address))
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value)

    @model_validator(mode="after")
    def _shape(self) -> Channel:
        if self.type == "email":
            if not self.to:
                raise ValueError(msg("an e-mail channel needs `to:`, the addresses it writes to, e.g. "
                                     "`to: [direction@example.com]`"))
            if self.url or self.url_env or self.secret_env:
                raise ValueError(msg("url, url_env and secret_env are for slack, teams and webhook channels; an "
                                     "e-mail channel takes `to:`"))
            return self
        if self.to:
            raise ValueError(msg("`to:` is for e-mail channels; a {type} channel posts to `url_env:` (or `url:`)",
                                 type=self.type))
        if bool(self.url) == bool(self.url_env):
            raise ValueError(msg("a {type} channel needs `url_env:`, the name of an environment variable holding "
                                 "its webhook URL (or `url:` for an address that holds no secret)", type=self.type))
        if self.secret_env and self.type != "webhook":
            raise ValueError(msg("`secret_env:` signs the body of a `webhook` channel; {type} channels are not "
                                 "signed", type=self.type))
        return self


class AlertSettings(_Spec):
    """How alerts are gated against fatigue."""

    budget: int = Field(default=5, ge=1, le=100, description="messages a team receives at most per week; the "
                                                             "others wait for the weekly digest")
    anomalies: bool = Field(default=True, description="alert on unusual values of the North Star and board KPIs")
    early_warnings: bool = Field(default=True, description="alert when a leading indicator moved and a KPI it "
                                                           "leads is projected to miss")


class Review(_Spec):
    """The weekly steering review: when it is sent and to whom."""

    schedule: str | None = Field(default=None, description="a cron expression in the workspace's time zone, e.g. "
                                                           "\"0 8 * * MON\"")
    to: list[str] = Field(default=[], description="channel keys or e-mail addresses")

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            parse_cron(value)
        return value


__all__ = ["CHANNEL_TYPES", "AlertSettings", "Channel", "Review", "check_http_url", "is_email"]
