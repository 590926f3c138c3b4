"""What a sweep attacks: the candidate elements, and the k-subsets of them it tries.

A *candidate* is one thing an attacker can take out: a branch (tripped), a
substation (its breakers opened, as the ``open_breakers`` action does) or a
generator. A *scenario* is k distinct candidates taken out together. Sweeps
are exhaustive (every k-subset, in lexicographic order) or Monte Carlo
(``n`` k-subsets drawn independently from a generator seeded by ``seed``):
the same inputs and seed give the same scenarios in the same order.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from gridsim.errors import InputError
from gridsim.model.elements import breakers_at
from gridsim.power.cascade import Outages
from gridsim.power.compiled import CompiledGrid

__all__ = ["TARGETS", "Candidate", "candidates", "count_scenarios", "scenarios"]

#: What ``--targets`` may name.
TARGETS = ("branches", "lines", "trafos", "substations", "gens")


@dataclass(frozen=True)
class Candidate:
    """One element a scenario can take out, as outages and as rows of the compiled grid."""

    label: str  # "line:12", "substation:bus7", "gen:3"
    outages: Outages
    branch_rows: np.ndarray
    gen_positions: np.ndarray

    @property
    def needs_reference(self) -> bool:
        """It opens bus-bus switches, which the compiled grid cannot express."""
        return bool(self.outages.switches)


def candidates(system, grid: CompiledGrid, targets: str) -> list[Candidate]:
    """The elements of ``system`` a sweep over ``targets`` takes out, in index (or site) order.

    Only elements in service in the untouched net are candidates.

    Raises
    ------
    InputError
        An unknown kind of target, or a system with none of them.
    """
    if targets not in TARGETS:
        raise InputError("--targets", f"must be one of {', '.join(TARGETS)}, got {targets!r}")
    net = system.net
    out: list[Candidate] = []
    if targets in ("branches", "lines"):
        on = net.line.in_service.to_numpy(dtype=bool)
        out += [_branch("line", int(net.line.index[p]), grid.line_branch[p]) for p in np.flatnonzero(on)]
    if targets in ("branches", "trafos"):
        on = net.trafo.in_service.to_numpy(dtype=bool)
        out += [_branch("trafo", int(net.trafo.index[p]), grid.trafo_branch[p]) for p in np.flatnonzero(on)]
    if targets == "gens":
        on = net.gen.in_service.to_numpy(dtype=bool)
        out += [Candidate(f"gen:{int(net.gen.index[p])}", Outages(gens=frozenset({int(net.gen.index[p])})),
                          np.zeros(0, dtype=np.int64), np.array([p], dtype=np.int64)) for p in np.flatnonzero(on)]
    if targets == "substations":
        line_pos = {int(i): p for p, i in enumerate(net.line.index)}
        trafo_pos = {int(i): p for p, i in enumerate(net.trafo.index)}
        trafo3w_pos = {int(i): p for p, i in enumerate(net.trafo3w.index)}
        for name, site in system.substations.items():
            refs = breakers_at(net, set(site.buses))
            parts: dict[str, set[int]] = {"line": set(), "trafo": set(), "trafo3w": set(), "switch": set()}
            for ref in refs:
                parts[ref.table].add(int(ref.key))
            rows = [grid.line_branch[line_pos[i]] for i in parts["line"]]
            rows += [grid.trafo_branch[trafo_pos[i]] for i in parts["trafo"]]
            rows += [r for i in parts["trafo3w"] for r in grid.trafo3w_branch[trafo3w_pos[i]]]
            outages = Outages(lines=frozenset(parts["line"]), trafos=frozenset(parts["trafo"]),
                              trafo3ws=frozenset(parts["trafo3w"]), switches=frozenset(parts["switch"]))
            out.append(Candidate(f"substation:{name}", outages, np.array(sorted(rows), dtype=np.int64),
                                 np.zeros(0, dtype=np.int64)))
    if not out:
        raise InputError(system.name, f"has no {targets} in service to attack")
    return out


def _branch(table: str, index: int, row: int) -> Candidate:
    outages = Outages(lines=frozenset({index})) if table == "line" else Outages(trafos=frozenset({index}))
    return Candidate(f"{table}:{index}", outages, np.array([row], dtype=np.int64), np.zeros(0, dtype=np.int64))


def count_scenarios(n_candidates: int, k: int, random: int | None) -> int:
    """How many scenarios a sweep runs."""
    return random if random is not None else math.comb(n_candidates, k)


def scenarios(n_candidates: int, k: int, random: int | None = None, seed: int = 0) -> Iterator[tuple[int, ...]]:
    """Candidate positions of every scenario, in order.

    Exhaustive: every k-subset in lexicographic order. Monte Carlo
    (``random`` = n): n independent draws of k distinct candidates, each
    sorted, from ``numpy.random.default_rng(seed)``.

    Raises
    ------
    InputError
        k larger than the number of candidates, or not positive.
    """
    if k < 1:
        raise InputError("--k", f"must be at least 1, got {k}")
    if k > n_candidates:
        raise InputError("--k", f"k = {k} but there are only {n_candidates} candidates")
    if random is None:
        yield from itertools.combinations(range(n_candidates), k)
        return
    rng = np.random.default_rng(seed)
    for _ in range(random):
        yield tuple(sorted(int(i) for i in rng.choice(n_candidates, size=k, replace=False)))
