"""One reading of a number from a manifest: what counts as a finite real number, said once.

TOML and YAML give ints of any size: ``math.isfinite`` and ``float`` raise
``OverflowError`` on a 400-digit one, and a boolean is an int to Python. Every
validator of the manifest asks this function instead of checking by itself.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["finite_number"]


def finite_number(value: Any) -> float | None:
    """``value`` as a float if it is a finite real number (not a boolean, not too large for a float), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None
