"""The web app's language: the workspace's by default, a cookie per user; kpilot's one message catalog."""

from __future__ import annotations

from kpilot.i18n import LANGUAGES, Translator, translator

COOKIE = "kpilot_lang"


def web_translator(lang: str) -> Translator:
    """kpilot's translator for `lang` (the web's texts are in the same catalog as the CLI's)."""
    return translator(lang)


def choose_language(cookie: str | None, workspace_language: str) -> str:
    """The user's choice when it is a language kpilot speaks, else the workspace's."""
    return cookie if cookie in LANGUAGES else workspace_language


__all__ = ["COOKIE", "choose_language", "web_translator"]
