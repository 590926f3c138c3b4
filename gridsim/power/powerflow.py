"""Thin, quiet wrappers over pandapower's power flows.

Only this module and :mod:`gridsim.power.cascade` call pandapower's solvers,
so the reference engine's numerical choices live in one place.
"""

from __future__ import annotations

import copy

import numpy as np

from gridsim.model.grid import quiet_pandapower

__all__ = ["base_ac_flows", "base_dc_flows", "branch_flows_mva", "run_dc", "run_ac", "MIN_VM_PU"]


def run_dc(net) -> None:
    """DC power flow in place (results in ``net.res_*``)."""
    import pandapower as pp

    quiet_pandapower()
    pp.rundcpp(net)


#: Options of the reference's ``runpp``. pandapower would hand its Newton-Raphson to lightsim2grid
#: when installed; the reference keeps pandapower's own, so that it checks the fast engine (which
#: uses lightsim2grid) with a solver of its own. ``benchmarks/bench_fast.py`` times both.
RUNPP_OPTIONS = {"numba": False, "lightsim2grid": False}


#: A Newton-Raphson solution with a bus below this voltage (p.u.) is the low-voltage branch of the
#: nose curve, where loads would have stalled and tripped long before: not an operating point, and
#: taken as not converged. Both engines use it.
MIN_VM_PU = 0.5


def run_ac(net, *, distributed: bool = False, inits: tuple[str, ...] = ("dc", "flat")) -> bool:
    """AC power flow in place; return whether it converged to an operating point (see :data:`MIN_VM_PU`).

    ``distributed``: the slack is shared by the generators in proportion to
    their ``slack_weight`` (pandapower's distributed slack, one island only).
    ``inits``: the starts tried in turn, DC angles then a flat start.
    """
    import pandapower as pp

    quiet_pandapower()
    for init in inits:  # a numerical failure from one start is not yet a voltage collapse
        try:
            pp.runpp(net, max_iteration=30, init=init, distributed_slack=distributed, **RUNPP_OPTIONS)
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
