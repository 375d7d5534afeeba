"""Channels, teams that notify them and the review's recipients: each mistake an error at its file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from kpilot.model import WorkspaceInvalid, load_workspace, validate
from kpilot.model.loader import read_yaml_file

CHANNELS = """
channels:
  - {key: sales-mail, type: email, to: [direction.commerciale@acme.fr]}
  - {key: sales-teams, type: teams, url_env: SALES_TEAMS_WEBHOOK}
  - {key: mkt-slack, type: slack, url_env: MKT_SLACK_WEBHOOK}
  - {key: crm-hook, type: webhook, url: "https://crm.example.com/kpilot", secret_env: HOOK_SECRET}
base_url: https://kpilot.acme.fr/
review: {schedule: "0 8 * * MON", to: [sales-mail, dg@acme.fr]}
alerts: {budget: 3}
"""
ENV = {"KPILOT_SMTP_URL": "smtp://kpilot@mail.acme.fr:587", "SALES_TEAMS_WEBHOOK": "https://x.example/1",
       "MKT_SLACK_WEBHOOK": "https://hooks.slack.example/2", "HOOK_SECRET": "s3cret"}


def _acme(acme_dir: Path, tmp_path: Path, old: str = "", new: str = "", extra: str = CHANNELS) -> Path:
    text = (acme_dir / "kpilot.yaml").read_text(encoding="utf-8")
    text = text.replace("  - key: sales\n    name: Ventes\n",
                        "  - key: sales\n    name: Ventes\n    notify: [sales-mail, sales-teams]\n")
    if old:
        assert old in text + extra, old
        text, extra = text.replace(old, new), extra.replace(old, new)
    (tmp_path / "kpilot.yaml").write_text(text + extra, encoding="utf-8")
    return tmp_path / "kpilot.yaml"


def _errors(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    if environ is None:
        with pytest.raises(WorkspaceInvalid) as info:
            load_workspace(path)
        return [str(i) for i in info.value.issues if i.severity == "error"]
    ws, _ = load_workspace(path)
    _, smap = read_yaml_file(path)
    return [str(i) for i in validate(ws, smap, environ=environ) if i.severity == "error"]


def test_the_issue_example_validates(acme_dir: Path, tmp_path: Path) -> None:
    ws, warnings = load_workspace(_acme(acme_dir, tmp_path))
    assert [c.key for c in ws.channels] == ["sales-mail", "sales-teams", "mkt-slack", "crm-hook"]
    assert ws.team("sales").notify == ["sales-mail", "sales-teams"]
    assert ws.base_url == "https://kpilot.acme.fr"
    assert ws.alerts.budget == 3 and ws.review is not None and ws.review.to == ["sales-mail", "dg@acme.fr"]
    assert [str(w) for w in warnings] == []
    assert _errors(tmp_path / "kpilot.yaml", ENV) == []


def test_a_team_notifying_a_missing_channel(acme_dir: Path, tmp_path: Path) -> None:
    path = _acme(acme_dir, tmp_path, "notify: [sales-mail, sales-teams]", "notify: [sales-mail, sales-team]")
    (error,) = _errors(path)
    assert "kpilot.yaml:28:26: error: teams[1].notify[1]:" in error
    assert "team 'sales' notifies unknown channel 'sales-team'; did you mean 'sales-teams'?" in error


def test_an_invalid_address(acme_dir: Path, tmp_path: Path) -> None:
    (error,) = _errors(_acme(acme_dir, tmp_path, "direction.commerciale@acme.fr", "direction.commerciale@acme"))
    assert "'direction.commerciale@acme' is not an e-mail address" in error
    assert "channels[0].to" in error or "channels.0.to" in error


def test_a_webhook_url_that_is_not_http(acme_dir: Path, tmp_path: Path) -> None:
    (error,) = _errors(_acme(acme_dir, tmp_path, "https://crm.example.com/kpilot", "ftp://crm.example.com/kpilot"))
    assert "'ftp://crm.example.com/kpilot' is not an http(s) URL" in error


def test_an_unknown_channel_type_and_a_duplicate_key(acme_dir: Path, tmp_path: Path) -> None:
    (error,) = _errors(_acme(acme_dir, tmp_path, "type: slack", "type: discord"))
    assert "discord" in error
    dup = _errors(_acme(acme_dir, tmp_path, "key: mkt-slack", "key: sales-teams"))
    assert any("channel 'sales-teams' is declared twice" in e for e in dup)


def test_the_review_to_an_unknown_channel(acme_dir: Path, tmp_path: Path) -> None:
    (error,) = _errors(_acme(acme_dir, tmp_path, "to: [sales-mail, dg@acme.fr]", "to: [sales-mails, dg@acme.fr]"))
    assert "the review goes to 'sales-mails', which is neither a channel nor an e-mail address" in error


def test_sending_needs_the_smtp_server_and_the_webhook_variables(acme_dir: Path, tmp_path: Path) -> None:
    path = _acme(acme_dir, tmp_path)
    no_smtp = _errors(path, {k: v for k, v in ENV.items() if k != "KPILOT_SMTP_URL"})
    assert len(no_smtp) == 1 and "KPILOT_SMTP_URL is not set" in no_smtp[0]
    assert "kpilot.yaml:" in no_smtp[0]
    bad = _errors(path, {**ENV, "KPILOT_SMTP_URL": "http://mail.acme.fr"})
    assert len(bad) == 1 and "it starts with 'http:'" in bad[0]
    unset = _errors(path, {k: v for k, v in ENV.items() if k != "HOOK_SECRET"})
    assert len(unset) == 1 and "channel 'crm-hook' reads HOOK_SECRET from the environment" in unset[0]
    assert "s3cret" not in " ".join(unset)


def test_a_slack_url_in_the_file_is_warned_as_a_secret(acme_dir: Path, tmp_path: Path) -> None:
    path = _acme(acme_dir, tmp_path, "url_env: MKT_SLACK_WEBHOOK", "url: https://hooks.slack.com/services/T/B/X")
    _, warnings = load_workspace(path)
    assert any("is a secret" in str(w) for w in warnings)


def test_an_email_channel_without_addresses(acme_dir: Path, tmp_path: Path) -> None:
    (error,) = _errors(_acme(acme_dir, tmp_path, "to: [direction.commerciale@acme.fr]", "to: []"))
    assert "an e-mail channel needs `to:`" in error


def test_a_team_email_is_an_address_and_needs_the_smtp_server(acme_dir: Path, tmp_path: Path) -> None:
    text = (acme_dir / "kpilot.yaml").read_text(encoding="utf-8")
    bad = text.replace("  - key: customer_success\n    name: Customer success\n",
                       "  - key: customer_success\n    name: Customer success\n    email: cs-at-acme.fr\n")
    (tmp_path / "kpilot.yaml").write_text(bad, encoding="utf-8")
    (error,) = _errors(tmp_path / "kpilot.yaml")
    assert "teams[2].email" in error and "'cs-at-acme.fr' is not an e-mail address" in error
    (tmp_path / "kpilot.yaml").write_text(bad.replace("cs-at-acme.fr", "cs@acme.fr"), encoding="utf-8")
    (error,) = _errors(tmp_path / "kpilot.yaml", {})
    assert "teams[2].email" in error and "KPILOT_SMTP_URL is not set" in error
