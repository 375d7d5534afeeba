"""Sending an e-mail channel's message through the SMTP server named by KPILOT_SMTP_URL.

smtp://user@host:587 uses STARTTLS when the server offers it (`?starttls=required` insists, `?starttls=no` never
tries), smtps://user@host:465 speaks TLS from the start. The password comes from KPILOT_SMTP_PASSWORD (the secret
store first, then the environment), or from the URL, accepted but not recommended. The sender is KPILOT_SMTP_FROM,
else kpilot@<host>. One e-mail goes to all the channel's addresses at once.

A 4xx answer or a broken connection is temporary (retry); a 5xx answer is permanent (failed).
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.utils import parseaddr
from urllib.parse import parse_qs, unquote, urlsplit

from kpilot.alerting.channels.delivery import Delivery, Settings, clip, failed, retry, sent, unreachable
from kpilot.alerting.channels.email import email_message
from kpilot.alerting.message import Message
from kpilot.model.channel_checks import SMTP_ENV, smtp_problem
from kpilot.model.channels import Channel

PASSWORD_ENV = "KPILOT_SMTP_PASSWORD"
FROM_ENV = "KPILOT_SMTP_FROM"
STARTTLS_MODES = ("auto", "required", "no")


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    ssl: bool
    starttls: str  # auto | required | no
    user: str | None
    password: str | None
    sender: str


def smtp_server(settings: Settings) -> SmtpServer | Delivery:
    """The server KPILOT_SMTP_URL names, or the failed Delivery saying what is missing."""
    url = settings.get(SMTP_ENV)
    if not url:
        return failed(f"E-mail is sent through an SMTP server, and {SMTP_ENV} is not set where kpilot runs; set it "
                      f"to smtp://user@mail.example.com:587.")
    problem = smtp_problem(url)
    if problem is not None:
        return failed(f"{SMTP_ENV} cannot be used: {problem}.")
    parts = urlsplit(url)
    modes = parse_qs(parts.query).get("starttls", ["auto"])
    starttls = modes[-1].lower()
    if starttls not in STARTTLS_MODES:
        return failed(f"{SMTP_ENV} asks for starttls={clip(starttls, 20)}; write starttls=required or starttls=no "
                      f"(or leave it out: STARTTLS when the server offers it).")
    implicit = parts.scheme == "smtps"
    host = parts.hostname or ""
    sender = settings.get(FROM_ENV) or f"kpilot@{host}"
    password = settings.get(PASSWORD_ENV) or (unquote(parts.password) if parts.password else None)
    return SmtpServer(host=host, port=parts.port or (465 if implicit else 587), ssl=implicit, starttls=starttls,
                      user=unquote(parts.username) if parts.username else None, password=password, sender=sender)


def _answer(what: str, code: int, text: bytes | str) -> Delivery:
    said = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    detail = f"{what} ({code} {clip(' '.join(said.split()), 160)})"
    if 400 <= code < 500:
        return retry(f"{detail}: a temporary refusal.")
    return failed(f"{detail}: a permanent refusal.")


def _refused_detail(refused: dict[str, tuple[int, bytes]]) -> str:
    return ", ".join(f"{address} ({code})" for address, (code, _) in refused.items())


def _unreachable(server: SmtpServer, error: BaseException, timeout: float) -> Delivery:
    return unreachable(error, server=f"the SMTP server {server.host}:{server.port}", timeout=timeout,
                       tls_hint="; smtps:// expects TLS from the start (port 465), smtp:// is for ports 25 and 587")


def _open(server: SmtpServer, timeout: float) -> smtplib.SMTP:
    context = ssl.create_default_context()
    if server.ssl:
        return smtplib.SMTP_SSL(server.host, server.port, timeout=timeout, context=context)
    client = smtplib.SMTP(server.host, server.port, timeout=timeout)
    try:
        client.ehlo()
        if server.starttls != "no" and client.has_extn("starttls"):
            client.starttls(context=context)
            client.ehlo()
        elif server.starttls == "required":
            raise smtplib.SMTPNotSupportedError("STARTTLS")
    except BaseException:
        client.close()
        raise
    return client


def send_email(channel: Channel, message: Message, settings: Settings, *, timeout: float) -> Delivery:
    """Send `message` to all of the channel's addresses in one e-mail. Never raises for a network or server
    problem."""
    server = smtp_server(settings)
    if isinstance(server, Delivery):
        return server
    if server.user and not server.password:
        return failed(f"{SMTP_ENV} names the user {server.user}, and {PASSWORD_ENV} is not set where kpilot runs.")
    envelope_from = parseaddr(server.sender)[1]
    if "@" not in envelope_from or any(c in server.sender for c in "\r\n"):
        return failed(f"{FROM_ENV} is not an e-mail address; write it as kpilot@example.com or "
                      f"\"kpilot <kpilot@example.com>\".")
    mail = email_message(message, server.sender, channel.to)
    where = f"{server.host}:{server.port}"
    try:
        client = _open(server, timeout)
    except smtplib.SMTPNotSupportedError:
        return failed(f"The SMTP server {where} does not offer STARTTLS, which {SMTP_ENV} requires "
                      f"(starttls=required).")
    except smtplib.SMTPResponseException as error:
        return _answer(f"The SMTP server {where} refused the connection", error.smtp_code, error.smtp_error)
    except smtplib.SMTPServerDisconnected as error:
        return retry(f"The SMTP server {where} closed the connection ({clip(str(error), 120)}).")
    except (OSError, smtplib.SMTPException) as error:
        return _unreachable(server, error, timeout)
    try:
        if server.user and server.password:
            client.login(server.user, server.password)
        refused = client.send_message(mail, from_addr=envelope_from, to_addrs=list(channel.to))
    except smtplib.SMTPAuthenticationError as error:
        return _answer(f"The SMTP server {where} refused the user name or password", error.smtp_code,
                       error.smtp_error)
    except smtplib.SMTPRecipientsRefused as error:
        codes = [code for code, _ in error.recipients.values()]
        detail = f"The SMTP server {where} refused every address: {_refused_detail(error.recipients)}"
        if codes and all(400 <= code < 500 for code in codes):
            return retry(f"{detail}, a temporary refusal.")
        return failed(f"{detail}; check the channel's `to:` addresses.")
    except smtplib.SMTPSenderRefused as error:
        return _answer(f"The SMTP server {where} refused the sender {envelope_from}", error.smtp_code,
                       error.smtp_error)
    except smtplib.SMTPResponseException as error:
        return _answer(f"The SMTP server {where} refused the message", error.smtp_code, error.smtp_error)
    except smtplib.SMTPNotSupportedError as error:
        return failed(f"The SMTP server {where} cannot take this message: {clip(str(error), 160)}.")
    except smtplib.SMTPServerDisconnected as error:
        return retry(f"The SMTP server {where} closed the connection ({clip(str(error), 120)}).")
    except smtplib.SMTPException as error:  # e.g. no AUTH mechanism in common
        return failed(f"The SMTP server {where} could not be used: {clip(str(error), 160)}.")
    except OSError as error:
        return _unreachable(server, error, timeout)
    finally:
        _quit(client)
    count = len(channel.to)
    if refused:
        return sent(f"The SMTP server {where} accepted the e-mail for {count - len(refused)} of {count} addresses "
                    f"and refused {_refused_detail(refused)}.")
    return sent(f"The SMTP server {where} accepted the e-mail for {count} address{'es' if count > 1 else ''}.")


def _quit(client: smtplib.SMTP) -> None:
    # Once the message is accepted, a failed goodbye changes nothing: retrying would send it twice.
    try:
        client.quit()
    except (OSError, smtplib.SMTPException):
        client.close()


__all__ = ["FROM_ENV", "PASSWORD_ENV", "SmtpServer", "send_email", "smtp_server"]
