"""The outbox end to end on acme: alerts evaluated by the service, queued, delivered to a real SMTP server and local
Slack and webhook receivers; a receiver down delays its messages, never loses nor duplicates one; a receiver that
refuses a message fails it once, visibly."""

from __future__ import annotations

import email
import hashlib
import hmac
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email import policy
from pathlib import Path

import pytest

from kpilot.alerting.outbox import LEASE
from kpilot.service import WorkspaceService
from kpilot.service import alerts as service
from tests.alerting.receivers import HttpReceiver, SmtpReceiver, free_port
from tests.cli.test_acme_cli import kpilot

SECRET = "hook-secret-不"
AS_OF = date(2026, 9, 13)
CHANNELS = """
channels:
  - {key: sales-mail, type: email, to: [direction.commerciale@acme.fr]}
  - {key: sales-hook, type: webhook, url_env: SALES_HOOK, secret_env: HOOK_SECRET}
  - {key: mkt-slack, type: slack, url_env: MKT_SLACK}
base_url: https://kpilot.acme.fr
"""


def _workspace(acme_dir: Path, root: Path) -> Path:
    ws = root / "acme"
    shutil.copytree(acme_dir, ws)
    text = (ws / "kpilot.yaml").read_text(encoding="utf-8")
    text = text.replace("  - key: sales\n    name: Ventes\n",
                        "  - key: sales\n    name: Ventes\n    notify: [sales-mail, sales-hook]\n")
    text = text.replace("  - key: marketing\n    name: Marketing\n",
                        "  - key: marketing\n    name: Marketing\n    notify: [mkt-slack]\n")
    (ws / "kpilot.yaml").write_text(text + CHANNELS, encoding="utf-8")
    return ws


@pytest.fixture()
def svc(acme_dir: Path, tmp_path: Path) -> Iterator[WorkspaceService]:
    with WorkspaceService(_workspace(acme_dir, tmp_path), state_dir=tmp_path / "state") as s:
        s.load()
        yield s


def _signed(body: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


def test_a_receiver_down_delays_messages_and_loses_or_repeats_none(svc: WorkspaceService) -> None:
    port = free_port()
    with SmtpReceiver() as smtp, HttpReceiver(200, b"ok") as slack:
        env = {"KPILOT_SMTP_URL": smtp.url(), "SALES_HOOK": f"http://127.0.0.1:{port}/kpilot",
               "HOOK_SECRET": SECRET, "MKT_SLACK": slack.url("/services/t0/B0/secretpath")}
        run = service.evaluate(svc, as_of=AS_OF)
        t0 = datetime.now(UTC) + timedelta(seconds=1)  # the messages were queued just now: due from now on
        queued = svc.app_store().outbox(svc.ws.workspace, states=["pending"])
        by_channel = Counter(m.channel for m in queued)
        # Sales and marketing were messaged: every channel of each team has its copy, written before any attempt.
        assert {t for _, t in run.pinged} == {"sales", "marketing", "customer_success"}
        assert by_channel["sales-mail"] == by_channel["sales-hook"] >= 1 and by_channel["mkt-slack"] >= 1

        first = service.deliver(svc, env, now=t0)  # the webhook's receiver is down: connection refused
        hook_ids = {m.delivery_id for m in queued if m.channel == "sales-hook"}
        assert {d for d, _ in first.retrying} == hook_ids
        assert len(first.sent) == len(queued) - len(hook_ids) and first.failed == []
        assert len(smtp.envelopes) == by_channel["sales-mail"] and len(slack.requests) == by_channel["mkt-slack"]

        with HttpReceiver(204, port=port) as hook:  # the receiver is back
            assert service.deliver(svc, env, now=t0 + timedelta(seconds=30)).sent == []  # not due yet: backoff
            second = service.deliver(svc, env, now=t0 + timedelta(minutes=2))
            third = service.deliver(svc, env, now=t0 + timedelta(hours=8))
        assert set(second.sent) == hook_ids and third.sent == [] and third.retrying == []
        seen = [r.headers["X-Kpilot-Delivery"] for r in hook.requests]
        assert sorted(seen) == sorted(hook_ids)  # each delivered once, under its id
        assert all(_signed(r.body, r.headers["X-Kpilot-Signature"]) for r in hook.requests)
        payload = json.loads(hook.requests[0].body)
        assert payload["delivery_id"] in hook_ids and payload["link"].startswith("https://kpilot.acme.fr/metric/")
        assert svc.app_store().outbox(svc.ws.workspace, states=["pending", "failed"]) == []

        svc_alerts = {a.id: a for a in svc.app_store().alerts(svc.ws.workspace)}
    mail = email.message_from_bytes(smtp.envelopes[0].content, policy=policy.default)
    text = mail.get_body(("plain",)).get_content()
    assert mail["To"] == "direction.commerciale@acme.fr"
    assert "Ventes décide" in text and "https://kpilot.acme.fr/metric/" in text
    # The root cause, as `kpilot explain` localises it: the LinkedIn pause, in the demos' alert.
    texts = [email.message_from_bytes(e.content, policy=policy.default).get_body(("plain",)).get_content()
             for e in smtp.envelopes]
    demos = next(t for t in texts if "Démos planifiées" in t.splitlines()[0])
    assert ("Cause principale : LinkedIn Ads (Channel) est passé de 10 à 1 entre semaine du 31 août et semaine du "
            "7 sept." in demos)
    # A link to record the decision about this very alert.
    (decide,) = re.findall(r"Enregistrer la décision : (\S+)", text)
    metric, alert = re.search(r"/decisions\?metric=(\w+)&alert=(\d+)#decide$", decide).groups()
    answered = svc_alerts[int(alert)]
    assert answered.metric == metric
    # The KPI's chart, drawn from the web page's spec, travels inline in the HTML part.
    images = [p for p in mail.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 1 and images[0].get_content().startswith(b"\x89PNG")
    assert f'src="cid:{images[0]["Content-ID"].strip("<>")}"' in mail.get_body(("html",)).get_content()


def test_a_refused_message_fails_once_and_shows(svc: WorkspaceService, tmp_path: Path) -> None:
    with SmtpReceiver() as smtp, HttpReceiver(400, b"invalid_payload") as slack:
        env = {"KPILOT_SMTP_URL": smtp.url(), "SALES_HOOK": "http://127.0.0.1:9/x", "HOOK_SECRET": SECRET,
               "MKT_SLACK": slack.url("/services/t0/B0/secretpath")}
        service.evaluate(svc, as_of=AS_OF)
        t0 = datetime.now(UTC) + timedelta(seconds=1)
        first = service.deliver(svc, env, now=t0)
        slack_failed = [d for d, _ in first.failed]
        assert slack_failed and len(slack.requests) == len(slack_failed)
        service.deliver(svc, env, now=t0 + timedelta(hours=1))
        assert len(slack.requests) == len(slack_failed)  # no retry storm on a 4xx
    failed = svc.app_store().outbox(svc.ws.workspace, states=["failed"])
    assert {m.channel for m in failed} == {"mkt-slack"} and all(m.attempts == 1 for m in failed)
    assert all("400" in (m.last_error or "") and "secretpath" not in (m.last_error or "") for m in failed)


def test_a_worker_killed_mid_send_leaves_the_message_to_retry(svc: WorkspaceService) -> None:
    with SmtpReceiver() as smtp:
        env = {"KPILOT_SMTP_URL": smtp.url(), "SALES_HOOK": "http://127.0.0.1:9/x", "HOOK_SECRET": SECRET,
               "MKT_SLACK": "http://127.0.0.1:9/y"}
        service.evaluate(svc, as_of=AS_OF)
        t0 = datetime.now(UTC) + timedelta(seconds=1)
        store = svc.app_store()
        mail = next(m for m in store.outbox(svc.ws.workspace, states=["pending"]) if m.channel == "sales-mail")
        assert store.claim_message(mail.id, mail.attempts, t0, LEASE)  # claimed, then the worker dies
        assert not store.claim_message(mail.id, mail.attempts, t0, LEASE)  # nobody else takes it meanwhile
        assert mail.delivery_id not in service.deliver(svc, env, now=t0 + timedelta(minutes=1)).sent
        assert mail.delivery_id in service.deliver(svc, env, now=t0 + LEASE + timedelta(seconds=1)).sent
        ids = [email.message_from_bytes(e.content, policy=policy.default)["Message-ID"] for e in smtp.envelopes]
        assert ids.count(f"<{mail.delivery_id}@kpilot>") == 1


def test_the_cli_shows_the_alerts_and_what_failed(acme_dir: Path, tmp_path: Path) -> None:
    ws = _workspace(acme_dir, tmp_path)
    state = tmp_path / "state"
    r = kpilot("alerts", "-w", str(ws), "--as-of", "2026-09-13", "--format", "json", env_state=state)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert {a["metric"] for a in out["alerts"]} == {"mrr", "pipeline_generated", "demos_booked", "win_rate"}
    assert all(a["state"] == "firing" for a in out["alerts"])
    assert {m["state"] for m in out["outbox"]} == {"pending"}
    # --send checks what sending needs first: without the SMTP server, an error at kpilot.yaml's line.
    r = kpilot("alerts", "-w", str(ws), "--as-of", "2026-09-13", "--send", env_state=state)
    assert r.returncode == 1
    assert "KPILOT_SMTP_URL" in r.stderr and "kpilot.yaml:" in r.stderr
    r = kpilot("alerts", "ack", "999", "-w", str(ws), env_state=state)
    assert r.returncode == 1 and "il n'y a pas d'alerte 999" in r.stderr
    first = out["alerts"][0]["id"]
    r = kpilot("alerts", "ack", str(first), "-w", str(ws), "--by", "Claire", env_state=state)
    assert r.returncode == 0, r.stderr
    r = kpilot("alerts", "-w", str(ws), "--as-of", "2026-09-14", "--format", "json", env_state=state)
    acked = next(a for a in json.loads(r.stdout)["alerts"] if a["id"] == first)
    assert acked["state"] == "acknowledged" and acked["acknowledged_by"] == "Claire"


def test_a_team_without_channels_is_written_to_at_its_email(acme_dir: Path, tmp_path: Path) -> None:
    ws = _workspace(acme_dir, tmp_path)
    text = (ws / "kpilot.yaml").read_text(encoding="utf-8")
    (ws / "kpilot.yaml").write_text(text.replace(
        "  - key: customer_success\n    name: Customer success\n",
        "  - key: customer_success\n    name: Customer success\n    email: cs@acme.fr\n"), encoding="utf-8")
    with SmtpReceiver() as smtp, WorkspaceService(ws, state_dir=tmp_path / "state") as svc:
        service.evaluate(svc, as_of=date(2026, 9, 27))  # churn off track: customer success is told
        env = {"KPILOT_SMTP_URL": smtp.url(), "SALES_HOOK": "http://127.0.0.1:9/x", "HOOK_SECRET": SECRET,
               "MKT_SLACK": "http://127.0.0.1:9/y"}
        service.deliver(svc, env, now=datetime.now(UTC) + timedelta(seconds=1))
    to_cs = [email.message_from_bytes(e.content, policy=policy.default)["Subject"] for e in smtp.envelopes
             if e.rcpt_tos == ["cs@acme.fr"]]
    # Customer success owns churn and shares the MRR with sales: one e-mail each.
    assert sorted(s.split(" :")[0] for s in to_cs) == ["Churn clients", "Revenu récurrent mensuel (MRR)"]


def test_compute_evaluates_the_alerts_of_a_workspace_with_channels(acme_dir: Path, tmp_path: Path) -> None:
    import re

    ws = _workspace(acme_dir, tmp_path)
    r = kpilot("compute", "-w", str(ws), "--today", "2026-09-13", env_state=tmp_path / "state")
    assert r.returncode == 0, r.stderr
    m = re.search(r"Alertes : (\d+) active\(s\), (\d+) message\(s\) en file d'envoi", r.stdout)
    assert m is not None and int(m.group(1)) >= 4 and int(m.group(2)) >= 4


def test_the_smtp_password_stored_with_kpilot_secrets(acme_dir: Path, tmp_path: Path) -> None:
    ws = _workspace(acme_dir, tmp_path)
    state = tmp_path / "state"
    refused = subprocess.run([sys.executable, "-m", "kpilot.cli", "secrets", "set", "alerts", "SMTP_PASS", "-w",
                              str(ws), "--state-dir", str(state)], input="x", capture_output=True, text=True)
    assert refused.returncode == 1 and "KPILOT_SMTP_PASSWORD" in refused.stderr  # the names it reads, suggested
    stored = subprocess.run([sys.executable, "-m", "kpilot.cli", "secrets", "set", "alerts", "KPILOT_SMTP_PASSWORD",
                             "-w", str(ws), "--state-dir", str(state)], input="s3cret-pass\n", capture_output=True,
                            text=True)
    assert stored.returncode == 0, stored.stderr
    with SmtpReceiver(auth=("kpilot", "s3cret-pass")) as smtp, \
            WorkspaceService(ws, state_root=state) as svc:
        svc.load()
        service.evaluate(svc, as_of=AS_OF)
        env = {"KPILOT_SMTP_URL": smtp.url("kpilot"), "SALES_HOOK": "http://127.0.0.1:9/x", "HOOK_SECRET": SECRET,
               "MKT_SLACK": "http://127.0.0.1:9/y"}  # no password in the environment
        report = service.deliver(svc, env, now=datetime.now(UTC) + timedelta(seconds=1))
    assert smtp.logins and all(ok for _, ok in smtp.logins)
    assert len(smtp.envelopes) >= 1 and not [e for d, e in report.failed if "SMTP" in e]


def test_the_cli_says_which_teams_have_no_channel(acme_dir: Path, tmp_path: Path) -> None:
    # Customer success owns MRR with sales but has no channel (no `notify:`, no `email:`): its message is kept as
    # not routed. The table marks only the teams actually written to, and says which ones nothing reaches.
    ws = _workspace(acme_dir, tmp_path)
    r = kpilot("alerts", "-w", str(ws), "--as-of", "2026-09-13", "--lang", "en", env_state=tmp_path / "state")
    assert r.returncode == 0, r.stderr
    assert "Ventes ✉" in r.stdout and "Customer success ✉" not in r.stdout, r.stdout
    assert ("Nothing reaches Customer success: the team has no channel. Fix: give it an `email:` or a `notify:` "
            "list in kpilot.yaml (see docs/channels.md).") in " ".join(r.stdout.split()), r.stdout
