"""The alerting part of the validation pass: channels, the teams they serve, the review's recipients, SMTP."""

from __future__ import annotations

from collections.abc import Mapping

from kpilot.model.channels import is_email
from kpilot.model.errors import did_you_mean, msg, one_of
from kpilot.model.steering import Checks

SMTP_ENV = "KPILOT_SMTP_URL"


def smtp_problem(url: str) -> str | None:
    """Why `url` is not an SMTP URL kpilot can use (None when it is): smtp://user@host:port or smtps://..."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return msg("it is not a URL")
    if parts.scheme not in ("smtp", "smtps"):
        return msg("it starts with '{scheme}:' where smtp: (STARTTLS or plain) or smtps: (SSL) is expected",
                   scheme=parts.scheme or "?")
    if not parts.hostname:
        return msg("it names no server")
    if port is not None and not 0 < port < 65536:
        return msg("its port is out of range")
    return None


def check_channels(ctx: Checks, environ: Mapping[str, str] | None = None) -> None:
    """Channel keys unique, teams and the review naming declared channels; with `environ` (the commands that send:
    `kpilot validate`, `kpilot alerts --send`, `kpilot review --send`), the SMTP server and webhook URLs set."""
    ws = ctx.ws
    keys = [c.key for c in ws.channels]
    seen: set[str] = set()
    for i, key in enumerate(keys):
        if key in seen:
            ctx.error(("channels", i, "key"), "duplicate_key", msg("channel '{key}' is declared twice", key=key),
                      msg("give each channel its own key"))
        seen.add(key)
    for i, channel in enumerate(ws.channels):
        if channel.type in ("slack", "teams") and channel.url:
            ctx.warn(("channels", i, "url"), "secret_url",
                     msg("the webhook URL of {type} channel '{key}' is a secret: anyone holding it can post to "
                         "the channel", type=channel.type, key=channel.key),
                     msg("put it in an environment variable and name it with `url_env:`"))
    for i, team in enumerate(ws.teams):
        if team.email and not is_email(team.email):
            ctx.error(("teams", i, "email"), "bad_address",
                      msg("'{address}' is not an e-mail address. Fix: write it as name@example.com",
                          address=team.email))
        for j, key in enumerate(team.notify):
            if key not in keys:
                ctx.error(("teams", i, "notify", j), "unknown_channel",
                          msg("team '{team}' notifies unknown channel '{channel}';{hint} channels: {channels}",
                              team=team.key, channel=key, hint=did_you_mean(key, keys), channels=one_of(keys)),
                          msg("declare it under `channels:`"))
    if ws.review is not None:
        for j, target in enumerate(ws.review.to):
            if target not in keys and not is_email(target):
                ctx.error(("review", "to", j), "unknown_channel",
                          msg("the review goes to '{target}', which is neither a channel nor an e-mail address;"
                              "{hint} channels: {channels}", target=target, hint=did_you_mean(target, keys),
                              channels=one_of(keys)),
                          msg("name a channel declared under `channels:`, or write an address as name@example.com"))
    if environ is None:
        return
    mails = [i for i, c in enumerate(ws.channels) if c.type == "email"]
    if ws.review is not None and any(is_email(t) for t in ws.review.to):
        mails.append(-1)
    mailed_teams = [i for i, t in enumerate(ws.teams) if t.email and not t.notify]
    smtp = environ.get(SMTP_ENV)
    if mailed_teams and not mails:
        mails.append(-2)
    if mails and not smtp:
        where = (("channels", mails[0], "type") if mails[0] >= 0 else ("review", "to") if mails[0] == -1
                 else ("teams", mailed_teams[0], "email"))
        ctx.error(where, "no_smtp", msg("e-mail is sent through an SMTP server, and {env} is not set", env=SMTP_ENV),
                  msg("set {env}=smtp://user@mail.example.com:587 (STARTTLS; smtps://...:465 for SSL) and the "
                      "password in KPILOT_SMTP_PASSWORD", env=SMTP_ENV))
    elif mails and smtp:
        problem = smtp_problem(smtp)
        if problem is not None:
            where = (("channels", mails[0], "type") if mails[0] >= 0 else ("review", "to") if mails[0] == -1
                     else ("teams", mailed_teams[0], "email"))
            ctx.error(where, "bad_smtp", msg("{env} cannot be used: {problem}", env=SMTP_ENV, problem=problem),
                      msg("write it as smtp://user@mail.example.com:587 (STARTTLS) or smtps://user@host:465 (SSL)"))
    for i, channel in enumerate(ws.channels):
        for field, env in (("url_env", channel.url_env), ("secret_env", channel.secret_env)):
            if env and not environ.get(env):
                ctx.error(("channels", i, field), "env_not_set",
                          msg("channel '{key}' reads {env} from the environment, and it is not set", key=channel.key,
                              env=env),
                          msg("set {env} where kpilot runs (the worker and the web server too)", env=env))
