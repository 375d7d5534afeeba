"""Fixtures of the channel tests: a French message with every part, the local receivers, started and stopped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kpilot.alerting.message import Fact, Item, Message
from tests.alerting.receivers import HttpReceiver, SmtpReceiver, png


@pytest.fixture(scope="session")
def chart() -> bytes:
    return png(4, 3)


@pytest.fixture
def message(chart: bytes) -> Message:
    """An alert in French, with accents, characters Slack and HTML must escape, facts, items, a chart and a link."""
    return Message(
        delivery_id="2f1c0d1e-7b7a-4f55-9a51-0d9b8c1e2a33", kind="alert", language="fr", workspace="Acmé & Cie",
        subject="[kpilot] Chiffre d'affaires : en retard", headline="Chiffre d'affaires en retard : 82 k€ sur 100 k€",
        verdict="off_track", metric="revenue",
        lines=("La prévision de fin de mois est de 88 k€ < objectif.", "Cause principale : leads qualifiés en baisse."),
        facts=(Fact("Valeur", "82 k€"), Fact("Objectif", "100 k€"), Fact("Responsable", "Élodie")),
        items=(Item("Leads qualifiés", "−18 % sur 4 semaines", "at_risk", "https://kpilot.example.com/m/leads"),),
        link="https://kpilot.example.com/m/revenue", link_text="Ouvrir dans kpilot", chart_png=chart,
        chart_alt="Courbe du chiffre d'affaires : 82 k€, sous l'objectif", data={"value": 82000, "target": 100000})


@pytest.fixture
def slack() -> Iterator[HttpReceiver]:
    with HttpReceiver(200, b"ok") as receiver:  # what Slack answers to an accepted message
        yield receiver


@pytest.fixture
def teams() -> Iterator[HttpReceiver]:
    with HttpReceiver(202) as receiver:  # a Workflows trigger accepts with 202
        yield receiver


@pytest.fixture
def hook() -> Iterator[HttpReceiver]:
    with HttpReceiver(204) as receiver:
        yield receiver


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as receiver:
        yield receiver
