"""docs/FORMATS.md documents every scenario step action the schema accepts, with the targets it accepts."""

from __future__ import annotations

import re
from pathlib import Path

from gridsim.scenario.schema import ACTIONS

FORMATS = Path(__file__).resolve().parents[1] / "docs" / "FORMATS.md"


def _actions_table() -> dict[str, list[str]]:
    """``action -> target kinds`` of the table under ``### Actions`` (``none`` read as no kinds)."""
    text = FORMATS.read_text(encoding="utf-8")
    section = text.split("\n### Actions\n", 1)[1].split("\n#", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        match = re.match(r"\|\s*`([a-z_]+)`\s*\|([^|]*)\|", line)
        if match:
            assert match[1] not in rows, f"{match[1]} is in the Actions table twice"
            targets = match[2].strip()
            rows[match[1]] = [] if targets == "none" else [kind.strip() for kind in targets.split(",")]
    return rows


def test_the_actions_table_lists_every_action_of_the_schema():
    rows = _actions_table()
    assert sorted(rows) == sorted(ACTIONS), (f"missing from docs/FORMATS.md: {sorted(set(ACTIONS) - set(rows))}; "
                                             f"not an action: {sorted(set(rows) - set(ACTIONS))}")


def test_the_actions_table_gives_the_target_kinds_of_the_schema():
    rows = _actions_table()
    for action, kinds in ACTIONS.items():
        assert rows.get(action) == list(kinds or ()), f"{action}: docs say {rows.get(action)}, schema {kinds}"
