"""Naming a pandapower element in an input file: by its ``name``, or by its index.

Tables that point at buses, loads or generators (substations, customers,
dependencies, the frequency model) resolve their tokens here, so a name and
an index mean the same thing in every file.
"""

from __future__ import annotations

import re

__all__ = ["name_index", "resolve_id"]


def name_index(table) -> dict[str, int]:
    """First index of every non-empty name in a pandapower table."""
    names: dict[str, int] = {}
    if "name" in table:
        for idx, nm in zip(table.index, table["name"]):
            if isinstance(nm, str) and nm and nm not in names:
                names[nm] = int(idx)
    return names


def resolve_id(token: str, names: dict[str, int], valid: set[int]) -> int | None:
    """The element a token names: a name first, else an index among ``valid``; None if neither."""
    if token in names:
        return names[token]
    if re.fullmatch(r"-?\d+", token) and int(token) in valid:
        return int(token)
    return None
