"""The references a user needs are in the repository: no file points at the team's private notes, every source a
case study quotes is cited in docs/INCIDENTS.md, and every relative link of the README and docs/ resolves."""

from __future__ import annotations

import re
import shutil
import subprocess
import unicodedata
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
INCIDENTS = REPO / "docs" / "INCIDENTS.md"

#: Names of the private notes that no project file may mention. Built from pieces, so this file does not match them.
PRIVATE = tuple("".join(parts) for parts in (("shared", "/"), ("DESIGN", ".md"), ("incidents", ".md")))


def tracked_files() -> list[Path]:
    """Every file git tracks (as it is in the working tree), plus the docs, tracked yet or not."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    paths = {REPO / name for name in listed.decode().split("\0") if name}
    paths |= {REPO / "README.md", *(REPO / "docs").glob("*.md")}
    return sorted(p for p in paths if p.is_file())


def test_private_note_names_are_built_as_meant():
    assert PRIVATE == ("shared" + "/", "DESIGN" + ".md", "incidents" + ".md")


def test_no_file_names_the_private_notes():
    found = []
    for path in tracked_files():
        data = path.read_bytes()
        for name in PRIVATE:
            if name.encode() in data:
                line = data[:data.index(name.encode())].count(b"\n") + 1
                found.append(f"{path.relative_to(REPO)}:{line}: {name}")
    assert not found, "files naming the private notes (say it in docs/ instead):\n" + "\n".join(found)


# ---------------------------------------------------------------- case studies and their sources


def case_studies() -> dict[str, dict]:
    """Bundled scenarios that declare reported figures (what ``gridsim case-study`` runs): name -> ``reported``."""
    studies = {}
    for path in sorted((REPO / "attacks").glob("*.yaml")):
        reported = (yaml.safe_load(path.read_text()) or {}).get("reported")
        if reported:
            studies[path.stem] = reported
    return studies


def flat(text: str) -> str:
    """Whitespace collapsed, so a source may be wrapped across lines of the Markdown."""
    return " ".join(text.split())


def test_case_studies_are_found():
    assert "ukraine-2015" in case_studies() and "template" not in case_studies()


def test_every_source_a_case_study_quotes_is_in_incidents():
    doc = flat(INCIDENTS.read_text())
    missing = [f"{name}: {measure}: {entry['source']!r}" for name, reported in case_studies().items()
               for measure, entry in reported.items() if flat(str(entry["source"])) not in doc]
    assert not missing, "sources not cited in docs/INCIDENTS.md:\n" + "\n".join(missing)


def test_every_case_study_and_measure_has_its_place_in_incidents():
    doc = INCIDENTS.read_text()
    headings = set(re.findall(r"^#+ (.+?)\s*$", doc, flags=re.M))
    missing = [name for name in case_studies() if f"`{name}`" not in headings]
    missing += [f"{name}: {measure}" for name, reported in case_studies().items() for measure in reported
                if f"`{measure}`" not in doc]
    assert not missing, "case studies without a heading, or measures not listed, in docs/INCIDENTS.md:\n" \
        + "\n".join(missing)


# ---------------------------------------------------------------- links


LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", flags=re.M)


def markdown_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def unfenced(text: str) -> str:
    """The Markdown without its fenced code blocks, where a ``#`` line is not a heading."""
    return re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", text, flags=re.M | re.S)


def prose(text: str) -> str:
    """The Markdown without fenced code blocks and inline code, where a bracket is not a link."""
    return re.sub(r"(`+)(?:(?!\1).)+?\1", "", unfenced(text), flags=re.S)


def links(path: Path) -> list[str]:
    text = prose(path.read_text())
    return LINK.findall(text) + REFERENCE.findall(text)


def is_relative(target: str) -> bool:
    return not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) and not target.startswith("//")


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: its text lower-cased, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a Markdown file's headings, with GitHub's -1, -2 ... for repeats."""
    seen: dict[str, int] = {}
    out = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", unfenced(path.read_text()), flags=re.M):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def test_markdown_files_have_links():
    assert any(links(path) for path in markdown_files())


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_points_at_a_file_that_exists(path):
    broken = []
    for target in links(path):
        if not is_relative(target) or target.startswith("#"):
            continue
        file = target.split("#", 1)[0].split("?", 1)[0]
        if not (path.parent / file).exists():
            broken.append(target)
    assert not broken, f"{path.relative_to(REPO)}: links to files that do not exist: {broken}"


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_link_to_a_heading_finds_it(path):
    broken = []
    for target in links(path):
        if not is_relative(target) or "#" not in target:
            continue
        file, anchor = target.split("#", 1)
        where = (path.parent / file) if file else path
        if where.suffix == ".md" and where.is_file() and anchor not in anchors(where):
            broken.append(target)
    assert not broken, f"{path.relative_to(REPO)}: links to headings that do not exist: {broken}"


def test_slugs_follow_github():
    assert slug("Event log: `events.jsonl`") == "event-log-eventsjsonl"
    assert slug("Frequency: `[power.frequency]`") == "frequency-powerfrequency"
    assert slug("10.4 Branch ratings and the Motter–Lai capacity rule") == \
        "104-branch-ratings-and-the-motterlai-capacity-rule"
    assert slug("`madiot-2018`") == "madiot-2018"
