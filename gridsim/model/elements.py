"""Names for the elements that can fail: ``Ref("line", 12)`` prints as ``line:12``."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Ref", "breakers_at"]


class Ref(NamedTuple):
    """One element: a pandapower table and index, or ``("substation", name)``."""

    table: str
    key: int | str

    def __str__(self) -> str:
        return f"{self.table}:{self.key}"


def breakers_at(net, buses: set[int]) -> list[Ref]:
    """Everything opening the breakers at these buses opens.

    Lines, two- and three-winding transformers touching the buses, and the
    bus-bus switches closed in the untouched net.
    """
    refs: list[Ref] = []
    for table, columns in (("line", ("from_bus", "to_bus")), ("trafo", ("hv_bus", "lv_bus")),
                           ("trafo3w", ("hv_bus", "mv_bus", "lv_bus"))):
        frame = net[table]
        hit = np.zeros(len(frame), dtype=bool)
        for column in columns:
            hit |= frame[column].isin(buses).to_numpy()
        refs.extend(Ref(table, int(i)) for i in frame.index[hit])
    switch = net.switch
    if len(switch):
        bus_bus = (switch.et == "b").to_numpy() & switch.closed.to_numpy(dtype=bool)
        hit = bus_bus & (switch.bus.isin(buses).to_numpy() | switch.element.isin(buses).to_numpy())
        refs.extend(Ref("switch", int(i)) for i in switch.index[hit])
    return refs
