"""Checks of a power net at load time: refuse what gridsim cannot simulate, note what looks wrong.

pandapower and its converters read structurally odd or numerically absurd
grids without complaint: a bus that does not exist, a NaN load, a branch
with no impedance (the power flow divides by it), a load of 1e300 MW. These
are caught when the grid loads, with the table and row at fault, rather than
as a crash or a 300-digit figure mid-simulation. Values that are possible but
implausible, and loads already dark before any attack, are reported as notes
that ``gridsim show`` and ``gridsim run`` print.
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from gridsim.errors import InputError

__all__ = ["MAX_ELEMENT_MW", "check_net", "dark_loads", "net_notes"]

_BUS_COLUMNS = {"load": ("bus",), "sgen": ("bus",), "gen": ("bus",), "ext_grid": ("bus",), "switch": ("bus",),
                "line": ("from_bus", "to_bus"), "trafo": ("hv_bus", "lv_bus"),
                "trafo3w": ("hv_bus", "mv_bus", "lv_bus")}
#: Columns the power flow reads, which must hold finite numbers in every row.
_FINITE_COLUMNS = {"bus": ("vn_kv",), "load": ("p_mw", "q_mvar", "scaling"), "sgen": ("p_mw", "q_mvar", "scaling"),
                   "gen": ("p_mw", "vm_pu", "scaling"), "ext_grid": ("vm_pu",),
                   "line": ("length_km", "r_ohm_per_km", "x_ohm_per_km"),
                   "trafo": ("sn_mva", "vn_hv_kv", "vn_lv_kv", "vk_percent", "vkr_percent")}
#: Largest |MW| of one load or generator: above the world's installed generating capacity (~9 TW), not a grid.
MAX_ELEMENT_MW = 1e7
#: Above this, one element is implausible (more than any single grid's peak demand) but still simulated.
_IMPLAUSIBLE_MW = 1e5


def check_net(net: Any, source: Any) -> None:
    """Refuse a net gridsim cannot simulate, with the table and row at fault.

    Raises
    ------
    InputError
        A missing table or column, an element on a bus that does not exist,
        no source in service, a non-finite or absurd value, an in-service
        branch with zero reactance.
    """
    for table in {"bus", *_BUS_COLUMNS, *_FINITE_COLUMNS}:
        frame = net.get(table) if hasattr(net, "get") else None
        if not isinstance(frame, pd.DataFrame):
            raise InputError(source, f"not a usable pandapower network: table {table!r} is missing or not a table")
    if net.bus.empty:
        raise InputError(source, "the power grid has no buses")
    if not (net.ext_grid.in_service.astype(bool).any() or net.gen.in_service.astype(bool).any()):
        raise InputError(source, "the power grid has no source in service (no external grid, no generator)")
    _check_buses(net, source)
    _check_finite(net, source)
    _check_magnitudes(net, source)
    _check_impedances(net, source)


def _check_buses(net: Any, source: Any) -> None:
    buses = set(net.bus.index)
    for table, columns in _BUS_COLUMNS.items():
        frame = net[table]
        for column in columns:
            if len(frame) and column not in frame:
                raise InputError(source, f"{table} table has no column {column!r}")
            if not len(frame):
                continue
            bad = ~frame[column].isin(buses)
            if table == "switch" and "et" in frame:
                bad |= (frame.et == "b") & ~frame.element.isin(buses)
            if bad.any():
                idx = frame.index[bad.to_numpy()][0]
                raise InputError(source, f"{table} {idx} is connected to bus {frame.at[idx, column]}, "
                                         "which is not in the bus table")


def _numbers(frame, column: str) -> np.ndarray:
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float) if len(frame) else np.zeros(0)


def _check_finite(net: Any, source: Any) -> None:
    for table, columns in _FINITE_COLUMNS.items():
        frame = net[table]
        for column in columns:
            if not len(frame):
                continue
            if column not in frame:
                if column in ("scaling", "q_mvar", "vm_pu"):
                    continue  # optional in hand-made nets; pandapower fills defaults
                raise InputError(source, f"{table} table has no column {column!r}")
            values = _numbers(frame, column)
            bad = ~np.isfinite(values)
            if bad.any():
                idx = frame.index[bad][0]
                raise InputError(source, f"{table} {idx} has a non-finite {column} ({frame.at[idx, column]}); "
                                         f"{int(bad.sum())} such rows")


def _check_magnitudes(net: Any, source: Any) -> None:
    for table in ("load", "sgen", "gen"):
        frame = net[table]
        values = _numbers(frame, "p_mw") if len(frame) else np.zeros(0)
        big = np.abs(values) > MAX_ELEMENT_MW
        if big.any():
            idx = frame.index[big][0]
            raise InputError(source, f"{table} {idx} has p_mw {values[big][0]:.3g}, beyond any real grid "
                                     f"(limit {MAX_ELEMENT_MW:.0e} MW)")


def _check_impedances(net: Any, source: Any) -> None:
    """An in-service branch with zero reactance has infinite susceptance: no power flow can carry it."""
    line = net.line
    if len(line):
        x = _numbers(line, "x_ohm_per_km") * _numbers(line, "length_km")
        bad = (x == 0) & line.in_service.to_numpy(dtype=bool)
        if bad.any():
            idx = line.index[bad][0]
            raise InputError(source, f"line {idx} has zero reactance (x = 0; {int(bad.sum())} such lines): "
                                     "give it a small reactance, or join its buses with a closed bus-bus switch")
    trafo = net.trafo
    if len(trafo):
        vk, vkr = _numbers(trafo, "vk_percent"), _numbers(trafo, "vkr_percent")
        bad = ((vk == 0) | (np.abs(vk) <= np.abs(vkr))) & trafo.in_service.to_numpy(dtype=bool)
        if bad.any():
            idx = trafo.index[bad][0]
            raise InputError(source, f"trafo {idx} has zero reactance (vk_percent {vk[bad][0]:g}, vkr_percent "
                                     f"{vkr[bad][0]:g}; {int(bad.sum())} such transformers)")


def dark_loads(net: Any) -> np.ndarray:
    """Positions (in ``net.load`` order) of in-service loads on buses no source reaches in the untouched grid.

    A source is an external grid or a generator in service, as in the cascade's islanding rule.
    """
    import pandapower.topology as top  # noqa: PLC0415  (pandapower loads when a grid is read: gridsim.model.grid)

    load = net.load
    if load.empty:
        return np.zeros(0, dtype=np.int64)
    graph = top.create_nxgraph(net, respect_switches=True, include_out_of_service=False)
    live = set(net.bus.index[net.bus.in_service.to_numpy(dtype=bool)])
    sources = (set(net.ext_grid.bus[net.ext_grid.in_service.astype(bool)])
               | set(net.gen.bus[net.gen.in_service.astype(bool)])) & live
    reached: set[int] = set()
    for component in nx.connected_components(graph.subgraph(live)):
        if component & sources:
            reached |= component
    on = load.in_service.to_numpy(dtype=bool)
    return np.flatnonzero(on & ~load.bus.isin(reached).to_numpy())


def net_notes(net: Any) -> list[str]:
    """Lines about values that are possible but implausible, for ``show`` and ``run`` to print."""
    notes = []
    load_p = _numbers(net.load, "p_mw")
    negative = load_p < 0
    if negative.any():
        notes.append(f"{int(negative.sum())} loads have negative demand (lowest {load_p.min():,.1f} MW): "
                     "they are read as injections")
    for table in ("load", "sgen", "gen"):
        values = _numbers(net[table], "p_mw")
        big = np.abs(values) > _IMPLAUSIBLE_MW
        if big.any():
            notes.append(f"{int(big.sum())} {table} elements above {_IMPLAUSIBLE_MW:,.0f} MW "
                         f"(largest {np.abs(values).max():,.0f} MW): implausible for one element")
    return notes
