"""The one validator kit for numbers read from input files: what counts as a number, and the one-line error.

Every parser asks this module, so that a 400-digit integer, a NaN, an
infinity, a boolean or a value out of range gets the same kind of answer
everywhere: an :class:`~gridsim.errors.InputError` of one line that names the
file, the place, the key or column, the range wanted and the value given::

    system.toml: line 5: power.frequency.droop must be a number in [0.005, 0.5], got an integer too large for a number
    links.csv: line 4: link 'L3': free_flow_min must be a number > 0, got '-3'

Two readers, for the two ways a number arrives:

- :func:`number` for a value a TOML or YAML parser has already typed (an
  ``int`` of any size, a ``float``, or anything else, which is refused);
- :func:`number_cell` for text: a CSV cell, a GraphML attribute.

Why the care: TOML and YAML give ints of any size, and ``float`` and
``math.isfinite`` raise ``OverflowError`` on a 400-digit one; a boolean is an
int to Python; ``repr`` of an int of more than 4300 digits raises
``ValueError``. A validator written by hand forgets one of these (the drift
this kit replaced: the same 400-digit number was a one-line error under
``[power]`` and a traceback under ``[layers.water]``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from gridsim.errors import InputError

__all__ = ["LARGEST", "finite_number", "number", "number_cell", "requirement", "shown"]

#: Upper bound of a manifest setting that gives none of its own: far beyond any real setting, and small enough
#: that a few of them multiplied stay finite.
LARGEST = 1e12


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
    """A value from an input file for a one-line error message: bounded, and never raising.

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


def requirement(*, minimum: float | None = None, maximum: float | None = None, above: float | None = None,
                integer: bool = False) -> str:
    """What a number must be, as every message says it: ``a number in [0, 10]``, ``a whole number >= 1``.

    ``minimum`` and ``maximum`` are inclusive bounds, ``above`` an exclusive
    lower bound (``a number > 0``); at most one of ``minimum`` and ``above``.
    """
    if minimum is not None and above is not None:
        raise ValueError("give minimum or above, not both")
    noun = "a whole number" if integer else "a number"
    low = f"[{minimum:g}" if minimum is not None else f"({above:g}" if above is not None else None
    if low is not None and maximum is not None:
        return f"{noun} in {low}, {maximum:g}]"
    if minimum is not None:
        return f"{noun} >= {minimum:g}"
    if above is not None:
        return f"{noun} > {above:g}"
    if maximum is not None:
        return f"{noun} <= {maximum:g}"
    return noun


def _checked(parsed: float | None, given: Any, what: str, source: str | Path, place: str | None,
             minimum: float | None, maximum: float | None, above: float | None, integer: bool) -> float:
    """``parsed`` if it is a number (not None) within the bounds; else the one-line error, showing ``given``."""
    if minimum is not None and above is not None:
        raise ValueError("give minimum or above, not both")
    if (parsed is None or (minimum is not None and parsed < minimum) or (above is not None and parsed <= above)
            or (maximum is not None and parsed > maximum) or (integer and not parsed.is_integer())):
        wanted = requirement(minimum=minimum, maximum=maximum, above=above, integer=integer)
        raise InputError(source, f"{what} must be {wanted}, got {shown(given)}", place)
    return parsed


def number(value: Any, what: str, source: str | Path, place: str | None = None, *, minimum: float | None = None,
           maximum: float | None = None, above: float | None = None, integer: bool = False) -> float:
    """``value`` (as a TOML or YAML parser typed it) as a float, if it is a finite number within the bounds.

    Parameters
    ----------
    value : object
        The parsed value: an int of any size, a float, or anything else.
    what : str
        The name the message gives it (``power.frequency.droop``).
    source, place : str or Path, str
        The file and the place in it (``line 5``), as :class:`~gridsim.errors.InputError` takes them.
    minimum, maximum, above, integer
        The bounds (see :func:`requirement`); a whole number is still returned as a float.

    Raises
    ------
    InputError
        Not a finite real number (a boolean, a string, NaN, an infinity, an
        integer too large for a float) or out of bounds: one line,
        ``<what> must be <requirement>, got <value>``.
    """
    return _checked(finite_number(value), value, what, source, place, minimum, maximum, above, integer)


def number_cell(text: str, what: str, source: str | Path, place: str | None = None, *,
                minimum: float | None = None, maximum: float | None = None, above: float | None = None,
                integer: bool = False, blank: float | None = None) -> float:
    """A text cell (CSV, GraphML attribute) as a float, if it reads as a finite number within the bounds.

    The text is read by ``float``: ``2``, ``2.5``, ``1e3`` and `` 7 `` are
    numbers; ``nan``, ``inf`` and ``1e400`` (an infinity) are not finite and
    refused, as is a 400-digit integer (it reads as an infinity). A blank
    cell gives ``blank`` when one is given, else it is refused like any text
    that is not a number.

    Raises
    ------
    InputError
        As :func:`number`, the text shown quoted: ``trips_per_h must be a
        number >= 0, got '-3'``.
    """
    if text == "" and blank is not None:
        return blank
    try:
        parsed: float | None = float(text)
    except ValueError:
        parsed = None
    if parsed is not None and not math.isfinite(parsed):
        parsed = None
    return _checked(parsed, text, what, source, place, minimum, maximum, above, integer)
