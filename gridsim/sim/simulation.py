"""The simulation clock: attack steps, power cascades and restoration, event by event.

The clock is a heap of ``(time_min, priority, sequence, event)`` as in SimPy:
the sequence number makes runs repeatable. Every event at one instant is
handled, then one power cascade runs on the resulting outages, then the
state is recorded. Restoration follows the README's rule 6: a site whose control is
available is reclosed remotely in minutes; otherwise a crew of the site's
operator drives there and switches by hand. Crews are finite; waiting jobs
are served highest voltage first, then most customers.

A branch tripped by overload is reclosed only if a trial cascade shows it
would hold: an operator does not reclose into the overload that tripped it.
Otherwise the reclose is deferred and tried again after the next change
(a restoration, or the end of an attack step). A job waiting for a crew is
done from the control room instead once remote control of its sites is back
(a denial ended, a telecom site restarted, spare devices installed).

What a step does is the effect of its action: :data:`STEP_EFFECTS` holds one
for each record of the action table (:mod:`gridsim.scenario.actions`), and
the record's restoration kind says what undoes it (a crew job the clock
builds, or the end of the step's ``duration_min``).

Every failure in the log names its cause (``caused_by``): another element,
whose latest earlier failure line is meant, or the attack step
(``step:3``), so the chain of any failure can be walked back to a step (see
:func:`cause_of`). Where the grid does not say which change caused a trip
or an island, the nearest one (in bus hops) among the changes at that
instant is named: the previous generation's trips for a trip of a later
generation; the attack's outages, the generators lost and the elements
restored at that instant for the first generation, the islands and the
shedding.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from gridsim.errors import InputError, SimulationError
from gridsim.model.elements import Ref
from gridsim.model.system import System
from gridsim.power.cascade import run_cascade
from gridsim.power.contract import AC_SHED_STEP, LOAD_SHED, UVLS_PU, CascadeResult, Outages
from gridsim.power.fast import run_fast_cascade
from gridsim.scenario.actions import ACTION_TYPES
from gridsim.scenario.schema import Scenario, Step
from gridsim.scenario.selectors import resolve_targets, step_rng
from gridsim.sim.frequency import base_blackout_threshold, frequency_response, island_machines
from gridsim.sim.infrastructure import LAYER_SERIES, Infrastructure, Wakeup
from gridsim.sim.result import Event, SimulationResult

__all__ = ["BASE_CASE", "CREW_KINDS", "ENGINES", "STEP_EFFECTS", "StepEffect", "cause_of", "simulate"]

#: The cascade engines a run can use.
ENGINES = ("fast", "reference")

# Priorities of events at the same instant: attack first, then releases, then restorations;
# crews are assigned last, once every job ready at that instant is queued.
_STEP, _STEP_END, _JOB_DONE, _JOB_READY, _ASSIGN = 0, 1, 2, 3, 4
#: Rounds of power cascade + dependency propagation allowed at one instant before giving up.
_MAX_ROUNDS = 200
_WAKE_LABELS = {"backup": "backup runs out", "water": "water service changes"}
#: Root of the cause chains of failures in the untouched system (at t = 0, before any step).
BASE_CASE = "base-case"

_Cause = tuple[str, frozenset[int]]  # (element whose event is meant, buses where it acts; empty: system-wide)


@dataclass(frozen=True)
class StepEffect:
    """What an action of :data:`gridsim.scenario.actions.ACTION_TYPES` does to the clock's state.

    ``start(clock, now, step, targets)`` runs when the step starts (None: the
    step changes nothing but the log); ``end(clock, now, step, targets)`` when
    its ``duration_min`` ends, and undoes the effect (only for the restoration
    kind ``step-end``: crew kinds are undone by the jobs the clock builds).
    """

    start: Callable[[_Clock, float, Step, list[Ref]], None] | None = None
    end: Callable[[_Clock, float, Step, list[Ref]], None] | None = None


def _hold_key(step: Step) -> str:
    """The key under which a step holds what it takes out (``step3``); a site's breakers are held under
    ``<key>:<target>``, which the callers add."""
    return f"step{step.index}"


def _root_of(step: Step) -> str:
    """The step's own line in the cause chains (``step:3``)."""
    return f"step:{step.index}"


@dataclass
class _Job:
    """Work to undo an outage: reclose a site's breakers, a branch, or restart a generator."""

    kind: str  # "site", "branch" or "gen"
    site: str  # where the crew goes / whose control decides
    holds: list[tuple[Ref, str]]  # (element, holder key) released when done
    label: str
    sites: tuple[str, ...] = ()
    via: str = ""  # "remote" or "manual", set at dispatch
    failed: str = ""  # the element whose failure line this job undoes


def simulate(system: System, scenario: Scenario, *, flow: str = "dc", engine: str = "fast",
             seed: int | None = None, horizon_h: float | None = None,
             cascade: Callable[..., CascadeResult] | None = None,
             progress: Callable[[float], None] | None = None) -> SimulationResult:
    """Run a scenario on a system from t = 0 to the end of restoration (or the horizon).

    Parameters
    ----------
    system : System
        What exists (:func:`gridsim.load_system`).
    scenario : Scenario
        What the attacker does (:func:`gridsim.load_scenario`).
    flow : {"dc", "ac"}
        Power flow of the cascade.
    engine : {"fast", "reference"}
        The compiled engine (:mod:`gridsim.power.fast`) or plain pandapower
        (:mod:`gridsim.power.cascade`); both honour the same rules.
    seed : int, optional
        Seed of random target selection; default the scenario's seed, else 0.
    horizon_h : float, optional
        Stop here; default the scenario's ``horizon_h``.
    cascade : callable, optional
        A power cascade of one's own, ``cascade(system, outages, flow=...)``; overrides ``engine``. The
        result's engine is its ``label`` attribute if it has one, else ``custom``.
    progress : callable, optional
        Called with the simulated time (minutes) after every instant, for progress bars.

    Returns
    -------
    SimulationResult
        The state at every instant, the event log with every failure's cause, what stays down.

    Examples
    --------
    >>> from gridsim import load_scenario, load_system
    >>> result = simulate(load_system("ukraine-2015"), load_scenario("ukraine-2015"))
    >>> result.engine_label, float(result.lost_mw.max())
    ('fast-dc', 180.0)
    >>> [(e.element, e.cause) for e in result.events if e.state == "out"][:2]
    [('substation:KY-110-01', 'attack'), ('substation:KY-110-02', 'attack')]
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    run_seed = seed if seed is not None else (scenario.seed if scenario.seed is not None else 0)
    horizon = 60.0 * (horizon_h if horizon_h is not None else scenario.horizon_h)
    if cascade is None:
        cascade = run_fast_cascade if engine == "fast" else run_cascade
    # Every engine carries its label (power.contract.CascadeEngine); a cascade of one's own without one is "custom".
    label = str(getattr(cascade, "label", "custom"))
    result = _Clock(system, scenario, flow, run_seed, horizon, cascade, progress).run()
    result.engine = label
    if system.frequency is not None:
        result.blackout_demand_increase_pct = base_blackout_threshold(system)
    return result


def cause_of(events: Sequence[Event | dict[str, Any]]) -> list[int | None]:
    """For each line of an event log, the position of the line its ``caused_by`` refers to (None if none).

    ``caused_by`` names an element: the line meant is that element's latest
    failure (``out``) line before this one. ``step:N`` means the attack
    step's own line, and :data:`BASE_CASE` the base-case line. Works on
    :class:`Event` objects and on the dicts of ``events.jsonl``.
    """
    last_out: dict[str, int] = {}
    roots: dict[str, int] = {}
    out: list[int | None] = []
    for position, event in enumerate(events):
        get = event.get if isinstance(event, dict) else lambda key, e=event: getattr(e, key)
        element, cause, caused_by = get("element"), get("cause"), get("caused_by")
        if caused_by is None:
            out.append(None)
        elif caused_by.startswith("step:") or caused_by == BASE_CASE:
            out.append(roots.get(caused_by))
        else:
            out.append(last_out.get(caused_by))
        if get("state") == "out":
            last_out[element] = position
        elif (element.startswith("step:") and cause == "attack") or element == BASE_CASE:
            roots.setdefault(element, position)
    return out


class _Clock:
    def __init__(self, system: System, scenario: Scenario, flow: str, seed: int, horizon_min: float, cascade,
                 progress=None):
        self.system, self.scenario, self.flow, self.seed = system, scenario, flow, seed
        self.steps = {step.index: step for step in scenario.steps}
        self.horizon = horizon_min
        self.cascade = cascade
        self.progress = progress
        net = system.net
        self.load_pos = {int(i): p for p, i in enumerate(net.load.index)}
        self.load_site = system.load_site
        self.site_loads: dict[str, list[int]] = defaultdict(list)
        for pos, site in enumerate(self.load_site):
            self.site_loads[site].append(pos)
        self._opened: dict[Ref, list[Ref]] = {}  # open_breakers target -> what opening it opens
        self.site_customers = {s: float(system.customers[p].sum()) for s, p in self.site_loads.items()}
        self.site_kv = {name: float(net.bus.vn_kv.loc[list(sub.buses)].max())
                        for name, sub in system.substations.items()}

        self.heap: list[tuple[float, int, int, str, Any]] = []
        self.seq = itertools.count()
        self.holders: dict[Ref, set[str]] = defaultdict(set)
        self.trip_count: Counter[Ref] = Counter()
        self.load_scale: dict[int, list[float]] = defaultdict(list)
        self.ufls: dict[int, tuple[list[int], float, int]] = {}  # frequency event -> (loads, share shed, step)
        self.frequency_events: list[dict[str, Any]] = []
        self.collapses: list[dict[str, Any]] = []  # every cascade whose AC flow did not converge at full load
        self.sites_without_control: list[int] = []  # per recorded instant
        self.sites_without_view: list[int] = []
        self.control_denied: dict[str, set[str]] = defaultdict(set)
        self.view_denied: dict[str, set[str]] = defaultdict(set)
        self.firmware_destroyed: dict[str, set[str]] = defaultdict(set)  # site -> steps whose firmware is in
        self.free_crews: dict[str, int] = {}
        self.queues: dict[str, list] = defaultdict(list)

        self.events: list[Event] = []
        self.times: list[float] = []
        self.demand: list[float] = []
        self.served: list[float] = []
        self.out_fraction: list[np.ndarray] = []
        self.labels: list[str] = []
        self.depth = 0
        self.targets: dict[int, list[Ref]] = {}
        self.last_outages: Outages | None = None
        self.deferred: list[_Job] = []  # overload recloses waiting for conditions to change
        self.to_dispatch: list[_Job] = []  # jobs raised at this instant, decided once it settles
        self.changed = False  # something was restored or an attack ended at this instant
        self.last_result: CascadeResult | None = None
        self.step_times: list[tuple[float, str]] = []
        # Cause chains: grid changes not yet seen by a cascade, and what the last cascade changed (to blame
        # islands and shedding on); the latest failure line of every element; the latest step line.
        self.pending: list[_Cause] = []
        self.blame_pool: list[_Cause] = []
        self.last_out: dict[str, Event] = {}
        self.latest_state: dict[str, str] = {}
        self.last_step: str | None = None
        self._base_logged = False
        self.logged_fraction: np.ndarray | None = None
        self._bus_pos = {int(b): p for p, b in enumerate(net.bus.index)}
        self._adjacency: list[list[int]] | None = None
        self._labels: tuple[tuple[_Cause, ...], np.ndarray, np.ndarray] | None = None
        layers = system.layers
        self.infra = (Infrastructure(system, horizon_min, self._log_layer, blame=self._blame_bus)
                      if layers.elements or layers.water is not None or layers.dependencies else None)
        self.layer_series: dict[str, list[float]] = {name: [] for name in LAYER_SERIES} if self.infra else {}

    # ------------------------------------------------------------ set-up

    def _opened_by(self, ref: Ref) -> tuple[str, list[Ref]]:
        """The site of an open_breakers target and what opening it opens (a bus opens only its own)."""
        if ref not in self._opened:
            self._opened[ref] = ACTION_TYPES["open_breakers"].takes_out(self.system, ref)
        site = self.system.site_of_bus(ref.key) if ref.table == "bus" else str(ref.key)
        return site, self._opened[ref]

    def _branch_sites(self, ref: Ref) -> tuple[str, ...]:
        row = self.system.net[ref.table].loc[ref.key]
        a, b = (row.from_bus, row.to_bus) if ref.table == "line" else (row.hv_bus, row.lv_bus)
        sites = (self.system.site_of_bus(a), self.system.site_of_bus(b))
        return sites if sites[0] != sites[1] else sites[:1]

    def _push(self, t: float, priority: int, kind: str, payload: Any) -> None:
        heapq.heappush(self.heap, (t, priority, next(self.seq), kind, payload))

    # ------------------------------------------------------------ main loop

    def run(self) -> SimulationResult:
        late = [s for s in self.scenario.steps if s.at_min >= self.horizon]
        if late:
            raise InputError(self.scenario.path or "<scenario>",
                             f"{late[0].label} at {late[0].at_min:g} min is not before the horizon "
                             f"of {self.horizon / 60:g} h: lengthen the horizon", late[0].place or None)
        for step in self.scenario.steps:
            rng = step_rng(self.seed, step.index)
            refs = (resolve_targets(step.targets, self.system, rng, self.scenario.path)
                    if step.targets is not None else [])
            self.targets[step.index] = refs
            self._push(step.at_min, _STEP, "step", step)
            self.step_times.append((step.at_min, step.label))

        self._settle(0.0, ["base case"], [])
        end = 0.0
        while self.heap and self.heap[0][0] <= self.horizon:
            now = self.heap[0][0]
            triggers: list[str] = []
            restorations: list[str] = []
            while self.heap and self.heap[0][0] == now:
                _, _, _, kind, payload = heapq.heappop(self.heap)
                getattr(self, f"_on_{kind}")(now, payload, triggers, restorations)
            self._settle(now, triggers, restorations)
            if self.changed and self.deferred:
                retry, self.deferred = self.deferred, []
                for job in retry:
                    self._dispatch(now, job)
            self._flush_dispatch(now)
            self._remote_again(now)
            self.changed = False
            end = now
            if self.progress is not None:
                self.progress(now)
        layers_out = self.infra is not None and (self.infra.coupling.down or self.infra.water_lost.any())
        if self.heap or (self.out_fraction and self.out_fraction[-1].any()) or layers_out:
            end = self.horizon  # work left past the horizon, or an outage nothing will end
        return self._result(end)

    def _settle(self, now: float, triggers: list[str], restorations: list[str]) -> None:
        """Power cascade and dependency propagation to a joint fixed point, then record the state.

        A generator the layers take out (cooling water, fuel) changes the grid,
        which changes what the layers get: the two alternate until neither moves.
        """
        why = "; ".join(triggers + restorations) or "base case"
        for _ in range(_MAX_ROUNDS):
            result = self._cascade(now, triggers, restorations)
            self._log_loads(now, result, triggers, restorations)  # before the layers: a feeder's loss comes first
            if self.infra is None or not self._update_layers(now, result, why):
                break
        else:
            raise SimulationError(f"the grid and its dependencies do not settle at t = {now:g} min "
                                  f"after {_MAX_ROUNDS} rounds ({why})")
        self.out_fraction.append(self.logged_fraction.copy())
        self.times.append(now)
        self.demand.append(float(result.demand_mw.sum()))
        self.served.append(float(result.served_mw.sum()))
        self.labels.append("; ".join(triggers + restorations))
        self.sites_without_control.append(sum(1 for site in self.system.substations if not self._remote_possible(
            (site,))))
        self.sites_without_view.append(sum(1 for keys in self.view_denied.values() if keys))
        if self.infra is not None:
            for name, value in self.infra.measures(now).items():
                self.layer_series[name].append(value)

    def _cascade(self, now: float, triggers: list[str], restorations: list[str]) -> CascadeResult:
        """One power cascade on the outages in force; trips are held and reclose jobs dispatched."""
        outages = self._outages()
        if outages == self.last_outages:
            # Only control, view or crews changed: the power state is the last fixed point.
            result = replace(self.last_result, trips=[])
        else:
            result = self.cascade(self.system, outages, flow=self.flow)
            if result.collapse is not None:
                self._log_collapse(now, result, triggers + restorations)
        self.depth = max(self.depth, result.depth)
        # A first-generation trip is blamed on the nearest change since the last cascade, a later one on the
        # nearest trip of the generation before it (whose flows moved onto it).
        causes, self.pending = self.pending, []
        pool, previous, generation = list(causes), causes, None
        current: list[_Cause] = []
        for trip in result.trips:
            if trip.generation != generation:
                if generation is not None:
                    previous = current
                generation, current = trip.generation, []
            ref = Ref(trip.table, trip.index)
            where = self._buses_of(str(ref))
            self.holders[ref].add("overload")
            self.trip_count[ref] += 1
            what = (f"loading {trip.loading:.0%} of rating" if trip.cause == "overload" else
                    f"DC flow {trip.loading:.0%} of its steady-state stability limit V\u00b2/X: out of step")
            self._log(now, ref, "out", trip.cause, generation=trip.generation, caused_by=self._nearest(where, previous),
                      detail=f"{what} after {'; '.join(triggers + restorations) or 'base case'}")
            current.append((str(ref), where))
            pool.append((str(ref), where))
            sites = self._branch_sites(ref)
            params = self.system.restoration_for(sites[0])
            if self.trip_count[ref] < params.max_reclose:
                self._dispatch(now, self._branch_job(ref, "overload"))
            else:
                self._log(now, ref, "info", "locked-out",
                          detail=f"tripped {self.trip_count[ref]} times by protection (overload or out of step); "
                                 "left open")
        self.blame_pool = pool
        # The fixed point is the outages with this cascade's trips added; remember it as such.
        self.last_outages, self.last_result = self._outages(), result
        return result

    def _log_collapse(self, now: float, result: CascadeResult, why: list[str]) -> None:
        """One line and one record when the voltage-collapse rule cut load: how much, where, and why."""
        collapse = result.collapse
        loads = int(np.count_nonzero(collapse.loads))
        if not loads:
            return  # the rule cut generation only (an island without load): no load was lost to it
        where = ("the whole of the islands that do not converge" if collapse.rings is None
                 else f"the area within {collapse.rings} branch(es) of the buses below {UVLS_PU:g} p.u.")
        self.collapses.append({"t_min": now, "shed_mw": round(collapse.shed_mw, 3), "stages": collapse.stages,
                               "loads": loads, "rings": collapse.rings, "generation": result.depth})
        self._log(now, "grid", "info", "voltage-collapse", generation=result.depth,
                  detail=f"the AC power flow did not converge to an operating point at full load (from DC angles "
                         f"or a flat start) after "
                         f"{'; '.join(why) or 'base case'}{' and overload trips' if result.trips else ''}: "
                         f"{collapse.shed_mw:,.1f} MW shed at {loads} load(s), {collapse.stages} stage(s) of "
                         f"{AC_SHED_STEP:.0%} in {where}")

    def _update_layers(self, now: float, result: CascadeResult, why: str) -> bool:
        """Run the layers at this instant; apply what they do to the grid. True if the grid changed."""
        energised = result.energised_buses
        if energised is None:  # an engine that does not report it: every bus of a served island
            energised = frozenset(int(b) for b in self.system.net.bus.index)
        # A feeder in a dark island is out though it drew nothing: the share the clock logs, not demand alone.
        load_out = {int(i): float(o) for i, o in zip(self.system.net.load.index, result.out_fraction()) if o > 0}
        for wakeup in self.infra.update(now, energised, why, load_out):
            self._push(wakeup.t_min, _JOB_DONE, "wake", wakeup)
        effects = self.infra.effects
        for denied, lost in ((self.control_denied, effects.control_lost), (self.view_denied, effects.view_lost)):
            for site, keys in denied.items():
                keys.difference_update({k for k in keys if k.startswith("telecom:")} - lost.get(site, set()))
            for site, keys in lost.items():
                denied[site].update(keys)
        changed = False
        for index in self.system.net.gen.index:
            ref, held = Ref("gen", int(index)), int(index) in effects.gens_out
            if held != ("dependency" in self.holders[ref]):
                (self.holders[ref].add if held else self.holders[ref].discard)("dependency")
                self.pending.append((str(ref), self._buses_of(str(ref))))  # lost or back: the next cascade's cause
                changed = True
        return changed

    def _log_layer(self, now: float, element: str, state: str, cause: str, caused_by: str | None,
                   detail: str) -> None:
        if state == "out" and caused_by is not None and caused_by.startswith("substation:"):
            caused_by = self._substation_event(caused_by)
        self._log(now, element, state, cause, detail=detail, caused_by=caused_by)

    def _substation_event(self, name: str) -> str:
        """The element whose failure line stands for a substation's loss of supply.

        The substation itself if its own failure (breakers opened) is the
        latest word on it; else its first bus that is down (supplier buses
        are logged), since a substation de-energised by the grid has no line.
        """
        if self.latest_state.get(name) == "out":
            return name
        for bus in sorted(self.system.substations[name.split(":", 1)[1]].buses):
            if self.latest_state.get(f"bus:{bus}") == "out":
                return f"bus:{bus}"
        return name

    def _on_wake(self, now: float, wakeup: Wakeup, triggers: list[str], _restorations) -> None:
        label = _WAKE_LABELS.get(wakeup.kind, f"restart of {wakeup.payload}")
        if label not in triggers:
            triggers.append(label)
        for further in self.infra.wake(now, wakeup):
            self._push(further.t_min, _JOB_DONE, "wake", further)

    def _outages(self) -> Outages:
        out: dict[str, set[int]] = defaultdict(set)
        for ref, keys in self.holders.items():
            if keys:
                out[ref.table].add(int(ref.key))
        factors = {}
        for pos, scales in self.load_scale.items():
            if scales:
                factors[int(self.system.net.load.index[pos])] = float(np.prod(scales))
        kept: dict[int, float] = defaultdict(lambda: 1.0)
        for positions, share, _ in self.ufls.values():
            for pos in positions:
                kept[pos] *= 1.0 - share
        shed = {int(self.system.net.load.index[pos]): 1.0 - k for pos, k in kept.items() if k < 1.0}
        return Outages(lines=frozenset(out["line"]), trafos=frozenset(out["trafo"]), gens=frozenset(out["gen"]),
                       load_factor=factors, trafo3ws=frozenset(out["trafo3w"]), switches=frozenset(out["switch"]),
                       load_shed=shed)

    def _log_loads(self, now: float, result: CascadeResult, triggers, restorations) -> None:
        """Log every load whose share of customers off supply changed with this cascade."""
        fraction = result.out_fraction()
        previous = self.logged_fraction if self.logged_fraction is not None else np.zeros_like(fraction)
        self.logged_fraction = fraction
        why = "; ".join(triggers) or "base case"
        generation = result.depth if result.trips else 0
        restored_cause = ("restored-manual" if any("manual" in r for r in restorations)
                          else "restored-remote" if restorations else "restored")
        for pos in np.flatnonzero(fraction != previous):
            ref = Ref("load", int(self.system.net.load.index[pos]))
            if fraction[pos] > previous[pos]:
                cause = str(result.load_state[pos])
                if cause == LOAD_SHED and result.collapse is not None and result.collapse.loads[pos]:
                    cause = "voltage-collapse"
                detail = (f"{self.load_site[pos]}: {fraction[pos]:.0%} of customers off after {why}"
                          + (" and overload trips" if result.trips else ""))
                bus = int(self.system.net.load.bus.iat[pos])
                self._log(now, ref, "out", cause, generation=generation, detail=detail,
                          caused_by=self._nearest(frozenset((bus,)), self.blame_pool))
            else:
                after = "; ".join(restorations) or why
                detail = f"{self.load_site[pos]}: {fraction[pos]:.0%} of customers off after {after}"
                self._log(now, ref, "in", restored_cause, detail=detail)

    def _log(self, now: float, ref: Ref | str, state: str, cause: str, **kw) -> None:
        """One line of the log; a failure always gets a cause (the latest step if nothing else is known)."""
        element = str(ref)
        if state == "out" and kw.get("caused_by") is None:
            kw["caused_by"] = self._root()
        event = Event(now, element, state, cause, **kw)
        self.events.append(event)
        if state == "out":
            self.last_out[element] = event
        if state in ("out", "in"):
            self.latest_state[element] = state
        elif element.startswith("step:") and cause == "attack":
            self.last_step = element

    # ------------------------------------------------------------ cause chains

    def _root(self) -> str:
        """The latest attack step, or the base case (logged once, when first needed) before any step."""
        if self.last_step is not None:
            return self.last_step
        if not self._base_logged:
            self._base_logged = True
            self.events.append(Event(0.0, BASE_CASE, "info", BASE_CASE,
                                     detail="the untouched system, before any attack step"))
        return BASE_CASE

    def _buses_of(self, name: str) -> frozenset[int]:
        """The buses an element acts at (empty for one the grid does not hold: a step, a layer element)."""
        kind, _, key = name.partition(":")
        net = self.system.net
        if kind == "substation" and key in self.system.substations:
            return frozenset(int(b) for b in self.system.substations[key].buses)
        if kind == "bus":
            return frozenset((int(key),))
        columns = {"line": ("from_bus", "to_bus"), "trafo": ("hv_bus", "lv_bus"),
                   "trafo3w": ("hv_bus", "mv_bus", "lv_bus"), "switch": ("bus", "element"), "gen": ("bus",),
                   "load": ("bus",)}.get(kind)
        if columns is None:
            return frozenset()
        row = net[kind].loc[int(key)]
        return frozenset(int(row[c]) for c in columns)

    def _blame_bus(self, bus: int) -> str:
        """What the last cascade's changes de-energised this bus by (for the infrastructure's bus lines)."""
        return self._nearest(frozenset((bus,)), self.blame_pool)

    def _nearest(self, buses: Iterable[int], candidates: Sequence[_Cause]) -> str:
        """The candidate nearest (in bus hops over every branch) to any of ``buses``.

        Ties go to the candidate listed first, as the breadth-first search
        meets them. If none reaches the buses: the first candidate without a
        place (a system-wide change such as under-frequency shedding), else
        the first. No candidate at all: the latest step.
        """
        if not candidates:
            return self._root()
        if len(candidates) == 1:
            return candidates[0][0]
        key = tuple(candidates)
        if self._labels is None or self._labels[0] != key:
            self._labels = (key, *self._label_buses(candidates))
        _, dist, label = self._labels
        best: tuple[int, int] | None = None
        for bus in buses:
            pos = self._bus_pos.get(int(bus))
            if pos is not None and label[pos] >= 0 and (best is None or (dist[pos], label[pos]) < best):
                best = (int(dist[pos]), int(label[pos]))
        if best is not None:
            return candidates[best[1]][0]
        return next((name for name, where in candidates if not where), candidates[0][0])

    def _label_buses(self, candidates: Sequence[_Cause]) -> tuple[np.ndarray, np.ndarray]:
        """Breadth-first search from every candidate at once: each bus's hop distance and nearest candidate."""
        if self._adjacency is None:
            self._adjacency = self._bus_graph()
        n = len(self._bus_pos)
        dist = np.full(n, -1, dtype=np.int64)
        label = np.full(n, -1, dtype=np.int64)
        queue: deque[int] = deque()
        for i, (_, where) in enumerate(candidates):
            for bus in sorted(where):
                pos = self._bus_pos.get(bus)
                if pos is not None and label[pos] < 0:
                    dist[pos], label[pos] = 0, i
                    queue.append(pos)
        while queue:
            pos = queue.popleft()
            for other in self._adjacency[pos]:
                if label[other] < 0:
                    dist[other], label[other] = dist[pos] + 1, label[pos]
                    queue.append(other)
        return dist, label

    def _bus_graph(self) -> list[list[int]]:
        """Adjacency of the buses over every line, transformer and bus-bus switch, in service or not."""
        net, pos = self.system.net, self._bus_pos
        graph: list[list[int]] = [[] for _ in pos]
        pairs = [(net.line.from_bus, net.line.to_bus), (net.trafo.hv_bus, net.trafo.lv_bus),
                 (net.trafo3w.hv_bus, net.trafo3w.mv_bus), (net.trafo3w.hv_bus, net.trafo3w.lv_bus)]
        if len(net.switch):
            bus_bus = net.switch[net.switch.et == "b"]
            pairs.append((bus_bus.bus, bus_bus.element))
        for a_col, b_col in pairs:
            for a, b in zip(a_col.to_numpy(), b_col.to_numpy()):
                a, b = pos.get(int(a)), pos.get(int(b))
                if a is not None and b is not None and a != b:
                    graph[a].append(b)
                    graph[b].append(a)
        return graph

    # ------------------------------------------------------------ attack steps

    def _on_step(self, now: float, step: Step, triggers: list[str], _restorations) -> None:
        """A step starts: its own line, its action's effect, then its end or the restoration of what it took out."""
        refs = self.targets[step.index]
        where = _describe(refs)
        triggers.append(f"{step.label} on {where}" if refs else step.label)
        self._log(now, _root_of(step), "info", "attack", step=step.index,
                  detail=f"{step.action} {step.technique} on {where}" + (f": {step.note}" if step.note else ""))
        effect = self.EFFECTS[step.action]
        if effect.start is not None:
            effect.start(self, now, step, refs)
        if step.duration_min is not None:
            self._push(now + step.duration_min, _STEP_END, "step_end", step)
        else:
            self._start_restoration(now, step)

    def _on_step_end(self, now: float, step: Step, triggers: list[str], _restorations) -> None:
        """A step's ``duration_min`` ends: its effect is undone, or the restoration of what it took out begins."""
        triggers.append(f"end of {step.label}")
        self.changed = True
        effect = self.EFFECTS[step.action]
        if effect.end is not None:
            effect.end(self, now, step, self.targets[step.index])
        self._start_restoration(now, step)

    def _start_restoration(self, now: float, step: Step) -> None:
        """One job a target for an action whose restoration kind is a crew's (the action table says which)."""
        job = self.JOBS.get(ACTION_TYPES[step.action].restoration)
        if job is None:
            return  # "none" or "step-end": nothing for the operators to undo
        for ref in self.targets[step.index]:
            self._dispatch(now, job(self, ref, _hold_key(step)))

    # ------------------------------------------------------------ what each action does (STEP_EFFECTS)

    def _open_breakers(self, now: float, step: Step, refs: list[Ref]) -> None:
        for ref in refs:
            _, branches = self._opened_by(ref)
            for branch in branches:
                self.holders[branch].add(f"{_hold_key(step)}:{ref}")
            self._log(now, ref, "out", "attack", step=step.index, generation=0, caused_by=_root_of(step),
                      detail=f"breakers opened ({len(branches)} branches)")
            self.pending.append((str(ref), self._buses_of(str(ref))))

    def _take_out(self, now: float, step: Step, refs: list[Ref], detail: str) -> None:
        """Hold each target out under the step's key, with its failure line and its place in the cause chain."""
        for ref in refs:
            self.holders[ref].add(_hold_key(step))
            self._log(now, ref, "out", "attack", step=step.index, generation=0, caused_by=_root_of(step),
                      detail=detail)
            self.pending.append((str(ref), self._buses_of(str(ref))))

    def _trip_branches(self, now: float, step: Step, refs: list[Ref]) -> None:
        self._take_out(now, step, refs, "tripped")

    def _trip_generators(self, now: float, step: Step, refs: list[Ref]) -> None:
        lost = [int(ref.key) for ref in refs if not self.holders[ref]]  # running until now: their MW are lost
        self._take_out(now, step, refs, "generator tripped")
        self._frequency_event(now, step, 0.0, lost)

    def _scale_loads(self, now: float, step: Step, refs: list[Ref]) -> None:
        change = self._load_change(self._load_positions(refs), step.factor)
        for pos in self._load_positions(refs):
            self.load_scale[pos].append(step.factor)
        self.pending.append((_root_of(step), self._load_buses(refs)))
        self._frequency_event(now, step, change)

    def _unscale_loads(self, now: float, step: Step, refs: list[Ref]) -> None:
        positions = self._load_positions(refs)
        change = self._load_change(positions, 1.0 / step.factor) if step.factor else 0.0
        for pos in positions:
            self.load_scale[pos].remove(step.factor)
        if not step.factor:  # the loads come back from nothing: the change is the demand they return with
            base = self.system.net.load.p_mw.to_numpy(dtype=float) * self.system.net.load.scaling.to_numpy(float)
            change = float(sum(base[pos] * math.prod(self.load_scale[pos]) for pos in set(positions)))
        self.pending.append((_root_of(step), self._load_buses(refs)))
        self._frequency_event(now, step, change)

    def _deny_control(self, now: float, step: Step, refs: list[Ref]) -> None:
        for ref in refs:
            self.control_denied[str(ref.key)].add(_hold_key(step))

    def _deny_view(self, now: float, step: Step, refs: list[Ref]) -> None:
        for ref in refs:  # operators who cannot see cannot switch either
            self.view_denied[str(ref.key)].add(_hold_key(step))
            self.control_denied[str(ref.key)].add(_hold_key(step))

    def _end_denial(self, now: float, step: Step, refs: list[Ref]) -> None:
        for ref in refs:
            self.control_denied[str(ref.key)].discard(_hold_key(step))
            self.view_denied[str(ref.key)].discard(_hold_key(step))

    def _destroy_firmware(self, now: float, step: Step, refs: list[Ref]) -> None:
        for ref in refs:
            if ref.table == "telecom":
                self.infra.coupling.hold(str(ref), _hold_key(step), f"step {step.index} ({step.action} "
                                         f"{step.technique})", _root_of(step))
            else:
                self.firmware_destroyed[str(ref.key)].add(_hold_key(step))

    def _install_spares(self, now: float, step: Step, refs: list[Ref]) -> None:
        """Only a mitigated copy bounds destroy_firmware (spare devices installed): the devices work again."""
        for ref in refs:
            if ref.table == "telecom":
                self.infra.coupling.release(str(ref), _hold_key(step))
            else:
                self.firmware_destroyed[str(ref.key)].discard(_hold_key(step))

    def _disable(self, now: float, step: Step, refs: list[Ref]) -> None:
        for ref in refs:
            self.infra.coupling.hold(str(ref), _hold_key(step), f"step {step.index} ({step.action} {step.technique})",
                                     _root_of(step))

    def _enable(self, now: float, step: Step, refs: list[Ref]) -> None:
        for ref in refs:
            self.infra.coupling.release(str(ref), _hold_key(step))

    def _disable_backup(self, now: float, step: Step, refs: list[Ref]) -> None:
        for ref in refs:
            self.infra.coupling.disable_backup(str(ref), _hold_key(step))
            self._log(now, ref, "info", "attack", step=step.index, detail="backup disabled")

    def _enable_backup(self, now: float, step: Step, refs: list[Ref]) -> None:
        for ref in refs:
            self.infra.coupling.enable_backup(str(ref), _hold_key(step))

    #: The effect of every action of the action table, by name (public as :data:`STEP_EFFECTS`).
    EFFECTS: ClassVar[dict[str, StepEffect]] = {
        "access": StepEffect(),
        "open_breakers": StepEffect(_open_breakers),
        "trip_branches": StepEffect(_trip_branches),
        "trip_generators": StepEffect(_trip_generators),
        "scale_loads": StepEffect(_scale_loads, _unscale_loads),
        "deny_control": StepEffect(_deny_control, _end_denial),
        "deny_view": StepEffect(_deny_view, _end_denial),
        "destroy_firmware": StepEffect(_destroy_firmware, _install_spares),
        "disable": StepEffect(_disable, _enable),
        "disable_backup": StepEffect(_disable_backup, _enable_backup),
    }

    # ------------------------------------------------------------ restoration jobs

    def _site_job(self, ref: Ref, key: str) -> _Job:
        """Reclose what opening the breakers at a site (or a bus) opened, held under ``<key>:<target>``."""
        site, branches = self._opened_by(ref)
        return _Job("site", site, [(b, f"{key}:{ref}") for b in branches], f"reclose {ref}", (site,), failed=str(ref))

    def _branch_job(self, ref: Ref, key: str) -> _Job:
        """Reclose a branch held under ``key`` (a step's, or ``overload`` for a protection trip)."""
        sites = self._branch_sites(ref)
        return _Job("branch", sites[0], [(ref, key)], f"reclose {ref}", sites, failed=str(ref))

    def _gen_job(self, ref: Ref, key: str) -> _Job:
        """Restart a generator held under ``key`` (a step's, or ``frequency`` for a protection trip)."""
        site = self.system.site_of_bus(self.system.net.gen.at[ref.key, "bus"])
        return _Job("gen", site, [(ref, key)], f"restart {ref}", (site,), failed=str(ref))

    #: The job of each crew restoration kind of :data:`gridsim.scenario.actions.RESTORATIONS`.
    JOBS: ClassVar[dict[str, Callable[[_Clock, Ref, str], _Job]]] = {
        "reclose-site": _site_job,
        "reclose-branch": _branch_job,
        "restart-generator": _gen_job,
    }

    def _load_buses(self, refs: list[Ref]) -> frozenset[int]:
        bus_of = self.system.net.load.bus.to_numpy()
        return frozenset(int(bus_of[pos]) for pos in self._load_positions(refs))

    def _load_positions(self, refs: list[Ref]) -> list[int]:
        positions: list[int] = []
        for ref in refs:
            if ref.table == "load":
                positions.append(self.load_pos[int(ref.key)])
            elif ref.table == "substation":
                positions.extend(self.site_loads.get(str(ref.key), []))
            else:
                bus_of = self.system.net.load.bus.to_numpy()
                positions.extend(int(p) for p in np.flatnonzero(bus_of == int(ref.key)))
        return positions

    # ------------------------------------------------------------ frequency

    def _load_change(self, positions: list[int], factor: float) -> float:
        """MW by which scaling these loads by ``factor`` changes the demand now served."""
        if self.last_result is None:
            return 0.0
        served = self.last_result.served_mw
        return float(sum(served[pos] for pos in set(positions))) * (factor - 1.0)

    def _frequency_event(self, now: float, step: Step, change_mw: float, lost_gens: list[int] = ()) -> None:
        """A sudden imbalance at a step: the frequency model decides under-frequency shedding and trips."""
        settings = self.system.frequency
        if settings is None or self.last_result is None or (change_mw == 0.0 and not lost_gens):
            return
        running = [int(i) for i in self.system.net.gen.index if not self.holders[Ref("gen", int(i))]]
        machines, gens, load_mw, lost_mw = island_machines(self.system, self.last_result, running + list(lost_gens),
                                                           lost_gens)
        if not machines:
            return  # an external grid holds the frequency, or nothing is energised
        response = frequency_response(machines, load_mw, change_mw + lost_mw, settings)
        record = {"t_min": now, "step": step.index, "imbalance_mw": round(change_mw + lost_mw, 3),
                  "nadir_hz": round(response.nadir_hz, 4), "zenith_hz": round(response.zenith_hz, 4),
                  "final_hz": round(response.final_hz, 4), "ufls_stages": response.stages,
                  "ufls_share": round(response.shed_share, 4), "tripped": response.tripped}
        self.frequency_events.append(record)
        where = (f"frequency {response.nadir_hz:.2f} Hz at the lowest" if change_mw + lost_mw > 0
                 else f"frequency {response.zenith_hz:.2f} Hz at the highest")
        if response.tripped:
            for index in gens:
                ref = Ref("gen", index)
                self.holders[ref].add("frequency")
                self._log(now, ref, "out", "frequency", step=step.index, generation=0, caused_by=f"step:{step.index}",
                          detail=f"{where}: generator protection tripped after {step.label}")
                self.pending.append((str(ref), self._buses_of(str(ref))))
                self._dispatch(now, self._gen_job(ref, "frequency"))
        elif response.shed_share > 0:
            energised = self.last_result.energised_buses or frozenset()
            bus_of = self.system.net.load.bus.to_numpy()
            event = len(self.frequency_events)
            self.ufls[event] = ([p for p in range(len(bus_of)) if int(bus_of[p]) in energised], response.shed_share,
                                step.index)
            self.pending.append((f"step:{step.index}", frozenset()))  # every feeder of the island: no one place
            self._log(now, f"step:{step.index}", "info", "ufls", step=step.index,
                      detail=f"{where}: {response.stages} under-frequency shedding stage(s) cut "
                             f"{response.shed_share:.0%} of the load; reconnected in {settings.reconnect_min:g} min")
            self._push(now + settings.reconnect_min, _JOB_DONE, "ufls_reconnect", event)

    def _on_ufls_reconnect(self, now: float, event: int, _triggers, restorations: list[str]) -> None:
        """Operators reconnect the feeders an under-frequency event shed, once the frequency is back."""
        shed = self.ufls.pop(event, None)
        if shed is not None:
            self.changed = True
            restorations.append("feeders shed by under-frequency relays reconnected")
            self.pending.append((f"step:{shed[2]}", frozenset()))

    # ------------------------------------------------------------ restoration

    def _remote_possible(self, sites: tuple[str, ...]) -> bool:
        return all(not self.control_denied[s] and not self.firmware_destroyed[s] for s in sites)

    def _remote_again(self, now: float) -> None:
        """Jobs waiting for a crew at sites whose remote control is back are switched from the control room.

        A job already in a crew's hands is finished by the crew.
        """
        for operator in sorted(self.queues):
            queue = self.queues[operator]
            back = [entry for entry in queue if self._remote_possible(entry[2].sites)]
            if not back:
                continue
            self.queues[operator] = [entry for entry in queue if not self._remote_possible(entry[2].sites)]
            heapq.heapify(self.queues[operator])
            for _, _, job in sorted(back, key=lambda entry: entry[:2]):
                job.via = "remote"
                self._push(now + self.system.restoration_for(job.site).remote_min, _JOB_DONE, "job_done", job)

    def _dispatch(self, now: float, job: _Job) -> None:
        """Queue a job; remote or manual is decided once the instant has settled.

        Control may be lost at the same instant as the outage (an RTU on a bus
        the attack darkens): the operator finds out when trying to switch.
        """
        self.to_dispatch.append(job)

    def _flush_dispatch(self, now: float) -> None:
        jobs, self.to_dispatch = self.to_dispatch, []
        for job in jobs:
            self._decide(now, job)

    def _decide(self, now: float, job: _Job) -> None:
        params = self.system.restoration_for(job.site)
        if job.kind == "gen":
            job.via = "remote"
            self._push(now + 60.0 * params.generator_restart_h, _JOB_DONE, "job_done", job)
        elif self._remote_possible(job.sites):
            job.via = "remote"
            self._push(now + params.remote_min, _JOB_DONE, "job_done", job)
        else:
            job.via = "manual"
            blind = any(self.view_denied[s] for s in job.sites)
            self._push(now + (params.detect_blind_min if blind else 0.0), _JOB_READY, "job_ready", job)

    def _operator(self, site: str) -> str:
        return self.system.substations[site].operator

    def _on_job_ready(self, now: float, job: _Job, _triggers, _restorations) -> None:
        if self._remote_possible(job.sites):  # control came back while the operators were finding out
            job.via = "remote"
            self._push(now + self.system.restoration_for(job.site).remote_min, _JOB_DONE, "job_done", job)
            return
        operator = self._operator(job.site)
        priority = (-self.site_kv.get(job.site, 0.0), -self.site_customers.get(job.site, 0.0), job.site)
        heapq.heappush(self.queues[operator], (priority, next(self.seq), job))
        self._push(now, _ASSIGN, "assign", operator)

    def _on_assign(self, now: float, operator: str, _triggers, _restorations) -> None:
        """Give free crews of one operator the most urgent waiting jobs."""
        if operator not in self.free_crews:
            self.free_crews[operator] = self.system.operator_restoration.get(
                operator, self.system.restoration).crews
        queue = self.queues[operator]
        while queue and self.free_crews[operator] > 0:
            _, _, job = heapq.heappop(queue)
            self.free_crews[operator] -= 1
            hours = self.system.restoration_for(job.site).manual_h
            self._log(now, f"crew:{operator}", "info", "dispatched", detail=f"{job.label} at {job.site}, {hours:g} h")
            self._push(now + 60.0 * hours, _JOB_DONE, "job_done", job)

    def _on_job_done(self, now: float, job: _Job, _triggers, restorations: list[str]) -> None:
        if job.kind == "branch" and all(key == "overload" for _, key in job.holds):
            # Try it together with every deferred reclose (parallel branches may hold only
            # together), then alone; defer it if neither holds.
            group = [job, *self.deferred]
            if not self._would_retrip(group):
                self.deferred = []
                for other in group[1:]:
                    self._restore(now, other, restorations)
            elif len(group) == 1 or self._would_retrip([job]):
                self._log(now, job.holds[0][0], "info", "reclose-deferred",
                          detail="reclosing now would trip it again (overload or out of step); waiting for "
                                 "conditions to change")
                self.deferred.append(job)
                self._free_crew(now, job)
                return
        self._restore(now, job, restorations)
        self._free_crew(now, job)

    def _restore(self, now: float, job: _Job, restorations: list[str]) -> None:
        self.changed = True
        cause = f"restored-{job.via}"
        restorations.append(f"{job.label} ({job.via})")
        for ref, key in job.holds:
            self.holders[ref].discard(key)
        element = f"substation:{job.site}" if job.kind == "site" else str(job.holds[0][0])
        self._log(now, element, "in", cause, detail=job.label)
        # What the grid does next (an overload, an island) is blamed on the element restored: its failure line.
        self.pending.append((job.failed or element, self._buses_of(job.failed or element)))

    def _free_crew(self, now: float, job: _Job) -> None:
        if job.via == "manual":
            operator = self._operator(job.site)
            self.free_crews[operator] += 1
            self._push(now, _ASSIGN, "assign", operator)

    def _would_retrip(self, jobs: list[_Job]) -> bool:
        """Trial cascade with these jobs' branches reclosed: does anything trip?"""
        holds = [hold for job in jobs for hold in job.holds]
        for ref, key in holds:
            self.holders[ref].discard(key)
        trial = self.cascade(self.system, self._outages(), flow=self.flow)
        for ref, key in holds:
            self.holders[ref].add(key)
        return bool(trial.trips)

    # ------------------------------------------------------------ result

    def _result(self, end: float) -> SimulationResult:
        return SimulationResult(
            system=self.system,
            scenario=self.scenario,
            flow=self.flow,
            seed=self.seed,
            horizon_min=self.horizon,
            targets={i: [str(r) for r in refs] for i, refs in self.targets.items()},
            times_min=np.array(self.times),
            demand_mw=np.array(self.demand),
            served_mw=np.array(self.served),
            load_out_fraction=np.array(self.out_fraction).reshape(len(self.times), len(self.load_site)),
            labels=self.labels,
            events=self.events,
            cascade_depth=self.depth,
            end_min=end,
            step_times=self.step_times,
            layer_series={name: np.array(values) for name, values in self.layer_series.items()},
            hydraulic_runs=self.infra.water_runs if self.infra else 0,
            frequency_events=self.frequency_events,
            voltage_collapses=self.collapses,
            sites_without_control=np.array(self.sites_without_control, dtype=float),
            sites_without_view=np.array(self.sites_without_view, dtype=float),
            still_down=self._still_down(),
            control_lost=self._control_lost(),
        )

    def _still_down(self) -> list[dict[str, Any]]:
        """Every element down at the end: loads off supply, grid elements held open, layer elements, junctions.

        Each with the time, cause and ``caused_by`` of its latest failure line;
        substations whose firmware was destroyed are listed too (their remote
        control is gone for good), with cause ``firmware-destroyed``.
        """
        names: set[str] = set()
        fraction = self.out_fraction[-1] if self.out_fraction else np.zeros(0)
        names.update(f"load:{int(self.system.net.load.index[pos])}" for pos in np.flatnonzero(fraction > 0))
        for ref, keys in self.holders.items():
            for key in keys:
                # Breakers opened at a site are held under "stepN:<target>": the target is what stays down.
                names.add(key.split(":", 1)[1] if key.startswith("step") and ":" in key else str(ref))
        if self.infra is not None:
            names.update(self.infra.down_now())
        rows = []
        for name in sorted(names):
            event = self.last_out.get(name)
            rows.append({"element": name, "since_min": event.t_min if event else None,
                         "cause": event.cause if event else None, "caused_by": event.caused_by if event else None})
        for site in sorted(s for s, keys in self.firmware_destroyed.items() if keys):
            step = min((self.steps[int(k[4:])] for k in self.firmware_destroyed[site]), key=lambda s: s.index)
            rows.append({"element": f"substation:{site}", "since_min": step.at_min, "cause": "firmware-destroyed",
                         "caused_by": f"step:{step.index}"})
        return sorted(rows, key=lambda r: (r["element"], r["cause"] or ""))

    def _control_lost(self) -> dict[str, list[str]]:
        """Why sites cannot be switched remotely at the end: a step, a telecom kind down, or destroyed firmware."""
        telecom = self.system.layers.telecom
        reasons: dict[str, set[str]] = defaultdict(set)
        for site in self.system.substations:
            for key in self.control_denied[site]:
                if key.startswith("telecom:"):
                    kind = telecom[key.split(":", 1)[1]].kind if key.split(":", 1)[1] in telecom else "telecom"
                    reasons[f"{kind} down"].add(site)
                else:
                    reasons[f"{self.steps[int(key[4:])].action} (step {key[4:]})"].add(site)
            for key in self.firmware_destroyed[site]:
                reasons[f"destroy_firmware (step {int(key[4:])})"].add(site)
        return {reason: sorted(sites) for reason, sites in sorted(reasons.items())}


def _describe(refs: list[Ref]) -> str:
    if not refs:
        return "nothing"
    if len(refs) <= 3:
        return ", ".join(str(r) for r in refs)
    return f"{len(refs)} {refs[0].table}s ({refs[0].key}, {refs[1].key}, ...)"


#: What each action does to the clock, by name: the effects of :data:`gridsim.scenario.actions.ACTION_TYPES`
#: (tests/test_actions.py checks that the two name the same actions).
STEP_EFFECTS: Mapping[str, StepEffect] = _Clock.EFFECTS
#: The restoration kinds of :data:`gridsim.scenario.actions.RESTORATIONS` the clock builds crew jobs for.
CREW_KINDS: tuple[str, ...] = tuple(_Clock.JOBS)
