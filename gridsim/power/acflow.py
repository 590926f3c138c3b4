"""AC power flow of the fast engine: pandapower's admittance matrices, lightsim2grid's Newton-Raphson.

The fast engine's AC cascade needs what :func:`gridsim.power.cascade.run_cascade`
gets from ``pandapower.runpp``: the flows at both ends of every branch, and
which islands converge. The bus admittance matrix is pandapower's own
(``makeYbus`` on the compiled tables, with the branches out set out); each
energised island is solved apart by lightsim2grid's Newton-Raphson with one
slack (``NRSing_KLU``, sparse KLU factorisation in C++), or the slack shared
by its generators where no external grid holds it (``NR_KLU``), from the DC angles
first and from a flat start if that fails, as the reference tries
``init="dc"`` then ``"flat"``. Islands with more than one reference bus are
left to the reference engine by the caller.

pandapower's ``makeYbus`` and lightsim2grid are imported inside the
functions that call them, not at the top: a sweep's worker process imports
the fast engine, and with it this module, without either (2.8 s and 0.7 s)
unless it runs an AC flow.
"""

from __future__ import annotations

import numpy as np

from gridsim.power.compiled import CompiledGrid
from gridsim.power.contract import AC_MAX_ITERATIONS, AC_TOLERANCE, MIN_VM_PU

__all__ = ["AcNetwork"]


class AcNetwork:
    """The admittance matrices of one topology (``on``: branches in service), ready to solve islands.

    Parameters
    ----------
    g : CompiledGrid
    on : per branch, in service with both ends in energised islands.
    """

    def __init__(self, g: CompiledGrid, on: np.ndarray):
        from pandapower.pypower.idx_brch import BR_STATUS  # noqa: PLC0415  (see the module docstring)
        from pandapower.pypower.makeYbus import makeYbus  # noqa: PLC0415  (see the module docstring)

        branch = g.branch_table.copy()
        branch[:, BR_STATUS] = on
        ybus, self.yf, self.yt = makeYbus(g.base_mva, g.bus_table, branch)
        self.ybus = ybus.tocsc()
        self.g, self.on = g, on

    def solve(self, rows: np.ndarray, ref: np.ndarray, pv: np.ndarray, s_mva: np.ndarray, theta0: np.ndarray,
              voltage: np.ndarray, share: np.ndarray | None = None) -> bool:
        """Solve one island (its ``rows``; ``ref``, ``pv`` among them), writing its voltages into ``voltage``.

        ``share`` (per row, or None) spreads the island's slack over its
        generator rows in these proportions (pandapower's distributed slack);
        None or a single row: the reference bus takes it all. Tries the DC
        angles ``theta0`` first, then a flat start. Returns whether it
        converged to an operating point: a solution with a bus below
        :data:`~gridsim.power.contract.MIN_VM_PU` does not count, as in the reference.
        """
        g = self.g
        is_ref, is_pv = np.isin(rows, ref), np.isin(rows, pv)
        is_pv &= ~is_ref
        local_ref = np.flatnonzero(is_ref)
        weights = np.zeros(len(rows))
        shared = share is not None and share[rows].sum() > 0 and np.flatnonzero(share[rows]).tolist() != [
            int(local_ref[0])]  # the reference alone holding all of it is a single slack
        if shared:
            weights = share[rows] / share[rows].sum()
            slack = np.concatenate([local_ref, np.flatnonzero((weights > 0) & ~is_ref)])  # the reference first
        else:
            weights[local_ref] = 1.0
            slack = local_ref
        in_slack = np.zeros(len(rows), dtype=bool)
        in_slack[slack] = True
        vm = np.where(is_ref | is_pv, g.vm_set_pu[rows], 1.0)
        sub = self.ybus[rows][:, rows].tocsc()
        s_pu = s_mva[rows] / g.base_mva
        flat = np.full(len(rows), g.va_rad[rows[local_ref[0]]])
        for angles in (theta0[rows], flat):
            ok, v = _newton(sub, vm * np.exp(1j * angles), s_pu, slack, weights, np.flatnonzero(is_pv & ~in_slack),
                            np.flatnonzero(~is_ref & ~is_pv))
            if ok and not (np.abs(v) < MIN_VM_PU).any():
                voltage[rows] = v
                return True
        return False

    def branch_mva(self, voltage: np.ndarray) -> np.ndarray:
        """Apparent power of every branch in service, the larger of its two ends (MVA)."""
        g = self.g
        s_from = voltage[g.from_row] * np.conj(self.yf @ voltage) * g.base_mva
        s_to = voltage[g.to_row] * np.conj(self.yt @ voltage) * g.base_mva
        return np.nan_to_num(np.where(self.on, np.maximum(np.abs(s_from), np.abs(s_to)), 0.0), nan=0.0)


def _newton(ybus, v0, s_pu, slack, weights, pv, pq) -> tuple[bool, np.ndarray]:
    """One island: lightsim2grid's Newton-Raphson (KLU), with one slack or a distributed one.

    ``slack`` holds the reference bus first, then the other buses sharing the
    slack in ``weights``. The reference keeps its initial voltage (lightsim2grid
    does not always hand it back); an island of the reference alone has
    nothing to solve.
    """
    from lightsim2grid.algorithm import NR_KLU, NRSing_KLU  # noqa: PLC0415  (see the module docstring)

    if len(slack) == 1 and not len(pv) and not len(pq):
        return True, v0

    solver = NRSing_KLU() if len(slack) == 1 else NR_KLU()
    try:
        ok = solver.compute_pf(ybus, v0.copy(), s_pu, slack.astype(np.int32), weights, pv.astype(np.int32),
                               pq.astype(np.int32), AC_MAX_ITERATIONS, AC_TOLERANCE)
    except RuntimeError:  # a singular Jacobian: no solution, as pandapower reports it
        return False, v0
    v = np.array(solver.get_V(), dtype=complex)
    v[slack[0]] = v0[slack[0]]
    return bool(ok) and bool(np.all(np.isfinite(v))), v
