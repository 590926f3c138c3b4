"""The cascade contract: what every cascade engine takes, what it gives back, and the rules' constants it honours.

gridsim has two engines that run the same propagation rules (the README's
"How a cascade runs"): the reference, plain pandapower
(:func:`gridsim.power.cascade.run_cascade`), and the compiled fast engine
(:func:`gridsim.power.fast.run_fast_cascade`). Each is written on its own,
so that one checks the other; what they share is this module and nothing
else:

- the types an engine takes and gives: :class:`Outages` in,
  :class:`CascadeResult` (with its :class:`Trip` records and, in AC, its
  :class:`VoltageCollapse`) out;
- the constants of the rules (load states, trip causes, the
  voltage-collapse stages, the out-of-step limit, the Newton-Raphson
  settings), and the arithmetic that is nothing but those constants
  (:func:`stage_kept`);
- :class:`CascadeEngine`, the shape of an engine: a callable
  ``engine(system, outages, *, flow) -> CascadeResult`` that carries its
  ``label`` (what a run says it ran on).

A new engine implements :class:`CascadeEngine` (:func:`labelled` gives a
plain function its label) and passes the conformance suite,
``tests/test_engine_contract.py``: a numbered test class with a
``make_engine()`` hook that each engine subclasses once, and an agreement
test that holds it to the reference element by element (tripped set, trip
generation, served load).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

__all__ = ["AC_MAX_ITERATIONS", "AC_SHED_STAGES", "AC_SHED_STEP", "AC_TOLERANCE", "FLOWS", "LOAD_ISLAND",
           "LOAD_SERVED", "LOAD_SHED", "MAX_RINGS", "MIN_VM_PU", "STABILITY_LIMIT_RAD", "TRIP_OUT_OF_STEP",
           "TRIP_OVERLOAD", "UVLS_PU", "CascadeEngine", "CascadeResult", "Outages", "Trip", "VoltageCollapse",
           "check_flow", "labelled", "stage_kept"]

#: The power flows an engine runs the protection rule on.
FLOWS = ("dc", "ac")

#: The state of a load at the fixed point: served (whole), in a dead island, or partly shed.
LOAD_SERVED, LOAD_ISLAND, LOAD_SHED = "served", "island", "shed"

#: Why protection opened a branch: above its rating, or (AC only) beyond its steady-state stability limit.
TRIP_OVERLOAD, TRIP_OUT_OF_STEP = "overload", "out-of-step"

#: The voltage-collapse rule sheds in stages of this share of an area's load and generation ...
AC_SHED_STEP = 0.1
#: ... ten of them, the last leaving nothing.
AC_SHED_STAGES = 10
#: Where an island collapses: its buses below this voltage (p.u.) once it converges at a uniform stage,
#: about where under-voltage load-shedding relays pick up (NERC standard PRC-010 governs such schemes).
UVLS_PU = 0.9
#: The area shed grows from those buses one branch at a time, this many at most, before the rule falls
#: back to the whole of the collapsing islands.
MAX_RINGS = 10
#: In AC, a branch whose DC angle (theta_f - theta_t - shift) passes this (radians) carries more than its
#: steady-state stability limit V^2 / X: out-of-step protection opens it before any AC flow is tried.
STABILITY_LIMIT_RAD = 1.0
#: A Newton-Raphson solution with a bus below this voltage (p.u.) is the low-voltage branch of the
#: nose curve, where loads would have stalled and tripped long before: not an operating point, and
#: taken as not converged.
MIN_VM_PU = 0.5
#: Newton-Raphson iterations an AC flow may take from each start (pandapower's ``max_iteration``) ...
AC_MAX_ITERATIONS = 30
#: ... and the power mismatch it stops at (pandapower's default ``tolerance_mva``; lightsim2grid's ``tol``).
AC_TOLERANCE = 1e-8


def check_flow(flow: str) -> None:
    """Refuse a power flow that is not one of :data:`FLOWS`, in the words both engines use."""
    if flow not in FLOWS:
        raise ValueError(f"flow must be 'dc' or 'ac', got {flow!r}")


def stage_kept(stages: int) -> float:
    """Share of its load (and generation) an area keeps after ``stages`` voltage-collapse stages."""
    return max(0.0, 1.0 - AC_SHED_STEP * stages)


@dataclass(frozen=True)
class Outages:
    """What is out of service when a cascade starts (pandapower indices)."""

    lines: frozenset[int] = frozenset()
    trafos: frozenset[int] = frozenset()
    gens: frozenset[int] = frozenset()
    load_factor: Mapping[int, float] = field(default_factory=dict)
    trafo3ws: frozenset[int] = frozenset()
    switches: frozenset[int] = frozenset()  # bus-bus switches held open
    load_shed: Mapping[int, float] = field(default_factory=dict)  # share of a load's demand cut (under-frequency)


@dataclass(frozen=True)
class Trip:
    """One branch tripped by protection."""

    table: str  # "line" or "trafo"
    index: int
    generation: int
    loading: float  # flow / rating when it tripped; out-of-step: DC flow / steady-state limit
    cause: str = TRIP_OVERLOAD  # or TRIP_OUT_OF_STEP (AC only: beyond the branch's steady-state stability limit)


@dataclass(frozen=True)
class VoltageCollapse:
    """What the voltage-collapse rule cut where an AC power flow did not converge."""

    stages: int  # 10 % stages of its load and generation the area lost (10: all of it)
    loads: np.ndarray  # per load (``net.load.index`` order): in the area cut
    shed_mw: float  # load cut
    rings: int | None  # the area: buses below UVLS_PU and this many branches around; None: the whole islands


@dataclass
class CascadeResult:
    """Fixed point of one cascade. Per-load arrays follow ``net.load.index`` order."""

    trips: list[Trip]
    demand_mw: np.ndarray
    served_mw: np.ndarray
    load_state: np.ndarray  # LOAD_SERVED / LOAD_ISLAND / LOAD_SHED
    depth: int
    islands: int
    line_flow_mva: np.ndarray
    trafo_flow_mva: np.ndarray
    collapse: VoltageCollapse | None = None  # the last generation's AC flow did not converge at full load
    energised_buses: frozenset[int] | None = None  # buses in islands that hold a source and serve load

    @property
    def lost_mw(self) -> float:
        """Demand not served at the fixed point (MW)."""
        return float(self.demand_mw.sum() - self.served_mw.sum())

    @property
    def ac_shed_stages(self) -> int:
        """10 % stages the voltage-collapse rule cut (0: the AC flow converged, or DC)."""
        return self.collapse.stages if self.collapse is not None else 0

    def out_fraction(self) -> np.ndarray:
        """Share of each load's customers off supply: 1 in a dark island, else the share of its demand not served.

        The clock logs a load's customers off by it, and a sweep counts
        customers out by it; shares below 1e-9 (rounding) are 0.
        """
        demand, served = self.demand_mw, self.served_mw
        fraction = np.where(demand > 0, 1.0 - np.divide(served, demand, out=np.ones_like(served), where=demand > 0),
                            0.0)
        fraction = np.where(self.load_state == LOAD_ISLAND, 1.0, np.clip(fraction, 0.0, 1.0))
        fraction[fraction < 1e-9] = 0.0
        return fraction


@runtime_checkable
class CascadeEngine(Protocol):
    """A cascade engine: the rules run to a fixed point on ``system`` with ``outages`` at the start.

    ``engine(system, outages, flow="dc")`` returns a :class:`CascadeResult`
    and never modifies ``system``; ``flow`` is one of :data:`FLOWS`.
    ``label`` names the engine in what a run records (``"reference"``,
    ``"fast"``, or a custom cascade's own name). Both bundled engines pass
    the conformance class of ``tests/test_engine_contract.py``; a new one
    subclasses it with its own ``make_engine()``.

    Attributes
    ----------
    label : str
        The engine's name in results.
    """

    label: str

    def __call__(self, system: Any, outages: Outages = ..., *, flow: str = "dc") -> CascadeResult:
        """Run one cascade."""
        ...


F = TypeVar("F", bound=Callable[..., CascadeResult])


def labelled(label: str) -> Callable[[F], F]:
    """Give a cascade function its ``label``: ``@labelled("mine")`` makes it a :class:`CascadeEngine`.

    Examples
    --------
    >>> @labelled("no-op")
    ... def nothing_trips(system, outages=Outages(), *, flow="dc"):
    ...     raise NotImplementedError
    >>> nothing_trips.label, isinstance(nothing_trips, CascadeEngine)
    ('no-op', True)
    """

    def mark(engine: F) -> F:
        engine.label = label  # type: ignore[attr-defined]
        return engine

    return mark
