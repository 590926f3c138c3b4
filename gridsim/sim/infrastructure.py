"""The infrastructure layers over time: what the clock asks of them at every instant.

The clock owns the power grid and restoration; this module owns the rest:
the dependency state machine (:mod:`gridsim.sim.coupling`), the water
hydraulics (re-run whenever the set of pumps and treatment plants out of
service changes, with the outage history so far and states held into the
future), the traffic assignment (once per set of dark signals), and the
telecom effects on control and view. It tells the clock which generators
its dependencies take out, which substations lost control or view, and
when to wake up next (backup expiries, restarts, changes of water service).

Every failure it logs names what caused it (``caused_by``): a layer element
its supplier, a bus the grid change the clock blames for it, a junction the
nearest pump or treatment plant out of service.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from gridsim.layers.transport import assign
from gridsim.layers.water import simulate_service
from gridsim.model.layers import CONTROL_CENTRE, CONTROL_KINDS
from gridsim.model.system import System
from gridsim.sim.coupling import Coupling, format_time

__all__ = ["Infrastructure", "LAYER_SERIES", "Wakeup"]

#: Curves recorded at every instant (timeline columns), in order.
LAYER_SERIES = (
    "people_without_water", "junctions_without_water", "water_sources_down", "signals_dark", "rail_lines_stopped",
    "rail_riders_stranded_per_h", "travel_time_increase_pct", "telecom_sites_down", "substations_without_control",
    "substations_without_view", "facilities_down", "generators_out_by_dependency", "elements_on_backup",
)

_WATER_KINDS = ("pump:", "reservoir:")
_FULLY_SERVED = 1e-6  # share of a load's demand that may go unserved and still count as served


@dataclass(frozen=True)
class Wakeup:
    """An instant the clock must stop at for the layers: ``kind`` is backup, restart or water."""

    t_min: float
    kind: str
    payload: object = None


@dataclass
class _Effects:
    gens_out: set[int] = field(default_factory=set)
    control_lost: dict[str, set[str]] = field(default_factory=dict)  # site -> telecom keys
    view_lost: dict[str, set[str]] = field(default_factory=dict)


class Infrastructure:
    """State of every layer of one system during one run.

    Parameters
    ----------
    system : System
        Its ``layers`` are simulated; the grid is the clock's.
    horizon_min : float
        End of the run (hydraulics are simulated this far).
    log : callable
        ``log(t_min, element, state, cause, caused_by, detail)``: one line of the event log.
    blame : callable, optional
        ``blame(bus)``: the element whose failure (or the step) de-energised this
        bus at this instant, for the ``caused_by`` of its event.
    """

    def __init__(self, system: System, horizon_min: float, log: Callable[..., None],
                 blame: Callable[[int], str | None] | None = None):
        self.system, self.layers, self.horizon = system, system.layers, horizon_min
        self.log = log
        self.blame = blame
        self.energised: frozenset[int] = frozenset(int(b) for b in system.net.bus.index)
        self.load_out: dict[int, float] = {}
        self.bus_reason: dict[int, str] = {}
        self.coupling = Coupling(self.layers, self._outside_up, self._outside_why)
        self._supplier_buses = self._buses_supplying()
        self._scheduled: set[tuple[float, str, object]] = set()
        self.effects = _Effects()
        self._sites_of_operator: dict[str, list[str]] = {}
        for name, sub in system.substations.items():
            self._sites_of_operator.setdefault(sub.operator, []).append(name)
        # Water: outage history of pumps and plants, the last hydraulic run, junctions now without water.
        water = self.layers.water
        self.water_intervals: dict[str, list[list[float]]] = {}
        self.water_down: set[str] = set()
        self._last_water_down: str | None = None  # the pump or plant that went down last
        self._water_graph: dict[str, list[str]] | None = None
        self._water_nearest: tuple[frozenset[str], dict[str, str]] | None = None
        self.water_runs = 0
        self.water_version = 0
        self._junction_pos = {name: i for i, name in enumerate(water.junctions)} if water else {}
        self.water_lost = np.zeros(len(self._junction_pos), dtype=bool)
        self._base_service = self._run_water() if water else None
        self._service = self._base_service
        self._lost_matrix = None
        # Transport: the equilibrium travel time without dark signals, and a cache per set of dark signals.
        self._assignments: dict[frozenset[str], float] = {}
        transport = self.layers.transport
        self._base_veh_h = self._travel_veh_h(frozenset()) if transport is not None else None

    # ------------------------------------------------------------ suppliers outside the layers

    def _buses_supplying(self) -> set[int]:
        buses: set[int] = set()
        for edge in self.layers.dependencies:
            kind, _, ident = edge.supplier.partition(":")
            if kind == "bus":
                buses.add(int(ident))
            elif kind == "substation":
                buses.update(self.system.substations[ident].buses)
        return buses

    def _outside_up(self, name: str) -> bool:
        kind, _, ident = name.partition(":")
        if kind == "bus":
            return int(ident) in self.energised
        if kind == "load":  # a feeder: up while fully served (a feeder in a shedding rotation is dark)
            return self.load_out.get(int(ident), 0.0) <= _FULLY_SERVED
        if kind == "substation":
            return any(b in self.energised for b in self.system.substations[ident].buses)
        if kind == "junction":
            return not bool(self.water_lost[self._junction_pos[ident]])
        raise KeyError(name)

    def _outside_why(self, name: str) -> str:
        kind, _, ident = name.partition(":")
        if kind == "bus":
            return self.bus_reason.get(int(ident), "")
        if kind == "substation":
            reasons = [self.bus_reason[b] for b in self.system.substations[ident].buses if b in self.bus_reason]
            return reasons[0] if reasons else ""
        if kind == "load":
            return f"{self.load_out.get(int(ident), 0.0):.0%} of its demand shed or cut"
        if kind == "junction":
            down = sorted(self.water_down)
            return (f"pressure below {self.layers.water.settings.service_pressure_m:g} m with "
                    f"{', '.join(down) if down else 'no source'} out")
        return ""

    # ------------------------------------------------------------ one instant

    def update(self, now: float, energised: frozenset[int], why: str,
               load_out: dict[int, float] | None = None) -> list[Wakeup]:
        """Bring every layer to its fixed point at ``now`` after a power cascade.

        ``why`` says what happened at this instant (for the cause chain of
        buses that lose power); ``load_out`` is the share of each load
        (pandapower index) not served. Returns the instants to wake up at.
        """
        self._set_energised(now, energised, why)
        if load_out is not None:
            self.load_out = load_out
        wakeups: list[Wakeup] = []
        while True:
            changes, expiries, restarts = self.coupling.propagate(now)
            for change in changes:
                self.log(now, change.element, change.state, change.cause, change.caused_by, change.detail)
            wakeups += [Wakeup(t, "backup") for t in expiries]
            wakeups += [Wakeup(t, "restart", element) for t, element in restarts]
            if not self._water_changed(now, wakeups):
                break
        self._apply_effects()
        return self._new(wakeups)

    def _new(self, wakeups: list[Wakeup]) -> list[Wakeup]:
        out = []
        for w in wakeups:
            key = (w.t_min, w.kind, w.payload)
            if w.t_min <= self.horizon and key not in self._scheduled:
                self._scheduled.add(key)
                out.append(w)
        return out

    def wake(self, now: float, wakeup: Wakeup) -> list[Wakeup]:
        """A wake-up the clock scheduled has come; returns any further wake-ups."""
        self._scheduled.discard((wakeup.t_min, wakeup.kind, wakeup.payload))
        if wakeup.kind == "restart":
            self.coupling.restart_due(str(wakeup.payload), now)
        elif wakeup.kind == "water" and wakeup.payload == self.water_version:
            # A stale version means the hydraulics were re-run since: that run scheduled its own.
            self._set_water_lost(now, self._lost_at(now))
            nxt = self._next_water_change(now)
            if nxt is not None:
                return self._new([Wakeup(nxt, "water", self.water_version)])
        return []

    def _set_energised(self, now: float, energised: frozenset[int], why: str) -> None:
        for bus in sorted(self._supplier_buses):
            was, is_ = bus in self.energised, bus in energised
            if was and not is_:
                self.bus_reason[bus] = f"de-energised at {format_time(now)} after {why}"
                blamed = self.blame(bus) if self.blame is not None else None
                self.log(now, f"bus:{bus}", "out", "island", blamed, self.bus_reason[bus])
            elif is_ and not was:
                self.bus_reason.pop(bus, None)
                self.log(now, f"bus:{bus}", "in", "restored", None, f"energised again after {why}")
        self.energised = energised

    # ------------------------------------------------------------ water

    def _run_water(self):
        water = self.layers.water
        intervals = {name: [tuple(iv) for iv in ivs] for name, ivs in self.water_intervals.items()}
        self.water_runs += 1
        return simulate_service(water.model, intervals, self.horizon, water.settings)

    def _water_changed(self, now: float, wakeups: list[Wakeup]) -> bool:
        """Re-run the hydraulics if pumps or plants changed; True if junction service changed now."""
        if self.layers.water is None:
            return False
        down = {name for name in self.coupling.down if name.startswith(_WATER_KINDS)}
        if down == self.water_down:
            return False
        for name in sorted(down - self.water_down):
            self.water_intervals.setdefault(name, []).append([now, math.inf])
            self._last_water_down = name
        for name in self.water_down - down:
            self.water_intervals[name][-1][1] = now
        self.water_down = down
        self._service = self._run_water()
        base = self._base_service
        self._lost_matrix = base.served & ~self._service.served
        self.water_version += 1
        nxt = self._next_water_change(now)
        if nxt is not None:
            wakeups.append(Wakeup(nxt, "water", self.water_version))
        return self._set_water_lost(now, self._lost_at(now))

    def _lost_at(self, t: float) -> np.ndarray:
        if self._lost_matrix is None:
            return self.water_lost
        times = self._service.times_min
        row = max(int(np.searchsorted(times, t, side="right")) - 1, 0)
        return self._lost_matrix[row]

    def _next_water_change(self, after: float) -> float | None:
        times = self._service.times_min
        current = self._lost_at(after)
        for row in range(int(np.searchsorted(times, after, side="right")), len(times)):
            if (self._lost_matrix[row] != current).any():
                return float(times[row])
        return None

    def _set_water_lost(self, now: float, lost: np.ndarray) -> bool:
        lost = lost.copy()
        changed = np.flatnonzero(lost != self.water_lost)
        if not len(changed):
            return False
        names = self.layers.water.junctions
        for pos in changed:
            element = f"junction:{names[pos]}"
            if lost[pos]:
                self.log(now, element, "out", "dependency", self._water_cause(names[pos]), self._outside_why(element)
                         + "; " + "; ".join(f"{n}: {self.coupling.why(n)}" for n in sorted(self.water_down)))
            else:
                self.log(now, element, "in", "restored", None, "pressure back")
        self.water_lost = lost
        return True

    def _water_cause(self, junction: str) -> str | None:
        """The pump or plant out of service nearest to a junction (pipe hops): what its lost water is blamed on.

        The hydraulics say that pressure fell, not which outage made it fall;
        the nearest source out is the usual culprit. Ties go to the first name.
        With none out (a tank that ran dry after its source came back), the
        one that went down last.
        """
        down = frozenset(self.water_down)
        if not down:
            return self._last_water_down
        if self._water_nearest is None or self._water_nearest[0] != down:
            self._water_nearest = (down, self._nearest_sources(down))
        return self._water_nearest[1].get(junction, sorted(down)[0])

    def _nearest_sources(self, down: frozenset[str]) -> dict[str, str]:
        """Node name -> the element of ``down`` nearest to it, by breadth-first search over the pipes."""
        model = self.layers.water.model
        if self._water_graph is None:
            graph: dict[str, list[str]] = {name: [] for name in model.node_name_list}
            for _, link in model.links():
                graph[link.start_node_name].append(link.end_node_name)
                graph[link.end_node_name].append(link.start_node_name)
            self._water_graph = graph
        nearest: dict[str, str] = {}
        queue: deque[str] = deque()
        for name in sorted(down):
            kind, _, ident = name.partition(":")
            nodes = ([model.get_link(ident).start_node_name, model.get_link(ident).end_node_name]
                     if kind == "pump" else [ident])
            for node in nodes:
                if node not in nearest:
                    nearest[node] = name
                    queue.append(node)
        while queue:
            node = queue.popleft()
            for other in self._water_graph[node]:
                if other not in nearest:
                    nearest[other] = nearest[node]
                    queue.append(other)
        return nearest

    # ------------------------------------------------------------ effects on the grid and restoration

    def _apply_effects(self) -> None:
        gens = {int(n.split(":", 1)[1]) for n in self.coupling.down if n.startswith("gen:")}
        control: dict[str, set[str]] = {}
        view: dict[str, set[str]] = {}
        for site_id, site in self.layers.telecom.items():
            name = f"telecom:{site_id}"
            if name not in self.coupling.down:
                continue
            if site.kind in CONTROL_KINDS:
                control.setdefault(site.substation, set()).add(name)
            elif site.kind == CONTROL_CENTRE:
                for sub in self._sites_of_operator.get(site.operator, []):
                    control.setdefault(sub, set()).add(name)
                    view.setdefault(sub, set()).add(name)
        self.effects = _Effects(gens, control, view)

    def down_now(self) -> list[str]:
        """Every layer element down now and every junction without water, by name (sorted)."""
        names = set(self.coupling.down)
        if self.layers.water is not None:
            junctions = self.layers.water.junctions
            names.update(f"junction:{junctions[int(pos)]}" for pos in np.flatnonzero(self.water_lost))
        return sorted(names)

    # ------------------------------------------------------------ measures

    def _travel_veh_h(self, dark: frozenset[str]) -> float:
        if dark not in self._assignments:
            transport = self.layers.transport
            result = assign(transport.network, transport.demand, transport.capacity_with_dark(dark))
            self._assignments[dark] = float(result.total_veh_h)
        return self._assignments[dark]

    def measures(self, now: float) -> dict[str, float]:
        """The layers' curves at ``now`` (one value per name in :data:`LAYER_SERIES`)."""
        down = self.coupling.down
        out = dict.fromkeys(LAYER_SERIES, 0.0)
        water = self.layers.water
        if water is not None:
            out["people_without_water"] = float(water.people[self.water_lost].sum())
            out["junctions_without_water"] = float(self.water_lost.sum())
            out["water_sources_down"] = float(len(self.water_down))
        transport = self.layers.transport
        if transport is not None:
            dark = frozenset(n.split(":", 1)[1] for n in down if n.startswith("signal:"))
            stopped = [n.split(":", 1)[1] for n in down if n.startswith("rail:")]
            out["signals_dark"] = float(len(dark))
            out["rail_lines_stopped"] = float(len(stopped))
            out["rail_riders_stranded_per_h"] = float(sum(transport.rail_riders_per_h[r] for r in stopped))
            if self._base_veh_h:
                out["travel_time_increase_pct"] = 100.0 * (self._travel_veh_h(dark) / self._base_veh_h - 1.0)
        out["telecom_sites_down"] = float(sum(1 for n in down if n.startswith("telecom:")))
        out["substations_without_control"] = float(len(self.effects.control_lost))
        out["substations_without_view"] = float(len(self.effects.view_lost))
        out["facilities_down"] = float(sum(1 for n in down if n.startswith("facility:")))
        out["generators_out_by_dependency"] = float(len(self.effects.gens_out))
        out["elements_on_backup"] = float(len(self.coupling.on_backup(now)))
        return out
