"""What one run produced: the event log's lines and the result that metrics, plots and the bundle read.

Apart from the clock (:mod:`gridsim.sim.simulation`) so that what reads a
result (``gridsim.metrics``, ``gridsim.report``, ``gridsim.results``) does not
import the clock that makes one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gridsim.model.system import System
from gridsim.scenario.schema import Scenario

__all__ = ["Event", "SimulationResult"]


@dataclass(frozen=True)
class Event:
    """One line of ``events.jsonl``: an element changed state, and why."""

    t_min: float
    element: str
    state: str  # "out", "in" or "info"
    cause: str
    generation: int | None = None
    step: int | None = None
    detail: str = ""
    # What caused this failure: an element (its latest failure line earlier in the log is meant) or the
    # attack step "step:N" (the root; BASE_CASE for the untouched system). None on "in" and "info" lines.
    caused_by: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"t_min": round(self.t_min, 6), "element": self.element, "state": self.state, "cause": self.cause,
                "caused_by": self.caused_by, "generation": self.generation, "step": self.step,
                "detail": self.detail}


@dataclass
class SimulationResult:
    """Everything one run produced; metrics and the results bundle read from here."""

    system: System
    scenario: Scenario
    flow: str
    seed: int
    horizon_min: float
    targets: dict[int, list[str]]
    times_min: np.ndarray  # instants at which the state was recorded
    demand_mw: np.ndarray
    served_mw: np.ndarray
    load_out_fraction: np.ndarray  # (instant, load) fraction of the load's customers off supply
    labels: list[str]
    events: list[Event]
    cascade_depth: int
    end_min: float  # where the timeline stops (last change, or the horizon)
    step_times: list[tuple[float, str]] = field(default_factory=list)
    layer_series: dict[str, np.ndarray] = field(default_factory=dict)  # curves of the layers, per instant
    hydraulic_runs: int = 0
    engine: str = "fast"
    frequency_events: list[dict[str, Any]] = field(default_factory=list)
    # With a frequency model: the smallest sudden demand increase (% of the untouched demand) that trips the
    # generators of the untouched system (None if none up to 500 % does); a property of the system the run
    # reports beside its own frequency events.
    blackout_demand_increase_pct: float | None = None
    # Cascades whose AC flow did not converge at full load: when, load shed (MW), stages, loads, area.
    voltage_collapses: list[dict[str, Any]] = field(default_factory=list)
    sites_without_control: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per instant
    sites_without_view: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # What is still down at the end: element, since when, the cause and caused_by of its latest failure.
    still_down: list[dict[str, Any]] = field(default_factory=list)
    # Why sites still cannot be switched remotely at the end: reason -> sites (sorted).
    control_lost: dict[str, list[str]] = field(default_factory=dict)

    @property
    def engine_label(self) -> str:
        """``fast-dc``, ``reference-ac`` ...: the engine and its power flow."""
        return f"{self.engine}-{self.flow}"

    @property
    def lost_mw(self) -> np.ndarray:
        """Demand not served (MW) at each recorded instant."""
        return self.demand_mw - self.served_mw

    @property
    def customers_out(self) -> np.ndarray:
        """Customers off supply at each recorded instant (a load's customers times its share off)."""
        return self.load_out_fraction @ self.system.customers

    @property
    def people_out(self) -> np.ndarray:
        """People off supply at each recorded instant: customers times the system's people per customer."""
        return self.customers_out * self.system.people_per_customer
