"""MITRE ATT&CK for ICS techniques (v18.1), to check the ids scenarios name."""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources

__all__ = ["Technique", "techniques", "ATTACK_VERSION"]

ATTACK_VERSION = "18.1"


@dataclass(frozen=True)
class Technique:
    id: str
    name: str
    tactics: tuple[str, ...]


@functools.cache
def techniques() -> dict[str, Technique]:
    """Every ATT&CK for ICS technique by id (``T0855`` -> Unauthorized Command Message)."""
    text = resources.files("gridsim.data").joinpath("attack-ics-techniques-v18.1.tsv").read_text("utf-8")
    table = {}
    for row in csv.reader(text.splitlines(), delimiter="\t"):
        if len(row) >= 2 and row[0].startswith("T"):
            tactics = tuple(t.strip() for t in row[2].split(",")) if len(row) > 2 else ()
            table[row[0]] = Technique(row[0], row[1], tactics)
    return table
