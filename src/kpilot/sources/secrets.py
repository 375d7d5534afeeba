"""Credentials of sources: from environment variables, a secrets file or the application database, never printed.

`url_env: SHOP_URL` (or `token_env`, `api_key_env`...) names a variable, looked up in this order: the
environment, a `SHOP_URL=...` line of the secrets file (`$KPILOT_SECRETS_FILE`, else
`<workspace>/.kpilot/secrets.env`), then the credentials stored encrypted for that source in the application
database (`kpilot secrets set SOURCE SHOP_URL`, kpilot.store.credentials). The value lives in a `Secret`,
which prints as ***, and error texts are scrubbed of it before anyone sees them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

from kpilot.model.errors import KpilotError, msg
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


def missing(source_key: str, var: str, secrets: Path | None, what: str) -> SyncError:
    """The error of a credential found nowhere, saying the three places it may go."""
    return SyncError(msg(
        "source '{source}': the environment variable {var} is not set, the secrets file {file} has no line for it, "
        "and the application database holds no {var} for this source. Fix: set it to {what}: `export {var}=...`, "
        "the line `{var}=...` in the secrets file, or `kpilot secrets set {source} {var}` (stored encrypted).",
        source=source_key, var=var or "-", file=str(secrets) if secrets else "-", what=what))


def source_url(source: Source, environ: Mapping[str, str] | None = None, secrets: Path | None = None) -> Secret:
    """The connection URL of a server source: the variable `url_env` (environment, secrets file, application
    database), else `url`."""
    env = os.environ if environ is None else environ
    if not source.url_env:
        return Secret(source.url or "")
    value = env.get(source.url_env) or (read_secrets(secrets).get(source.url_env) if secrets else None)
    if not value:
        raise missing(source.key, source.url_env, secrets,
                      msg("the database URL, e.g. postgresql://user:password@host:5432/database"))
    return Secret(value)


# (source key, variable name) -> the value stored in the application database, or None
StoredLookup = Callable[[str, str], str | None]


class CredentialLayers(Mapping[str, str]):
    """The variables a source's connector may read, in order: the environment, the secrets file, then the
    credentials stored for this source in the application database (asked only for a name found nowhere else).

    Connectors take it as their `environ`; iterating lists the first two layers only (stored names are never
    enumerated here)."""

    def __init__(self, environ: Mapping[str, str], secrets: Path | None, source_key: str,
                 stored: StoredLookup | None = None):
        self.environ = environ
        self.secrets = secrets
        self.source_key = source_key
        self.stored = stored
        self._file: dict[str, str] | None = None

    def _from_file(self) -> dict[str, str]:
        if self._file is None:
            self._file = read_secrets(self.secrets) if self.secrets else {}
        return self._file

    def __getitem__(self, name: str) -> str:
        # An empty value counts as unset, as it always did for credentials: the next layer is asked.
        if self.environ.get(name):
            return self.environ[name]
        if self._from_file().get(name):
            return self._from_file()[name]
        if self.stored is not None:
            try:
                value = self.stored(self.source_key, name)
            except SyncError:
                raise
            except KpilotError as exc:  # a wrong key: the source fails with the reason, the others sync
                raise SyncError(msg("source '{source}': {reason}", source=self.source_key,
                                    reason=exc.message)) from None
            if value:
                return value
        if name in self.environ:
            return self.environ[name]
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*self.environ, *self._from_file()]))

    def __len__(self) -> int:
        return len(dict.fromkeys([*self.environ, *self._from_file()]))

