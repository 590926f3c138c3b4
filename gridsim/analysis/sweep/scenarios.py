"""What a sweep attacks: the candidate elements, and the k-subsets of them it tries.

A *candidate* is one thing an attacker can take out: a branch (tripped), a
substation (its breakers opened) or a generator. What goes out is what the
scenario action of :data:`TARGET_ACTIONS` takes out at that element
(``takes_out`` of its record in :data:`gridsim.scenario.actions.ACTION_TYPES`),
so a sweep and a scenario step mean the same outage. A *scenario* is k distinct candidates taken out together. Sweeps
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
from gridsim.model.elements import Ref
from gridsim.power.compiled import CompiledGrid
from gridsim.power.contract import Outages
from gridsim.scenario.actions import ACTION_TYPES

__all__ = ["TARGETS", "TARGET_ACTIONS", "Candidate", "candidates", "count_scenarios", "scenarios"]

#: What ``--targets`` may name -> the scenario action a candidate plays, and the tables its candidates come from.
TARGET_ACTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "branches": ("trip_branches", ("line", "trafo")),
    "lines": ("trip_branches", ("line",)),
    "trafos": ("trip_branches", ("trafo",)),
    "substations": ("open_breakers", ("substation",)),
    "gens": ("trip_generators", ("gen",)),
}
#: What ``--targets`` may name.
TARGETS = tuple(TARGET_ACTIONS)


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

    Only elements in service in the untouched net are candidates (every
    substation is). Each takes out what its action of :data:`TARGET_ACTIONS` would.

    Raises
    ------
    InputError
        An unknown kind of target, or a system with none of them.
    """
    if targets not in TARGETS:
        raise InputError("--targets", f"must be one of {', '.join(TARGETS)}, got {targets!r}")
    action, tables = TARGET_ACTIONS[targets]
    takes_out = ACTION_TYPES[action].takes_out
    positions = {table: {int(i): p for p, i in enumerate(system.net[table].index)}
                 for table in ("line", "trafo", "trafo3w", "gen")}
    out = [_candidate(ref, takes_out(system, ref), grid, positions)
           for table in tables for ref in _in_service(system, table)]
    if not out:
        raise InputError(system.name, f"has no {targets} in service to attack")
    return out


def _in_service(system, table: str) -> list[Ref]:
    """Every substation, or the elements of a pandapower table in service in the untouched net, in index order."""
    if table == "substation":
        return [Ref("substation", name) for name in system.substations]
    frame = system.net[table]
    on = frame.in_service.to_numpy(dtype=bool)
    return [Ref(table, int(frame.index[p])) for p in np.flatnonzero(on)]


def _candidate(target: Ref, refs: list[Ref], grid: CompiledGrid, positions: dict[str, dict[int, int]]) -> Candidate:
    """A candidate taking out ``refs``: as outages, and as branch rows and generator positions of the compiled grid."""
    parts: dict[str, set[int]] = {"line": set(), "trafo": set(), "trafo3w": set(), "switch": set(), "gen": set()}
    for ref in refs:
        parts[ref.table].add(int(ref.key))
    rows = [grid.line_branch[positions["line"][i]] for i in parts["line"]]
    rows += [grid.trafo_branch[positions["trafo"][i]] for i in parts["trafo"]]
    rows += [r for i in parts["trafo3w"] for r in grid.trafo3w_branch[positions["trafo3w"][i]]]
    gens = [positions["gen"][i] for i in parts["gen"]]
    outages = Outages(lines=frozenset(parts["line"]), trafos=frozenset(parts["trafo"]), gens=frozenset(parts["gen"]),
                      trafo3ws=frozenset(parts["trafo3w"]), switches=frozenset(parts["switch"]))
    return Candidate(str(target), outages, np.array(sorted(rows), dtype=np.int64),
                     np.array(sorted(gens), dtype=np.int64))


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
