"""Branch ratings: what the net says, and what gridsim sets where it says nothing or the base case breaks it.

A rating needs the base case's flows (an unrated branch gets a margin over its
flow; with ``base_overloads = "raise"`` a branch the untouched grid already
overloads is raised the same way), so rating is the power room's job; the
model's reader is handed :func:`branch_ratings` by :mod:`gridsim.loading`.
"""

from __future__ import annotations

import numpy as np

from gridsim.model.system import System
from gridsim.power.cache import per_system
from gridsim.power.powerflow import base_ac_flows, base_dc_flows

__all__ = ["base_flows", "branch_ratings"]

#: pandapower's stand-in rating (MVA) for a MATPOWER branch with rateA = 0.
_PLACEHOLDER_RATING_MVA = 9900.0 * 0.999


def branch_ratings(net, *, unrated: str = "base-flow", margin: float = 0.5, tolerance: float = 0.1,
                   base_overloads: str = "raise") -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Return line and transformer ratings in MVA, and counts of ratings gridsim set.

    Ratings come from the net (docs/FORMATS.md). Unrated branches (no finite
    rating, or pandapower's 9900 MVA MATPOWER placeholder) never trip with
    ``unrated="never-trip"``; with ``"base-flow"`` they are rated
    ``(1 + margin) x`` their base-case flow (floored at a tenth of the largest).
    With ``base_overloads="raise"``, a rated branch that the untouched base case
    already loads past its trip limit gets the same base-flow rating, so that
    no attack is charged with a trip the base case would cause anyway.

    The base-case flow of a branch is the larger of its DC ``|P|`` and, where
    the AC power flow converges, its AC apparent power: ratings set here hold
    for both engines.
    """
    line, trafo = net.line, net.trafo
    vn = net.bus.vn_kv.reindex(line.from_bus).to_numpy(dtype=float)
    line_rating = (np.sqrt(3) * vn * line.max_i_ka.to_numpy(dtype=float)
                   * line.df.to_numpy(dtype=float) * line.parallel.to_numpy(dtype=float))
    trafo_rating = trafo.sn_mva.to_numpy(dtype=float) * trafo.parallel.to_numpy(dtype=float)
    line_rating = _mark_unrated(line_rating)
    trafo_rating = _mark_unrated(trafo_rating)
    notes = {"derived": 0, "raised": 0}
    needs_flows = base_overloads == "raise" or (
        unrated == "base-flow" and (np.isinf(line_rating).any() or np.isinf(trafo_rating).any()))
    if not needs_flows:
        return line_rating, trafo_rating, notes
    flows = [np.abs(f) for f in base_dc_flows(net)]
    ac = base_ac_flows(net)
    if ac is not None:
        flows = [np.maximum(f, a) for f, a in zip(flows, ac)]
    everything = np.concatenate(flows)
    floor = 0.1 * float(everything.max()) if everything.size and everything.max() > 0 else 1.0
    for rating, flow in zip((line_rating, trafo_rating), flows):
        base = (1.0 + margin) * np.maximum(flow, floor)
        missing = np.isinf(rating)
        if unrated == "base-flow":
            rating[missing] = base[missing]
            notes["derived"] += int(missing.sum())
        if base_overloads == "raise":
            over = ~missing & (flow > rating * (1.0 + tolerance))
            rating[over] = base[over]
            notes["raised"] += int(over.sum())
    return line_rating, trafo_rating, notes


def _mark_unrated(rating: np.ndarray) -> np.ndarray:
    rating = rating.astype(float).copy()
    rating[~np.isfinite(rating) | (rating <= 0) | (rating >= _PLACEHOLDER_RATING_MVA)] = np.inf
    return rating


def base_flows(system: System) -> tuple[np.ndarray, np.ndarray]:
    """Signed base-case DC flows (MW) of lines and transformers, computed once per system.

    The ``by: flow`` selector ranks branches by them. They are kept in
    :func:`~gridsim.power.cache.per_system`'s cache, not on the system,
    and handed out read-only, so that no caller can change them for the next.
    """
    return per_system(system, "base_dc_flows", lambda: _read_only(base_dc_flows(system.net)))


def _read_only(arrays: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    for array in arrays:
        array.setflags(write=False)
    return arrays
