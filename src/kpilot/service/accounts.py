"""Who may do what in a workspace: users and their passwords, signed-in browsers, API tokens, roles.

- **Passwords** are kept as argon2id hashes (argon2-cffi's defaults, RFC 9106's second recommendation); a hash made
  with older parameters is replaced at the next sign-in. An unknown address costs the same time as a wrong
  password, so timing does not tell which addresses exist.
- **Sessions and tokens** are 256 random bits; the store keeps their SHA-256 only. A token reads
  `kp_<43 characters>`: the prefix lets secret scanners recognise it.
- **Roles** per workspace: a *viewer* reads; an *editor* also changes targets, bands and rules, logs decisions and
  annotations and acknowledges alerts, on the KPIs of their teams (a KPI shared by two teams by either's editors;
  an editor with no team on every KPI) and pushes data; an *admin* also manages users and tokens and reads the
  audit log. While a workspace has no user, everything is open to whoever reaches the server (`LOCAL`, an admin):
  kpilot serve then listens on loopback only.
- **Sign-in attempts** are limited per address (`MAX_FAILURES` failures within `FAILURE_WINDOW`) and per client
  (`MAX_CLIENT_FAILURES`, higher: many people may share an address); past that, attempts wait until the window has
  passed. The failures are kept in the application database: every process sharing it counts them, a restart
  forgets none.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from kpilot.model import KpilotError, Workspace
from kpilot.model.errors import did_you_mean, msg, one_of
from kpilot.store import AppStore
from kpilot.store.accounts import ROLES, AccountError, ChangeRecord, TokenRecord, UserRecord

TOKEN_PREFIX = "kp_"
SESSION_DAYS = 14
MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # argon2 takes any length; a cap keeps a hostile form from costing the server
MAX_FAILURES = 5  # per address
MAX_CLIENT_FAILURES = 30  # per client (higher: an office behind one address, a reverse proxy)
FAILURE_WINDOW = 15 * 60  # seconds
FAILURES_KEPT = 100_000  # failed sign-ins a workspace keeps at most (a flood of addresses fills no disk)
SIGN_INS_KEPT = 10_000  # started single sign-ons a workspace keeps at most (anyone may start one)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")

_hasher = PasswordHasher()
_DUMMY = _hasher.hash("kpilot: the hash checked for unknown addresses")


def digest(secret: str) -> str:
    """The SHA-256 (hex) a session id or token is stored and looked up by."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def hash_password(password: str) -> str:
    check_password(password)
    return _hasher.hash(password)


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(msg("the password is shorter than {n} characters. Fix: choose a longer one (a passphrase "
                               "of a few words is easy to remember).", n=MIN_PASSWORD))
    if len(password) > MAX_PASSWORD:
        raise AccountError(msg("the password is longer than {n} characters. Fix: choose a shorter one.",
                               n=MAX_PASSWORD))


def check_email(email: str) -> str:
    email = email.strip()
    if not EMAIL.match(email) or len(email) > 254:
        raise AccountError(msg("'{email}' is not an e-mail address. Fix: give the address the person signs in with, "
                               "such as anna@example.com.", email=email[:80]))
    return email


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(msg("unknown role '{role}'. Fix: use one of {roles}.", role=role, roles=", ".join(ROLES)))
    return role


def check_teams(ws: Workspace, file: Path, role: str, teams: Sequence[str]) -> list[str]:
    """The teams of an editor (user or token), each a team key of the workspace (`file` names it in messages); no
    team for another role."""
    if not teams:
        return []
    if role != "editor":
        raise AccountError(msg("--team limits which KPIs an editor may change; a {role} has no teams. Fix: drop "
                               "--team, or use --role editor.", role=role))
    keys = [t.key for t in ws.teams]
    if not keys:
        raise AccountError(msg("{file} declares no team. Fix: declare the teams under `teams:`, or drop --team (an "
                               "editor without team may change every KPI).", file=str(file)))
    for team in teams:
        if team not in keys:
            raise AccountError(msg("unknown team '{team}';{hint} teams of {file}: {teams}. Fix: use one of them.",
                                   team=team, hint=did_you_mean(team, keys), file=str(file), teams=one_of(keys)))
    return list(dict.fromkeys(teams))


@dataclass(frozen=True)
class Principal:
    """Who is asking: a signed-in user, an API token, or anyone on a workspace without users (`LOCAL`)."""

    kind: str  # user | token | local
    name: str | None  # the e-mail address, "token <name>", or None
    role: str
    teams: tuple[str, ...] = ()
    user_id: int | None = None
    token_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def can_write(self) -> bool:
        return self.role in ("editor", "admin")

    def can_change(self, owners: Sequence[str]) -> bool:
        """Whether this principal may change a KPI owned by `owners` (targets, rules, decisions, notes, alerts)."""
        if self.role == "admin":
            return True
        if self.role != "editor":
            return False
        return not self.teams or bool(set(self.teams) & set(owners))

    @property
    def unscoped_writer(self) -> bool:
        """An editor of every KPI, or an admin: may change what belongs to no team (pushed tables, the outbox)."""
        return self.role == "admin" or (self.role == "editor" and not self.teams)


LOCAL = Principal(kind="local", name=None, role="admin")


def of_user(user: UserRecord) -> Principal:
    return Principal(kind="user", name=user.email, role=user.role, teams=user.teams, user_id=user.id)


def of_token(token: TokenRecord) -> Principal:
    return Principal(kind="token", name=f"token {token.name}", role=token.role, teams=token.teams,
                     token_id=token.id)


class TooManyAttempts(KpilotError):
    """Sign-in refused for a while after repeated failures (answered 429)."""

    status = 429

    def __init__(self, wait: int):
        self.wait = wait
        super().__init__(msg("too many failed sign-in attempts. Fix: wait {minutes} minutes, then try again (or ask an "
                             "admin to set a new password with `kpilot user password`).",
                             minutes=max(1, round(wait / 60))))


@dataclass(frozen=True)
class Throttle:
    """The limits on failed sign-ins per key (an address, a client) within a sliding window. The failures are kept
    in the application database (`AppStore.sign_in_failures`, as hashes of the keys), so every server process
    sharing it counts them together and a restart forgets none."""

    limit: int = MAX_FAILURES
    window: float = FAILURE_WINDOW
    client_limit: int = MAX_CLIENT_FAILURES

    def check(self, store: AppStore, workspace: str, *keys: str) -> None:
        """Raise TooManyAttempts when any key has reached its limit."""
        now = datetime.now(UTC)
        hashes = {digest(k): k for k in keys}
        for hashed, (count, oldest) in store.sign_in_failures(workspace, list(hashes),
                                                               now - timedelta(seconds=self.window)).items():
            if count >= (self.client_limit if hashes[hashed].startswith("client:") else self.limit):
                raise TooManyAttempts(max(1, int(self.window - (now - oldest).total_seconds()) + 1))

    def failed(self, store: AppStore, workspace: str, *keys: str) -> None:
        now = datetime.now(UTC)
        store.add_sign_in_failure(workspace, [digest(k) for k in keys], now, now - timedelta(seconds=self.window),
                                  FAILURES_KEPT)

    def succeeded(self, store: AppStore, workspace: str, key: str) -> None:
        store.clear_sign_in_failures(workspace, digest(key))


class AccountService:
    """The accounts of one workspace, over its application database."""

    def __init__(self, store: AppStore, workspace: str, throttle: Throttle | None = None):
        self.store = store
        self.workspace = workspace
        self.throttle = throttle or Throttle()

    # --- users ---------------------------------------------------------------------------------

    def has_users(self) -> bool:
        return self.store.has_users(self.workspace)

    def create_user(self, email: str, *, role: str, teams: Sequence[str] = (), password: str | None = None,
                    name: str | None = None, by: str | None = None) -> UserRecord:
        """A new user; without a password they sign in through single sign-on only (until one is set)."""
        hashed = hash_password(password) if password is not None else None
        return self.store.add_user(self.workspace, check_email(email), role=check_role(role), teams=list(teams),
                                   password_hash=hashed, name=name, by=by)

    def set_password(self, email: str, password: str, *, by: str | None = None) -> UserRecord:
        """A new password; the user's sessions end (signed out everywhere)."""
        return self.store.update_user(self.workspace, email, password_hash=hash_password(password), by=by)

    def authenticate(self, email: str, password: str, client: str = "") -> UserRecord | None:
        """The user when the password is theirs and the account active; None otherwise. Raises TooManyAttempts after
        repeated failures for this address or this client."""
        keys = (f"email:{email.strip().lower()}", f"client:{client}")
        self.throttle.check(self.store, self.workspace, *keys)
        found = self.store.password_hash(self.workspace, email) if len(password) <= MAX_PASSWORD else None
        user, hashed = found if found is not None else (None, None)
        try:
            ok: bool = _hasher.verify(hashed or _DUMMY, password[:MAX_PASSWORD])
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok or user is None or hashed is None or user.disabled:
            self.throttle.failed(self.store, self.workspace, *keys)
            return None
        self.throttle.succeeded(self.store, self.workspace, keys[0])
        if _hasher.check_needs_rehash(hashed):
            self.store.update_user(self.workspace, email, password_hash=_hasher.hash(password), by=user.email)
        return user

    # --- started single sign-ons --------------------------------------------------------------------

    def remember_sign_in(self, state: str, browser: str, *, nonce: str, verifier: str, target: str,
                         redirect_uri: str, seconds: float) -> None:
        """A sign-in sent to the provider, kept `seconds` in the application database (any server process sharing
        it can end it) under the hashes of its state and of the browser's flow cookie."""
        now = datetime.now(UTC)
        self.store.add_sso_flow(self.workspace, digest(state), digest(browser), nonce=nonce, verifier=verifier,
                                target=target, redirect_uri=redirect_uri, at=now,
                                forget_before=now - timedelta(seconds=seconds), keep=SIGN_INS_KEPT)

    def take_sign_in(self, state: str, browser: str, seconds: float) -> dict[str, Any] | None:
        """The sign-in started with `state` by this browser within `seconds`, taken once; None when unknown,
        expired or another browser's (which keeps it: a stranger who learns a state cannot spoil the sign-in)."""
        if not state or not browser:
            return None
        found = self.store.take_sso_flow(self.workspace, digest(state), digest(browser))
        if found is None or datetime.now(UTC) - found["started_at"] > timedelta(seconds=seconds):
            return None
        return found

    # --- browser sessions ----------------------------------------------------------------------

    def start_session(self, user: UserRecord) -> str:
        """A new session for the user (a new id at every sign-in: a session id planted before is worthless)."""
        session_id = secrets.token_urlsafe(32)
        self.store.add_session(self.workspace, user.id, digest(session_id),
                               datetime.now(UTC) + timedelta(days=SESSION_DAYS))
        self.store.signed_in(user.id)
        return session_id

    def session_principal(self, session_id: str) -> Principal | None:
        if not session_id or len(session_id) > 200:
            return None
        user = self.store.session_user(self.workspace, digest(session_id))
        return None if user is None else of_user(user)

    def end_session(self, session_id: str) -> None:
        self.store.end_session(self.workspace, digest(session_id))

    def end_all_sessions(self, user_id: int) -> int:
        return self.store.end_sessions(self.workspace, user_id)

    # --- API tokens ----------------------------------------------------------------------------

    def create_token(self, *, role: str, name: str | None = None, teams: Sequence[str] = (),
                     by: str | None = None) -> tuple[str, TokenRecord]:
        """A new token and its record: the token is returned this once and kept only hashed."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        name = (name or "").strip() or f"token {datetime.now(UTC):%Y-%m-%d %H:%M}"
        if len(name) > 200:
            raise AccountError(msg("a token's name is at most 200 characters. Fix: choose a shorter name."))
        record = self.store.add_token(self.workspace, name=name, token_hash=digest(token), prefix=token[:10],
                                      role=check_role(role), teams=list(teams), by=by)
        return token, record

    def token_principal(self, token: str) -> Principal | None:
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        record = self.store.token_by_hash(self.workspace, digest(token))
        return None if record is None else of_token(record)

    def revoke_token(self, which: str, *, by: str | None = None) -> TokenRecord:
        return self.store.revoke_token(self.workspace, which, by=by)


__all__ = ["LOCAL", "MAX_FAILURES", "ROLES", "AccountError", "AccountService", "ChangeRecord", "Principal", "Throttle",
           "TooManyAttempts", "check_email", "check_password", "check_role", "check_teams", "digest", "hash_password",
           "of_token", "of_user"]
