"""Thin, quiet wrappers over pandapower: its power flows, its bus graph, its internal case.

The reference engine (:mod:`gridsim.power.cascade`) and the ratings
(:mod:`gridsim.power.ratings`) reach pandapower only through this module, so
the reference's numerical choices live in one place. pandapower is imported
inside the functions that call it, not at the top: the modules above this
one (the reference engine, and through its fallback the fast engine and the
sweep's worker processes) import without pandapower's 2.8 s, and pay it
only when a net is solved.
"""

from __future__ import annotations

import copy

import numpy as np

from gridsim.model.grid import quiet_pandapower
from gridsim.power.contract import AC_MAX_ITERATIONS, AC_TOLERANCE, MIN_VM_PU

__all__ = ["base_ac_flows", "base_dc_flows", "branch_flows_mva", "branch_graph", "dc_branch_angles", "internal_case",
           "run_dc", "run_ac"]


def run_dc(net) -> None:
    """DC power flow in place (results in ``net.res_*``)."""
    import pandapower as pp  # noqa: PLC0415  (see the module docstring)

    quiet_pandapower()
    pp.rundcpp(net)


#: Options of the reference's ``runpp``. pandapower would hand its Newton-Raphson to lightsim2grid
#: when installed; the reference keeps pandapower's own, so that it checks the fast engine (which
#: uses lightsim2grid) with a solver of its own. ``benchmarks/bench_fast.py`` times both.
RUNPP_OPTIONS = {"numba": False, "lightsim2grid": False}


def run_ac(net, *, distributed: bool = False, inits: tuple[str, ...] = ("dc", "flat")) -> bool:
    """AC power flow in place; return whether it converged to an operating point.

    A solution with a bus below :data:`~gridsim.power.contract.MIN_VM_PU`
    is no operating point; the iterations and the tolerance are the
    contract's (:data:`~gridsim.power.contract.AC_MAX_ITERATIONS`,
    :data:`~gridsim.power.contract.AC_TOLERANCE`).

    ``distributed``: the slack is shared by the generators in proportion to
    their ``slack_weight`` (pandapower's distributed slack, one island only).
    ``inits``: the starts tried in turn, DC angles then a flat start.
    """
    import pandapower as pp  # noqa: PLC0415  (see the module docstring)

    quiet_pandapower()
    for init in inits:  # a numerical failure from one start is not yet a voltage collapse
        try:
            pp.runpp(net, max_iteration=AC_MAX_ITERATIONS, tolerance_mva=AC_TOLERANCE, init=init,
                     distributed_slack=distributed, **RUNPP_OPTIONS)
        except pp.LoadflowNotConverged:
            continue
        except (np.linalg.LinAlgError, ValueError, ZeroDivisionError, FloatingPointError):
            continue
        except RuntimeError as error:  # SuperLU could not factorise a singular Jacobian: no solution from here
            if "factorize" not in str(error):
                raise
            continue
        vm = net.res_bus.vm_pu.to_numpy(dtype=float)
        if net.converged and not (vm[np.isfinite(vm)] < MIN_VM_PU).any():
            return True
    return False


def branch_flows_mva(net, flow: str) -> tuple[np.ndarray, np.ndarray]:
    """Flow magnitude per line and per transformer, for the protection rule.

    DC: ``|P|`` at the from side (lossless, both ends equal). AC: the larger
    apparent power of the two ends. Out-of-service or unsupplied branches: 0.
    """
    rl, rt = net.res_line, net.res_trafo
    if flow == "dc":
        line = np.abs(rl.p_from_mw.to_numpy(dtype=float)) if len(rl) else np.zeros(0)
        trafo = np.abs(rt.p_hv_mw.to_numpy(dtype=float)) if len(rt) else np.zeros(0)
    else:
        line = (np.maximum(np.hypot(rl.p_from_mw, rl.q_from_mvar), np.hypot(rl.p_to_mw, rl.q_to_mvar))
                .to_numpy(dtype=float) if len(rl) else np.zeros(0))
        trafo = (np.maximum(np.hypot(rt.p_hv_mw, rt.q_hv_mvar), np.hypot(rt.p_lv_mw, rt.q_lv_mvar))
                 .to_numpy(dtype=float) if len(rt) else np.zeros(0))
    if len(rl) != len(net.line):  # no results yet (empty table)
        line = np.zeros(len(net.line))
    if len(rt) != len(net.trafo):
        trafo = np.zeros(len(net.trafo))
    return np.nan_to_num(line, nan=0.0), np.nan_to_num(trafo, nan=0.0)


def branch_graph(net):
    """pandapower's multigraph of ``net``'s buses over its closed, in-service branches and switches.

    Edges are keyed ``(table, index)`` as :func:`pandapower.topology.create_nxgraph` keys them.
    """
    import pandapower.topology as top  # noqa: PLC0415  (see the module docstring)

    return top.create_nxgraph(net, respect_switches=True, include_out_of_service=False)


def internal_case(net) -> tuple[dict, dict]:
    """pandapower's internal case of ``net`` (``ppc``) and its lookups from elements to rows.

    As pandapower's last power flow (or conversion) on ``net`` left them.
    pandapower keeps both in private attributes and offers no public
    accessor; this is the one place gridsim reads them.
    """
    return net._ppc, net._pd2ppc_lookups  # noqa: SLF001 - pandapower has no public accessor for its internal case


def dc_case(net) -> tuple[dict, dict]:
    """pandapower's internal case of ``net`` as ``rundcpp`` builds it, without solving: ``(ppc, lookups)``.

    ``net`` is converted in place (a copy, for the fast engine's compiler).
    The connectivity check is off: a part of the grid with no reference now
    may hold a generator the cascade's balancing makes its slack, so every
    in-service bus keeps its row. pandapower has no public call for this;
    the steps are those of its own DC power flow.
    """
    from pandapower.auxiliary import _add_auxiliary_elements, _init_rundcpp_options  # noqa: PLC0415  (see the top)
    from pandapower.pd2ppc import _pd2ppc  # noqa: PLC0415  (see the module docstring)

    _init_rundcpp_options(net, trafo_model="t", trafo_loading="current", recycle=None, check_connectivity=False,
                          switch_rx_ratio=2, trafo3w_losses="hv")
    _add_auxiliary_elements(net)
    # As pandapower's power flow does before it converts: clear the lookups, then keep the case beside them.
    # Both are private attributes of the net, with no public setter.
    lookups = {key: np.array([], dtype=np.int64) for key in ("bus", "bus_dc", "ext_grid", "gen", "branch", "branch_dc")}
    net._pd2ppc_lookups = lookups  # noqa: SLF001 - pandapower's converter reads and fills them there
    net._ppc, _ = _pd2ppc(net)  # noqa: SLF001 - where pandapower keeps its internal case
    return internal_case(net)


def dc_branch_angles(net) -> dict[str, np.ndarray]:
    """The angle driving each line and transformer, ``theta_f - theta_t - shift`` (radians), of the DC flow on ``net``.

    Read from pandapower's internal case after :func:`run_dc`, per table in
    the net's order; a table with no rows in the case is left out.
    """
    from pandapower.pypower.idx_brch import F_BUS, SHIFT, T_BUS  # noqa: PLC0415  (see the module docstring)
    from pandapower.pypower.idx_bus import VA  # noqa: PLC0415  (see the module docstring)

    ppc, lookups = internal_case(net)
    lookup = lookups["branch"]
    theta = np.radians(ppc["bus"][:, VA].real)
    branch = ppc["branch"]
    out = {}
    for table in ("line", "trafo"):
        if table not in lookup or not len(net[table]):
            continue
        start, end = lookup[table]
        rows = branch[start:end]
        out[table] = (theta[rows[:, F_BUS].real.astype(np.int64)] - theta[rows[:, T_BUS].real.astype(np.int64)]
                      - np.radians(rows[:, SHIFT].real))
    return out


def _with_reference(net):
    """A copy of ``net`` with a reference: the largest generator is slack if no external grid serves."""
    work = copy.deepcopy(net)
    ext = work.ext_grid.in_service.astype(bool).any()
    slack = (work.gen.slack & work.gen.in_service).astype(bool).any() if len(work.gen) else False
    if not ext and not slack and work.gen.in_service.astype(bool).any():
        on = work.gen.index[work.gen.in_service.astype(bool)]
        work.gen.at[work.gen.loc[on, "p_mw"].idxmax(), "slack"] = True
    return work


def base_dc_flows(net) -> tuple[np.ndarray, np.ndarray]:
    """Signed base-case DC flow (MW) of every line and transformer, net untouched."""
    work = _with_reference(net)
    run_dc(work)
    line = work.res_line.p_from_mw.to_numpy(dtype=float) if len(work.line) else np.zeros(0)
    trafo = work.res_trafo.p_hv_mw.to_numpy(dtype=float) if len(work.trafo) else np.zeros(0)
    return np.nan_to_num(line), np.nan_to_num(trafo)


def base_ac_flows(net) -> tuple[np.ndarray, np.ndarray] | None:
    """Base-case AC apparent power (MVA, larger end) of lines and transformers; None if it does not converge."""
    work = _with_reference(net)
    if not run_ac(work):
        return None
    return branch_flows_mva(work, "ac")
