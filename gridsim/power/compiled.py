"""A pandapower net compiled once into arrays, for the fast cascade engine.

pandapower rebuilds its internal case (``ppc``) from the element tables at
every power flow, which is most of the cost of a small DC power flow. A
cascade only switches branches and generators and scales loads, so the
compiled grid takes pandapower's own conversion of the untouched net once:
buses (buses joined by closed bus-bus switches share one row, as in
pandapower), branches with their susceptance ``1 / (x * tap)`` and phase
shift exactly as pandapower's ``makeBdc`` computes them, and the maps from
lines, transformers, three-winding transformers, loads, static generators,
generators and external grids to rows. Everything is a numpy array: the
object pickles small, for worker processes, which unpickle it without
importing pandapower (its imports here are inside :func:`compile_grid`).

Withdrawals that no cascade rule changes (shunts, wards, storage) are kept
as one fixed vector, taken from pandapower's own bus table.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from gridsim.model.grid import dispatch_range, quiet_pandapower
from gridsim.model.system import System
from gridsim.power.powerflow import dc_case

__all__ = ["CompiledGrid", "compile_grid"]


@dataclass(frozen=True)
class CompiledGrid:
    """Arrays of one net; row numbers are pandapower's internal (``ppc``) bus and branch rows.

    Per-element arrays follow the order of the element's table in the net
    (``net.load.index`` order and so on).
    """

    base_mva: float
    n_bus: int
    bus_index: np.ndarray  # pandapower bus index, per bus position
    bus_row: np.ndarray  # ppc row of each pandapower bus (position order)
    row_alive: np.ndarray  # ppc rows that exist in the untouched net (in-service buses)
    va_rad: np.ndarray  # initial angle of each row (used at reference buses)
    from_row: np.ndarray
    to_row: np.ndarray
    b_pu: np.ndarray  # susceptance 1 / (x * tap) of each branch, in service or not
    shift_rad: np.ndarray
    branch_on: np.ndarray  # in service in the untouched net
    line_branch: np.ndarray  # branch row of each line (-1: none)
    trafo_branch: np.ndarray
    trafo3w_branch: np.ndarray  # (n, 3): hv, mv and lv branch rows
    line_index: np.ndarray
    trafo_index: np.ndarray
    trafo3w_index: np.ndarray
    line_rating_mva: np.ndarray
    trafo_rating_mva: np.ndarray
    limit: float  # 1 + overload tolerance
    load_index: np.ndarray
    load_row: np.ndarray
    load_p_mw: np.ndarray  # p_mw * scaling of the untouched net (negative: an injection)
    load_on: np.ndarray
    sgen_row: np.ndarray
    sgen_p_mw: np.ndarray  # p_mw * scaling * in_service
    gen_index: np.ndarray
    gen_row: np.ndarray
    gen_p_mw: np.ndarray
    gen_low_mw: np.ndarray
    gen_cap_mw: np.ndarray
    gen_on: np.ndarray
    gen_slack: np.ndarray  # slack flag in the untouched net
    ext_row: np.ndarray  # rows of the in-service external grids
    fixed_withdrawal_mw: np.ndarray  # per row: shunts, wards, storage ... (nothing a cascade changes)
    shunt_mw: np.ndarray  # per row: shunt conductance at 1 p.u. (pandapower's GS; in the AC admittance matrix)
    has_bus_switches: bool  # closed bus-bus switches: opening one changes the rows (not compiled)
    # For AC power flows: pandapower's own bus and branch tables, and reactive power.
    bus_table: np.ndarray
    branch_table: np.ndarray
    load_q_mvar: np.ndarray  # q_mvar * scaling of the untouched net
    sgen_q_mvar: np.ndarray
    fixed_withdrawal_q_mvar: np.ndarray
    vm_set_pu: np.ndarray  # voltage set point of every row (generators, external grids; 1.0 elsewhere)

    @property
    def n_branch(self) -> int:
        """Branch rows (lines, transformers, three-winding halves, impedances, switches with impedance ...)."""
        return len(self.from_row)


def compile_grid(system: System) -> CompiledGrid:
    """Compile ``system.net`` (never modified) into a :class:`CompiledGrid`."""
    # pandapower's column numbers, imported here: a worker process that only unpickles a CompiledGrid needs none.
    from pandapower.pypower.idx_brch import BR_STATUS, BR_X, F_BUS, SHIFT, T_BUS, TAP  # noqa: PLC0415
    from pandapower.pypower.idx_bus import BUS_TYPE, GS, NONE, PD, QD, VA, VM  # noqa: PLC0415

    quiet_pandapower()
    net = copy.deepcopy(system.net)
    ppc, lookups = dc_case(net)
    bus, branch = ppc["bus"], ppc["branch"]
    base_mva = float(ppc["baseMVA"])

    status = np.real(branch[:, BR_STATUS]).astype(bool)
    x = np.real(branch[:, BR_X]).astype(float)
    tap = np.real(branch[:, TAP]).astype(float)
    tap = np.where(tap != 0.0, tap, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        b_pu = np.where(x != 0.0, 1.0 / (x * tap), 0.0)

    def rows_of(table: str, count: int, width: int = 1) -> np.ndarray:
        span = lookups["branch"].get(table)
        if span is None or count == 0:
            return np.full((count, width) if width > 1 else count, -1, dtype=np.int64)
        start, _ = span
        if width == 1:
            return np.arange(start, start + count, dtype=np.int64)
        return np.stack([np.arange(start + k * count, start + (k + 1) * count) for k in range(width)], axis=1)

    bus_lookup = np.asarray(lookups["bus"], dtype=np.int64)
    bus_index = net.bus.index.to_numpy(dtype=np.int64)
    bus_row = bus_lookup[bus_index]

    def rows_of_buses(buses) -> np.ndarray:
        return bus_lookup[np.asarray(buses, dtype=np.int64)] if len(buses) else np.zeros(0, dtype=np.int64)

    load = system.net.load
    load_p = load.p_mw.to_numpy(dtype=float) * load.scaling.to_numpy(dtype=float)
    load_on = load.in_service.to_numpy(dtype=bool)
    sgen = system.net.sgen
    sgen_p = (sgen.p_mw * sgen.scaling * sgen.in_service).to_numpy(dtype=float) if len(sgen) else np.zeros(0)
    gen = system.net.gen
    low, cap = dispatch_range(system.net)
    ext = system.net.ext_grid
    ext_on = ext.in_service.to_numpy(dtype=bool)

    load_row = rows_of_buses(load.bus.to_numpy())
    sgen_row = rows_of_buses(sgen.bus.to_numpy()) if len(sgen) else np.zeros(0, dtype=np.int64)
    n_bus = len(bus)
    # pandapower's PD holds loads and static generators (as negative load) plus everything else.
    counted = np.zeros(n_bus)
    np.add.at(counted, load_row[load_on], load_p[load_on])
    np.add.at(counted, sgen_row, -sgen_p)
    fixed = np.real(bus[:, PD]).astype(float) - counted + np.real(bus[:, GS]).astype(float)
    load_q = load.q_mvar.to_numpy(dtype=float) * load.scaling.to_numpy(dtype=float)
    sgen_q = (sgen.q_mvar * sgen.scaling * sgen.in_service).to_numpy(dtype=float) if len(sgen) else np.zeros(0)
    counted_q = np.zeros(n_bus)
    np.add.at(counted_q, load_row[load_on], load_q[load_on])
    np.add.at(counted_q, sgen_row, -sgen_q)
    fixed_q = np.real(bus[:, QD]).astype(float) - counted_q

    switch = system.net.switch
    bus_switches = bool(len(switch)) and bool(((switch.et == "b") & switch.closed.astype(bool)).any())
    return CompiledGrid(
        base_mva=base_mva,
        n_bus=n_bus,
        bus_index=bus_index,
        bus_row=bus_row,
        row_alive=np.real(bus[:, BUS_TYPE]).astype(int) != NONE,
        va_rad=np.deg2rad(np.real(bus[:, VA]).astype(float)),
        from_row=np.real(branch[:, F_BUS]).astype(np.int64),
        to_row=np.real(branch[:, T_BUS]).astype(np.int64),
        b_pu=b_pu,
        shift_rad=np.deg2rad(np.real(branch[:, SHIFT]).astype(float)),
        branch_on=status,
        line_branch=rows_of("line", len(system.net.line)),
        trafo_branch=rows_of("trafo", len(system.net.trafo)),
        trafo3w_branch=rows_of("trafo3w", len(system.net.trafo3w), 3).reshape(len(system.net.trafo3w), 3),
        line_index=system.net.line.index.to_numpy(dtype=np.int64),
        trafo_index=system.net.trafo.index.to_numpy(dtype=np.int64),
        trafo3w_index=system.net.trafo3w.index.to_numpy(dtype=np.int64),
        line_rating_mva=np.asarray(system.line_rating_mva, dtype=float),
        trafo_rating_mva=np.asarray(system.trafo_rating_mva, dtype=float),
        limit=1.0 + float(system.overload_tolerance),
        load_index=load.index.to_numpy(dtype=np.int64),
        load_row=load_row,
        load_p_mw=load_p,
        load_on=load_on,
        sgen_row=sgen_row,
        sgen_p_mw=sgen_p,
        gen_index=gen.index.to_numpy(dtype=np.int64),
        gen_row=rows_of_buses(gen.bus.to_numpy()),
        gen_p_mw=gen.p_mw.to_numpy(dtype=float).copy(),
        gen_low_mw=low,
        gen_cap_mw=cap,
        gen_on=gen.in_service.to_numpy(dtype=bool),
        gen_slack=(gen.slack.to_numpy(dtype=bool) if "slack" in gen else np.zeros(len(gen), dtype=bool)),
        ext_row=rows_of_buses(ext.bus.to_numpy()[ext_on]),
        fixed_withdrawal_mw=fixed,
        shunt_mw=np.real(bus[:, GS]).astype(float),
        has_bus_switches=bus_switches,
        bus_table=np.array(bus, copy=True),
        branch_table=np.array(branch, copy=True),
        load_q_mvar=load_q,
        sgen_q_mvar=sgen_q,
        fixed_withdrawal_q_mvar=fixed_q,
        vm_set_pu=np.real(bus[:, VM]).astype(float),
    )
