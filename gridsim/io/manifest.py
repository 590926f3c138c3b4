"""Reading a manifest's tables: unknown keys refused, numbers checked, and the line a key is on for the message.

Every reader of a TOML manifest (the system, its layers, its frequency model)
checks its tables with :func:`check_keys`, reads its numbers with
:func:`manifest_number` and points at lines with :func:`line_of`, so a typo or
a bad number gets the same one-line answer everywhere.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from gridsim.errors import InputError
from gridsim.io.numbers import LARGEST, number

__all__ = ["check_keys", "line_of", "manifest_number"]


def line_of(raw: str | None, key: str) -> str | None:
    """Best-effort line number of a key in the manifest text, for error messages."""
    if not raw:
        return None
    for index, line in enumerate(raw.splitlines(), start=1):
        if re.match(rf"\s*\[?\[?\s*([\w.\-]*\.)?{re.escape(key)}\b", line):
            return f"line {index}"
    return None


def check_keys(table: Any, allowed: set[str], where: str, path: Path | str, raw: str | None) -> dict:
    """``table`` itself if it is a table whose keys are all in ``allowed``; else an InputError naming the key."""
    if not isinstance(table, dict):
        raise InputError(path, f"[{where}] must be a table", line_of(raw, where.split(".")[-1]))
    for key in table:
        if key not in allowed:
            prefix = f"{where}." if where else ""
            raise InputError(path, f"unknown key {prefix}{key} (allowed: {', '.join(sorted(allowed))})",
                             line_of(raw, key))
    return table


def manifest_number(table: dict, key: str, default: float, section: str, path: Path | str, raw: str | None, *,
                    minimum: float | None = None, maximum: float = LARGEST, above: float | None = None,
                    integer: bool = False) -> float:
    """``table[key]`` (``default`` when absent) checked by :func:`gridsim.io.numbers.number`.

    A setting is at most :data:`~gridsim.io.numbers.LARGEST` unless ``maximum`` says otherwise.

    The message names the key ``<section>.<key>`` and the line it is on:
    ``system.toml: line 5: power.frequency.droop must be a number in [0.005, 0.5], got nan``.
    """
    what = f"{section}.{key}" if section else key
    return number(table.get(key, default), what, path, line_of(raw, key), minimum=minimum, maximum=maximum,
                  above=above, integer=integer)
