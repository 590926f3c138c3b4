"""One reading of a number from a manifest: what counts as a finite real number, said once.

TOML and YAML give ints of any size: ``math.isfinite`` and ``float`` raise
``OverflowError`` on a 400-digit one, and a boolean is an int to Python. Every
validator of the manifest asks this function instead of checking by itself.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["finite_number", "shown"]


def finite_number(value: Any) -> float | None:
    """``value`` as a float if it is a finite real number (not a boolean, not too large for a float), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def shown(value: Any, limit: int = 60) -> str:
    """A manifest value for a one-line error message: bounded, and never raising.

    ``repr`` of an integer of more than 4300 digits raises ValueError; line
    breaks and control characters are escaped so the message stays one line.
    """
    if isinstance(value, int) and not isinstance(value, bool) and finite_number(value) is None:
        return "an integer too large for a number"
    try:
        text = repr(value)
    except ValueError:
        return "a value too large to show"
    return text if len(text) <= limit else text[: limit - 3] + "..."
