"""Sources' credentials in the application database: encrypted at rest, looked up after the environment and the
secrets file, never printed."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet
from typer.testing import CliRunner, Result

from kpilot.cli import app
from kpilot.store import AppStore
from kpilot.store.credentials import KEY_FILE, CredentialError, CredentialVault, config_dir, stored_credentials
from kpilot.templates import crm
from tests.sources.mock_apis.hubspot import HubSpotApi

TOKEN = "pat-eu1-0f1e2d3c-very-secret-token"


@pytest.fixture(autouse=True)
def _no_key_nor_db(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("KPILOT_SECRET_KEY", "KPILOT_DATABASE_URL", "KPILOT_SECRETS_FILE", "HUBSPOT_TOKEN"):
        monkeypatch.delenv(var, raising=False)


def _database_bytes(state: Path) -> bytes:
    """Every byte SQLite wrote: the database file and its write-ahead log."""
    return b"".join(p.read_bytes() for p in sorted(state.glob("app.db*")))


def test_a_credential_is_stored_encrypted_and_read_back(db_url: str | None, tmp_path: Path) -> None:
    state = tmp_path / "state"
    with AppStore(db_url, state_dir=state) as store:
        vault = CredentialVault(store, state)
        vault.set("acme", "crm", "HUBSPOT_TOKEN", TOKEN)
        assert vault.get("acme", "crm", "HUBSPOT_TOKEN") == TOKEN
        assert vault.get("acme", "crm", "OTHER") is None
        assert vault.get("other-ws", "crm", "HUBSPOT_TOKEN") is None
        assert [(s, n) for s, n, _ in vault.names("acme")] == [("crm", "HUBSPOT_TOKEN")]
        stored = store.credential("acme", "crm", "HUBSPOT_TOKEN")
    assert stored is not None and TOKEN not in stored
    assert not (state / KEY_FILE).exists()  # never beside the data it protects
    key = config_dir() / KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600  # created on first use, for kpilot's user only
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700


def test_a_key_left_in_the_state_folder_by_an_earlier_version_is_still_used(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / KEY_FILE).write_bytes(Fernet.generate_key() + b"\n")
    with AppStore(state_dir=state) as store:
        CredentialVault(store, state).set("acme", "crm", "HUBSPOT_TOKEN", TOKEN)
        assert not (config_dir() / KEY_FILE).exists()
        (state / KEY_FILE).rename(tmp_path / "moved.key")
        with pytest.raises(CredentialError, match="there is no key to decrypt it"):
            CredentialVault(store, state).get("acme", "crm", "HUBSPOT_TOKEN")


def test_the_database_file_never_holds_the_value_in_clear(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with AppStore(state_dir=state) as store:
        CredentialVault(store, state).set("acme", "crm", "HUBSPOT_TOKEN", TOKEN)
        raw = _database_bytes(state)
        assert b"HUBSPOT_TOKEN" in raw  # the row is there, its name in clear...
        assert TOKEN.encode() not in raw  # ...its value not
        assert b"very-secret" not in raw


def test_a_wrong_key_says_which_key_and_how_to_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "state"
    monkeypatch.setenv("KPILOT_SECRET_KEY", Fernet.generate_key().decode())
    with AppStore(state_dir=state) as store:
        CredentialVault(store, state).set("acme", "crm", "HUBSPOT_TOKEN", TOKEN)
        assert not (state / KEY_FILE).exists()  # the key came from the environment
        monkeypatch.setenv("KPILOT_SECRET_KEY", Fernet.generate_key().decode())
        with pytest.raises(CredentialError) as wrong:
            CredentialVault(store, state).get("acme", "crm", "HUBSPOT_TOKEN")
        assert str(wrong.value).startswith("the credential HUBSPOT_TOKEN of source 'crm' cannot be decrypted with "
                                           "the key in KPILOT_SECRET_KEY: it was stored with another key. Fix: set "
                                           "KPILOT_SECRET_KEY to the key it was stored with")
        assert TOKEN not in str(wrong.value)
        monkeypatch.delenv("KPILOT_SECRET_KEY")
        with pytest.raises(CredentialError, match="there is no key to decrypt it: KPILOT_SECRET_KEY is not set"):
            CredentialVault(store, state).get("acme", "crm", "HUBSPOT_TOKEN")
        monkeypatch.setenv("KPILOT_SECRET_KEY", "not-a-key")
        with pytest.raises(CredentialError, match="the encryption key in KPILOT_SECRET_KEY is not a valid key"):
            CredentialVault(store, state).get("acme", "crm", "HUBSPOT_TOKEN")


def test_a_row_copied_onto_another_credential_does_not_decrypt_as_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with AppStore(state_dir=state) as store:
        vault = CredentialVault(store, state)
        vault.set("acme", "crm", "HUBSPOT_TOKEN", TOKEN)
        store.set_credential("acme", "mail", "BREVO_API_KEY", str(store.credential("acme", "crm", "HUBSPOT_TOKEN")))
        with pytest.raises(CredentialError, match="holds another credential's value"):
            vault.get("acme", "mail", "BREVO_API_KEY")


def test_a_sync_without_any_credential_stored_creates_no_database(tmp_path: Path) -> None:
    with stored_credentials(tmp_path / "state", "acme") as lookup:
        assert lookup("crm", "HUBSPOT_TOKEN") is None
    assert not (tmp_path / "state").exists()


# --- the CLI, and a sync with a stored credential -------------------------------------------------------


@pytest.fixture
def hubspot() -> Iterator[HubSpotApi]:
    with HubSpotApi() as api:
        yield api


def _workspace(tmp_path: Path, api: HubSpotApi) -> Path:
    ws = tmp_path / "ws"
    crm.write(ws, "hubspot")
    doc = yaml.safe_load((ws / "kpilot.yaml").read_text(encoding="utf-8"))
    doc["sources"][0]["options"]["base_url"] = api.url
    (ws / "kpilot.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    return ws


def _run(args: list[str], ws: Path, state: Path, input: str | None = None) -> Result:
    result = CliRunner().invoke(app, [*args, "-w", str(ws), "--state-dir", str(state)], input=input)
    for text in (result.stdout, result.stderr):
        assert "very-secret" not in text  # never printed, on success or failure
    return result


def test_kpilot_sync_uses_a_credential_stored_with_kpilot_secrets_set(tmp_path: Path, hubspot: HubSpotApi) -> None:
    hubspot.token = TOKEN
    ws, state = _workspace(tmp_path, hubspot), tmp_path / "state"
    stored = _run(["secrets", "set", "hubspot", "HUBSPOT_TOKEN"], ws, state, input=TOKEN + "\n")
    assert stored.exit_code == 0, stored.output
    assert "Stored HUBSPOT_TOKEN for source 'hubspot', encrypted" in stored.stdout
    assert TOKEN.encode() not in _database_bytes(state)
    listed = _run(["secrets", "list"], ws, state)
    assert listed.exit_code == 0, listed.output
    assert "hubspot" in listed.stdout and "HUBSPOT_TOKEN" in listed.stdout
    synced = _run(["sync"], ws, state)
    assert synced.exit_code == 0, synced.output
    assert all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in hubspot.requests)
    assert hubspot.requests


def test_the_environment_and_the_secrets_file_come_before_the_database(tmp_path: Path, hubspot: HubSpotApi,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    hubspot.token = TOKEN
    ws, state = _workspace(tmp_path, hubspot), tmp_path / "state"
    assert _run(["secrets", "set", "hubspot", "HUBSPOT_TOKEN"], ws, state, input=TOKEN).exit_code == 0
    (ws / ".kpilot").mkdir(exist_ok=True)
    (ws / ".kpilot" / "secrets.env").write_text("HUBSPOT_TOKEN=from-the-file\n", encoding="utf-8")
    failed = _run(["sync"], ws, state)
    assert failed.exit_code == 1
    assert {r.headers.get("authorization") for r in hubspot.requests} == {"Bearer from-the-file"}
    (ws / ".kpilot" / "secrets.env").unlink()
    monkeypatch.setenv("HUBSPOT_TOKEN", "from-the-environment")
    hubspot.requests.clear()
    assert _run(["sync"], ws, state).exit_code == 1
    assert {r.headers.get("authorization") for r in hubspot.requests} == {"Bearer from-the-environment"}


def test_a_sync_with_a_wrong_key_fails_the_source_with_the_reason(tmp_path: Path, hubspot: HubSpotApi,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    ws, state = _workspace(tmp_path, hubspot), tmp_path / "state"
    assert _run(["secrets", "set", "hubspot", "HUBSPOT_TOKEN"], ws, state, input=TOKEN).exit_code == 0
    monkeypatch.setenv("KPILOT_SECRET_KEY", Fernet.generate_key().decode())
    failed = _run(["sync"], ws, state)
    assert failed.exit_code == 1
    assert "cannot be decrypted with the key in KPILOT_SECRET_KEY" in failed.output
    assert not hubspot.requests


def test_kpilot_secrets_set_refuses_an_unknown_source_and_a_bad_name(tmp_path: Path, hubspot: HubSpotApi) -> None:
    ws, state = _workspace(tmp_path, hubspot), tmp_path / "state"
    unknown = _run(["secrets", "set", "hubspt", "HUBSPOT_TOKEN"], ws, state, input=TOKEN)
    assert unknown.exit_code == 1
    assert "no source 'hubspt'" in unknown.output and "did you mean 'hubspot'" in unknown.output
    bad = _run(["secrets", "set", "hubspot", "HUBSPOT-TOKEN"], ws, state, input=TOKEN)
    assert bad.exit_code == 1
    assert "'HUBSPOT-TOKEN' is not a variable name" in bad.output
    assert _run(["secrets", "list"], ws, state).stdout.startswith("No credential is stored")
