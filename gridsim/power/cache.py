"""What the power room computes once per system (base flows, the compiled engine), kept beside it, not on it.

The library does not write onto a caller's :class:`~gridsim.model.system.System`.
A value computed from one is kept here, keyed by the system's identity, and
dropped when the system is garbage-collected (a weak reference's callback).
The net of a system is never modified after loading, so the value stays right
for as long as the system lives.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["per_system"]

T = TypeVar("T")

_KEPT: dict[tuple[int, str], tuple[weakref.ref, Any]] = {}


def per_system(system: Any, name: str, build: Callable[[], T]) -> T:
    """``build()`` once per live ``system`` and ``name``; later calls hand back the same value."""
    key = (id(system), name)
    kept = _KEPT.get(key)
    if kept is not None and kept[0]() is system:
        return kept[1]
    value = build()
    # The callback holds the table itself: at interpreter exit the module's globals may already be gone.
    _KEPT[key] = (weakref.ref(system, lambda _ref, key=key, kept=_KEPT: kept.pop(key, None)), value)
    return value
