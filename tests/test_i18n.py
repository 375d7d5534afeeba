"""Every user-facing message has a French translation; formats follow each language."""

from __future__ import annotations

import ast
from datetime import date
from pathlib import Path

from kpilot.i18n import DYNAMIC_MESSAGES, UNIT_WORDS, _catalog, format_percent, format_value, format_values, translator

SRC = Path(__file__).resolve().parents[1] / "src" / "kpilot"


# tr("...") and _("...") translate now; msg("...") builds an error message; N_("...") marks a template kept in a table.
MARKERS = ("tr", "_", "msg", "N_")


def _messages() -> set[str]:
    found: set[str] = set(DYNAMIC_MESSAGES) | set(UNIT_WORDS)
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in MARKERS
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                found.add(node.args[0].value)
    return found


def test_every_message_is_translated_to_french() -> None:
    catalog = _catalog("fr")
    messages = _messages()
    assert len(messages) > 300
    # Error messages (msg) and library texts kept in tables (N_) are found too.
    assert {"Nothing was loaded: every table keeps its previous data.", "mapping values are not allowed here"} <= messages
    missing = sorted(m for m in messages if m not in catalog)
    assert missing == [], f"add these to src/kpilot/locale/fr/LC_MESSAGES/kpilot.po: {missing}"
    tr = translator("fr")
    for m in messages:
        # Placeholders survive translation.
        assert set(_fields(m)) == set(_fields(tr(m))), m


def _fields(text: str) -> list[str]:
    import string

    return [f for _, f, _, _ in string.Formatter().parse(text) if f]


def test_number_formats() -> None:
    assert format_value(834567, "EUR", "fr") == "834\u202f567\u00a0€"
    assert format_value(834567, "EUR", "en") == "€834,567"
    assert format_value(0.2845, "percent", "fr") == "28,4\u202f%"
    assert format_value(0.2845, "percent", "en") == "28.4%"
    assert format_percent(-0.05, "en", signed=True, digits=0) == "−5%"
    assert format_value(None, "EUR", "en") == "—"


def test_one_number_rule_per_unit() -> None:
    """Money and plain numbers in full below a million, short from a million on (three significant digits), the
    same for every caller; counts as whole numbers; French and English conventions."""
    assert format_value(999_999, "EUR", "en") == "€999,999"
    assert format_value(1_234_567, "EUR", "en") == "€1.23M"
    assert format_value(1_234_567, "EUR", "fr") == "1,23\u00a0M\u00a0€"
    assert format_value(12_345_678, "EUR", "en") == "€12.3M"
    assert format_value(123_456_789, "USD", "en") == "$123M"
    assert format_value(2_500_000_000, "EUR", "en") == "€2.5B"
    assert format_value(-1_500_000, "EUR", "en") == "-€1.5M"
    assert format_value(42.5, "EUR", "en") == "€42.50"
    assert format_value(41.27, "count", "en") == "41"  # a count is whole, even paced or forecast
    assert format_value(1234.6, "leads", "fr") == "1\u202f235\u00a0leads"
    assert format_value(3_400_000, "count", "fr") == "3,4\u00a0M"
    assert format_value(12.25, "days", "en") == "12.25\u00a0days"
    assert format_value(2.5, None, "fr") == "2,5"
    # Values read together (a forecast and its interval) take one form: short for all when one is a million or more.
    assert format_values([851_557, 548_932, 1_150_000], "EUR", "en") == ["€852K", "€549K", "€1.15M"]
    assert format_values([851_557, 548_932, 1_150_000], "EUR", "fr") == ["852\u00a0k\u00a0€", "549\u00a0k\u00a0€",
                                                                          "1,15\u00a0M\u00a0€"]
    assert format_values([851_557, 548_932, 950_000], "EUR", "en") == ["€851,557", "€548,932", "€950,000"]
    assert format_values([41.3, None, 55.9], "count", "en") == ["41", "—", "56"]


def test_evidence_and_verdict_words() -> None:
    from kpilot.i18n import format_evidence, format_verdict

    assert format_evidence("2026-11", 0.021, 0.017, "red", "percent", "fr") == \
        "2026-11 : 2,1\u202f% (objectif 1,7\u202f%, hors cible)"
    assert format_evidence("2026-11", 0.021, 0.017, "red", "percent", "en", period=date(2026, 11, 1),
                           grain="month") == "November 2026: 2.1% (target 1.7%, off track)"
    assert format_evidence("2026-W50", 0, 135, "none", None, "en") == "2026-W50: 0 (target 135)"  # not judged yet
    assert format_verdict("at_risk", None, None, "fr") == ("À risque", "")
    assert format_verdict("no_data", "stale", date(2026, 11, 22), "en") == ("No data",
                                                                           "data stopped arriving on Nov 22, 2026")


def test_counts_say_their_plural() -> None:
    from kpilot.i18n import counted

    assert counted("decisions_to_take", 1, "en") == "1 decision to take this period."
    assert counted("decisions_to_take", 3, "en") == "3 decisions to take this period."
    assert counted("decisions_to_take", 0, "fr") == "0 décision à prendre sur cette période."  # French: 0 is singular
    assert counted("attempts", 2, "fr") == "2 tentatives"


def test_any_number_is_written_without_an_error() -> None:
    """Huge, tiny, signed, non-finite or missing values, in every unit and language: some text, never an
    exception (the full form of a huge value falls back to the short one)."""
    from kpilot.i18n import format_full, format_values

    values = [0, -0.0, 1e-12, -1e-12, 999_999.5, 1e6, -1e6, 1e15, 1e30, -1e30, float("nan"), float("inf"),
              -float("inf"), None, 2**63, 0.005]
    for unit in (None, "", "EUR", "USD", "percent", "count", "leads", "days", "points", "currency"):
        for lang in ("fr", "en"):
            for v in values:
                assert format_value(v, unit, lang) and format_full(v, unit, lang)
            assert len(format_values(values, unit, lang)) == len(values)
    assert format_full(1e30, "EUR", "en") == format_value(1e30, "EUR", "en")
