"""Credentials of database sources: from environment variables or a secrets file, never printed.

`url_env: SHOP_URL` names a variable: the environment wins, else a `SHOP_URL=...` line of the secrets
file (`$KPILOT_SECRETS_FILE`, else `<workspace>/.kpilot/secrets.env`). The value lives in a `Secret`,
which prints as ***, and error texts are scrubbed of it before anyone sees them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

from kpilot.model.errors import msg
from kpilot.model.workspace import Source
from kpilot.sources.base import SyncError

SECRETS_FILE = Path(".kpilot") / "secrets.env"


class Secret:
    """A connection URL: readable by the connector, never printed (repr and str are masked)."""

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def password(self) -> str | None:
        try:
            found = urlsplit(self._value).password
        except ValueError:
            found = None
        if found is None:  # a key=value connection string
            m = re.search(r"\bpassword\s*=\s*('[^']*'|\S+)", self._value)
            found = m.group(1).strip("'") if m else None
        return found

    def scrub(self, text: str) -> str:
        """`text` with the URL and its password replaced by ***, for error messages."""
        password = self.password()
        for secret in (self._value, password, password and unquote(password)):
            if secret:
                text = text.replace(secret, "***")
        return text

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


def secrets_file(workspace_dir: Path, environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env["KPILOT_SECRETS_FILE"]) if env.get("KPILOT_SECRETS_FILE") else workspace_dir / SECRETS_FILE


def read_secrets(path: Path) -> dict[str, str]:
    """NAME=value lines (blank lines and # comments skipped, values optionally quoted); empty when absent."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise SyncError(msg("the secrets file {path} could not be read ({reason}). Fix: check that kpilot may "
                            "read it.", path=str(path), reason=exc.strerror or type(exc).__name__)) from None
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, value = line.removeprefix("export ").split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[name.strip()] = value
    return out


def source_url(source: Source, environ: Mapping[str, str] | None = None, secrets: Path | None = None) -> Secret:
    """The connection URL of a server source: the variable `url_env` (environment, then the secrets file),
    else `url`."""
    env = os.environ if environ is None else environ
    if not source.url_env:
        return Secret(source.url or "")
    value = env.get(source.url_env) or (read_secrets(secrets).get(source.url_env) if secrets else None)
    if not value:
        raise SyncError(msg(
            "source '{source}': the environment variable {var} is not set, and the secrets file {file} has no "
            "line for it. Fix: set it to the database URL, e.g. `export {var}=postgresql://user:password@host:5432/"
            "database`, or add that line (without `export`) to the secrets file.", source=source.key,
            var=source.url_env, file=str(secrets) if secrets else "-"))
    return Secret(value)
