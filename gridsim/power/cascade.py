"""The reference power cascade: plain pandapower, slow and obviously right.

One call takes the outages in force and runs the propagation rules (the
README's "How a cascade runs") to a fixed point:

1. outages applied (lines, transformers and bus-bus switches opened,
   generators tripped, loads scaled);
2. islands over closed, in-service branches; an island with no source (an
   external grid or an in-service generator) is de-energised;
3. every energised island balanced: an island holding an external grid takes
   its imbalance there; otherwise generators share the island's demand in
   proportion to their headroom, within their limits, and load is shed
   proportionally when they cannot cover it;
4. in AC, every line or transformer whose DC angle passes
   :data:`~gridsim.power.contract.STABILITY_LIMIT_RAD` (a transfer above its steady-state limit
   ``V^2 / X``) trips out of step (one cascade generation), and the rules run
   again from 2;
5. a DC or AC power flow, each island on its own: in AC an external grid
   takes its island's slack, and in an island without one the generators
   share it (:func:`slack_weights`). An AC flow that does not converge
   (from DC angles and from a flat start) is taken as voltage collapse. The
   islands that do not converge on their own are shed, load and generation
   together, in 10 % stages until they do; at the first stage that converges, the buses
   below :data:`~gridsim.power.contract.UVLS_PU` show where the collapse is, and the smallest area
   around them (one branch more at a time) whose shedding lets the islands
   converge is shed instead, at its lightest stage, when that cuts no more;
   an island that fails with everything in it cut goes dark alone;
6. every line or transformer loaded above ``rating x (1 + tolerance)`` trips
   at once (one cascade generation) and the rules run again from 2.

Static generators (PV, wind) follow the grid: they inject in energised
islands and cannot hold up an island alone (anti-islanding protection).
The net given is never modified.

This engine is written apart from the fast one (:mod:`gridsim.power.fast`),
so that each checks the other: they share the contract
(:mod:`gridsim.power.contract`: types, the rules' constants) and no rule
code. Where both engines need the same rule, each writes it its own way, and
the comment of each names its twin (a deliberate pair): the dispatch
(:func:`dispatch`), the slack's shares (:func:`slack_weights`), the
search of the shedding stages (:func:`_lightest_stage`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import networkx as nx
import numpy as np
import pandas as pd

from gridsim.model.grid import dispatch_range
from gridsim.model.system import System
from gridsim.power.contract import (
    AC_SHED_STAGES,
    LOAD_ISLAND,
    LOAD_SERVED,
    LOAD_SHED,
    MAX_RINGS,
    STABILITY_LIMIT_RAD,
    TRIP_OUT_OF_STEP,
    TRIP_OVERLOAD,
    UVLS_PU,
    CascadeResult,
    Outages,
    Trip,
    VoltageCollapse,
    check_flow,
    labelled,
    stage_kept,
)
from gridsim.power.powerflow import branch_flows_mva, branch_graph, dc_branch_angles, run_ac, run_dc

__all__ = ["run_cascade", "dispatch", "slack_weights", "energised_buses"]


@labelled("reference")
def run_cascade(system: System, outages: Outages = Outages(), *, flow: str = "dc") -> CascadeResult:
    """Run the power cascade rules to a fixed point on a copy of ``system.net``: the reference engine.

    A :class:`~gridsim.power.contract.CascadeEngine` labelled ``reference``.

    Parameters
    ----------
    system : gridsim.model.System
        Grid, ratings and protection tolerance.
    outages : Outages
        Branches and generators out, and load multipliers, at the start.
    flow : {"dc", "ac"}
        Power flow used by the protection rule.

    Returns
    -------
    CascadeResult
        Branches tripped (in generations), served load and the state of every load.

    Examples
    --------
    >>> from gridsim import load_system
    >>> from gridsim.power.contract import Outages
    >>> result = run_cascade(load_system("pandapower:case30"), Outages(lines=frozenset({14, 15})))
    >>> [(trip.index, trip.generation) for trip in result.trips]
    [(29, 1), (20, 2), (21, 3), (22, 3), (23, 3), (24, 3)]
    >>> result.depth, round(result.lost_mw, 1)
    (3, 44.0)
    """
    check_flow(flow)
    net = copy.deepcopy(system.net)
    load_idx = net.load.index
    factor = np.array([outages.load_factor.get(int(i), 1.0) for i in load_idx], dtype=float)
    base_scaling = net.load.scaling.to_numpy(dtype=float) * factor
    # A negative load is an injection: it acts in the power flow but is nobody's demand.
    demand = np.maximum(net.load.p_mw.to_numpy(dtype=float) * base_scaling, 0.0) \
        * net.load.in_service.to_numpy(dtype=bool)
    # Load shed by under-frequency relays is still demand, not served: it leaves the balance and the flow.
    base_scaling = base_scaling * np.array([1.0 - outages.load_shed.get(int(i), 0.0) for i in load_idx])
    gen_p0 = net.gen.p_mw.to_numpy(dtype=float).copy()

    if outages.lines:
        net.line.loc[list(outages.lines), "in_service"] = False
    if outages.trafos:
        net.trafo.loc[list(outages.trafos), "in_service"] = False
    if outages.gens:
        net.gen.loc[list(outages.gens), "in_service"] = False
    if outages.trafo3ws:
        net.trafo3w.loc[list(outages.trafo3ws), "in_service"] = False
    if outages.switches:
        net.switch.loc[list(outages.switches), "closed"] = False

    limit = 1.0 + system.overload_tolerance
    trips: list[Trip] = []
    generation = 0
    sgen_scaling = net.sgen.scaling.to_numpy(dtype=float).copy()
    while True:
        net.sgen["scaling"] = sgen_scaling  # the voltage-collapse rule of the last generation may have cut it
        islands = _islands(net)
        state, shed_factor = _balance(net, islands, base_scaling, gen_p0)
        unstable = _out_of_step(net, base_scaling * shed_factor, state) if flow == "ac" else []
        if unstable:
            new, cause = unstable, TRIP_OUT_OF_STEP
        else:
            collapse = _solve(net, flow, base_scaling * shed_factor, state, islands)
            line_flow, trafo_flow = branch_flows_mva(net, flow)
            new, cause = _overloaded(net, system, line_flow, trafo_flow, limit), TRIP_OVERLOAD
        if not new:
            break
        generation += 1
        for table, idx, loading in new:
            net[table].at[idx, "in_service"] = False
            trips.append(Trip(table, idx, generation, loading, cause))

    served = (np.nan_to_num(net.res_load.p_mw.to_numpy(dtype=float), nan=0.0) if len(net.res_load)
              else np.zeros(len(load_idx)))
    served = np.where(state == LOAD_ISLAND, 0.0, served)
    served = np.clip(served, 0.0, demand) if len(served) else served
    # A load the balancing left whole but the AC stages cut is shed too.
    state = np.where((state == LOAD_SERVED) & (served < demand - 1e-9), LOAD_SHED, state)
    energised = energised_buses(net, islands, served, demand)
    return CascadeResult(
        trips=trips,
        demand_mw=demand,
        served_mw=served,
        load_state=state,
        depth=generation,
        islands=len(islands),
        line_flow_mva=line_flow,
        trafo_flow_mva=trafo_flow,
        collapse=collapse,
        energised_buses=energised,
    )


def energised_buses(net, islands: list[set[int]], served: np.ndarray, demand: np.ndarray) -> frozenset[int]:
    """Buses of the islands that hold a source (external grid or generator in service).

    An island whose load all went unserved (an AC collapse shed to zero) is
    not energised either. Dependent infrastructure on a bus is powered while
    the bus is energised, even where load is partly shed (critical loads sit
    on the feeders kept).
    """
    load_bus = net.load.bus.to_numpy()
    sources = set(net.ext_grid.bus[net.ext_grid.in_service.astype(bool)]) | set(
        net.gen.bus[net.gen.in_service.astype(bool)])
    out: set[int] = set()
    for island in islands:
        if not island & sources:
            continue
        loads = np.isin(load_bus, list(island))
        if loads.any() and demand[loads].sum() > 1e-9 and served[loads].sum() <= 1e-9:
            continue  # collapsed
        out |= island
    return frozenset(int(b) for b in out)


def _islands(net) -> list[set[int]]:
    """Connected sets of buses over closed, in-service branches and switches."""
    return [set(c) for c in nx.connected_components(_graph(net))]


def _graph(net):
    """pandapower's graph of the buses in service over closed, in-service branches and switches."""
    graph = branch_graph(net)
    in_service = set(net.bus.index[net.bus.in_service.to_numpy(dtype=bool)])
    graph.remove_nodes_from([n for n in list(graph.nodes) if n not in in_service])
    return graph


def _balance(net, islands, base_scaling, gen_p0) -> tuple[np.ndarray, np.ndarray]:
    """Mark de-energised loads and dispatch/shed energised islands without an external grid.

    Returns the state of every load and the fraction of each load kept.
    """
    load_bus = net.load.bus.to_numpy()
    load_on = net.load.in_service.to_numpy(dtype=bool)
    demand = net.load.p_mw.to_numpy(dtype=float) * base_scaling * load_on
    gen_bus = net.gen.bus.to_numpy()
    gen_on = net.gen.in_service.to_numpy(dtype=bool)
    ext_bus = net.ext_grid.bus.to_numpy()[net.ext_grid.in_service.to_numpy(dtype=bool)]
    sgen_bus = net.sgen.bus.to_numpy()
    sgen_p = (net.sgen.p_mw * net.sgen.scaling * net.sgen.in_service).to_numpy(dtype=float)
    low, cap = dispatch_range(net)

    state = np.full(len(load_bus), LOAD_ISLAND, dtype=object)
    keep = np.zeros(len(load_bus))
    slack = np.zeros(len(gen_bus), dtype=bool)
    in_ext_island = np.zeros(len(gen_bus), dtype=bool)
    gen_p = gen_p0.copy()
    for island in islands:
        members = np.fromiter(island, dtype=np.int64)
        loads = np.isin(load_bus, members)
        gens = np.isin(gen_bus, members) & gen_on
        has_ext = bool(np.isin(ext_bus, members).any())
        if not has_ext and not gens.any():
            continue  # de-energised: loads stay LOAD_ISLAND
        state[loads] = LOAD_SERVED
        keep[loads] = 1.0
        if has_ext:
            in_ext_island |= np.isin(gen_bus, members)
            continue  # the external grid balances the island
        sgens = np.isin(sgen_bus, members)
        load_mw = demand[loads].sum()
        net_demand = load_mw - sgen_p[sgens].sum()
        g_low, g_cap = low[gens], cap[gens]
        if net_demand > g_cap.sum():
            fraction = (g_cap.sum() + sgen_p[sgens].sum()) / load_mw if load_mw > 0 else 1.0
            keep[loads] = np.clip(fraction, 0.0, 1.0)
            state[loads & (demand > 0)] = LOAD_SHED if fraction < 1.0 - 1e-12 else LOAD_SERVED
        gen_p[gens] = dispatch(net_demand, g_low, g_cap)
        chosen = np.flatnonzero(gens)[np.argmax(g_cap)]
        slack[chosen] = True
    # Islands with an external grid keep their scheduled set points.
    net.gen["p_mw"] = gen_p
    if "slack" in net.gen:
        original = net.gen.slack.to_numpy(dtype=bool)
        net.gen["slack"] = slack | (original & in_ext_island)
    else:
        net.gen["slack"] = slack
    return state, keep


def dispatch(net_demand: float, low: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """The dispatch rule: the outputs of an island's generators (limits ``low``, ``cap``) for its ``net_demand``.

    Short of capacity, every generator runs at its maximum (the island sheds
    the rest); at or below the sum of the minimums, they share the demand in
    proportion to their minimums; in between, each takes its minimum and a
    share of the rest in proportion to its headroom ``cap - low``. This
    engine's one home of the rule; a deliberate pair, its twin (every island
    at once) is :func:`gridsim.power.fast._dispatch`.
    """
    if net_demand > cap.sum():
        return cap
    if net_demand <= low.sum():
        total_low = low.sum()
        return low * (max(net_demand, 0.0) / total_low) if total_low > 0 else np.zeros_like(low)
    room = cap - low
    return low + (net_demand - low.sum()) * room / room.sum()


def _solve(net, flow: str, scaling: np.ndarray, state: np.ndarray, islands: list[set[int]]) -> VoltageCollapse | None:
    """Run the power flow; in AC, apply the voltage-collapse rule where it does not converge.

    Only the islands that fail to converge on their own are shed, so a
    collapsing fragment does not take the rest of the grid with it; within
    them, the area around the buses below :data:`UVLS_PU` is shed instead of
    the whole when that converges and cuts less.
    """
    on = state != LOAD_ISLAND
    net.load["scaling"] = np.where(on, scaling, 0.0)
    if not _has_reference(net):
        _zero_results(net)  # nothing energised: no power flow to run
        return None
    if flow == "dc":
        run_dc(net)
        return None
    failing = _run_ac(net, islands)
    if not failing:
        return None
    area = set().union(*failing)
    loads = np.isin(net.load.bus.to_numpy(), list(area)) & on
    gens = np.isin(net.gen.bus.to_numpy(), list(area))
    sgens = np.isin(net.sgen.bus.to_numpy(), list(area))
    gen_p = net.gen.p_mw.to_numpy(dtype=float).copy()
    sgen_scaling = net.sgen.scaling.to_numpy(dtype=float).copy()
    demand = (np.maximum(net.load.p_mw.to_numpy(dtype=float), 0.0) * np.where(on, scaling, 0.0)
              * net.load.in_service.to_numpy(dtype=bool))

    def converges(zone: set[int] | None, kept: float) -> bool:
        """Whether the AC flow converges with the load and generation of ``zone`` (None: area) cut to ``kept``."""
        load_mask, gen_mask, sgen_mask = (loads, gens, sgens) if zone is None else _at(net, zone, loads, gens, sgens)
        net.load["scaling"] = np.where(on, np.where(load_mask, scaling * kept, scaling), 0.0)
        net.gen["p_mw"] = np.where(gen_mask, gen_p * kept, gen_p)
        net.sgen["scaling"] = np.where(sgen_mask, sgen_scaling * kept, sgen_scaling)
        return not _run_ac(net, islands)

    stages = _lightest_stage(lambda kept: converges(None, kept))
    if stages is None:  # not even without their load: the failing islands go dark (the last trial zeroed them)
        return VoltageCollapse(AC_SHED_STAGES, loads, float(demand[loads].sum()), None)
    uniform = VoltageCollapse(stages, loads, float(demand[loads].sum()) * (1.0 - stage_kept(stages)), None)
    vm = net.res_bus.vm_pu
    weak = [int(b) for b in area if vm.get(b, np.nan) < UVLS_PU]
    if not weak:
        return uniform
    distance = _hops_from(net, weak)
    previous: set[int] = set()
    for ring in range(MAX_RINGS + 1):
        zone = {bus for bus, d in distance.items() if d <= ring}
        if zone >= area or zone == previous:
            break
        previous = zone
        if not converges(zone, 0.0):
            continue
        local = _lightest_stage(lambda kept, z=zone: converges(z, kept), known=AC_SHED_STAGES)
        zone_loads = _at(net, zone, loads, gens, sgens)[0]
        shed_mw = float(demand[zone_loads].sum()) * (1.0 - stage_kept(local))
        if shed_mw <= uniform.shed_mw:
            return VoltageCollapse(local, zone_loads, shed_mw, ring)
        break
    converges(None, stage_kept(uniform.stages))  # back to the whole islands' stage
    return uniform


def _at(net, buses: set[int], loads: np.ndarray, gens: np.ndarray, sgens: np.ndarray) -> tuple[np.ndarray, ...]:
    """The loads, generators and static generators of the masks given that sit at ``buses``."""
    where = list(buses)
    return (np.isin(net.load.bus.to_numpy(), where) & loads, np.isin(net.gen.bus.to_numpy(), where) & gens,
            np.isin(net.sgen.bus.to_numpy(), where) & sgens)


def _lightest_stage(converges: Callable[[float], bool], known: int | None = None) -> int | None:
    """The first of the 10 % stages at which ``converges(kept)`` holds, None if none does.

    ``known`` is a stage known to converge: it is solved again, not tested, so
    the caller's power flow is left at the stage returned. A deliberate pair:
    the fast engine searches its stages with its own twin,
    :func:`gridsim.power.fast._lightest_stage`.
    """
    for stages in range(1, AC_SHED_STAGES + 1):
        if stages == known:
            converges(stage_kept(stages))  # leave the net solved at it
            return stages
        if converges(stage_kept(stages)):
            return stages
    return None


def _hops_from(net, buses: list[int]) -> dict[int, float]:
    """Branches to cross from the nearest of ``buses`` to every bus within :data:`MAX_RINGS`.

    Lines, transformers and impedances count one; a closed bus-bus switch
    none where pandapower fuses the buses it joins (``z_ohm`` zero), one
    where it makes the switch a branch of its own; a three-winding
    transformer one between any two of its sides.
    """
    z_ohm = net.switch.z_ohm if "z_ohm" in net.switch else None

    def hop(key) -> float:
        if key[0] != "switch":
            return 1.0
        return 1.0 if z_ohm is not None and float(z_ohm.at[key[1]]) > 0.0 else 0.0

    def weight(_u, _v, edges) -> float:
        return min(hop(key) for key in edges)

    return nx.multi_source_dijkstra_path_length(_graph(net), set(buses), cutoff=MAX_RINGS, weight=weight)


def _run_ac(net, islands: list[set[int]]) -> list[set[int]]:
    """AC power flow in place, island by island as the fast engine solves them; return the islands that fail.

    Every island holding a source is solved on its own, from DC angles and
    then from a flat start; an island whose generators share its slack
    (:func:`slack_weights`) with pandapower's distributed slack, which takes
    one island at a time. Where no island shares its slack and all converge
    from DC angles, one ``runpp`` solves them at once. ``net`` gets the
    results of the islands that converge (``res_bus``, ``res_line``,
    ``res_trafo``, ``res_load``: what the cascade reads); those of the
    islands that fail are zero.
    """
    live = [island for island in islands if _has_source(net, island)]
    shared = [_shares_its_slack(net, island) for island in live]
    if not any(shared) and run_ac(net, inits=("dc",)):
        return []
    work = copy.deepcopy(net)
    in_service = net.bus.in_service.to_numpy(dtype=bool)
    pieces: dict[str, list] = {res: [] for res, _, _ in _RESULTS}
    failing = []
    for island, shares in zip(live, shared):
        members = list(island)
        work.bus["in_service"] = in_service & net.bus.index.isin(members)
        work.gen["slack_weight"] = slack_weights(work, island) if shares else 0.0
        if not run_ac(work, distributed=shares):
            failing.append(island)
            continue
        for res, table, bus in _RESULTS:
            at = net[table].index if bus is None else net[table][bus]
            pieces[res].append(work[res].loc[net[table].index[np.isin(np.asarray(at), members)]])
    for res, table, _ in _RESULTS:
        columns = work[res].columns
        merged = (pd.concat(pieces[res]) if pieces[res] else pd.DataFrame(columns=columns)).reindex(net[table].index)
        net[res] = merged if table == "bus" else merged.fillna(0.0)  # buses not solved: NaN, as pandapower says
    return failing


#: The result tables an island-by-island solve assembles, with the column that places a row in an island.
_RESULTS = (("res_bus", "bus", None), ("res_line", "line", "from_bus"), ("res_trafo", "trafo", "hv_bus"),
            ("res_load", "load", "bus"))


def slack_weights(net, island: set[int]) -> np.ndarray:
    """Per generator, its share of the AC slack of ``island`` (one without an external grid).

    In proportion to its dispatch range (max_p - min_p), as the balance
    shares the island's demand; equal shares where every range is zero;
    zero outside the island or out of service. A deliberate pair: the fast
    engine's twin is :meth:`gridsim.power.fast.FastCascade._slack_share`.
    """
    low, cap = dispatch_range(net)
    inside = net.gen.bus.isin(list(island)).to_numpy() & net.gen.in_service.to_numpy(dtype=bool)
    weight = np.where(inside, np.maximum(cap - low, 0.0), 0.0)
    return weight if weight.sum() > 0 else inside.astype(float)


def _shares_its_slack(net, island: set[int]) -> bool:
    """An island without an external grid and with two generators or more in service: they share its slack."""
    ext, gens = _sources_in(net, island)
    return ext == 0 and gens >= 2


def _has_source(net, island: set[int]) -> bool:
    return sum(_sources_in(net, island)) > 0


def _sources_in(net, island: set[int]) -> tuple[int, int]:
    """External grids and generators in service in ``island``."""
    members = list(island)
    ext = net.ext_grid.bus[net.ext_grid.in_service.to_numpy(dtype=bool)]
    gens = net.gen.bus[net.gen.in_service.to_numpy(dtype=bool)]
    return int(np.isin(ext, members).sum()), int(np.isin(gens, members).sum())


def _has_reference(net) -> bool:
    ext = net.ext_grid.in_service.to_numpy(dtype=bool).any()
    gen_slack = (net.gen.slack & net.gen.in_service).to_numpy(dtype=bool).any() if len(net.gen) else False
    return bool(ext or gen_slack)


def _zero_results(net) -> None:
    """Results of a total collapse: nothing flows, nothing is served."""
    for table, cols in (("res_load", ("p_mw",)), ("res_line", ("p_from_mw", "q_from_mvar", "p_to_mw", "q_to_mvar")),
                        ("res_trafo", ("p_hv_mw", "q_hv_mvar", "p_lv_mw", "q_lv_mvar"))):
        for col in cols:
            if col in net[table]:
                net[table][col] = 0.0


def _out_of_step(net, scaling: np.ndarray, state: np.ndarray) -> list[tuple[str, int, float]]:
    """Lines and transformers whose DC flow exceeds their steady-state stability limit (AC cascades).

    A branch of reactance X carries at most ``V_f V_t / X`` in AC, at an angle
    of 90 degrees across it; its DC flow ``delta / X`` is above that (with
    ``V = 1`` p.u.) when the angle driving it, ``theta_f - theta_t - shift``,
    exceeds :data:`STABILITY_LIMIT_RAD`. No AC flow carries that transfer: the
    two sides pull out of step and out-of-step protection separates them. The
    angles are pandapower's own DC solution. Returns (table, index, DC flow /
    limit) as :func:`_overloaded` does.
    """
    if not _has_reference(net):
        return []
    work = copy.deepcopy(net)
    work.load["scaling"] = np.where(state != LOAD_ISLAND, scaling, 0.0)
    run_dc(work)
    out = []
    for table, delta in dc_branch_angles(work).items():
        on = net[table].in_service.to_numpy(dtype=bool)
        ratio = np.nan_to_num(np.abs(delta) / STABILITY_LIMIT_RAD, nan=0.0)
        for pos in np.flatnonzero(on & (ratio > 1.0)):
            out.append((table, int(net[table].index[pos]), float(ratio[pos])))
    return out


def _overloaded(net, system, line_flow, trafo_flow, limit) -> list[tuple[str, int, float]]:
    """Lines and transformers in service loaded above ``limit`` x their rating: (table, index, flow / rating)."""
    out = []
    for table, flow, rating in (("line", line_flow, system.line_rating_mva),
                                ("trafo", trafo_flow, system.trafo_rating_mva)):
        if not len(flow):
            continue
        on = net[table].in_service.to_numpy(dtype=bool)
        loading = np.divide(flow, rating, out=np.zeros_like(flow), where=np.isfinite(rating))
        for pos in np.flatnonzero(on & (loading > limit)):
            out.append((table, int(net[table].index[pos]), float(loading[pos])))
    return out
