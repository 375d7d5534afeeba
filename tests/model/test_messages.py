"""Messages: English as plain text, French (or any catalog language) on demand, never a lost error."""

from __future__ import annotations

import pickle

import pytest

from kpilot.i18n import translator
from kpilot.model import Issue, KpilotError, Location, WorkspaceInvalid, parse_workspace
from kpilot.model.errors import Message, did_you_mean, english, joined, msg, one_of, recognize
from kpilot.model.yamlsrc import YAML_TEXTS

FR = translator("fr")


def test_a_message_is_its_english_text() -> None:
    m = msg("unknown column '{name}' in {where};{hint} columns: {columns}", name="mrr",
            where=msg("model {model}", model="subscriptions"), hint=did_you_mean("mrr", ["mrr_eur", "segment"]),
            columns=one_of(["mrr_eur", "segment"]))
    english_text = "unknown column 'mrr' in model subscriptions; did you mean 'mrr_eur'? columns: 'mrr_eur', 'segment'"
    assert isinstance(m, str) and m == english_text and str(m) == english_text and f"{m}" == english_text
    assert m.render(english) == english_text
    # Nested messages (the place, the hint) are translated with it.
    assert m.render(FR) == ("colonne inconnue 'mrr' dans le modèle subscriptions ; vouliez-vous dire 'mrr_eur' ? "
                            "colonnes : 'mrr_eur', 'segment'")
    assert pickle.loads(pickle.dumps(m)).render(FR) == m.render(FR)
    with pytest.raises(AttributeError):
        m.template = "x"  # type: ignore[misc]


def test_empty_hint_and_lists() -> None:
    assert did_you_mean("zzz", ["mrr"]) == "" and not did_you_mean("zzz", ["mrr"])
    assert one_of([]).render(FR) == "(aucun)"
    assert one_of([str(i) for i in range(14)], limit=12).render(FR).endswith("'11' (et 2 de plus)")
    parts = joined(msg("; "), [msg("correct the value or leave the field empty"), msg("needed")])
    assert parts == "correct the value or leave the field empty; needed"
    assert parts.render(FR) == "corrigez la valeur ou laissez le champ vide ; nécessaire"


def test_a_broken_translation_falls_back_to_english() -> None:
    m = msg("model {model}", model="leads")
    assert m.render(lambda t: "le modèle {modele}") == "model leads"


def test_library_text_is_recognized_or_kept() -> None:
    problem = recognize("found character '\\t' that cannot start any token", YAML_TEXTS)
    assert problem == "found character '\\t' that cannot start any token"
    assert problem.render(FR) == "caractère '\\t' trouvé, qui ne peut commencer aucun élément"
    unknown = recognize("something PyYAML says rarely", YAML_TEXTS)
    assert unknown.render(FR) == "something PyYAML says rarely"


def test_issue_and_errors_render_in_french() -> None:
    issue = Issue("error", "unknown_team", msg("unknown team '{team}';{hint} teams: {teams}", team="sale",
                                                 hint=did_you_mean("sale", ["sales"]), teams=one_of(["sales"])),
                  Location("kpilot.yaml", 3, 5), "metrics[0].owners[0]", msg("declare it under `teams:`"))
    assert str(issue) == ("kpilot.yaml:3:5: error: metrics[0].owners[0]: unknown team 'sale'; did you mean 'sales'? "
                          "teams: 'sales' Fix: declare it under `teams:`")
    assert issue.render(FR) == ("kpilot.yaml:3:5: erreur : metrics[0].owners[0]: équipe inconnue 'sale' ; vouliez-vous "
                                "dire 'sales' ? équipes : 'sales' Correction : déclarez-la sous `teams:`")
    invalid = WorkspaceInvalid([issue])
    assert str(invalid).startswith("1 error(s) in the workspace definition:\n  kpilot.yaml:3:5: error:")
    assert invalid.render(FR).startswith("1 erreur(s) dans la définition de l'espace de travail :\n  kpilot.yaml:3:5: "
                                         "erreur :")
    plain = KpilotError("an English-only text")
    assert plain.render(FR) == str(plain) == "an English-only text"


def test_structure_errors_from_pydantic_are_translated() -> None:
    text = "workspace: w\nmetrics:\n  - key: m\n    type: ratoi\n    grain: month\n"
    with pytest.raises(WorkspaceInvalid) as info:
        parse_workspace(text)
    issue = next(i for i in info.value.issues if i.path == "metrics[0].type")
    assert isinstance(issue.message, Message)
    assert "Input should be 'simple', 'ratio'" in issue.message and "(got 'ratoi'); did you mean 'ratio'?" in issue.message
    french = issue.message.render(FR)
    assert french.startswith("la valeur doit être 'simple', 'ratio'")
    assert " ou 'cumulative' (reçu 'ratoi') ; vouliez-vous dire 'ratio' ?" in french


def test_recognize_repeated_placeholders_and_every_library_table_compiles() -> None:
    from kpilot.model.errors import _pattern, recognize
    from kpilot.model.loader import CHOICES, PYDANTIC_TEXTS
    from kpilot.model.yamlsrc import YAML_TEXTS

    assert recognize("a and a", ["{x} and {x}"]).params == {"x": "a"}
    assert recognize("a and b", ["{x} and {x}"]) == "a and b"  # not that template: kept verbatim
    for template in (*YAML_TEXTS, *PYDANTIC_TEXTS, *CHOICES):
        _pattern(template)


def test_numbers_in_messages_take_the_languages_decimal_mark() -> None:
    from kpilot.i18n import translator
    from kpilot.model.errors import Number, msg, render

    m = msg("leading indicator of {outcome}, {lag} (correlation {correlation})", outcome="MRR", lag="4 weeks",
            correlation=Number(0.2))
    assert m == "leading indicator of MRR, 4 weeks (correlation 0.20)"
    assert render(m, translator("fr")).endswith("(corrélation 0,20)")
    assert render(m, translator("en")).endswith("(correlation 0.20)")
