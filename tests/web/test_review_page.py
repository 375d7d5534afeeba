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
