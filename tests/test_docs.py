"""Every workspace field is documented (a field nobody can find is a field nobody uses)."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from kpilot.model import channels as chmod
from kpilot.model import workspace as wsmod

DOCS = Path(__file__).resolve().parents[1] / "docs" / "workspace.md"


def test_every_field_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    documented = set(re.findall(r"`([a-z_]+)`", text))
    missing = []
    for obj in [*vars(wsmod).values(), *vars(chmod).values()]:
        if isinstance(obj, type) and issubclass(obj, BaseModel) and obj.__module__ in (wsmod.__name__,
                                                                                         chmod.__name__):
            for name, info in obj.model_fields.items():
                field = info.alias or name
                if field not in documented:
                    missing.append(f"{obj.__name__}.{field}")
    assert missing == [], f"document these fields in docs/workspace.md: {missing}"
