"""Errors in the workspace's language: acme is French, so its errors are French; --lang en gives English."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.cli.test_acme_cli import kpilot


def _copy(acme_dir: Path, tmp_path: Path) -> Path:
    ws = tmp_path / "acme"
    shutil.copytree(acme_dir, ws)
    for p in ws.rglob("*"):
        p.chmod(0o644 if p.is_file() else 0o755)
    return ws


def _rewrite(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.fixture()
def acme_fr(acme_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    return _copy(acme_dir, tmp_path), tmp_path / "state"


@pytest.mark.parametrize(("lang", "expected"), [
    ((), ["erreur : metrics[0].measure: colonne inconnue 'mrr' dans le modèle subscriptions ; "
          "vouliez-vous dire 'mrr_eur' ? colonnes : 'subscription_id'",
          "correction : utilisez l'une des colonnes listées, ou vérifiez l'en-tête du fichier de données"]),
    (("--lang", "en"), ["error: metrics[0].measure: unknown column 'mrr' in model subscriptions; "
                        "did you mean 'mrr_eur'? columns: 'subscription_id'",
                        "fix: use one of the listed columns, or check the data file's header"]),
])
def test_unknown_column_with_its_suggestion(acme_fr: tuple[Path, Path], lang: tuple[str, ...],
                                            expected: list[str]) -> None:
    ws, state = acme_fr
    _rewrite(ws / "kpilot.yaml", "measure: sum(mrr_eur)", "measure: sum(mrr)")
    line = next(i for i, t in enumerate((ws / "kpilot.yaml").read_text().splitlines(), 1) if "sum(mrr)" in t)
    r = kpilot("validate", "-w", str(ws), *lang, env_state=state)
    assert r.returncode == 1
    assert f"kpilot.yaml:{line}:18: " in r.stderr, r.stderr
    for fragment in expected:
        assert fragment in r.stderr, r.stderr


@pytest.mark.parametrize(("lang", "expected"), [
    ((), ["erreur : syntaxe YAML incorrecte : une valeur de dictionnaire n'est pas permise ici",
          "correction : vérifiez l'indentation et les guillemets de cette ligne",
          "erreur : 1 erreur(s) ; rien n'a été modifié."]),
    (("--lang", "en"), ["error: YAML syntax error: mapping values are not allowed here",
                        "fix: check indentation and quoting on this line",
                        "error: 1 error(s); nothing was changed."]),
])
def test_a_yaml_syntax_error(acme_fr: tuple[Path, Path], lang: tuple[str, ...], expected: list[str]) -> None:
    # The file does not parse, so its `language: fr` line is read as a line.
    ws, state = acme_fr
    _rewrite(ws / "kpilot.yaml", "title: Acme Gestion", "title: Acme: Gestion")
    r = kpilot("validate", "-w", str(ws), *lang, env_state=state)
    assert r.returncode == 1
    assert "kpilot.yaml:6:12: " in r.stderr, r.stderr
    for fragment in expected:
        assert fragment in r.stderr, r.stderr


def test_a_ragged_csv_row_on_load(acme_fr: tuple[Path, Path]) -> None:
    ws, state = acme_fr
    assert kpilot("load", "-w", str(ws), env_state=state).returncode == 0
    row = "D00002,2024-01-11 19:36:00,2024-02-10 19:36:00,lost,8060.0,PME,Hugo Bernard,seo"
    _rewrite(ws / "data" / "deals.csv", row, row + ",extra")
    r = kpilot("load", "-w", str(ws), env_state=state)
    assert r.returncode == 1
    assert "erreur : data/deals.csv, ligne 3 : 9 champ(s) alors que l'en-tête en a 8 (séparateur ',')." in r.stderr
    assert f"  3 | {row},extra" in r.stderr
    assert "Correction : supprimez le ',' en trop, ou mettez la valeur qui le contient entre guillemets" in r.stderr
    assert "Rien n'a été chargé : chaque table garde ses données précédentes." in r.stderr
    assert "Traceback" not in r.stderr
    r = kpilot("load", "-w", str(ws), "--lang", "en", env_state=state)
    assert r.returncode == 1
    assert "error: data/deals.csv, line 3: 9 field(s) where the header has 8 (delimiter ',')." in r.stderr
    assert "Fix: remove the extra ','" in r.stderr
    assert "Nothing was loaded: every table keeps its previous data." in r.stderr


@pytest.mark.parametrize(("lang", "expected"), [
    ((), "erreur : indicateur inconnu 'demo_booked' ; vouliez-vous dire 'demos_booked' ? indicateurs : 'mrr', "),
    (("--lang", "en"), "error: unknown metric 'demo_booked'; did you mean 'demos_booked'? metrics: 'mrr', "),
])
def test_an_unknown_metric_for_series(acme_dir: Path, tmp_path: Path, lang: tuple[str, ...], expected: str) -> None:
    r = kpilot("series", "demo_booked", "-w", str(acme_dir), *lang, env_state=tmp_path / "state")
    assert r.returncode == 1
    assert expected in r.stderr, r.stderr


def test_an_english_workspace_in_french_on_request(tmp_path: Path) -> None:
    ws = tmp_path / "en"
    assert kpilot("init", str(ws), "--template", "saas", env_state=tmp_path / "s").returncode == 0
    r = kpilot("series", "nope", "-w", str(ws), "--as-of", "2026-02-30", env_state=tmp_path / "s")
    assert "error: --as-of '2026-02-30' is not a date; write it as YYYY-MM-DD" in r.stderr
    r = kpilot("series", "nope", "-w", str(ws), "--from", "2026-X", "--lang", "fr", env_state=tmp_path / "s")
    assert ("erreur : '2026-X' n'est pas une période ; écrivez-la sous la forme 2026, 2026-Q1, 2026-03, 2026-W05 ou "
            "2026-03-15") in r.stderr
