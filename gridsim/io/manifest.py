"""Reading a manifest's tables: unknown keys refused, and the line a key is on for the error message.

Every reader of a TOML manifest (the system, its layers, its frequency model)
checks its tables with :func:`check_keys` and points at lines with
:func:`line_of`, so a typo gets the same one-line answer everywhere.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from gridsim.errors import InputError

__all__ = ["check_keys", "line_of"]


def line_of(raw: str | None, key: str) -> str | None:
    """Best-effort line number of a key in the manifest text, for error messages."""
    if not raw:
        return None
    for number, line in enumerate(raw.splitlines(), start=1):
        if re.match(rf"\s*\[?\[?\s*([\w.\-]*\.)?{re.escape(key)}\b", line):
            return f"line {number}"
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
