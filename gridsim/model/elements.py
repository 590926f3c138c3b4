"""Names for the elements that can fail: ``Ref("line", 12)`` prints as ``line:12``."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Ref"]


class Ref(NamedTuple):
    """One element: a pandapower table and index, or ``("substation", name)``."""

    table: str
    key: int | str

    def __str__(self) -> str:
        return f"{self.table}:{self.key}"
