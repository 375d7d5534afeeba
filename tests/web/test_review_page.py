"""The weekly review in the web app: the page and its PDF say what the service's board says."""

from __future__ import annotations

import subprocess
from html import unescape

from fastapi.testclient import TestClient

from kpilot.i18n import format_value, format_verdict
from kpilot.service import MetricStatus
from tests.web.conftest import AS_OF


def test_the_review_page_and_its_pdf(client: TestClient, engine_board: list[MetricStatus], tmp_path) -> None:
    r = client.get(f"/review?as_of={AS_OF.isoformat()}")
    assert r.status_code == 200
    assert "img-src data:" in r.headers["content-security-policy"]
    page = unescape(r.text)
    assert '<html lang="fr"' in page and "Revue hebdomadaire" in page
    for s in engine_board:
        words, _ = format_verdict(s.verdict.value, s.verdict_reason, s.data_through, "fr")
        assert s.name in page and words in page
        assert format_value(s.value, s.unit, "fr") in page
    pdf = client.get(f"/review.pdf?as_of={AS_OF.isoformat()}")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert f'kpilot-review-{AS_OF.isoformat()}.pdf' in pdf.headers["content-disposition"]
    (tmp_path / "r.pdf").write_bytes(pdf.content)
    text = subprocess.run(["pdftotext", str(tmp_path / "r.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert all(s.name.split(" (")[0] in text for s in engine_board)
    board = client.get(f"/?as_of={AS_OF.isoformat()}").text
    assert f'href="/review?as_of={AS_OF.isoformat()}"' in board


def test_without_a_date_the_page_reviews_the_week_kpilot_review_does(acme_dir, tmp_path, monkeypatch) -> None:
    # On a Monday the week has barely begun: `kpilot review` then reviews the week that just ended, and so does
    # the page (it reviewed the seven days ending that Monday, a week nobody plans in, mostly empty).
    from datetime import date

    from kpilot.service import WorkspaceService
    from kpilot.web import create_app

    monkeypatch.setattr(WorkspaceService, "today", lambda self: date(2026, 11, 23))  # acme: a Monday
    with TestClient(create_app(acme_dir, state_dir=tmp_path), base_url="http://127.0.0.1") as client:
        page = unescape(client.get("/review").text)
        assert "16 nov. 2026 – 22 nov. 2026" in page, page[:2000]
        pdf = client.get("/review.pdf")
        assert "kpilot-review-2026-11-22.pdf" in pdf.headers["content-disposition"]
        # A date asked for is the last day of the week reviewed, as with `kpilot review --as-of`.
        assert "17 nov. 2026 – 23 nov. 2026" in unescape(client.get("/review?as_of=2026-11-23").text)
