"""docs/FORMATS.md documents every action of the action table: its targets, parameters, effect and restoration.

The page's Actions tables are generated from :mod:`gridsim.scenario.actions`
(``actions_markdown()``); these tests fail when the page and the table differ,
so an action added to the table without its doc line cannot go unnoticed.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from gridsim.scenario import actions
from gridsim.scenario.actions import ACTION_TYPES, ActionType, actions_markdown

FORMATS = Path(__file__).resolve().parents[1] / "docs" / "FORMATS.md"
BEGIN, END = "<!-- generated: gridsim.scenario.actions.actions_markdown() -->\n", "<!-- end generated -->"


def _section() -> str:
    """The text under ``### Actions``, up to the next heading."""
    return FORMATS.read_text(encoding="utf-8").split("\n### Actions\n", 1)[1].split("\n#", 1)[0]


def _generated_block() -> str:
    section = _section()
    assert BEGIN in section and END in section, f"the Actions section of {FORMATS.name} lost its generated markers"
    return section.split(BEGIN, 1)[1].split(END, 1)[0]


def _actions_table(text: str) -> dict[str, list[str]]:
    """``action -> target kinds`` of the first table of ``text`` (``none`` read as no kinds)."""
    rows: dict[str, list[str]] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        match = re.match(r"\|\s*`([a-z_]+)`\s*\|([^|]*)\|", line)
        if match:
            assert match[1] not in rows, f"{match[1]} is in the Actions table twice"
            targets = match[2].strip()
            rows[match[1]] = [] if targets == "none" else [kind.strip() for kind in targets.split(",")]
    return rows


def _missing(documented: dict[str, list[str]]) -> list[str]:
    """What the page lacks or says wrong about the action table."""
    problems = [f"{name}: no line in docs/FORMATS.md" for name in ACTION_TYPES if name not in documented]
    problems += [f"{name}: documented, but not an action" for name in documented if name not in ACTION_TYPES]
    problems += [f"{name}: docs say targets {documented[name]}, the table {list(action.targets or ())}"
                 for name, action in ACTION_TYPES.items()
                 if name in documented and documented[name] != list(action.targets or ())]
    return problems


def test_the_page_carries_the_tables_the_action_table_generates():
    expected = actions_markdown()
    assert _generated_block() == expected, (
        f"docs/FORMATS.md's Actions tables differ from the action table; paste between the markers:\n{expected}")


def test_the_actions_table_lists_every_action_with_its_target_kinds():
    assert _missing(_actions_table(_generated_block())) == []


def test_an_action_added_without_its_doc_line_fails(monkeypatch):
    extra = ActionType("cut_fibre", ("telecom",), "the fibre is cut", "step-end")
    monkeypatch.setitem(actions.ACTION_TYPES, extra.name, extra)
    assert _missing(_actions_table(_generated_block())) == ["cut_fibre: no line in docs/FORMATS.md"]
    assert _generated_block() != actions_markdown()


def test_a_changed_line_of_the_table_changes_the_generated_docs(monkeypatch):
    changed = dataclasses.replace(ACTION_TYPES["deny_view"], effect="operators see nothing")
    monkeypatch.setitem(actions.ACTION_TYPES, "deny_view", changed)
    assert "| `deny_view` | substation | `duration_min` | operators see nothing |" in actions_markdown()
    assert _generated_block() != actions_markdown()
