"""Water service over time when pumps or treatment plants lose power.

A water network is an EPANET model read by WNTR (Klise et al., *A software
framework for assessing the resilience of drinking water systems to
disasters*, Environ. Model. Softw. 95, 2017). Given when each pump and
treatment plant (``reservoir``) was out of service, :func:`simulate_service`
says, on a grid of instants, which junctions still have water.

Two modes, chosen by the system manifest, never swapped silently:

``hydraulic`` (default)
    WNTR's own pressure-dependent hydraulic simulation (``WNTRSimulator``,
    demand model ``PDD``, Wagner et al. 1988) over the whole horizon. Tanks
    drain and refill, the network's controls keep acting, and a junction is
    served while its pressure is at least ``service_pressure_m``. A pump out
    of service is closed by a rule of the highest priority for each outage
    interval; a reservoir out of service closes every link that touches it.
``graph``
    Connectivity only, for quick screening: a junction is served while a
    directed path (pumps and check valves one way, other links both ways)
    reaches a reservoir in service, or a tank that has been cut off from
    every reservoir for less than ``graph_tank_h`` hours. Links closed in
    the model's initial state stay closed (the controls are not played).

Why the network's own controls are rewritten: WNTR checks simple controls
on tank levels *after* its rules, so such a control reopens a pump that an
outage rule has closed (seen on Net3, pump 335). The simple controls acting
on an outaged link are turned into rules of the same condition and action,
below the outage's priority, so the outage wins and the controls still work
outside it. Why not ``EpanetSimulator``: EPANET 2.2 with pressure-driven
demand kept delivering full demand from empty tanks on Net3 with both pumps
out, while WNTR's own solver reports what is physical (no pressure, no
demand).
"""

from __future__ import annotations

import copy
import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
from scipy.optimize import OptimizeWarning

from gridsim.errors import InputError, SimulationError

# wntr is imported inside the functions that use it (noqa: PLC0415 there): it takes about 3 s to import, and only
# systems with a water layer need it, while this module loads with every system (gridsim.model.layers).

__all__ = [
    "ServiceResult",
    "WaterSettings",
    "junction_people",
    "library_networks",
    "read_water_network",
    "simulate_service",
]

#: Priority of the rules that hold an element out (WNTR's ``ControlPriority.very_high``).
_OUTAGE_PRIORITY = 6
#: Rewritten controls stay below the outages.
_CONTROL_PRIORITY_CAP = 5

Intervals = Mapping[str, Sequence[tuple[float, float]]]


@dataclass(frozen=True)
class WaterSettings:
    """How the water layer is simulated and when a junction counts as served."""

    mode: str = "hydraulic"  # "hydraulic" or "graph"
    required_pressure_m: float = 20.0  # full demand at or above this pressure (PDD)
    minimum_pressure_m: float = 0.0  # no demand at or below this pressure (PDD)
    service_pressure_m: float = 14.0  # a junction is served while its pressure is at least this
    timestep_min: float = 15.0  # hydraulic and report time step
    graph_tank_h: float = 12.0  # graph mode: hours a tank still supplies once cut off from every source


@dataclass(frozen=True)
class ServiceResult:
    """Which junctions have water at each instant of a run.

    ``served[i, j]`` is True when junction ``j`` (in the model's
    ``junction_name_list`` order) has water at ``times_min[i]``; it holds
    until the next instant.
    """

    times_min: np.ndarray
    served: np.ndarray  # bool, (instants, junctions)
    pressure_m: np.ndarray | None = None  # hydraulic mode only, same shape


# --------------------------------------------------------------------- reading


def library_networks() -> list[str]:
    """Names of the EPANET networks shipped with WNTR (usable as ``wntr:<name>``)."""
    return sorted(p.stem for p in _library_dir().glob("*.inp"))


def _library_dir() -> Path:
    import wntr  # noqa: PLC0415  (wntr loads only with a water layer: see the note at the imports)

    return Path(wntr.__file__).parent / "library" / "networks"


def read_water_network(spec: str, base_dir: Path):
    """Read an EPANET network: ``wntr:<name>`` (shipped with WNTR) or a path to an ``.inp`` file.

    Raises
    ------
    InputError
        Unknown library name, missing file, or a file WNTR cannot read (with its reason).
    """
    import wntr  # noqa: PLC0415  (wntr loads only with a water layer: see the note at the imports)

    if spec.startswith("wntr:"):
        name = spec.split(":", 1)[1]
        path = _library_dir() / f"{name}.inp"
        if not path.is_file():
            raise InputError(spec, f"WNTR ships no network named {name!r} (known: {', '.join(library_networks())})")
    else:
        path = base_dir / spec
        if not path.is_file():
            raise InputError(path, "file not found (layers.water.network)")
    logging.getLogger("wntr").setLevel(logging.ERROR)
    try:
        model = wntr.network.WaterNetworkModel(str(path))
    except Exception as exc:  # WNTR raises many kinds (ENSyntaxError, KeyError, ValueError) for a bad file
        raise InputError(path, f"not a readable EPANET .inp file: {exc}") from None
    if not model.junction_name_list:
        raise InputError(path, "the water network has no junctions")
    if not model.reservoir_name_list and not model.tank_name_list:
        raise InputError(path, "the water network has no reservoir or tank: no water ever reaches a junction")
    return model


def junction_people(model, *, population: float | None = None,
                    table: Mapping[str, float] | None = None) -> np.ndarray:
    """People served at each junction (``junction_name_list`` order).

    With a ``table`` (junction -> people), junctions left out serve nobody.
    Otherwise ``population`` is spread over junctions in proportion to their
    base demand (the first demand category's base value), which is how
    water utilities apportion customers to nodes in the absence of billing data.
    """
    names = model.junction_name_list
    if table is not None:
        return np.array([float(table.get(name, 0.0)) for name in names])
    base = np.array([max(_base_demand(model.get_node(name)), 0.0) for name in names])
    total = base.sum()
    if not population or total <= 0:
        return np.zeros(len(names))
    return population * base / total


def _base_demand(junction) -> float:
    demands = junction.demand_timeseries_list
    return float(sum(d.base_value for d in demands)) if len(demands) else 0.0


# --------------------------------------------------------------------- simulation


def simulate_service(model, intervals: Intervals, horizon_min: float, settings: WaterSettings) -> ServiceResult:
    """Junction service from t = 0 to ``horizon_min`` with these elements out of service.

    Parameters
    ----------
    model : wntr.network.WaterNetworkModel
        Never modified (the simulation works on a copy).
    intervals : mapping
        ``"pump:<name>"`` or ``"reservoir:<name>"`` -> list of ``(start_min,
        end_min)`` it was out; ``end_min`` may be ``inf`` (still out).
    horizon_min : float
        End of the run.
    settings : WaterSettings
        Mode, pressures and time step.

    Raises
    ------
    SimulationError
        The hydraulic solver does not converge.
    """
    links = _link_outages(model, intervals)
    if settings.mode == "graph":
        return _graph_service(model, links, horizon_min, settings)
    return _hydraulic_service(model, links, horizon_min, settings)


def _link_outages(model, intervals: Intervals) -> dict[str, list[tuple[float, float]]]:
    """Outage intervals per link (minutes, merged): a pump itself, every link touching a reservoir."""
    per_link: dict[str, list[tuple[float, float]]] = {}
    for element, spans in intervals.items():
        kind, _, name = element.partition(":")
        if kind == "pump":
            touched = [name]
        elif kind == "reservoir":
            touched = list(model.get_links_for_node(name))
        else:
            raise ValueError(f"not a water element that can be out: {element}")
        for link in touched:
            per_link.setdefault(link, []).extend((float(s), float(e)) for s, e in spans)
    return {link: _merge(spans) for link, spans in per_link.items()}


def _merge(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if end <= start:
            continue
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _grid(horizon_min: float, step_min: float) -> np.ndarray:
    steps = int(math.ceil(horizon_min / step_min - 1e-9))
    return np.arange(steps + 1) * step_min


def _hydraulic_service(model, links: Mapping[str, list[tuple[float, float]]], horizon_min: float,
                       settings: WaterSettings) -> ServiceResult:
    import wntr  # noqa: PLC0415  (wntr loads only with a water layer: see the note at the imports)

    wn = _prepared_copy(model, links, horizon_min, settings)
    logging.getLogger("wntr").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            # WNTR fits three-point pump curves with scipy and warns when a fit is exact (Net3 does).
            warnings.simplefilter("ignore", OptimizeWarning)
            results = wntr.sim.WNTRSimulator(wn).run_sim()
    except Exception as exc:  # WNTR raises RuntimeError and others when Newton's method fails
        raise SimulationError(f"the water network's hydraulic simulation failed: {exc}") from None
    pressure = results.node["pressure"][list(model.junction_name_list)]
    times = pressure.index.to_numpy(dtype=float) / 60.0
    values = pressure.to_numpy(dtype=float)
    # WNTR reports on the grid, plus the instants controls added; keep the grid for a steady curve.
    grid = _grid(horizon_min, settings.timestep_min)
    rows = np.searchsorted(times, grid + 1e-6, side="right") - 1
    values = values[np.clip(rows, 0, len(times) - 1)]
    return ServiceResult(grid, values >= settings.service_pressure_m, values)


def _prepared_copy(model, links: Mapping[str, list[tuple[float, float]]], horizon_min: float,
                   settings: WaterSettings):
    """A copy of the model with the run's options and one closing rule per link outage."""
    from wntr.network import LinkStatus  # noqa: PLC0415  (wntr loads only with a water layer: see the note at the imports)
    from wntr.network.controls import AndCondition, Control, ControlAction, Rule, SimTimeCondition  # noqa: PLC0415  (wntr loads only with a water layer: see the note at the imports)

    wn = copy.deepcopy(model)
    step_s = int(round(settings.timestep_min * 60))
    options = wn.options
    options.time.duration = int(math.ceil(horizon_min * 60 / step_s)) * step_s
    options.time.hydraulic_timestep = step_s
    options.time.report_timestep = step_s
    options.time.rule_timestep = min(options.time.rule_timestep or step_s, step_s)
    options.hydraulic.demand_model = "PDD"
    options.hydraulic.required_pressure = settings.required_pressure_m
    options.hydraulic.minimum_pressure = settings.minimum_pressure_m
    options.hydraulic.pressure_exponent = 0.5

    controlled: set[str] = set()
    for name, control in list(wn.controls()):
        targets = {getattr(action.target()[0], "name", None) for action in control.actions()}
        controlled |= targets
        if targets & set(links) and control._control_type_str() == "Control":  # noqa: SLF001  (WNTR's only type test)
            wn.remove_control(name)
            wn.add_control(name, Rule(control.condition, list(control.actions()),
                                      priority=min(int(control.priority), _CONTROL_PRIORITY_CAP), name=name))
    for link_name, spans in links.items():
        link = wn.get_link(link_name)
        for k, (start, end) in enumerate(spans):
            if start <= 0:
                link.initial_status = LinkStatus.Closed  # a rule acts only after the first solve
            condition = SimTimeCondition(wn, "Above", start * 60 - 1)
            if math.isfinite(end):
                condition = AndCondition(condition, SimTimeCondition(wn, "Below", end * 60))
            close = ControlAction(link, "status", LinkStatus.Closed)
            wn.add_control(f"gridsim-outage-{link_name}-{k}", Rule(condition, [close], priority=_OUTAGE_PRIORITY))
            if math.isfinite(end) and link_name not in controlled:
                # Nothing else would reopen it (a pipe to a plant, a pump that always runs).
                reopen = ControlAction(link, "status", LinkStatus.Open)
                wn.add_control(f"gridsim-back-{link_name}-{k}",
                               Control._time_control(wn, int(round(end * 60)), "SIM_TIME", False, reopen))  # noqa: SLF001
    return wn


# --------------------------------------------------------------------- graph mode


def _graph_service(model, links: Mapping[str, list[tuple[float, float]]], horizon_min: float,
                   settings: WaterSettings) -> ServiceResult:
    """Connectivity to a working source at every instant of the grid (see the module docstring)."""
    grid = _grid(horizon_min, settings.timestep_min)
    junctions = list(model.junction_name_list)
    reservoirs = list(model.reservoir_name_list)
    tanks = list(model.tank_name_list)
    edges = _directed_edges(model)
    reach_cache: dict[frozenset[str], tuple[set[str], dict[str, set[str]]]] = {}
    boundaries = {t for spans in links.values() for span in spans for t in span if t <= horizon_min}
    on_grid = set(grid.tolist())
    tank_cut_since: dict[str, float | None] = dict.fromkeys(tanks)
    rows: list[np.ndarray] = []
    # Walk every outage boundary too, so a tank's clock starts when it is really cut off.
    for t in sorted(on_grid | boundaries):
        out_links = frozenset(link for link, spans in links.items() if any(s <= t < e for s, e in spans))
        if out_links not in reach_cache:
            graph = nx.DiGraph()
            graph.add_nodes_from(model.node_name_list)
            graph.add_edges_from((a, b) for name, a, b in edges if name not in out_links)
            reach_cache[out_links] = (_reachable(graph, reservoirs),
                                      {tank: _reachable(graph, [tank]) for tank in tanks})
        from_reservoirs, from_tank = reach_cache[out_links]
        for tank in tanks:
            if tank in from_reservoirs:
                tank_cut_since[tank] = None
            elif tank_cut_since[tank] is None:
                tank_cut_since[tank] = t
        if t not in on_grid:
            continue
        reached = set(from_reservoirs)
        for tank in tanks:
            since = tank_cut_since[tank]
            if since is None or t - since < 60.0 * settings.graph_tank_h:
                reached |= from_tank[tank]
        rows.append(np.array([j in reached for j in junctions]))
    return ServiceResult(grid, np.array(rows))


def _directed_edges(model) -> list[tuple[str, str, str]]:
    """``(link, from, to)`` for every direction water can flow: pumps and check valves one way.

    Links closed in the model's initial state (bypasses that controls open
    now and then) carry nothing: graph mode does not play the controls.
    """
    from wntr.network import LinkStatus  # noqa: PLC0415  (wntr loads only with a water layer: see the note at the imports)

    edges: list[tuple[str, str, str]] = []
    for name in model.link_name_list:
        link = model.get_link(name)
        if link.initial_status == LinkStatus.Closed:
            continue
        a, b = link.start_node_name, link.end_node_name
        one_way = link.link_type == "Pump" or getattr(link, "check_valve", False)
        edges.append((name, a, b))
        if not one_way:
            edges.append((name, b, a))
    return edges


def _reachable(graph: nx.DiGraph, sources: list[str]) -> set[str]:
    reached: set[str] = set()
    for source in sources:
        if source not in reached:
            reached |= nx.descendants(graph, source) | {source}
    return reached
