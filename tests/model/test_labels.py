"""Dimension names and values in people's words: the workspace's `labels:`, else a readable default."""

from __future__ import annotations

from kpilot.model import parse_workspace
from kpilot.model.workspace import readable


def test_keys_read_as_words() -> None:
    assert readable("linkedin_ads") == "LinkedIn Ads"
    assert readable("google_ads") == "Google Ads"
    assert readable("seo") == "SEO"
    assert readable("paid_search") == "Paid search"
    assert readable("Hugo Bernard") == "Hugo Bernard"  # already words: kept
    assert readable("PME") == "PME"


def test_the_workspace_labels_win() -> None:
    ws, _ = parse_workspace("workspace: acme\nlabels: {channel: Canal, linkedin_ads: Publicité LinkedIn}\n")
    assert ws.label_of("leads.channel") == "Canal"
    assert ws.label_of("linkedin_ads") == "Publicité LinkedIn"
    assert ws.label_of("segment") == "Segment"
