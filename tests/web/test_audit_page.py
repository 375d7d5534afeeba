"""The audit page on acme agrees with the rest: what another metric or the funnel uses is never "delete", and
each fix is said in words with a link to the settings form that makes it. The CLI says the same fixes."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

from fastapi.testclient import TestClient

from kpilot.i18n import translator
from kpilot.insights.funnel import funnel_stages
from kpilot.model.errors import render
from kpilot.model.validate import dependencies
from kpilot.web.locale import COOKIE
from tests.cli.test_acme_cli import kpilot
from tests.web.conftest import AS_OF, Expected

EN = {"cookie": f"{COOKIE}=en"}
QUERY = f"?as_of={AS_OF.isoformat()}"
FORM_FIELDS = {"decision": "action", "owners": "owners", "targets": "target_value"}  # a field of the settings form


def _rows(html: str) -> dict[str, str]:
    """Each metric's article on the page, by key."""
    found = re.findall(r'<article class="panel audit-row[^"]*" data-key="([^"]+)" data-verdict="\w+">(.*?)</article>',
                       html, re.S)
    return dict(found)


def _verdicts(html: str) -> dict[str, str]:
    return dict(re.findall(r'<article class="panel audit-row[^"]*" data-key="([^"]+)" data-verdict="(\w+)">', html))


def _fixes(block: str) -> list[tuple[str, str, str | None, str]]:
    """(field, text, link, where) of each fix in a metric's article."""
    out = []
    for field, body in re.findall(r'<li class="fix" data-field="([^"]*)">(.*?)</li>', block, re.S):
        link = re.search(r'<a href="([^"]+)" data-role="fix-link">([^<]*)</a>', body)
        text = unescape(re.sub(r"<[^>]+>", "", body.split("—")[0])).strip()
        where = unescape(link.group(2) if link else re.sub(r"<[^>]+>", "", body.split("—", 1)[1])).strip()
        out.append((field, text, unescape(link.group(1)) if link else None, where))
    return out


def test_what_others_use_is_never_deleted(client: TestClient, expected: Expected) -> None:
    html = client.get(f"/audit{QUERY}").text
    verdicts = _verdicts(html)
    ws = client.app.state.gate.primary.ws  # type: ignore[attr-defined]
    assert verdicts == {v.key: v.verdict for v in expected.audit}
    used = {d for m in ws.metrics for d in dependencies(ws, m)} | {s.metric for s in funnel_stages(list(ws.metrics))}
    assert {"active_subscriptions", "ad_spend", "demos_booked", "leads", "mql_rate"} <= used
    assert [k for k in sorted(used) if verdicts[k] == "delete"] == []
    assert {k for k, v in verdicts.items() if v == "delete"} == {"sessions", "cost_per_demo"}
    english = _rows(client.get(f"/audit{QUERY}", headers=EN).text)
    assert "<li>used by Churn clients as its denominator</li>" in english["active_subscriptions"]
    assert "<li>input of Coût par démo</li>" in english["ad_spend"]
    assert "<li>the MQL stage of the marketing-sales funnel</li>" in english["mql_rate"]
    french = _rows(html)
    assert "<li>utilisé par Churn clients comme dénominateur</li>" in french["active_subscriptions"]
    assert "<li>l&#39;étape « MQL » de l&#39;entonnoir marketing-ventes</li>" in french["mql_rate"]


def test_each_fix_says_what_to_do_and_links_to_its_settings(client: TestClient, expected: Expected) -> None:
    rows = _rows(client.get(f"/audit{QUERY}").text)
    tr = translator("fr")
    fixed = [v for v in expected.audit if v.verdict == "fix"]
    assert {v.key for v in fixed} == {"leads", "won_revenue"}
    for v in expected.audit:
        shown = _fixes(rows[v.key])
        assert len(shown) == len(v.fixes) and bool(shown) == (v.verdict == "fix"), v.key
        for (field, text, link, where), fix in zip(shown, v.fixes, strict=True):
            assert (field, text) == (fix.field, render(fix.text, tr))
            assert "`" not in text and "Correction :" not in text
            if fix.where == "settings":
                assert link == f"/settings/metric/{v.key}{QUERY}"
                assert where == f"dans les réglages de {v.title}"
                form = client.get(link)
                assert form.status_code == 200 and f'name="{FORM_FIELDS[field]}"' in form.text
            else:
                assert (link, where) == (None, "dans kpilot.yaml")
    # Leads is a funnel stage (it needs no decision of its own) that marketing alone pushes: share it.
    assert [(f, t) for f, t, _, _ in _fixes(rows["leads"])] == [
        ("owners", "Ajoutez une deuxième équipe à ses responsables, pour que le volume seul ne l'emporte pas")]
    # Won revenue is an outcome: worth a decision rule and a target, and pushed by sales alone.
    assert [f for f, _, _, _ in _fixes(rows["won_revenue"])] == ["decision", "targets", "owners"]
    assert "<strong>À corriger</strong>" in rows["leads"]


def test_the_cli_says_the_same_fixes(acme_dir: Path, tmp_path: Path, expected: Expected) -> None:
    r = kpilot("audit", "-w", str(acme_dir), "--as-of", AS_OF.isoformat(), "--lang", "en", env_state=tmp_path)
    assert r.returncode == 0, r.stderr
    text = re.sub(r"\s+", " ", r.stdout)
    for v in expected.audit:
        for fix in v.fixes:
            where = (f"on the settings page /settings/metric/{v.key}, or in kpilot.yaml" if fix.where == "settings"
                     else "in kpilot.yaml")
            assert f"→ {fix.text} — {where}" in text, (v.key, fix.text)
    assert "Fix:" not in text and "`" not in text
    assert "· used by Churn clients as its denominator" in text
