"""The README's two commands are the ones users and CI run, its sample output is what the first prints, and the
files its examples name exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: Figures of the printed summary that depend on the machine, not on the inputs: the run's own duration.
MACHINE_DEPENDENT = [(re.compile(r"\(\d+(\.\d+)? s\)$", re.M), "(<seconds> s)")]


def readme_block_after(heading: str) -> str:
    """The first fenced block after a ``## heading`` of the README."""
    text = (REPO / "README.md").read_text()
    section = text[text.index(f"\n## {heading}\n"):]
    return re.search(r"```\n(.*?)\n```", section, flags=re.S).group(1)


def masked(text: str) -> str:
    for pattern, replacement in MACHINE_DEPENDENT:
        text = pattern.sub(replacement, text)
    return text.rstrip("\n")


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


def test_sample_output_is_what_the_first_command_prints(in_process, tmp_path):
    # The README's own command, run as a new user runs it: from a folder holding attacks/, writing results/ there
    # (in this process: test_cli.py runs the entry point itself as a process).
    first, _ = readme_commands()
    args = shlex.split(first.rsplit("&&", 1)[-1])
    assert args[:2] == ["gridsim", "run"]
    (tmp_path / "attacks").symlink_to(REPO / "attacks")
    proc = in_process(*args[1:], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert masked(proc.stdout) == masked(readme_block_after("What the first command prints"))


def test_files_named_in_the_usage_examples_exist():
    usage = readme_block_after("Using it")
    named = re.findall(r"(?:attacks|topologies)/[\w.-]+", usage)
    assert named and all((REPO / path).exists() for path in named), named
    for line in usage.splitlines():  # a scenario the examples write first (new-scenario) need not be bundled
        words = shlex.split(line.split("#", 1)[0])
        if words[:2] == ["gridsim", "validate"] or words[:2] == ["gridsim", "run"]:
            path = words[2]
            made = any(f"gridsim new-scenario {path}" in earlier for earlier in usage.splitlines())
            assert made or (REPO / path).is_file(), line
