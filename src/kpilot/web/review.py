"""The weekly steering review in the web app: `/review` (the page) and `/review.pdf` (the same, as a PDF), in the
page's language and as of its date. Built by the service, exactly as `kpilot review` builds it."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from kpilot.service import review as service
from kpilot.web.settings import Forms
from kpilot.web.state import WorkspaceGate

# The review is one self-contained document: its styles inline, its charts as data: images.
REVIEW_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; "
              "base-uri 'none'; form-action 'none'")


def register(app: FastAPI, gate: WorkspaceGate, forms: Forms) -> None:
    """Mount /review and /review.pdf on the app."""

    def build(request: Request, fmt: str) -> tuple[bytes, str]:
        """The review in `fmt`, and the last day of its week. Without a date asked for, the week `kpilot review`
        reviews: on the first day of a week, the week that just ended."""
        page = forms.page_of(request)
        with gate.service() as svc:
            asked = (request.query_params.get("as_of") or "").strip()
            day = page.as_of if asked else service.default_day(svc) or page.as_of
            review = service.build_review(svc, as_of=day, lang=page.lang)
        return service.render_review(review, fmt), review.as_of.isoformat()

    @app.get("/review", response_class=HTMLResponse)
    async def review_page(request: Request) -> Response:
        """The week's review: North Star and board, what changed, predicted misses, alerts, decisions."""
        body, _ = await run_in_threadpool(build, request, "html")
        return HTMLResponse(body, headers={"Content-Security-Policy": REVIEW_CSP})

    @app.get("/review.pdf")
    async def review_pdf(request: Request) -> Response:
        """The same review as a PDF, to download or print."""
        body, day = await run_in_threadpool(build, request, "pdf")
        return Response(body, media_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="kpilot-review-{day}.pdf"'})


__all__ = ["REVIEW_CSP", "register"]
