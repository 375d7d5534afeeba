"""Every text of the web app's templates and code has its French in kpilot's catalog."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

from kpilot.i18n import _catalog
from kpilot.web.locale import web_translator

WEB = Path(__file__).resolve().parents[2] / "src" / "kpilot" / "web"
LITERAL = re.compile(r"""\b_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')\s*\)""")


def _web_messages() -> set[str]:
    found: set[str] = set()
    for path in (WEB / "templates").glob("*.html"):
        for m in LITERAL.finditer(path.read_text(encoding="utf-8")):
            found.add(m.group(1) if m.group(1) is not None else m.group(2))
    for path in WEB.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("tr", "_", "msg", "N_")
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                found.add(node.args[0].value)
    return found


def test_every_web_message_has_its_french() -> None:
    messages = _web_messages()
    assert {"Board", "If {condition} →", "no decision rule: vanity metric", "week"} <= messages
    known = set(_catalog("fr"))
    assert sorted(messages - known) == []
    tr = web_translator("fr")
    for m in messages:
        assert {f for _, f, _, _ in string.Formatter().parse(m) if f} == \
            {f for _, f, _, _ in string.Formatter().parse(tr(m)) if f}, m
    assert tr("Board") == "Tableau de bord" and web_translator("en")("Board") == "Board"
