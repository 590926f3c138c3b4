"""The README's two commands are the ones users and CI run."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    blocks = re.findall(r"```\n(.*?)\n```", (REPO / "README.md").read_text(), flags=re.S)
    return [b.strip() for b in blocks[:2]]


def test_first_command_installs_and_runs_the_ukraine_scenario():
    first, _ = readme_commands()
    assert "pip install ." in first and first.endswith("gridsim run attacks/ukraine-2015.yaml")


def test_ci_runs_exactly_the_readme_test_command():
    _, second = readme_commands()
    assert second.endswith("pytest")
    ci_lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert second in ci_lines


def test_bundled_scenarios_and_topologies_are_packaged():
    text = (REPO / "pyproject.toml").read_text()
    assert '"gridsim.bundled.topologies" = "topologies"' in text
    assert '"gridsim.bundled.attacks" = "attacks"' in text
