"""`kpilot user`, `kpilot token` and `kpilot audit-log` on a real application database (SQLite in a tmp folder):
what each command changes, checked through the account service; clean errors in English and French; a token printed
once, alone on the last line; and no password nor token in any listing."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from kpilot.cli import app
from kpilot.cli.accounts import actor
from kpilot.service import WorkspaceService
from kpilot.service.accounts import AccountService, digest

PASSWORD = "correct horse battery"
OTHER = "another long passphrase"
YAML = """workspace: shop
teams: [{key: marketing}, {key: sales}]
sources: [{key: files, type: csv, path: data/}]
models: [{key: orders, table: orders, time: ordered_at}]
metrics: [{key: revenue, model: orders, measure: sum(amount), grain: month}]
"""


@pytest.fixture(autouse=True)
def _no_database_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("KPILOT_DATABASE_URL", "KPILOT_STATE_DIR"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def ws(tmp_path: Path) -> tuple[Path, Path]:
    """A workspace with two teams (workspace folder, state folder); no data is needed to manage its accounts."""
    folder = tmp_path / "shop"
    folder.mkdir()
    (folder / "kpilot.yaml").write_text(YAML, encoding="utf-8")
    return folder, tmp_path / "state"


def run(ws: tuple[Path, Path], *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, [*args, "-w", str(ws[0]), "--state-dir", str(ws[1])], input=input)


def ok(ws: tuple[Path, Path], *args: str, input: str | None = None) -> str:
    result = run(ws, *args, input=input)
    assert result.exit_code == 0, result.output
    return result.stdout


def as_json(ws: tuple[Path, Path], *args: str) -> list[dict[str, object]]:
    rows = json.loads(ok(ws, *args, "--format", "json"))
    assert isinstance(rows, list)
    return rows


@contextmanager
def accounts(ws: tuple[Path, Path]) -> Iterator[AccountService]:
    """The workspace's accounts as the web app sees them: the same database, through the service."""
    with WorkspaceService(ws[0], state_root=ws[1]) as svc:
        yield AccountService(svc.app_store(), svc.ws.workspace)


def users(ws: tuple[Path, Path]) -> dict[str, dict[str, object]]:
    return {str(u["email"]): u for u in as_json(ws, "user", "list")}


def test_users_are_created_listed_changed_and_deleted(ws: tuple[Path, Path]) -> None:
    said = ok(ws, "user", "create", "anna@example.com", "--role", "admin", "--password-stdin", input=PASSWORD + "\n")
    assert "Created user anna@example.com (admin)." in said
    assert "from now on every page and API route asks who is there (a sign-in, or a token)" in said
    said = ok(ws, "user", "create", "bob@example.com", "--role", "editor", "--team", "marketing", "--team", "sales",
              "--name", "Bob")  # no terminal, no --password-stdin: no password
    assert "bob@example.com has no password: they sign in through single sign-on only, until `kpilot user password " \
           "bob@example.com` sets one." in said
    assert "every page and API route asks" not in said  # said once, for the first user
    found = users(ws)
    assert list(found) == ["anna@example.com", "bob@example.com"]
    assert {k: found["anna@example.com"][k] for k in ("role", "teams", "password", "disabled", "last_login_at")} == \
        {"role": "admin", "teams": [], "password": True, "disabled": False, "last_login_at": None}
    assert {k: found["bob@example.com"][k] for k in ("name", "role", "teams", "password")} == \
        {"name": "Bob", "role": "editor", "teams": ["marketing", "sales"], "password": False}
    with accounts(ws) as acme:
        anna = acme.authenticate("anna@example.com", PASSWORD)  # one trailing line break was left out, no more
        assert anna is not None and anna.role == "admin"
        assert acme.authenticate("bob@example.com", PASSWORD) is None

    assert "bob@example.com is viewer." in ok(ws, "user", "set", "bob@example.com", "--role", "viewer")
    assert users(ws)["bob@example.com"]["teams"] == []  # teams are an editor's only
    said = ok(ws, "user", "set", "bob@example.com", "--role", "editor", "--team", "sales")
    assert "bob@example.com is editor of the KPIs of these teams: sales." in said
    assert (users(ws)["bob@example.com"]["role"], users(ws)["bob@example.com"]["teams"]) == ("editor", ["sales"])
    assert "bob@example.com is editor of every KPI." in ok(ws, "user", "set", "bob@example.com", "--no-teams")
    assert users(ws)["bob@example.com"]["teams"] == []

    said = ok(ws, "user", "password", "bob@example.com", "--password-stdin", input=OTHER + "\r\n")
    assert "New password set for bob@example.com; their sessions ended." in said
    assert users(ws)["bob@example.com"]["password"] is True
    with accounts(ws) as acme:
        assert acme.authenticate("bob@example.com", OTHER) is not None

    assert "bob@example.com is disabled" in ok(ws, "user", "disable", "bob@example.com")
    assert users(ws)["bob@example.com"]["disabled"] is True
    with accounts(ws) as acme:
        assert acme.authenticate("bob@example.com", OTHER) is None
    assert "bob@example.com may sign in again." in ok(ws, "user", "enable", "bob@example.com")
    with accounts(ws) as acme:
        bob = acme.authenticate("bob@example.com", OTHER)
        assert bob is not None
        first, second = acme.start_session(bob), acme.start_session(bob)
        assert acme.session_principal(first) is not None
    assert "Signed bob@example.com out: 2 session(s) ended." in ok(ws, "user", "logout", "bob@example.com")
    with accounts(ws) as acme:
        assert acme.session_principal(first) is None and acme.session_principal(second) is None
        assert acme.authenticate("bob@example.com", OTHER) is not None  # signed out, not locked out

    assert "Deleted user bob@example.com." in ok(ws, "user", "delete", "bob@example.com")
    assert list(users(ws)) == ["anna@example.com"]
    said = ok(ws, "user", "delete", "anna@example.com")  # the last user may go: the workspace is open again
    assert "every page and API route is open again" in said
    assert users(ws) == {}
    assert "Workspace 'shop' has no user" in ok(ws, "user", "list")


def test_the_user_list_reads_as_a_table(ws: tuple[Path, Path]) -> None:
    ok(ws, "user", "create", "anna@example.com", "--role", "admin", "--password-stdin", input=PASSWORD)
    ok(ws, "user", "create", "bob@example.com", "--role", "editor", "--team", "sales", "--name", "[red]B")
    table = ok(ws, "user", "list")
    anna = next(line for line in table.splitlines() if "anna@example.com" in line)
    assert re.findall(r"\w+", anna) == ["anna", "example", "com", "admin", "yes", "no", "never"]
    bob = next(line for line in table.splitlines() if "bob@example.com" in line)
    assert "[red]B" in bob  # a name is shown as written, never read as markup


def test_a_workspace_without_admin_is_pointed_out(ws: tuple[Path, Path]) -> None:
    result = run(ws, "user", "create", "carl@example.com", "--role", "viewer")
    assert result.exit_code == 0
    assert result.stderr == "warning: nobody is admin of this workspace: nobody can manage users in the web app. " \
                            "Fix: `kpilot user create EMAIL --role admin`.\n"
    result = run(ws, "user", "create", "anna@example.com", "--role", "admin")
    assert result.exit_code == 0 and result.stderr == ""


def _principal(ws: tuple[Path, Path], token: str) -> tuple[str, str | None, tuple[str, ...]] | None:
    with accounts(ws) as acme:
        who = acme.token_principal(token)
    return None if who is None else (who.role, who.name, who.teams)


def test_a_token_is_printed_once_alone_on_the_last_line_and_can_be_revoked(ws: tuple[Path, Path]) -> None:
    said = ok(ws, "token", "create", "--role", "editor", "--team", "sales", "--name", "ci")
    *explained, token = said.rstrip("\n").split("\n")
    assert re.fullmatch(r"kp_[A-Za-z0-9_-]{43}", token)
    assert "Authorization: Bearer <token>" in " ".join(explained) and token not in " ".join(explained)
    assert _principal(ws, token) == ("editor", "token ci", ("sales",))
    (listed,) = as_json(ws, "token", "list")
    assert {k: listed[k] for k in ("id", "name", "prefix", "role", "teams", "created_by", "revoked")} == \
        {"id": 1, "name": "ci", "prefix": token[:10], "role": "editor", "teams": ["sales"], "created_by": actor(),
         "revoked": False}
    assert listed["last_used_at"] is not None  # the service just used it
    other = ok(ws, "token", "create", "--role", "viewer").rstrip("\n").split("\n")[-1]
    assert _principal(ws, other) is not None and _principal(ws, other)[0] == "viewer"  # type: ignore[index]

    said = ok(ws, "token", "revoke", "ci")
    assert "Revoked token 'ci' (id 1): requests carrying it are refused from now on." in said
    assert _principal(ws, token) is None
    assert _principal(ws, other) is not None
    assert [t["revoked"] for t in as_json(ws, "token", "list")] == [True, False]
    ok(ws, "token", "revoke", "2")  # by id
    assert _principal(ws, other) is None
    again = run(ws, "token", "revoke", "ci")
    assert again.exit_code == 1
    assert again.stderr == "error: there is no active token 'ci' in this workspace. Fix: list them with `kpilot " \
                           "token list`.\n"


def test_token_create_piped_to_tail_gives_the_token(ws: tuple[Path, Path]) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("KPILOT_DATABASE_URL", "KPILOT_STATE_DIR")}
    line = subprocess.run(
        f"{sys.executable} -m kpilot.cli token create -w {ws[0]} --state-dir {ws[1]} --role viewer --name feed | tail -1",
        shell=True, capture_output=True, text=True, env={**env, "COLUMNS": "200"}, timeout=120, check=True)
    token = line.stdout.strip()
    assert _principal(ws, token) == ("viewer", "token feed", ())
    assert "the workspace has no user yet, so nothing asks for this token" in line.stderr  # on stderr: not in the pipe


ERRORS = [
    (["user", "set", "nobody@example.com", "--role", "viewer"],
     "error: there is no user nobody@example.com in this workspace. Fix: check the address, or list the users with "
     "`kpilot user list`."),
    (["user", "logout", "nobody@example.com"], "error: there is no user nobody@example.com in this workspace."),
    (["user", "create", "anna@example.com", "--role", "viewer"],
     "error: user anna@example.com exists already. Fix: change their role with `kpilot user set`, or their password "
     "with `kpilot user password`."),
    (["user", "set", "anna@example.com", "--role", "editor"],
     "error: anna@example.com is the last admin of this workspace. Fix: make someone else admin first."),
    (["user", "disable", "anna@example.com"], "error: anna@example.com is the last admin of this workspace."),
    (["user", "delete", "anna@example.com"], "error: anna@example.com is the last admin of this workspace."),
    (["user", "create", "bob.example.com", "--role", "viewer"],
     "error: 'bob.example.com' is not an e-mail address. Fix: give the address the person signs in with, such as "
     "anna@example.com."),
    (["user", "create", "bob@example.com", "--role", "viewer", "--password-stdin"],
     "error: the password is shorter than 10 characters. Fix: choose a longer one"),
    (["user", "create", "bob@example.com", "--role", "editor", "--team", "sale"],
     "error: unknown team 'sale'; did you mean 'sales'? teams of "),
    (["token", "create", "--role", "editor", "--team", "support"], "error: unknown team 'support'; teams of "),
    (["user", "create", "bob@example.com", "--role", "viewer", "--team", "sales"],
     "error: --team limits which KPIs an editor may change; a viewer has no teams. Fix: drop --team, or use --role "
     "editor."),
    (["user", "create", "bob@example.com", "--role", "owner"],
     "error: unknown role 'owner'. Fix: use one of viewer, editor, admin."),
    (["token", "create", "--role", "root"], "error: unknown role 'root'. Fix: use one of viewer, editor, admin."),
    (["user", "set", "carl@example.com"], "error: nothing to change. Fix: give --role, --team or --no-teams."),
    (["user", "password", "carl@example.com"],
     "error: no password given, and there is no terminal to type it. Fix: pipe it in with --password-stdin."),
    (["audit-log", "--kind", "users"],
     "error: unknown kind of change 'users'; did you mean 'user'? kinds: user, password, token, setting, decision, "
     "annotation, credential, alert, definition. Fix: use one of them."),
]


@pytest.mark.parametrize(("args", "expected"), ERRORS, ids=[" ".join(a[:3]) for a, _ in ERRORS])
def test_errors_are_one_line_with_the_fix(ws: tuple[Path, Path], args: list[str], expected: str) -> None:
    ok(ws, "user", "create", "anna@example.com", "--role", "admin", "--password-stdin", input=PASSWORD)
    ok(ws, "user", "create", "carl@example.com", "--role", "viewer")
    result = run(ws, *args, input="short\n")
    assert result.exit_code == 1
    assert result.stderr.startswith(expected), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert "Fix: " in result.stderr
    if "--team" in args and args[-1] in ("sale", "support"):
        assert result.stderr.endswith("kpilot.yaml: 'marketing', 'sales'. Fix: use one of them.\n")
    assert [u["email"] for u in as_json(ws, "user", "list")] == ["anna@example.com", "carl@example.com"]
    assert as_json(ws, "token", "list") == []


def test_errors_in_french(ws: tuple[Path, Path]) -> None:
    ok(ws, "user", "create", "anna@example.com", "--role", "admin", "--password-stdin", input=PASSWORD)
    result = run(ws, "user", "delete", "nobody@example.com", "--lang", "fr")
    assert result.exit_code == 1
    assert result.stderr == "erreur : aucun utilisateur nobody@example.com dans cet espace de travail. Correction : " \
                            "vérifiez l'adresse, ou listez les utilisateurs avec `kpilot user list`.\n"
    result = run(ws, "user", "set", "anna@example.com", "--role", "viewer", "--lang", "fr")
    assert result.stderr == "erreur : anna@example.com est le dernier administrateur de cet espace de travail. " \
                            "Correction : nommez d'abord quelqu'un d'autre administrateur.\n"
    result = run(ws, "user", "create", "bob@example.com", "--role", "editor", "--team", "sale", "--lang", "fr")
    assert result.stderr.startswith("erreur : équipe inconnue 'sale' ; vouliez-vous dire 'sales' ? équipes de ")
    said = ok(ws, "user", "create", "bob@example.com", "--role", "viewer", "--lang", "fr")
    assert "Utilisateur bob@example.com créé (viewer)." in said


def _audit(ws: tuple[Path, Path]) -> str:
    """A password and a token through every command that lists accounts or changes: what they printed."""
    printed = ok(ws, "user", "create", "anna@example.com", "--role", "admin", "--password-stdin", input=PASSWORD)
    printed += ok(ws, "user", "create", "bob@example.com", "--role", "editor", "--team", "marketing")
    printed += ok(ws, "user", "password", "bob@example.com", "--password-stdin", input=OTHER)
    printed += ok(ws, "user", "set", "bob@example.com", "--role", "viewer")
    token = ok(ws, "token", "create", "--role", "viewer", "--name", "feed").rstrip("\n").split("\n")[-1]
    printed += ok(ws, "token", "revoke", "feed")
    return token + "\n" + printed


def test_the_audit_log_in_three_formats(ws: tuple[Path, Path]) -> None:
    _audit(ws)
    log = as_json(ws, "audit-log")
    assert [(c["kind"], c["subject"]) for c in log] == [
        ("token", "feed"), ("token", "feed"), ("user", "bob@example.com"), ("user", "bob@example.com"),
        ("user", "bob@example.com"), ("user", "anna@example.com")]
    assert {c["actor"] for c in log} == {actor()}
    assert [c["id"] for c in log] == sorted((c["id"] for c in log), reverse=True)  # newest first
    assert log[2]["before"] == {"email": "bob@example.com", "name": None, "role": "editor", "teams": ["marketing"],
                                "disabled": False, "password": True}
    assert log[2]["after"] == {**log[2]["before"], "role": "viewer", "teams": []}  # type: ignore[dict-item]
    assert (log[3]["before"]["password"], log[3]["after"]["password"]) == (False, True)  # type: ignore[index]
    assert log[-1]["before"] is None

    assert as_json(ws, "audit-log", "--kind", "token", "--limit", "1") == log[:1]
    assert [c["subject"] for c in as_json(ws, "audit-log", "--kind", "user")] == [c["subject"] for c in log[2:]]

    rows = list(csv.reader(io.StringIO(ok(ws, "audit-log", "--format", "csv"))))
    assert rows[0] == ["id", "at", "actor", "kind", "subject", "before", "after"]
    assert [int(r[0]) for r in rows[1:]] == [c["id"] for c in log]
    for row, change in zip(rows[1:], log, strict=True):
        assert row[1:5] == [change["at"], change["actor"], change["kind"], change["subject"]]
        assert [json.loads(v) if v else None for v in row[5:]] == [change["before"], change["after"]]
        assert "\n" not in row[5] + row[6]  # compact: one line each

    table = ok(ws, "audit-log")
    assert table.startswith("Audit log\n")
    assert re.search(r"│ role: editor +│ role: viewer +│", table)
    assert table.count("disabled: false") == 2  # a change shows the fields that changed; a creation, all of them


def test_no_password_nor_token_in_any_output(ws: tuple[Path, Path]) -> None:
    printed = _audit(ws)
    token, printed = printed.split("\n", 1)
    with accounts(ws) as acme:
        stored = acme.store.password_hash("shop", "anna@example.com")
    assert stored is not None and stored[1] is not None
    listed = printed
    for args in (["audit-log"], ["audit-log", "--format", "json"], ["audit-log", "--format", "csv"], ["user", "list"],
                 ["user", "list", "--format", "json"], ["token", "list"], ["token", "list", "--format", "json"]):
        listed += ok(ws, *args)
    assert "bob@example.com" in listed and "feed" in listed  # the listings are not empty
    for secret in (PASSWORD, OTHER, token, token[10:], digest(token), stored[1], stored[1].split("$")[-1]):
        assert secret not in listed


def test_db_points_at_another_application_database(ws: tuple[Path, Path], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    ok(ws, "user", "create", "anna@example.com", "--role", "admin", "--db", url)
    assert [u["email"] for u in as_json(ws, "user", "list", "--db", url)] == ["anna@example.com"]
    assert as_json(ws, "user", "list") == []  # the workspace's own database has no user
    assert [c["subject"] for c in as_json(ws, "audit-log", "--db", url)] == ["anna@example.com"]


def _on_a_terminal(ws: tuple[Path, Path], email: str, answers: list[str]) -> tuple[int, str]:
    """`kpilot user create` run on a pseudo-terminal, typing `answers` at its prompts: (exit code, what it showed)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: kpilot, its standard input a terminal
        os.execv(sys.executable, [sys.executable, "-m", "kpilot.cli", "user", "create", email, "--role",
                                  "viewer", "-w", str(ws[0]), "--state-dir", str(ws[1])])
    shown, answered, deadline = b"", 0, time.monotonic() + 120
    while time.monotonic() < deadline:
        if not select.select([fd], [], [], 1)[0]:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
        # A prompt ends with ": " once the terminal stops echoing (what is typed before that is flushed away).
        if answered < len(answers) and shown.count(b"password") > answered and shown.endswith(b": "):
            os.write(fd, answers[answered].encode() + b"\n")
            answered += 1
    else:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), re.sub(r"\x1b\[[0-9;]*m", "", shown.decode(errors="replace"))


def test_a_password_typed_twice_at_a_hidden_prompt(ws: tuple[Path, Path]) -> None:
    code, shown = _on_a_terminal(ws, "dana@example.com", [PASSWORD, PASSWORD])
    assert code == 0, shown
    assert "New password for dana@example.com" in shown and "The same password again" in shown
    assert PASSWORD not in shown  # not echoed
    with accounts(ws) as acme:
        assert acme.authenticate("dana@example.com", PASSWORD) is not None
    code, shown = _on_a_terminal(ws, "eric@example.com", [OTHER, OTHER + "!"])
    assert code == 1
    assert "error: the two passwords differ. Fix: run the command again and type the same password twice." in shown
    assert [u["email"] for u in as_json(ws, "user", "list")] == ["dana@example.com"]
