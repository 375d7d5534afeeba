"""Sending the weekly review of acme (in French) through the outbox, to a real SMTP server and a local Slack receiver:
one message per target of `review: to:` (a channel key, or an address e-mailed on its own), the PDF attached to the
e-mails and the text with the link on Slack; `kpilot review --send` checks its settings first; the worker sends the
review on Monday at 8:00 in Paris, once."""

from __future__ import annotations

import email
import json
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from shutil import copytree

import pytest

from kpilot.i18n import VERDICT_LABELS, format_value, format_verdict, translator
from kpilot.model import KpilotError, WorkspaceInvalid, load_workspace
from kpilot.service import MetricStatus, WorkspaceService
from kpilot.service.alerts import deliver
from kpilot.service.review import check_sending, queue_review
from kpilot.worker import REVIEW, Scheduler, TickReport
from tests.alerting.receivers import HttpReceiver, SmtpReceiver
from tests.cli.test_acme_cli import kpilot
from tests.test_worker import FakeClock, utc

AS_OF = date(2026, 11, 20)  # a Friday: the review of 14 to 20 November
SUBJECT = "Revue hebdomadaire — Acme Gestion, semaine du 14 nov. 2026"
CONFIG = """
channels:
  - {key: direction-mail, type: email, to: [direction@acme.fr]}
  - {key: direction-slack, type: slack, url_env: DIRECTION_SLACK}
base_url: https://kpilot.acme.fr
review: {schedule: "0 8 * * MON", to: [direction-mail, dg@acme.fr, direction-slack]}
"""


def _workspace(acme_dir: Path, root: Path, config: str = CONFIG) -> Path:
    ws = root / "acme"
    copytree(acme_dir, ws)
    with (ws / "kpilot.yaml").open("a", encoding="utf-8") as f:
        f.write(config)
    return ws


def _line_of(ws: Path, text: str) -> int:
    lines = (ws / "kpilot.yaml").read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def _spaces(text: str) -> str:
    return text.replace("\u00a0", " ").replace("\u202f", " ")


def _mail(content: bytes) -> EmailMessage:
    mail = email.message_from_bytes(content, policy=policy.default)
    assert isinstance(mail, EmailMessage)
    return mail


def _pdf_text(pdf: bytes, folder: Path) -> str:
    path = folder / "attached.pdf"
    path.write_bytes(pdf)
    return _spaces(subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                                  check=True).stdout)


def _item(s: MetricStatus, currency: str) -> str:
    """A board KPI as the message lists it: its name, its verdict's words, its value."""
    verdict, _ = format_verdict(s.verdict.value, s.verdict_reason, s.data_through, "fr")
    return f"{s.name}: {verdict} — {format_value(s.value, s.unit, 'fr', currency=currency)}"


@pytest.mark.slow
def test_each_target_gets_the_review(acme_dir: Path, tmp_path: Path) -> None:
    ws = _workspace(acme_dir, tmp_path)
    with WorkspaceService(ws, state_dir=tmp_path / "state") as svc, SmtpReceiver() as smtp, \
            HttpReceiver(200, b"ok") as slack:
        svc.load()
        env = {"KPILOT_SMTP_URL": smtp.url(), "DIRECTION_SLACK": slack.url("/services/T0/B0/secretpath")}
        check_sending(svc, env)  # everything it needs is set: no error
        assert queue_review(svc, as_of=AS_OF) == 3
        store = svc.app_store()
        queued = store.outbox("acme", states=["pending"])
        assert sorted((m.channel, m.recipient, m.kind, m.week) for m in queued) == [
            ("direction-mail", "direction-mail", "review", "2026-11-14"),
            ("direction-slack", "direction-slack", "review", "2026-11-14"),
            ("mailto:dg@acme.fr", "dg@acme.fr", "review", "2026-11-14")]
        stored = {m.channel: m.message for m in queued}
        assert stored["direction-slack"]["attachment"] is None  # the PDF is stored for the e-mails only
        report = deliver(svc, env, now=datetime.now(UTC) + timedelta(seconds=1))
        assert len(report.sent) == 3 and report.retrying == [] and report.failed == []
        assert store.outbox("acme", states=["pending", "failed"]) == []
        board = svc.board(as_of=AS_OF)
        week_before = {s.key: s.verdict.value for s in svc.board(as_of=AS_OF - timedelta(days=7))}

    # Two e-mails: the channel's address, and the address named in `to:`, each on its own.
    mails = {tuple(e.rcpt_tos): _mail(e.content) for e in smtp.envelopes}
    assert sorted(mails) == [("dg@acme.fr",), ("direction@acme.fr",)]
    assert mails[("dg@acme.fr",)]["To"] == "dg@acme.fr"
    tr = translator("fr")
    counts = Counter(s.verdict.value for s in board)
    headline = " · ".join(f"{tr('{label}:').format(label=tr(label))} {counts[v]}"
                          for v, label in VERDICT_LABELS.items() if counts[v])
    for mail in mails.values():
        assert mail["Subject"] == SUBJECT
        [attached] = list(mail.iter_attachments())
        assert attached.get_filename() == "kpilot-review-2026-11-20.pdf"
        assert attached.get_content_type() == "application/pdf"
        pdf = attached.get_content()
        assert pdf.startswith(b"%PDF")
        body = mail.get_body(("plain",))
        assert body is not None
        text = body.get_content().replace("\r\n", "\n")
        assert text.startswith(f"{headline}\n\n")
        for s in board:  # the North Star and every board KPI, with the verdict the board gives it
            assert _item(s, "EUR") in text
        assert "Ouvrir le tableau de bord: https://kpilot.acme.fr" in text
        # What changed: each KPI whose verdict is not the one of a week earlier, with both verdicts.
        changed = [s for s in board if s.verdict.value != week_before[s.key]]
        assert [s.key for s in changed] == ["logo_churn"]
        for s in changed:
            was, now = (format_verdict(v, None, None, "fr")[0] for v in (week_before[s.key], s.verdict.value))
            assert any(s.name in line and f"« {was} »" in line and f"« {now} »" in line
                       for line in text.split("\n\n")[1].splitlines())
    pdf_text = _pdf_text(pdf, tmp_path)
    assert "Revue hebdomadaire — Acme Gestion" in pdf_text
    assert all(s.name in pdf_text for s in board)

    # Slack: the text and the link, no file.
    [request] = slack.requests
    assert b"JVBER" not in request.body  # %PDF in base64
    payload = json.loads(request.body)
    assert payload["text"] == SUBJECT
    assert payload["blocks"][0]["text"]["text"] == f"📊 {headline}"
    sections = "\n".join(b["text"]["text"] for b in payload["blocks"] if b["type"] == "section")
    assert all(f"*<https://kpilot.acme.fr/metric/{s.key}|{s.name}>*" in sections for s in board)
    [button] = payload["blocks"][-1]["elements"]
    assert button["url"] == "https://kpilot.acme.fr"


def test_the_review_needs_its_targets_and_only_their_settings(acme_dir: Path, tmp_path: Path) -> None:
    bare = _workspace(acme_dir, tmp_path / "bare", "")
    with WorkspaceService(bare, state_dir=tmp_path / "bare-state") as svc, pytest.raises(KpilotError) as caught:
        queue_review(svc, as_of=AS_OF)
    said = str(caught.value)
    assert said.startswith(f"{bare / 'kpilot.yaml'} does not say whom the weekly review goes to.")
    assert "review: {to: [direction, ceo@example.com]}" in said

    # The review goes to an address; the Slack channel's variable (alerts use it) is unset and does not matter.
    config = ("channels:\n  - {key: sales-slack, type: slack, url_env: SALES_SLACK}\n"
              "review:\n  schedule: \"0 8 * * MON\"\n  to: [dg@acme.fr]\n")
    ws = _workspace(acme_dir, tmp_path / "address", config)
    with WorkspaceService(ws, state_dir=tmp_path / "address-state") as svc:
        check_sending(svc, {"KPILOT_SMTP_URL": "smtp://mail.acme.fr:587"})
        with pytest.raises(WorkspaceInvalid) as invalid:
            check_sending(svc, {"SALES_SLACK": "https://hooks.slack.com/services/x"})
    [issue] = invalid.value.issues
    assert issue.code == "no_smtp" and issue.location is not None
    assert issue.location.line == _line_of(ws, "to: [dg@acme.fr]")


@pytest.mark.slow
def test_kpilot_review_send(acme_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = _workspace(acme_dir, tmp_path)
    state = tmp_path / "state"
    monkeypatch.delenv("KPILOT_SMTP_URL", raising=False)
    monkeypatch.setenv("DIRECTION_SLACK", "http://127.0.0.1:9/unused")
    r = kpilot("review", "-w", str(ws), "--send", "--as-of", "2026-11-20", env_state=state)
    assert r.returncode == 1
    # At the line of the e-mail channel, before anything is built or queued.
    assert f"kpilot.yaml:{_line_of(ws, 'key: direction-mail')}:" in r.stderr and "KPILOT_SMTP_URL" in r.stderr
    assert r.stdout == ""

    with SmtpReceiver() as smtp, HttpReceiver(200, b"ok") as slack:
        monkeypatch.setenv("KPILOT_SMTP_URL", smtp.url())
        monkeypatch.setenv("DIRECTION_SLACK", slack.url("/services/T0/B0/secretpath"))
        r = kpilot("review", "-w", str(ws), "--send", env_state=state)  # today's: loads the data first
    assert r.returncode == 0, r.stderr
    assert "La revue est en file d'envoi pour 3 destinataire(s)." in r.stdout
    assert "Envoyés : 3 ; nouvel essai plus tard : 0 ; en échec : 0." in r.stdout
    assert sorted(e.rcpt_tos[0] for e in smtp.envelopes) == ["dg@acme.fr", "direction@acme.fr"]
    assert len(slack.requests) == 1


@pytest.mark.slow
def test_the_worker_sends_the_review_on_monday_at_eight_once(acme_dir: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from kpilot.cli.sources import _print_tick

    ws = _workspace(acme_dir, tmp_path)

    @contextmanager
    def session() -> Iterator[WorkspaceService]:
        with WorkspaceService(ws, state_dir=tmp_path / "state") as svc:
            yield svc

    clock = FakeClock(utc(2026, 11, 23, 6, 59, 30))  # Monday 23 November, 7:59:30 in Paris (CET)
    reports: list[TickReport] = []
    scheduler = Scheduler(session, lambda: load_workspace(ws / "kpilot.yaml")[0], clock=clock, sleep=clock.sleep,
                          on_tick=reports.append)
    with SmtpReceiver() as smtp, HttpReceiver(200, b"ok") as slack:
        monkeypatch.setenv("KPILOT_SMTP_URL", smtp.url())
        monkeypatch.setenv("DIRECTION_SLACK", slack.url("/services/T0/B0/secretpath"))
        assert scheduler.next_runs() == {REVIEW: utc(2026, 11, 23, 7, 0)}  # 8:00 in Paris
        scheduler.run_forever(ticks=4)  # ticks, sleeps until 8:00, ticks, then at 8:01 and 8:02
        assert [r.at for r in reports] == [utc(2026, 11, 23, 6, 59, 30), utc(2026, 11, 23, 7, 0),
                                           utc(2026, 11, 23, 7, 1), utc(2026, 11, 23, 7, 2)]
        before, monday, *after = reports
        assert before.review is None and before.error is None  # not yet
        assert monday.review == 3 and monday.error is None
        assert monday.delivery is not None and len(monday.delivery.sent) == 3
        assert [(r.review, r.delivery.sent if r.delivery else None) for r in after] == [(None, []), (None, [])]
        assert len(smtp.envelopes) == 2 and len(slack.requests) == 1  # once
    assert scheduler.next_runs()[REVIEW] == utc(2026, 11, 30, 7, 0)  # next Monday
    _print_tick(monday, translator("fr"), "fr", retried=True)
    said = capsys.readouterr().out
    assert "revue hebdomadaire : 3 message(s) en file d'envoi" in said
    assert "file d'envoi : 3 envoyé(s), 0 à réessayer, 0 en échec" in said


def test_a_failing_review_is_reported_and_stays_due(acme_dir: Path, tmp_path: Path) -> None:
    ws = _workspace(acme_dir, tmp_path, "review: {schedule: \"0 8 * * MON\"}\n")  # no `to:`

    @contextmanager
    def session() -> Iterator[WorkspaceService]:
        with WorkspaceService(ws, state_dir=tmp_path / "state") as svc:
            yield svc

    clock = FakeClock(utc(2026, 11, 23, 6, 59))
    scheduler = Scheduler(session, lambda: load_workspace(ws / "kpilot.yaml")[0], clock=clock, sleep=clock.sleep)
    scheduler.next_runs()
    clock.now = utc(2026, 11, 23, 7, 0)
    report = scheduler.tick()
    assert report.review is None
    assert str(report.error).startswith(f"{ws / 'kpilot.yaml'} does not say whom the weekly review goes to.")
    assert scheduler.due() == [REVIEW]  # tried again at the next tick


def test_kpilot_worker_starts_with_only_a_review_schedule(acme_dir: Path, tmp_path: Path) -> None:
    ws = _workspace(acme_dir, tmp_path, "review: {schedule: \"0 8 * * MON\", to: [dg@acme.fr]}\n")
    r = kpilot("worker", "-w", str(ws), "--once", env_state=tmp_path / "state")
    assert r.returncode == 0, r.stderr


def test_a_scheduled_review_is_queued_once_a_week_by_however_many_processes(acme_dir: Path, tmp_path: Path) -> None:
    ws = _workspace(acme_dir, tmp_path)
    with WorkspaceService(ws, state_dir=tmp_path / "state") as svc:
        svc.load()
        sunday = date(2026, 11, 22)
        assert queue_review(svc, as_of=sunday, once=True) == 3
        assert queue_review(svc, as_of=sunday, once=True) == 0  # the web app's scheduler, a minute later
        assert queue_review(svc, as_of=sunday + timedelta(days=7), once=True) == 3  # next week's
        assert queue_review(svc, as_of=sunday) == 3  # on demand (`kpilot review --send`): always


def test_a_review_asked_for_on_the_first_day_of_a_week_is_of_the_week_that_ended() -> None:
    from types import SimpleNamespace

    from kpilot.model.periods import WeekStart
    from kpilot.service.review import default_day

    def svc(today: date, start: WeekStart) -> object:
        return SimpleNamespace(today=lambda: today, ws=SimpleNamespace(week_start=start))

    assert default_day(svc(date(2026, 12, 7), WeekStart.monday)) == date(2026, 12, 6)  # a Monday
    assert default_day(svc(date(2026, 12, 9), WeekStart.monday)) is None  # a Wednesday: the week so far
    assert default_day(svc(date(2026, 12, 6), WeekStart.sunday)) == date(2026, 12, 5)
