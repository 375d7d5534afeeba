"""Users, sessions, tokens and the audit log, on SQLite and PostgreSQL: hashes only, one workspace each."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from kpilot.service.accounts import AccountService, Throttle, TooManyAttempts, digest
from kpilot.store import AppStore
from kpilot.store.accounts import AccountError

PASSWORD = "correct horse battery"


@pytest.fixture
def store(db_url: str | None, tmp_path: Path) -> Iterator[AppStore]:
    with AppStore(db_url, state_dir=tmp_path) as s:
        yield s


def test_a_user_signs_in_with_their_password_only(store: AppStore) -> None:
    acme = AccountService(store, "acme")
    assert not acme.has_users()
    anna = acme.create_user("Anna@Example.com", role="admin", password=PASSWORD)
    assert acme.has_users() and not AccountService(store, "other").has_users()
    assert acme.authenticate("anna@example.com", PASSWORD) == anna  # addresses compare without case
    assert acme.authenticate("anna@example.com", PASSWORD + "!") is None
    assert acme.authenticate("nobody@example.com", PASSWORD) is None
    assert AccountService(store, "other").authenticate("anna@example.com", PASSWORD) is None
    with pytest.raises(AccountError, match="exists already"):
        acme.create_user("anna@example.com", role="viewer", password=PASSWORD)
    with pytest.raises(AccountError, match="shorter than 10"):
        acme.create_user("bob@example.com", role="viewer", password="short")
    with pytest.raises(AccountError, match="unknown role"):
        acme.create_user("bob@example.com", role="owner", password=PASSWORD)
    with pytest.raises(AccountError, match="not an e-mail address"):
        acme.create_user("bob", role="viewer", password=PASSWORD)


def test_the_password_is_kept_as_an_argon2_hash(tmp_path: Path) -> None:
    with AppStore(None, state_dir=tmp_path) as store:
        AccountService(store, "acme").create_user("anna@example.com", role="admin", password=PASSWORD)
    con = sqlite3.connect(tmp_path / "app.db")
    (hashed,) = con.execute("select password_hash from users").fetchone()
    assert hashed.startswith("$argon2id$") and PASSWORD not in hashed
    assert PASSWORD.encode() not in (tmp_path / "app.db").read_bytes()


def test_repeated_failures_wait_before_another_attempt(store: AppStore) -> None:
    acme = AccountService(store, "acme", Throttle(limit=3, window=60, client_limit=5))
    acme.create_user("anna@example.com", role="admin", password=PASSWORD)
    for _ in range(3):
        assert acme.authenticate("anna@example.com", "wrong password!", client="10.0.0.9") is None
    with pytest.raises(TooManyAttempts):  # even with the right password, for this address
        acme.authenticate("anna@example.com", PASSWORD, client="10.0.0.8")
    for _ in range(2):
        assert acme.authenticate("carol@example.com", "wrong password!", client="10.0.0.9") is None
    with pytest.raises(TooManyAttempts):  # and for this client, whatever address it tries
        acme.authenticate("bob@example.com", PASSWORD, client="10.0.0.9")


def test_failures_are_counted_across_processes_and_restarts(db_url: str | None, tmp_path: Path) -> None:
    # Two server processes share the application database: failures through either count together, and a
    # restart forgets none of them. The keys are kept as hashes (no address in the database).
    limits = {"limit": 3, "window": 60, "client_limit": 50}
    with AppStore(db_url, state_dir=tmp_path) as one, AppStore(db_url, state_dir=tmp_path) as two:
        first, second = AccountService(one, "acme", Throttle(**limits)), AccountService(two, "acme", Throttle(**limits))
        first.create_user("anna@example.com", role="admin", password=PASSWORD)
        assert first.authenticate("anna@example.com", "wrong password!", client="10.0.0.9") is None
        assert second.authenticate("anna@example.com", "wrong password!", client="10.0.0.8") is None
        assert first.authenticate("anna@example.com", "wrong password!", client="10.0.0.7") is None
        with pytest.raises(TooManyAttempts) as waited:
            second.authenticate("anna@example.com", PASSWORD, client="10.0.0.6")
        assert 0 < waited.value.wait <= 60
        # Another workspace of the same database is not held back.
        AccountService(two, "other", Throttle(**limits)).create_user("anna@example.com", role="admin",
                                                                      password=PASSWORD)
        assert AccountService(two, "other", Throttle(**limits)).authenticate("anna@example.com", PASSWORD)
    with AppStore(db_url, state_dir=tmp_path) as restarted, pytest.raises(TooManyAttempts):
        AccountService(restarted, "acme", Throttle(**limits)).authenticate("anna@example.com", PASSWORD)
    if db_url is None:
        assert b"anna@example.com" not in sqlite3.connect(tmp_path / "app.db").execute(
            "select group_concat(key_hash) from sign_in_failures").fetchone()[0].encode()
        assert b"10.0.0.9" not in (tmp_path / "app.db").read_bytes()


def test_sessions_are_per_workspace_and_end_with_a_new_password(store: AppStore) -> None:
    acme = AccountService(store, "acme")
    anna = acme.create_user("anna@example.com", role="editor", teams=["marketing"], password=PASSWORD)
    first, second = acme.start_session(anna), acme.start_session(anna)
    assert first != second
    who = acme.session_principal(first)
    assert who is not None and who.name == "anna@example.com" and who.teams == ("marketing",)
    assert AccountService(store, "other").session_principal(first) is None
    assert acme.session_principal(digest(first)) is None  # the stored hash is not a session id
    acme.end_session(first)
    assert acme.session_principal(first) is None and acme.session_principal(second) is not None
    acme.set_password("anna@example.com", "another long password")
    assert acme.session_principal(second) is None


def test_tokens_are_shown_once_kept_hashed_and_revocable(store: AppStore) -> None:
    acme = AccountService(store, "acme")
    token, record = acme.create_token(role="editor", name="ci", by="anna@example.com")
    assert token.startswith("kp_") and len(token) > 40 and record.prefix == token[:10]
    who = acme.token_principal(token)
    assert who is not None and who.role == "editor" and who.name == "token ci"
    assert AccountService(store, "other").token_principal(token) is None
    assert store.tokens("acme")[0].last_used_at is not None
    assert token not in str([t.to_dict() for t in store.tokens("acme")])
    acme.revoke_token("ci", by="anna@example.com")
    assert acme.token_principal(token) is None
    with pytest.raises(AccountError, match="no active token"):
        acme.revoke_token("ci")


def test_the_last_admin_keeps_the_role(store: AppStore) -> None:
    acme = AccountService(store, "acme")
    acme.create_user("anna@example.com", role="admin", password=PASSWORD)
    acme.create_user("bob@example.com", role="viewer", password=PASSWORD)
    with pytest.raises(AccountError, match="last admin"):
        store.update_user("acme", "anna@example.com", role="viewer")
    with pytest.raises(AccountError, match="last admin"):
        store.delete_user("acme", "anna@example.com")
    store.update_user("acme", "bob@example.com", role="admin")
    store.update_user("acme", "anna@example.com", role="viewer")


def test_every_change_is_logged_with_who_before_and_after(store: AppStore) -> None:
    acme = AccountService(store, "acme")
    acme.create_user("anna@example.com", role="admin", password=PASSWORD, by="cli")
    store.set_override("acme", "mrr", "bands", {"green": 1.0, "amber": 0.8}, user="anna@example.com")
    store.set_override("acme", "mrr", "bands", {"green": 1.1, "amber": 0.9}, user="anna@example.com")
    store.clear_override("acme", "mrr", "bands", user="anna@example.com")
    made = store.add_decision("acme", "mrr", period="2026-03", action="Call the churned", owner="sales",
                              user="anna@example.com")
    store.update_decision("acme", made.id, status="done", user="anna@example.com")
    store.add_annotation("acme", "mrr", period="2026-03", text="Price change", user="anna@example.com")
    acme.create_token(role="viewer", name="board", by="anna@example.com")
    store.set_credential("acme", "crm", "token", "ciphertext-not-logged", user="anna@example.com")
    log = [c.to_dict() for c in store.changes("acme")][::-1]
    assert [(c["kind"], c["subject"]) for c in log] == [
        ("user", "anna@example.com"), ("setting", "mrr.bands"), ("setting", "mrr.bands"), ("setting", "mrr.bands"),
        ("decision", f"mrr #{made.id}"), ("decision", f"mrr #{made.id}"), ("annotation", "mrr #1"),
        ("token", "board"), ("credential", "crm.token")]
    assert log[0]["actor"] == "cli" and all(c["actor"] == "anna@example.com" for c in log[1:])
    assert (log[2]["before"], log[2]["after"]) == ({"green": 1.0, "amber": 0.8}, {"green": 1.1, "amber": 0.9})
    assert (log[3]["before"], log[3]["after"]) == ({"green": 1.1, "amber": 0.9}, None)
    assert (log[5]["before"]["status"], log[5]["after"]["status"]) == ("open", "done")
    assert "password_hash" not in str(log) and "argon2" not in str(log) and "ciphertext" not in str(log)
    assert store.changes("other") == []


def test_one_decision_is_read_in_its_workspace_only(store: AppStore) -> None:
    made = store.add_decision("acme", "mrr", period="2026-03", action="Call the churned", owner="sales")
    found = store.decision("acme", made.id)
    assert found is not None and found.action == "Call the churned" and found.metric == "mrr"
    assert store.decision("other", made.id) is None
    assert store.decision("acme", made.id + 1) is None and store.decision("acme", 10**30) is None


def test_a_started_sign_in_is_taken_once_by_its_browser(db_url: str | None, tmp_path: Path) -> None:
    with AppStore(db_url, state_dir=tmp_path) as one, AppStore(db_url, state_dir=tmp_path) as two:
        first, second = AccountService(one, "acme"), AccountService(two, "acme")
        first.remember_sign_in("state-1", "browser-a", nonce="n", verifier="v", target="/account",
                               redirect_uri="https://kpilot.example/login/oidc/callback", seconds=600)
        if db_url is None:  # only hashes of the state and the browser's cookie, in the database and its journal
            stored = b"".join(f.read_bytes() for f in tmp_path.glob("app.db*"))
            assert b"/login/oidc/callback" in stored and b"state-1" not in stored and b"browser-a" not in stored
        assert second.take_sign_in("state-1", "browser-b", 600) is None  # another browser: refused, and kept
        assert AccountService(two, "other").take_sign_in("state-1", "browser-a", 600) is None  # another workspace
        found = second.take_sign_in("state-1", "browser-a", 600)  # another process of the same server
        assert found is not None and (found["nonce"], found["verifier"], found["target"]) == ("n", "v", "/account")
        assert first.take_sign_in("state-1", "browser-a", 600) is None  # once
        first.remember_sign_in("state-2", "browser-a", nonce="n", verifier="v", target="/", redirect_uri="x",
                               seconds=600)
        assert first.take_sign_in("state-2", "browser-a", 0) is None  # expired


def test_a_flood_of_sign_ins_keeps_only_the_newest(db_url: str | None, tmp_path: Path) -> None:
    # Anyone may start a single sign-on, and many addresses may fail to sign in: past the limit the oldest rows go,
    # so a flood fills no disk; the newest still work, and another workspace's rows are not touched.
    from datetime import UTC, datetime, timedelta

    now, long_ago = datetime.now(UTC), datetime.now(UTC) - timedelta(hours=1)
    with AppStore(db_url, state_dir=tmp_path) as store:
        store.add_sso_flow("other", "o" * 64, "b" * 64, nonce="n", verifier="v", target="/", redirect_uri="x",
                           at=now, forget_before=long_ago, keep=3)
        for i in range(5):
            store.add_sso_flow("acme", f"{i}" * 64, "b" * 64, nonce=f"n{i}", verifier="v", target="/",
                               redirect_uri="x", at=now, forget_before=long_ago, keep=3)
        assert [store.take_sso_flow("acme", f"{i}" * 64, "b" * 64) is not None for i in range(5)] == [
            False, False, True, True, True]
        assert store.take_sso_flow("other", "o" * 64, "b" * 64) is not None
        for i in range(5):
            store.add_sign_in_failure("acme", [f"k{i}"], now, long_ago, 3)
        assert sorted(store.sign_in_failures("acme", [f"k{i}" for i in range(5)], long_ago)) == ["k2", "k3", "k4"]
