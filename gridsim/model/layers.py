"""Infrastructure layers around the grid and the dependency edges between everything.

Read from the ``[layers.*]`` and ``[dependencies]`` tables of a system manifest
(docs/FORMATS.md). Every element of a layer has one name, ``<kind>:<id>``
(``pump:10``, ``signal:S-12``, ``telecom:RTU-40``), used alike by the
dependency table, scenario targets and the event log. Every id is checked
here, when the system loads, so the engine can trust them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gridsim.errors import InputError
from gridsim.io.ids import name_index, resolve_id
from gridsim.io.manifest import check_keys, line_of, manifest_number
from gridsim.io.numbers import number_cell, shown
from gridsim.io.tables import parse_tag, read_csv, sha256
from gridsim.layers.transport import read_demand_csv, read_road_csv, read_road_graphml
from gridsim.layers.water import WaterSettings, junction_people, read_water_network

__all__ = [
    "DEPENDENT_KINDS",
    "LAYER_KINDS",
    "SUPPLIER_KINDS",
    "Dependency",
    "LayerElement",
    "Layers",
    "TelecomSite",
    "TransportLayer",
    "WaterLayer",
    "load_layers",
]

#: Kinds of layer elements, by layer.
LAYER_KINDS: dict[str, tuple[str, ...]] = {
    "water": ("pump", "reservoir", "junction"),
    "transport": ("signal", "rail"),
    "telecom": ("telecom",),
    "facilities": ("facility",),
}
#: What may fail because a supplier failed (``gen`` is a grid generator).
DEPENDENT_KINDS = ("pump", "reservoir", "signal", "rail", "telecom", "facility", "gen")
#: What may supply a dependent.
SUPPLIER_KINDS = ("bus", "substation", "load", "pump", "reservoir", "junction", "signal", "rail", "telecom",
                  "facility")
#: Telecom kinds whose loss takes remote control of a substation (``substation`` column).
CONTROL_KINDS = ("rtu", "gateway")
#: Telecom kind whose loss blinds an operator (``operator`` column).
CONTROL_CENTRE = "control_centre"

_WATER_KEYS = {"network", "mode", "population", "people", "required_pressure_m", "minimum_pressure_m",
               "service_pressure_m", "timestep_min", "graph_tank_h"}
_TRANSPORT_KEYS = {"nodes", "links", "graphml", "signals", "rail", "demand", "dark_signal_capacity"}
_TELECOM_KEYS = {"sites"}
_FACILITY_KEYS = {"table"}
_DEPENDENCY_KEYS = {"table"}


@dataclass(frozen=True)
class LayerElement:
    """One element of a layer, with the columns of its table as tags (for target filters)."""

    kind: str
    id: str
    tags: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.id}"


@dataclass(frozen=True)
class Dependency:
    """One requirement: ``dependent`` works only while ``supplier`` does (or its backup lasts)."""

    supplier: str
    dependent: str
    backup_h: float = 0.0
    restart_min: float = 0.0
    group: str = ""
    note: str = ""
    place: str = ""  # "dependencies.csv line 7", for messages


@dataclass
class WaterLayer:
    """A water network (WNTR model), how its service is judged, and people per junction."""

    spec: str
    model: Any  # wntr.network.WaterNetworkModel; never modified
    settings: Any  # gridsim.layers.water.WaterSettings
    junctions: tuple[str, ...]
    people: np.ndarray  # per junction, in ``junctions`` order

    @property
    def population(self) -> float:
        return float(self.people.sum())


@dataclass
class TransportLayer:
    """A road network with signalised intersections, electric rail lines and a demand table."""

    network: Any  # gridsim.layers.transport.RoadNetwork
    demand: Any  # gridsim.layers.transport.Demand
    signal_node: dict[str, int]  # signal id -> road node position
    rail_riders_per_h: dict[str, float]
    dark_signal_capacity: float = 0.5

    def capacity_with_dark(self, dark: frozenset[str]) -> np.ndarray:
        """Link capacities when these signals are dark: links into a dark node lose capacity."""
        capacity = self.network.capacity_veh_h.astype(float).copy()
        if dark:
            nodes = np.array([self.signal_node[s] for s in dark])
            capacity[np.isin(self.network.to_node, nodes)] *= self.dark_signal_capacity
        return capacity


@dataclass(frozen=True)
class TelecomSite:
    id: str
    kind: str
    substation: str = ""  # controlled site, for rtu/gateway
    operator: str = ""  # viewed operator, for control_centre


@dataclass
class Layers:
    """Everything around the grid. Empty for a bare power system."""

    water: WaterLayer | None = None
    transport: TransportLayer | None = None
    telecom: dict[str, TelecomSite] = field(default_factory=dict)
    elements: dict[str, LayerElement] = field(default_factory=dict)  # name -> element (not junctions)
    dependencies: tuple[Dependency, ...] = ()

    @property
    def present(self) -> list[str]:
        """Names of the layers this system has."""
        out = []
        if self.water is not None:
            out.append("water")
        if self.transport is not None:
            out.append("transport")
        if self.telecom:
            out.append("telecom")
        if any(e.kind == "facility" for e in self.elements.values()):
            out.append("facilities")
        return out

    def of_kind(self, kind: str) -> list[LayerElement]:
        return [e for e in self.elements.values() if e.kind == kind]

    def counts(self) -> dict[str, int]:
        """Elements per kind and dependency edges, for ``gridsim show``."""
        out: dict[str, int] = {}
        for element in self.elements.values():
            out[element.kind] = out.get(element.kind, 0) + 1
        if self.water is not None:
            out["junction"] = len(self.water.junctions)
        if self.transport is not None:
            out["road_link"] = len(self.transport.network.link_ids)
            out["demand_pair"] = len(self.transport.demand.trips_per_h)
        out["dependency"] = len(self.dependencies)
        return out


# --------------------------------------------------------------------- loading


def load_layers(manifest: dict, base_dir: Path, net, substations: Mapping[str, Any], where, raw: str | None,
                input_files: dict[str, str]) -> Layers:
    """Read ``[layers.*]`` and ``[dependencies]`` of a manifest, checking every id.

    Raises
    ------
    InputError
        Unknown layer or key, missing file, malformed table, or an id (bus,
        generator, substation, junction, pump ...) that does not exist, with the
        file and line.
    """

    layers_cfg = check_keys(manifest.get("layers", {}), set(LAYER_KINDS), "layers", where, raw)
    layers = Layers()
    if "water" in layers_cfg:
        layers.water = _water(check_keys(layers_cfg["water"], _WATER_KEYS, "layers.water", where, raw),
                              base_dir, where, raw, input_files, layers)
    if "transport" in layers_cfg:
        layers.transport = _transport(
            check_keys(layers_cfg["transport"], _TRANSPORT_KEYS, "layers.transport", where, raw),
            base_dir, where, raw, input_files, layers)
    if "telecom" in layers_cfg:
        cfg = check_keys(layers_cfg["telecom"], _TELECOM_KEYS, "layers.telecom", where, raw)
        layers.telecom = _telecom(cfg, base_dir, where, raw, input_files, layers, substations)
    if "facilities" in layers_cfg:
        cfg = check_keys(layers_cfg["facilities"], _FACILITY_KEYS, "layers.facilities", where, raw)
        path = _file(cfg, "table", "layers.facilities", base_dir, where, raw, input_files, required=True)
        for line, row in _rows(path, ["id", "kind"]):
            _add(layers, LayerElement("facility", _id(row, path, line), _tags(row)), path, line)
    deps_cfg = manifest.get("dependencies", {})
    if deps_cfg:
        deps_cfg = check_keys(deps_cfg, _DEPENDENCY_KEYS, "dependencies", where, raw)
        path = _file(deps_cfg, "table", "dependencies", base_dir, where, raw, input_files, required=True)
        layers.dependencies = _dependencies(path, net, substations, layers)
    return layers


def _rows(path: Path, required: list[str]) -> list[tuple[int, dict[str, str]]]:
    return read_csv(path, required)


def _file(cfg: dict, key: str, section: str, base_dir: Path, where, raw, input_files, *,
          required: bool = False) -> Path | None:
    value = cfg.get(key)
    if value is None:
        if required:
            raise InputError(where, f"[{section}] needs {key} = \"<file>\"", line_of(raw, section.split(".")[-1]))
        return None
    if not isinstance(value, str) or not value:
        raise InputError(where, f"{section}.{key} must be a file name (a string), got {shown(value)}",
                         line_of(raw, key))
    path = base_dir / value
    if not path.is_file():
        raise InputError(path, f"file not found ({section}.{key})")
    input_files[str(path)] = sha256(path)
    return path


def _id(row: dict[str, str], path: Path, line: int, column: str = "id") -> str:
    value = row[column]
    if not value:
        raise InputError(path, f"empty {column}", f"line {line}")
    if any(c.isspace() for c in value) or "," in value:
        raise InputError(path, f"{column} {value!r} must not contain spaces or commas", f"line {line}")
    return value


def _tags(row: dict[str, str]) -> dict[str, Any]:
    return {k: parse_tag(v) for k, v in row.items() if k != "id" and v != ""}


def _add(layers: Layers, element: LayerElement, path: Path, line: int) -> None:
    if element.name in layers.elements:
        raise InputError(path, f"duplicate id {element.id!r} ({element.name})", f"line {line}")
    layers.elements[element.name] = element


def _water(cfg: dict, base_dir: Path, where, raw, input_files, layers: Layers) -> WaterLayer:
    spec = cfg.get("network")
    if not isinstance(spec, str) or not spec:
        raise InputError(where, "[layers.water] needs network = \"<file.inp>\" or \"wntr:<name>\"",
                         line_of(raw, "water"))
    model = read_water_network(spec, base_dir)
    if not spec.startswith("wntr:"):
        input_files[str(base_dir / spec)] = sha256(base_dir / spec)
    mode = cfg.get("mode", "hydraulic")
    if mode not in ("hydraulic", "graph"):
        raise InputError(where, f"layers.water.mode must be 'hydraulic' or 'graph', got {shown(mode)}",
                         line_of(raw, "mode"))
    numbers = {key: manifest_number(cfg, key, default, "layers.water", where, raw, minimum=minimum)
               for key, default, minimum in (("required_pressure_m", 20.0, 0.0), ("minimum_pressure_m", 0.0, 0.0),
                                             ("service_pressure_m", 14.0, 0.0), ("timestep_min", 15.0, 1.0),
                                             ("graph_tank_h", 12.0, 0.0))}
    if numbers["minimum_pressure_m"] >= numbers["required_pressure_m"]:
        raise InputError(where, "layers.water.minimum_pressure_m must be below required_pressure_m",
                         line_of(raw, "minimum_pressure_m"))
    settings = WaterSettings(mode=mode, **numbers)
    if "people" in cfg and "population" in cfg:
        raise InputError(where, "layers.water: give population or people (a table), not both", line_of(raw, "people"))
    table = None
    population = None
    if "people" in cfg:
        path = _file(cfg, "people", "layers.water", base_dir, where, raw, input_files)
        junction_set = set(model.junction_name_list)
        table = {}
        for line, row in _rows(path, ["junction", "people"]):
            name = row["junction"]
            if name not in junction_set:
                raise InputError(path, f"no junction named {name!r} in {spec}", f"line {line}")
            if name in table:
                raise InputError(path, f"junction {name!r} listed twice", f"line {line}")
            table[name] = _count(row["people"], path, line, "people")
    else:
        population = manifest_number(cfg, "population", 0.0, "layers.water", where, raw, minimum=0.0)
    people = np.asarray(junction_people(model, population=population, table=table), dtype=float)
    for kind, names in (("pump", model.pump_name_list), ("reservoir", model.reservoir_name_list)):
        for name in names:
            layers.elements[f"{kind}:{name}"] = LayerElement(kind, str(name), {"network": spec})
    return WaterLayer(spec, model, settings, tuple(model.junction_name_list), people)


def _count(text: str, path: Path, line: int, column: str, blank: float | None = None) -> float:
    """A cell that is a number >= 0 (people, riders, hours, minutes); ``blank`` for an empty one, if given."""
    return number_cell(text, column, path, f"line {line}", minimum=0.0, blank=blank)


def _transport(cfg: dict, base_dir: Path, where, raw, input_files, layers: Layers) -> TransportLayer:
    demand_path = _file(cfg, "demand", "layers.transport", base_dir, where, raw, input_files, required=True)
    graphml = _file(cfg, "graphml", "layers.transport", base_dir, where, raw, input_files)
    nodes = _file(cfg, "nodes", "layers.transport", base_dir, where, raw, input_files)
    links = _file(cfg, "links", "layers.transport", base_dir, where, raw, input_files)
    if graphml is not None and (nodes or links):
        raise InputError(where, "layers.transport: give graphml or nodes + links, not both", line_of(raw, "graphml"))
    if graphml is not None:
        network = read_road_graphml(graphml)
    elif nodes is not None and links is not None:
        network = read_road_csv(nodes, links)
    else:
        raise InputError(where, "[layers.transport] needs graphml = \"...\" or nodes = \"...\" and links = \"...\"",
                         line_of(raw, "transport"))
    demand = read_demand_csv(demand_path, network)
    node_pos = {node: pos for pos, node in enumerate(network.node_ids)}
    signal_node: dict[str, int] = {}
    signals = _file(cfg, "signals", "layers.transport", base_dir, where, raw, input_files)
    if signals is not None:
        for line, row in _rows(signals, ["id", "node"]):
            element = LayerElement("signal", _id(row, signals, line), _tags(row))
            if row["node"] not in node_pos:
                raise InputError(signals, f"signal {element.id!r}: no road node {row['node']!r}", f"line {line}")
            _add(layers, element, signals, line)
            signal_node[element.id] = node_pos[row["node"]]
    riders: dict[str, float] = {}
    rail = _file(cfg, "rail", "layers.transport", base_dir, where, raw, input_files)
    if rail is not None:
        for line, row in _rows(rail, ["id", "riders_per_h"]):
            element = LayerElement("rail", _id(row, rail, line), _tags(row))
            _add(layers, element, rail, line)
            riders[element.id] = _count(row["riders_per_h"], rail, line, "riders_per_h")
    factor = manifest_number(cfg, "dark_signal_capacity", 0.5, "layers.transport", where, raw, minimum=0.01,
                             maximum=1.0)
    return TransportLayer(network, demand, signal_node, riders, factor)


def _telecom(cfg: dict, base_dir: Path, where, raw, input_files, layers: Layers,
             substations: Mapping[str, Any]) -> dict[str, TelecomSite]:
    path = _file(cfg, "sites", "layers.telecom", base_dir, where, raw, input_files, required=True)
    operators = {sub.operator for sub in substations.values()}
    sites: dict[str, TelecomSite] = {}
    for line, row in _rows(path, ["id", "kind"]):
        site = TelecomSite(_id(row, path, line), row["kind"], row.get("substation", ""), row.get("operator", ""))
        if not site.kind:
            raise InputError(path, f"telecom site {site.id!r} has no kind", f"line {line}")
        if site.kind in CONTROL_KINDS:
            if site.substation not in substations:
                raise InputError(path, f"{site.kind} {site.id!r}: no substation named {site.substation!r} "
                                       "(column substation)", f"line {line}")
        if site.kind == CONTROL_CENTRE:
            if site.operator not in operators:
                raise InputError(path, f"control centre {site.id!r}: no substation has operator {site.operator!r} "
                                       f"(known: {', '.join(sorted(operators))})", f"line {line}")
        _add(layers, LayerElement("telecom", site.id, _tags(row)), path, line)
        sites[site.id] = site
    return sites


def _dependencies(path: Path, net, substations: Mapping[str, Any], layers: Layers) -> tuple[Dependency, ...]:
    rows = _rows(path, ["supplier", "dependent"])
    junctions = set(layers.water.junctions) if layers.water is not None else set()
    edges: list[Dependency] = []
    seen: dict[tuple[str, str], int] = {}
    for line, row in rows:
        supplier = _element(row["supplier"], SUPPLIER_KINDS, "supplier", net, substations, layers, junctions,
                            path, line)
        dependent = _element(row["dependent"], DEPENDENT_KINDS, "dependent", net, substations, layers, junctions,
                             path, line)
        if supplier == dependent:
            raise InputError(path, f"{dependent} cannot depend on itself", f"line {line}")
        if (supplier, dependent) in seen:
            raise InputError(path, f"{dependent} on {supplier} is listed twice (first on line "
                                   f"{seen[supplier, dependent]})", f"line {line}")
        seen[supplier, dependent] = line
        backup = _count(row.get("backup_h", ""), path, line, "backup_h", blank=0.0)
        restart = _count(row.get("restart_min", ""), path, line, "restart_min", blank=0.0)
        edges.append(Dependency(supplier, dependent, backup, restart, row.get("group", ""), row.get("note", ""),
                                f"{path.name} line {line}"))
    return tuple(edges)


def _element(token: str, kinds: tuple[str, ...], column: str, net, substations, layers: Layers, junctions: set[str],
             path: Path, line: int) -> str:
    """Check one id of the dependency table and return its canonical name (``bus:<index>`` ...)."""

    kind, sep, ident = token.partition(":")
    if not sep or not ident:
        raise InputError(path, f"{column} {token!r} must be <kind>:<id> with kind one of {', '.join(kinds)}",
                         f"line {line}")
    if kind not in kinds:
        raise InputError(path, f"{column} {token!r}: a {column} can be {', '.join(kinds)}, not {kind}",
                         f"line {line}")
    if kind in ("bus", "gen", "load"):
        table = net[kind]
        index = resolve_id(ident, name_index(table), set(int(i) for i in table.index))
        if index is None:
            raise InputError(path, f"{column} {token!r}: no {kind} with that index or name in the grid", f"line {line}")
        return f"{kind}:{index}"
    if kind == "substation":
        if ident not in substations:
            raise InputError(path, f"{column} {token!r}: no substation named {ident!r}", f"line {line}")
        return token
    if kind == "junction":
        if layers.water is None:
            raise InputError(path, f"{column} {token!r}: the system has no water layer", f"line {line}")
        if ident not in junctions:
            raise InputError(path, f"{column} {token!r}: no junction named {ident!r} in {layers.water.spec}",
                             f"line {line}")
        return token
    if token not in layers.elements:
        layer = next(name for name, ks in LAYER_KINDS.items() if kind in ks)
        raise InputError(path, f"{column} {token!r}: no {kind} with id {ident!r} in the {layer} layer", f"line {line}")
    return token
