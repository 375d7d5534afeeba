"""Sources' credentials kept in the application database, encrypted at rest (Fernet: AES-128-CBC + HMAC-SHA256).

The key is `KPILOT_SECRET_KEY` (a Fernet key: 32 random bytes in URL-safe base64), else the file
`secret.key` of the user's kpilot configuration folder (`$KPILOT_CONFIG_DIR`, else `$XDG_CONFIG_HOME/kpilot`,
else `~/.config/kpilot`), outside every workspace, created with permissions 0600 the first time a credential is
stored. A key left in a state folder by an earlier version is still read. What
is encrypted names the workspace, source and variable with the value, so a row copied onto another
credential's does not decrypt as that credential. Values never leave this module but through `get` (for a
connector); listings show names only.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from kpilot.model import KpilotError
from kpilot.model.errors import msg
from kpilot.store.repository import AppStore, open_store, store_exists

SECRET_KEY_ENV = "KPILOT_SECRET_KEY"
CONFIG_DIR_ENV = "KPILOT_CONFIG_DIR"
KEY_FILE = "secret.key"
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# (source key, variable name) -> the stored value, or None
Lookup = Callable[[str, str], str | None]


class CredentialError(KpilotError):
    """A credential that cannot be stored or read back (no key, a wrong key, a bad name)."""


def _fernet(key: bytes, where: str) -> Fernet:
    try:
        return Fernet(key)
    except (ValueError, TypeError):
        raise CredentialError(msg(
            "the encryption key in {where} is not a valid key. Fix: give 32 random bytes in URL-safe base64, e.g. "
            "the output of `python3 -c \"from cryptography.fernet import Fernet; print(Fernet.generate_key()"
            ".decode())\"`.", where=where)) from None


def config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The user's kpilot configuration folder: `$KPILOT_CONFIG_DIR`, else `$XDG_CONFIG_HOME/kpilot`, else
    `~/.config/kpilot`. It holds the encryption key, away from every workspace and its state folder."""
    env = os.environ if environ is None else environ
    if env.get(CONFIG_DIR_ENV):
        return Path(env[CONFIG_DIR_ENV])
    return Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "kpilot"


def key_path(state_dir: Path, environ: Mapping[str, str] | None = None) -> Path:
    """Where the key file is: in the configuration folder, or the state folder's when an earlier version put
    one there (its credentials were encrypted with it)."""
    legacy = Path(state_dir) / KEY_FILE
    return legacy if legacy.exists() else config_dir(environ) / KEY_FILE


def load_key(state_dir: Path, environ: Mapping[str, str] | None = None, *, create: bool = False
             ) -> tuple[Fernet, str] | None:
    """The cipher and where its key comes from (for messages): `KPILOT_SECRET_KEY`, else the key file
    (`key_path`), created (0600, in a 0700 folder) when `create`; None when there is no key and `create` is
    false."""
    env = os.environ if environ is None else environ
    if env.get(SECRET_KEY_ENV):
        return _fernet(env[SECRET_KEY_ENV].strip().encode(), SECRET_KEY_ENV), SECRET_KEY_ENV
    path = key_path(state_dir, env)
    if not path.exists() and create:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            # O_EXCL: two processes storing their first credential at once end up with one key, not two.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(Fernet.generate_key() + b"\n")
    try:
        key = path.read_bytes().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CredentialError(msg("the key file {path} could not be read ({reason}). Fix: check that kpilot may "
                                  "read it, or set {env}.", path=str(path), reason=exc.strerror or
                                  type(exc).__name__, env=SECRET_KEY_ENV)) from None
    return _fernet(key, str(path)), str(path)


def key_seed(state_dir: Path, environ: Mapping[str, str] | None = None) -> bytes:
    """The key's bytes (created when missing), for deriving other keys from it (`kpilot.service.signing_key`)."""
    env = os.environ if environ is None else environ
    if env.get(SECRET_KEY_ENV):
        return env[SECRET_KEY_ENV].strip().encode()
    load_key(state_dir, env, create=True)
    return key_path(state_dir, env).read_bytes().strip()


def check_name(name: str) -> None:
    if not NAME.match(name):
        raise CredentialError(msg("'{name}' is not a variable name. Fix: use letters, digits and _, as the source's "
                                  "`token_env` (or `url_env`, `api_key_env`) names it, e.g. HUBSPOT_TOKEN.",
                                  name=name))


class CredentialVault:
    """Encrypts credentials into an AppStore and decrypts them back; names are listed, values never."""

    def __init__(self, store: AppStore, state_dir: Path, environ: Mapping[str, str] | None = None):
        self.store = store
        self.state_dir = Path(state_dir)
        self.environ = environ

    @staticmethod
    def _sealed(workspace: str, source: str, name: str, value: str) -> bytes:
        return json.dumps({"workspace": workspace, "source": source, "name": name, "value": value}).encode()

    def set(self, workspace: str, source: str, name: str, value: str, *, user: str | None = None) -> None:
        check_name(name)
        if not value:
            raise CredentialError(msg("the value of {name} is empty. Fix: type or pipe the credential itself.",
                                      name=name))
        cipher = load_key(self.state_dir, self.environ, create=True)
        assert cipher is not None  # created when missing
        token = cipher[0].encrypt(self._sealed(workspace, source, name, value)).decode("ascii")
        self.store.set_credential(workspace, source, name, token, user=user)

    def get(self, workspace: str, source: str, name: str) -> str | None:
        """The value of a stored credential; None when none is stored. A wrong key is an error."""
        token = self.store.credential(workspace, source, name)
        if token is None:
            return None
        cipher = load_key(self.state_dir, self.environ)
        fix = msg("Fix: set {env} to the key it was stored with (or put back the key file {path}), or store it "
                  "again with `kpilot secrets set {source} {name}`.", env=SECRET_KEY_ENV,
                  path=str(key_path(self.state_dir, self.environ)), source=source, name=name)
        if cipher is None:
            raise CredentialError(msg("the credential {name} of source '{source}' is stored encrypted, but there is "
                                      "no key to decrypt it: {env} is not set and {path} does not exist. {fix}",
                                      name=name, source=source, env=SECRET_KEY_ENV,
                                      path=str(key_path(self.state_dir, self.environ)), fix=fix))
        try:
            sealed = json.loads(cipher[0].decrypt(token.encode("ascii")))
        except (InvalidToken, ValueError):
            raise CredentialError(msg("the credential {name} of source '{source}' cannot be decrypted with the key "
                                      "in {where}: it was stored with another key. {fix}", name=name,
                                      source=source, where=cipher[1], fix=fix)) from None
        if [sealed.get(k) for k in ("workspace", "source", "name")] != [workspace, source, name]:
            raise CredentialError(msg("the credential {name} of source '{source}' holds another credential's value "
                                      "(its row was changed outside kpilot). {fix}", name=name, source=source,
                                      fix=fix))
        return str(sealed["value"])

    def names(self, workspace: str) -> list[tuple[str, str, datetime]]:
        return self.store.credential_names(workspace)

    def delete(self, workspace: str, source: str, name: str) -> bool:
        return self.store.delete_credential(workspace, source, name)


@contextmanager
def stored_credentials(state_dir: Path, workspace: str, environ: Mapping[str, str] | None = None
                       ) -> Iterator[Lookup]:
    """A lookup of the credentials stored for `workspace`, for a sync. The database is opened at the first
    lookup, and only when it exists (a sync that finds every credential elsewhere never touches it)."""
    env = os.environ if environ is None else environ
    opened: list[CredentialVault] = []

    def lookup(source: str, name: str) -> str | None:
        if not opened:
            if not store_exists(state_dir, environ=env):
                return None
            opened.append(CredentialVault(open_store(state_dir, environ=env), state_dir, env))
        return opened[0].get(workspace, source, name)

    try:
        yield lookup
    finally:
        for vault in opened:
            vault.store.close()
