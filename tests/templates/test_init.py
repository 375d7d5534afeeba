"""`kpilot init`: refusals and errors for people, and every template the parent asked for x {en, fr}
validating with no error and no warning against the schema of the CSV files it wrote."""

from __future__ import annotations

import errno
from datetime import date
from pathlib import Path

import duckdb
import pytest

from kpilot.model import KpilotError, Workspace, load_workspace, parse_workspace
from kpilot.templates import LANGUAGES, TEMPLATES, init_workspace, sample_start
from tests.conftest import csv_schema, fail_copy, files_under

TODAY = date(2026, 11, 26)
MINE = ("esn", "ecommerce")  # saas and smarketing are tested beside their own modules


@pytest.fixture(scope="module", params=[(t, lang) for t in MINE for lang in LANGUAGES], ids=lambda p: "-".join(p))
def made(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, Path]:
    template, language = request.param
    target = tmp_path_factory.mktemp(f"{template}-{language}") / "acme-ws"
    init_workspace(target, template, language, today=TODAY)
    return template, language, target


def test_unknown_template_names_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(KpilotError) as err:
        init_workspace(tmp_path, "esm")
    text = str(err.value)
    assert "unknown template 'esm'; did you mean 'esn'?" in text
    assert "'saas', 'esn', 'smarketing', 'ecommerce'" in text
    assert "--template" in text
    assert not any(tmp_path.iterdir()), "nothing is written for an unknown template"


def test_unknown_language_names_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(KpilotError) as err:
        init_workspace(tmp_path, "esn", "de")
    assert "unknown language 'de'; languages: 'en', 'fr'" in str(err.value)
    with pytest.raises(KpilotError, match="unknown language 'FR'; did you mean 'fr'"):
        init_workspace(tmp_path, "esn", "FR")


def test_template_module_missing_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kpilot.templates as templates

    monkeypatch.setattr(templates, "TEMPLATES", (*TEMPLATES, "retail"))
    with pytest.raises(KpilotError, match="template 'retail' is not installed"):
        init_workspace(tmp_path, "retail")


def test_refuses_to_overwrite_a_workspace_unless_forced(tmp_path: Path) -> None:
    manifest = init_workspace(tmp_path, "esn", today=TODAY)
    manifest.write_text("workspace: mine\n", encoding="utf-8")
    with pytest.raises(KpilotError) as err:
        init_workspace(tmp_path, "ecommerce", today=TODAY)
    assert f"{manifest} already exists" in str(err.value)
    assert "--force" in str(err.value)
    assert manifest.read_text(encoding="utf-8") == "workspace: mine\n"
    assert not (tmp_path / "data" / "orders.csv").exists(), "a refused init writes nothing"

    assert init_workspace(tmp_path, "esn", "fr", today=TODAY, force=True) == manifest
    assert "title: Cobalt Conseil" in manifest.read_text(encoding="utf-8")


def test_refuses_to_overwrite_data_files_unless_forced(tmp_path: Path) -> None:
    # A folder of real exports without a kpilot.yaml yet: the sample must not replace them silently.
    (tmp_path / "data").mkdir()
    real = tmp_path / "data" / "timesheets.csv"
    real.write_text("consultant_id,date,kind,days\nC1,2026-01-05,billed,1\n", encoding="utf-8")
    with pytest.raises(KpilotError) as err:
        init_workspace(tmp_path, "esn", today=TODAY)
    assert str(real) in str(err.value) and "--force" in str(err.value)
    assert real.read_text(encoding="utf-8").startswith("consultant_id,date,kind,days\nC1,")
    assert not (tmp_path / "kpilot.yaml").exists()

    init_workspace(tmp_path, "esn", today=TODAY, force=True)
    assert real.read_text(encoding="utf-8").startswith("consultant_id,date,kind,days,mission_id\n")


def test_target_must_be_a_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    with pytest.raises(KpilotError, match=r"notes\.txt is a file, not a folder"):
        init_workspace(tmp_path / "notes.txt", "esn", today=TODAY)


def test_target_under_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    with pytest.raises(KpilotError, match=r"notes\.txt is a file, not a folder"):
        init_workspace(tmp_path / "notes.txt" / "ws", "esn", today=TODAY)


def test_a_folder_where_a_sample_file_goes_is_refused_even_with_force(tmp_path: Path) -> None:
    (tmp_path / "data" / "timesheets.csv").mkdir(parents=True)
    with pytest.raises(KpilotError) as err:
        init_workspace(tmp_path, "esn", today=TODAY, force=True)
    assert f"{tmp_path / 'data' / 'timesheets.csv'} is a folder" in str(err.value)
    assert "Fix: move or rename that folder" in str(err.value)
    assert files_under(tmp_path) == ["data", "data/timesheets.csv"], "nothing was written"


def test_a_file_where_the_data_folder_goes_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a folder", encoding="utf-8")
    with pytest.raises(KpilotError, match=r"data is a file, but the ecommerce template needs a folder there"):
        init_workspace(tmp_path, "ecommerce", today=TODAY)
    assert files_under(tmp_path) == ["data"]


@pytest.mark.parametrize(("error", "message"), [
    (errno.EACCES, "kpilot may not write to {path} (permission denied); nothing was written. Fix: pick a folder"),
    (errno.ENOSPC, "could not write to {path}: No space left on device; nothing was written. Fix: check"),
])
def test_a_write_failing_midway_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     error: int, message: str) -> None:
    target = tmp_path / "new" / "ws"
    copies = fail_copy(monkeypatch, at=3, error=error)
    with pytest.raises(KpilotError) as err:
        init_workspace(target, "esn", today=TODAY)
    assert message.format(path=copies[2]) in str(err.value)
    assert files_under(tmp_path) == [], "the files and folders this run made are removed"
    monkeypatch.undo()
    assert init_workspace(target, "esn", today=TODAY) == target / "kpilot.yaml", "a re-run is not refused"


def test_a_forced_init_failing_midway_keeps_the_users_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = init_workspace(tmp_path, "esn", today=TODAY)
    manifest.write_text("workspace: mine\n", encoding="utf-8")
    before = files_under(tmp_path)
    fail_copy(monkeypatch, at=4, error=errno.EACCES)
    with pytest.raises(KpilotError, match="permission denied"):
        init_workspace(tmp_path, "ecommerce", today=TODAY, force=True)
    assert manifest.read_text(encoding="utf-8") == "workspace: mine\n"
    assert files_under(tmp_path) == before, "no temporary file and no new sample file is left"


def test_workspace_key_comes_from_the_folder_name(tmp_path: Path) -> None:
    manifest = init_workspace(tmp_path / "Dupont & Fils", "esn", today=TODAY)
    ws, _ = parse_workspace(manifest.read_text(encoding="utf-8"))
    assert ws.workspace == "Dupont-Fils"


def test_validates_with_no_error_and_no_warning(made: tuple[str, str, Path]) -> None:
    _, language, target = made
    schema = csv_schema(target / "data")
    ws, issues = load_workspace(target, schema)
    assert [str(i) for i in issues] == []
    assert ws.language.value == language
    assert ws.workspace == "acme-ws"
    models = {m.table for m in ws.models}
    assert models == set(schema), "every data file is used by a model, and every model has its file"


def test_north_star_and_board_are_kpis(made: tuple[str, str, Path]) -> None:
    _, _, target = made
    ws, _ = load_workspace(target)
    assert ws.north_star is not None and 3 <= len(ws.board) <= 5
    teams = {t.key for t in ws.teams}
    for key in (ws.north_star, *ws.board):
        metric = ws.metric(key)
        assert metric.is_kpi, f"{key} lacks a target, an owner or a decision"
        assert metric.decision is not None and metric.decision.owner in teams and len(metric.decision.action) > 40
        assert metric.kind is not None, f"{key} should say whether it is leading or lagging"
    kinds = {str(ws.metric(k).kind) for k in ws.board}
    assert kinds == {"leading", "lagging"}, "the board mixes leading and lagging KPIs"
    assert any(len(ws.metric(k).owners) >= 2 for k in (ws.north_star, *ws.board)), "at least one shared KPI"


def test_yaml_is_commented_in_its_language(made: tuple[str, str, Path]) -> None:
    _, language, target = made
    text = (target / "kpilot.yaml").read_text(encoding="utf-8")
    comments = [line for line in text.splitlines() if line.lstrip().startswith("#") or " # " in line]
    assert len(comments) >= 40
    assert "${" not in text, "every placeholder is filled"
    words = ("étoile du nord", "indicateur de vanité", "Brancher vos vraies données") if language == "fr" else (
        "North Star", "vanity metric", "Connect your real data")
    for word in words:
        assert word in text


def _texts_removed(ws: Workspace) -> dict[str, object]:
    data = ws.model_dump()
    for field in ("workspace", "title", "language", "vision"):
        data.pop(field)
    for team in data["teams"]:
        team.pop("name")
    for metric in data["metrics"]:
        metric.pop("name")
        metric.pop("description")
        if metric["decision"]:
            metric["decision"].pop("action")
    return data


@pytest.mark.parametrize("template", MINE)
def test_english_and_french_define_the_same_workspace(template: str, tmp_path: Path) -> None:
    en, _ = load_workspace(init_workspace(tmp_path / "en", template, "en", today=TODAY))
    fr, _ = load_workspace(init_workspace(tmp_path / "fr", template, "fr", today=TODAY))
    assert _texts_removed(en) == _texts_removed(fr)
    assert en.vision and fr.vision and en.vision.statement != fr.vision.statement
    for m_en, m_fr in zip(en.metrics, fr.metrics, strict=True):
        if m_en.decision and m_fr.decision:
            assert m_en.decision.action != m_fr.decision.action, f"{m_en.key}: action not translated"
    assert [t.name for t in en.teams] != [t.name for t in fr.teams]


@pytest.mark.parametrize("template", MINE)
def test_sample_data_is_deterministic_and_ends_today(template: str, tmp_path: Path) -> None:
    a = init_workspace(tmp_path / "a", template, today=TODAY).parent
    b = init_workspace(tmp_path / "b", template, "fr", today=TODAY).parent
    names = sorted(p.name for p in (a / "data").iterdir())
    assert names and names == sorted(p.name for p in (b / "data").iterdir())
    for name in names:
        assert (a / "data" / name).read_bytes() == (b / "data" / name).read_bytes(), name
    later = init_workspace(tmp_path / "c", template, today=date(2027, 2, 3)).parent
    assert (later / "data" / names[0]).read_bytes() != (a / "data" / names[0]).read_bytes()

    con = duckdb.connect()
    table, column = ("timesheets", "date") if template == "esn" else ("orders", "ordered_at")
    first, last = con.execute(f"SELECT min({column})::DATE, max({column})::DATE "
                              f"FROM read_csv('{a / 'data' / (table + '.csv')}')").fetchone()  # type: ignore[misc]
    assert sample_start(TODAY) <= first <= date(2025, 11, 3)  # 2025-11-01 is a Saturday and a holiday
    assert last == TODAY


def test_a_committed_workspace_carries_no_state_and_no_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`git add -A` in a fresh workspace, after a load and a stored credential, adds no warehouse, no application
    database and no key; the key lives in the user's configuration folder, the database is for its owner only."""
    import stat
    import subprocess

    from kpilot.service import WorkspaceService
    from kpilot.store import AppStore
    from kpilot.store.credentials import KEY_FILE, CredentialVault, config_dir

    ws = tmp_path / "ws"
    monkeypatch.delenv("KPILOT_STATE_DIR")  # the default: .kpilot/ inside the workspace folder
    init_workspace(ws, "saas", "en", today=TODAY)
    assert ".kpilot/" in (ws / ".gitignore").read_text(encoding="utf-8").splitlines()
    with WorkspaceService(ws) as svc:
        svc.load()
        state = svc.state_dir
        with AppStore(state_dir=state) as store:
            CredentialVault(store, state).set("saas", "crm", "TOKEN", "t0ken-value")
    assert state == ws / ".kpilot"
    assert stat.S_IMODE((state / "app.db").stat().st_mode) == 0o600
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert (config_dir() / KEY_FILE).exists() and not (state / KEY_FILE).exists()
    git = ["git", "-C", str(ws), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    added = subprocess.run([*git, "diff", "--cached", "--name-only"], check=True, capture_output=True,
                           text=True).stdout.split()
    assert "kpilot.yaml" in added and ".gitignore" in added
    assert [f for f in added if f.startswith(".kpilot") or f.endswith((".duckdb", ".db", ".key"))] == []


def test_an_existing_gitignore_gets_kpilots_lines_once(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / ".gitignore").write_text("node_modules/", encoding="utf-8")
    init_workspace(ws, "saas", "en", today=TODAY)
    init_workspace(ws, "saas", "en", today=TODAY, force=True)
    lines = (ws / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "node_modules/"
    assert lines.count(".kpilot/") == 1
