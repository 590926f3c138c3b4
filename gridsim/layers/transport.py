"""Road traffic for the transport layer: networks, demand and user-equilibrium assignment.

A dark traffic signal turns an intersection into an all-way stop: the links
into it lose capacity, drivers reroute and everybody's trip gets longer. To
put a number on that, this module loads a road network and a table of trips
between road nodes and assigns the trips to routes the way drivers choose
them: each takes a route no slower than any other, given everybody else's
choice (Wardrop's first principle; J. G. Wardrop, "Some theoretical aspects
of road traffic research", Proc. Inst. Civil Engineers, Part II, 1:325-378,
1952). The measure the simulation reports is the total travel time,
vehicle-hours per hour of demand.

Travel time on a link follows the BPR function of the U.S. Bureau of Public
Roads (Traffic Assignment Manual, 1964)::

    t = t0 * (1 + alpha * (x / c) ** beta)

with ``t0`` the free-flow time, ``x`` the flow and ``c`` the capacity.
``alpha`` and ``beta`` are the Bureau's 0.15 and 4 unless the network gives
them per link, as the networks of the TNTP collection do (their ``b`` and
``power``; Transportation Networks for Research Core Team,
https://github.com/bstabler/TransportationNetworks). The
equilibrium minimises Beckmann's objective (the sum over links of the
integral of ``t``) over the flows that carry the demand; :func:`assign`
minimises it by the Frank-Wolfe algorithm (M. Frank and P. Wolfe, "An
algorithm for quadratic programming", Naval Research Logistics Quarterly
3:95-110, 1956), as LeBlanc, Morlok and Pierskalla introduced it to traffic
assignment (Transportation Research 9:309-318, 1975): load all demand on the
current shortest paths (all-or-nothing), then move the flows towards that
load by the step that minimises the objective exactly. By default each step
heads for a mix of that load and the last two targets, conjugate to the last
two directions (Mitradjieva and Lindberg, Transportation Science 47:280-293,
2013): the classic algorithm crawls once roads are congested, the conjugate
versions reach the same equilibrium in a fraction of the steps. Shortest
paths come from ``scipy.sparse.csgraph.dijkstra``, one tree per origin.

Readers check every id and number when the system loads and raise
:class:`~gridsim.errors.InputError` naming the file and line, so
:func:`assign` can trust its input.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import breadth_first_order, connected_components, dijkstra

from gridsim.errors import InputError
from gridsim.io.numbers import number_cell
from gridsim.io.tables import read_csv

__all__ = [
    "BPR_ALPHA",
    "BPR_BETA",
    "Assignment",
    "Demand",
    "RoadNetwork",
    "assign",
    "bpr_time_min",
    "read_demand_csv",
    "read_road_csv",
    "read_road_graphml",
]

#: BPR coefficient of a link that does not give its own: at capacity a link is 15 % slower than at free flow.
BPR_ALPHA = 0.15
#: BPR exponent of a link that does not give its own.
BPR_BETA = 4
#: Optional per-link columns (CSV) or edge attributes (GraphML) and the value a link gets without one.
_BPR_COLUMNS = (("bpr_alpha", BPR_ALPHA), ("bpr_beta", BPR_BETA))

#: Ways to choose the Frank-Wolfe direction (see :class:`_Targets`).
_METHODS = ("biconjugate", "conjugate", "plain")
#: Least weight of the new all-or-nothing load in a conjugate mix, and least share of the plain direction's
#: descent a mix must keep; below it the mix would barely differ from the last target, along which the
#: objective is already least, and the steps would stall.
_MIN_NEW = 0.01
#: Shortest-path tables (origins x nodes) are computed in chunks of at most this many entries.
_CHUNK_ENTRIES = 1 << 22


def _read_only(values: np.ndarray, dtype) -> np.ndarray:
    array = np.array(values, dtype=dtype)  # a copy: the caller's array stays theirs
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class RoadNetwork:
    """Directed road links between nodes (a two-way road is two links).

    Attributes
    ----------
    node_ids, link_ids : tuple of str
        Ids, in file order; arrays below are indexed by these positions.
    from_node, to_node : ndarray of int
        Per link, the position of its start and end node in ``node_ids``.
    capacity_veh_h : ndarray of float
        Per link, capacity in vehicles per hour (> 0).
    free_flow_min : ndarray of float
        Per link, travel time on an empty road in minutes (> 0).
    node_x, node_y : ndarray of float
        Per node, coordinates if the input gave them (NaN otherwise); drawing only.
    bpr_alpha, bpr_beta : ndarray of float
        Per link, the BPR coefficient and exponent (finite, >= 0); :data:`BPR_ALPHA`
        and :data:`BPR_BETA` on every link if not given.
    """

    node_ids: tuple[str, ...]
    link_ids: tuple[str, ...]
    from_node: np.ndarray
    to_node: np.ndarray
    capacity_veh_h: np.ndarray
    free_flow_min: np.ndarray
    node_x: np.ndarray = field(default_factory=lambda: np.empty(0))
    node_y: np.ndarray = field(default_factory=lambda: np.empty(0))
    bpr_alpha: np.ndarray = field(default_factory=lambda: np.empty(0))
    bpr_beta: np.ndarray = field(default_factory=lambda: np.empty(0))

    def __post_init__(self):
        n, m = len(self.node_ids), len(self.link_ids)
        object.__setattr__(self, "node_ids", tuple(self.node_ids))
        object.__setattr__(self, "link_ids", tuple(self.link_ids))
        for name, dtype in (("from_node", np.intp), ("to_node", np.intp), ("capacity_veh_h", float),
                            ("free_flow_min", float)):
            object.__setattr__(self, name, _read_only(getattr(self, name), dtype))
            if getattr(self, name).shape != (m,):
                raise ValueError(f"RoadNetwork.{name} must have one entry per link ({m})")
        for name in ("node_x", "node_y"):
            values = getattr(self, name)
            object.__setattr__(self, name, _read_only(values if len(values) else np.full(n, np.nan), float))
            if getattr(self, name).shape != (n,):
                raise ValueError(f"RoadNetwork.{name} must have one entry per node ({n})")
        for name, default in _BPR_COLUMNS:
            values = getattr(self, name)
            object.__setattr__(self, name, _read_only(values if len(values) else np.full(m, default), float))
            if getattr(self, name).shape != (m,):
                raise ValueError(f"RoadNetwork.{name} must have one entry per link ({m})")
            if not np.all(np.isfinite(getattr(self, name)) & (getattr(self, name) >= 0)):
                raise ValueError(f"RoadNetwork.{name} must be finite and >= 0")
        ends = np.concatenate([self.from_node, self.to_node])
        if m and (ends.min() < 0 or ends.max() >= n):
            raise ValueError("RoadNetwork.from_node/to_node must be positions into node_ids")
        for name in ("capacity_veh_h", "free_flow_min"):
            values = getattr(self, name)
            if not np.all(np.isfinite(values) & (values > 0)):
                raise ValueError(f"RoadNetwork.{name} must be finite and > 0")


@dataclass(frozen=True, eq=False)
class Demand:
    """Trips per hour between road nodes (one row per origin-destination pair).

    Attributes
    ----------
    origin, destination : ndarray of int
        Per pair, positions into the network's ``node_ids``.
    trips_per_h : ndarray of float
        Per pair, vehicle trips per hour (>= 0).

    A pair from a node to itself puts nobody on the roads: :func:`assign`
    ignores it (:func:`read_demand_csv` rejects it as a likely mistake).
    """

    origin: np.ndarray
    destination: np.ndarray
    trips_per_h: np.ndarray

    def __post_init__(self):
        for name, dtype in (("origin", np.intp), ("destination", np.intp), ("trips_per_h", float)):
            object.__setattr__(self, name, _read_only(getattr(self, name), dtype))
        if not self.origin.shape == self.destination.shape == self.trips_per_h.shape or self.origin.ndim != 1:
            raise ValueError("Demand.origin, destination and trips_per_h must be 1-D and of one length")
        if not np.all(np.isfinite(self.trips_per_h) & (self.trips_per_h >= 0)):
            raise ValueError("Demand.trips_per_h must be finite and >= 0")


@dataclass(frozen=True, eq=False)
class Assignment:
    """Link flows and times at (approximate) user equilibrium.

    Attributes
    ----------
    flow_veh_h : ndarray
        Per link, vehicles per hour.
    time_min : ndarray
        Per link, BPR travel time at that flow, minutes.
    total_veh_h : float
        Sum over links of flow x time / 60: vehicle-hours spent travelling per
        hour of demand.
    relative_gap : float
        ``1 - (demand x shortest-path times) / (flows x link times)`` at the
        returned flows: 0 at equilibrium, the share of travel time that
        better route choices could still save at fixed times. The returned
        flows are the iterate with the smallest gap: the gap of Frank-Wolfe
        iterates need not fall at every step.
    iterations : int
        Frank-Wolfe steps taken (all of them, up to the last iterate, whichever iterate is returned).
    converged : bool
        Whether ``relative_gap`` reached the requested ``gap`` (else ``max_iter`` ran out).
    """

    flow_veh_h: np.ndarray
    time_min: np.ndarray
    total_veh_h: float
    relative_gap: float
    iterations: int
    converged: bool = True


def bpr_time_min(flow_veh_h: np.ndarray, capacity_veh_h: np.ndarray, free_flow_min: np.ndarray,
                 alpha: np.ndarray | float = BPR_ALPHA, beta: np.ndarray | float = BPR_BETA) -> np.ndarray:
    """Link travel time by the BPR function, ``t0 * (1 + alpha * (x / c) ** beta)``, in minutes.

    ``alpha`` and ``beta`` are per link or one for all; by default the Bureau's 0.15 and 4.
    """
    return free_flow_min * (1.0 + alpha * (flow_veh_h / capacity_veh_h) ** beta)


def _bpr_slope_factor(ratio: np.ndarray, free_flow: np.ndarray, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """``t0 * alpha * beta * ratio ** (beta - 1)``: the BPR time's derivative times the capacity.

    0 on a link whose time does not depend on its flow (``alpha`` or ``beta``
    0), where the formula would give NaN at zero flow; infinite at zero flow
    for ``0 < beta < 1``, where the time rises vertically.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = free_flow * alpha * beta * ratio ** (beta - 1)
    return np.where(alpha * beta > 0, factor, 0.0)


# ----------------------------------------------------------------------------- readers


def read_road_csv(nodes: Path, links: Path) -> RoadNetwork:
    """Read a road network from ``nodes.csv`` (``id[,x,y]``) and ``links.csv``.

    ``links.csv`` has columns ``id,from,to,capacity_veh_h,free_flow_min`` and
    optionally ``bpr_alpha,bpr_beta`` (the BPR coefficient and exponent of
    the link, TNTP's ``b`` and ``power``; 0.15 and 4 where absent or blank);
    a link runs one way, from ``from`` to ``to``.

    Raises
    ------
    InputError
        A missing column, an empty or duplicate id, a link to an unknown
        node or to its own start, a capacity or free-flow time that is not a
        number > 0, a BPR coefficient or exponent that is not a number >= 0,
        a coordinate that is not a number; with file and line.
    """

    node_ids: list[str] = []
    coords: list[tuple[float, float]] = []
    first_line: dict[str, int] = {}
    for line, row in read_csv(nodes, ["id"]):
        node = _new_id(row["id"], first_line, line, nodes, "road node")
        node_ids.append(node)
        coords.append(tuple(_coordinate(row.get(axis, ""), axis, node, nodes, line) for axis in ("x", "y")))
    if not node_ids:
        raise InputError(nodes, "no road nodes")
    position = {node: pos for pos, node in enumerate(node_ids)}

    link_ids: list[str] = []
    columns: list[tuple[int, int, float, float, float, float]] = []
    first_line = {}
    for line, row in read_csv(links, ["id", "from", "to", "capacity_veh_h", "free_flow_min"]):
        link = _new_id(row["id"], first_line, line, links, "link")
        ends = [_node_of(row[column], column, f"link {link!r}", position, links, line) for column in ("from", "to")]
        if ends[0] == ends[1]:
            raise InputError(links, f"link {link!r} goes from road node {row['from']!r} to itself", f"line {line}")
        link_ids.append(link)
        columns.append((*ends, *(_positive(row[c], c, f"link {link!r}", links, f"line {line}")
                                 for c in ("capacity_veh_h", "free_flow_min")),
                        *(_bpr_parameter(row.get(c, ""), c, default, f"link {link!r}", links, f"line {line}")
                          for c, default in _BPR_COLUMNS)))
    if not link_ids:
        raise InputError(links, "no road links")
    from_node, to_node, capacity, free_flow, alpha, beta = (np.array(c) for c in zip(*columns))
    x, y = (np.array(c, dtype=float) for c in zip(*coords))
    return RoadNetwork(tuple(node_ids), tuple(link_ids), from_node, to_node, capacity, free_flow, x, y, alpha, beta)


def read_road_graphml(path: Path) -> RoadNetwork:
    """Read a road network from a GraphML file (networkx and OSMnx write these).

    Every edge needs the attributes ``capacity_veh_h`` and ``free_flow_min``
    (or a GraphML default for them) and may have ``bpr_alpha`` and
    ``bpr_beta`` (as in ``links.csv``); nodes may have ``x`` and ``y``. A
    directed graph gives one link per edge, id the edge's ``id`` or
    ``<from>-<to>``; an undirected graph gives a link each way, ids
    ``<id>:<from>-<to>`` (or ``<from>-<to>``). Links come in networkx's
    order (grouped by start node), not necessarily the file's. The file is
    parsed as XML by networkx; nothing in it is executed.

    Raises
    ------
    InputError
        The file is not GraphML, an edge lacks an attribute or has a bad
        value, two links get the same id, an edge is a self-loop.
    """
    graph = _parse_graphml(path)
    node_ids = tuple(str(node) for node in graph.nodes)
    if not node_ids:
        raise InputError(path, "no road nodes")
    position = {node: pos for pos, node in enumerate(graph.nodes)}
    x, y = (np.array([_graphml_coordinate(data, axis, node, path) for node, data in graph.nodes(data=True)])
            for axis in ("x", "y"))
    defaults = graph.graph.get("edge_default", {})
    link_ids: list[str] = []
    columns: list[tuple[int, int, float, float, float, float]] = []
    seen: set[str] = set()
    for link, a, b, data in _graphml_links(graph):
        edge = f"edge {link!r} ({str(a)!r} -> {str(b)!r})"
        if a == b:
            raise InputError(path, f"{edge} is a self-loop: a road link must join two nodes")
        if link in seen:
            raise InputError(path, f"duplicate link id {link!r} (give parallel edges distinct id attributes)")
        seen.add(link)
        values = []
        for name in ("capacity_veh_h", "free_flow_min"):
            value = data.get(name, defaults.get(name))
            if value is None:
                raise InputError(path, f"{edge}: missing attribute {name}")
            values.append(_positive(str(value), name, edge, path, None))
        for name, default in _BPR_COLUMNS:
            value = data.get(name, defaults.get(name))
            values.append(_bpr_parameter("" if value is None else str(value), name, default, edge, path, None))
        link_ids.append(link)
        columns.append((position[a], position[b], *values))
    if not link_ids:
        raise InputError(path, "no road links (edges)")
    from_node, to_node, capacity, free_flow, alpha, beta = (np.array(c) for c in zip(*columns))
    return RoadNetwork(node_ids, tuple(link_ids), from_node, to_node, capacity, free_flow, x, y, alpha, beta)


def read_demand_csv(path: Path, network: RoadNetwork) -> Demand:
    """Read trips per hour between road nodes: columns ``origin,destination,trips_per_h``.

    Raises
    ------
    InputError
        A missing column, an unknown node, a pair from a node to itself or
        listed twice, trips that are not a number >= 0, a destination that
        no chain of links reaches from its origin; with file and line.
    """

    position = {node: pos for pos, node in enumerate(network.node_ids)}
    pairs: list[tuple[int, int, float]] = []
    first_line: dict[tuple[int, int], int] = {}
    lines: list[int] = []
    for line, row in read_csv(path, ["origin", "destination", "trips_per_h"]):
        origin, destination = (_node_of(row[c], c, "", position, path, line) for c in ("origin", "destination"))
        where = f"line {line}"
        if origin == destination:
            raise InputError(path, f"origin and destination are both {row['origin']!r}", where)
        if (origin, destination) in first_line:
            raise InputError(path, f"pair {row['origin']!r} -> {row['destination']!r} listed twice (first on line "
                                   f"{first_line[origin, destination]})", where)
        first_line[origin, destination] = line
        pairs.append((origin, destination, number_cell(row["trips_per_h"], "trips_per_h", path, where, minimum=0.0)))
        lines.append(line)
    origin, destination, trips = (np.array(c) for c in zip(*pairs)) if pairs else (np.empty(0),) * 3
    demand = Demand(origin, destination, trips)
    stranded = _unreachable(network, demand.origin, demand.destination)
    if stranded.size:
        k = int(stranded[0])
        raise InputError(path, f"no route from road node {network.node_ids[demand.origin[k]]!r} to "
                               f"{network.node_ids[demand.destination[k]]!r} over the links", f"line {lines[k]}")
    return demand


def _positive(text: str, column: str, what: str, path: Path, where: str | None) -> float:
    """A link's capacity or free-flow time: a finite number > 0."""
    return number_cell(text, f"{what}: {column}", path, where, above=0.0)


def _bpr_parameter(text: str, column: str, default: float, what: str, path: Path, where: str | None) -> float:
    """A link's BPR coefficient or exponent: ``default`` if blank, else a finite number >= 0."""
    return number_cell(text, f"{what}: {column}", path, where, minimum=0.0, blank=float(default))


def _new_id(text: str, first_line: dict[str, int], line: int, path: Path, what: str) -> str:
    if not text:
        raise InputError(path, "empty id", f"line {line}")
    if text in first_line:
        raise InputError(path, f"duplicate {what} id {text!r} (first on line {first_line[text]})", f"line {line}")
    first_line[text] = line
    return text


def _node_of(text: str, column: str, what: str, position: dict[str, int], path: Path, line: int) -> int:
    if text not in position:
        prefix = f"{what}: " if what else ""
        raise InputError(path, f"{prefix}no road node {text!r} (column {column})", f"line {line}")
    return position[text]


def _coordinate(text: str, axis: str, node: str, path: Path, line: int) -> float:
    """A node's x or y in ``nodes.csv``: any finite number, NaN if blank."""
    return number_cell(text, f"road node {node!r}: {axis}", path, f"line {line}", blank=math.nan)


def _graphml_coordinate(data: dict, axis: str, node, path: Path) -> float:
    """A node's x or y attribute, read as its text like every GraphML number: any finite number, NaN if absent."""
    value = data.get(axis)
    if value is None or value == "":
        return math.nan
    return number_cell(str(value), f"node {str(node)!r}: {axis}", path)


def _parse_graphml(path: Path) -> nx.MultiGraph | nx.MultiDiGraph:
    if not path.is_file():
        raise InputError(path, "GraphML file not found")
    try:
        # Multigraph always, keys as text: a GraphML edge id becomes the key, unaltered.
        return nx.read_graphml(path, force_multigraph=True, edge_key_type=str)
    except ET.ParseError as exc:
        raise InputError(path, f"not a readable GraphML file: {exc}", f"line {exc.position[0]}") from None
    except (nx.NetworkXError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise InputError(path, f"not a readable GraphML file: {exc}") from None


def _graphml_links(graph: nx.MultiGraph | nx.MultiDiGraph) -> Iterator[tuple[str, object, object, dict]]:
    """``(link id, from, to, attributes)`` per road link, both ways for an undirected graph."""
    for a, b, key, data in graph.edges(keys=True, data=True):
        edge_id = key if isinstance(key, str) else None  # networkx numbers edges without an id
        if graph.is_directed():
            yield edge_id or f"{a}-{b}", a, b, data
        else:
            for u, v in ((a, b), (b, a)):
                yield f"{edge_id}:{u}-{v}" if edge_id else f"{u}-{v}", u, v, data


def _adjacency(network: RoadNetwork) -> csr_matrix:
    n = len(network.node_ids)
    ones = np.ones(len(network.link_ids))
    return csr_matrix((ones, (network.from_node, network.to_node)), shape=(n, n))


def _unreachable(network: RoadNetwork, origin: np.ndarray, destination: np.ndarray) -> np.ndarray:
    """Positions of the pairs whose destination no chain of links reaches from the origin."""
    graph = _adjacency(network)
    _, component = connected_components(graph, directed=True, connection="strong")
    doubtful = np.flatnonzero(component[origin] != component[destination])
    stranded = []
    for source in np.unique(origin[doubtful]):
        reached = np.zeros(len(network.node_ids), dtype=bool)
        reached[breadth_first_order(graph, source, directed=True, return_predecessors=False)] = True
        pairs = doubtful[origin[doubtful] == source]
        stranded.extend(pairs[~reached[destination[pairs]]])
    return np.sort(np.array(stranded, dtype=np.intp))


# ----------------------------------------------------------------------------- assignment


def assign(network: RoadNetwork, demand: Demand, capacity_veh_h: np.ndarray | None = None, *,
           max_iter: int = 1000, gap: float = 1e-4, method: str = "biconjugate") -> Assignment:
    """Static user-equilibrium assignment of ``demand`` on ``network`` (Frank-Wolfe, BPR times).

    Parameters
    ----------
    network : RoadNetwork
        Links, capacities, free-flow times and BPR coefficients and exponents.
    demand : Demand
        Trips per hour between node positions; every destination must be
        reachable from its origin (:func:`read_demand_csv` checks this).
    capacity_veh_h : ndarray, optional
        Capacities to use instead of the network's (a dark signal lowers some).
    max_iter : int
        At most this many Frank-Wolfe steps.
    gap : float
        Stop once the relative gap is at most this.
    method : {"biconjugate", "conjugate", "plain"}
        Direction of each step: the all-or-nothing load (``plain``, the
        classic algorithm) or its conjugate mix with the last one or two
        directions (same equilibrium, reached in far fewer steps on
        congested networks; see :class:`_Targets`).

    Returns
    -------
    Assignment
        Flows and times of the iterate with the smallest relative gap (an
        iterate's gap may exceed an earlier one's), and that gap; with no
        demand, zero flows and the times at zero flow (free-flow times
        exactly, or ``t0 * (1 + alpha)`` on a link with ``beta`` 0).
        ``converged`` is False if ``max_iter`` ran out first.

    Raises
    ------
    ValueError
        Capacities of the wrong shape or not > 0, or a destination no route reaches.
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {', '.join(_METHODS)}, got {method!r}")
    capacity = _capacity(network, capacity_veh_h)
    free_flow = np.asarray(network.free_flow_min, dtype=float)
    alpha, beta = network.bpr_alpha, network.bpr_beta
    empty = bpr_time_min(np.zeros(len(free_flow)), capacity, free_flow, alpha, beta)  # t0 unless beta is 0
    if not np.any(_moving(demand)):
        return Assignment(np.zeros(len(free_flow)), empty, 0.0, 0.0, 0, True)
    router = _Router(network, demand)
    flow, _ = router.all_or_nothing(empty)
    targets = _Targets(method, capacity, free_flow, alpha, beta)
    iterations = 0
    best: tuple[float, np.ndarray, np.ndarray, float] | None = None  # gap, flow, time, total of the best iterate
    while True:
        time = bpr_time_min(flow, capacity, free_flow, alpha, beta)
        load, shortest = router.all_or_nothing(time)
        total = float(flow @ time)
        relative_gap = max(0.0, (total - shortest) / total) if total > 0 else 0.0  # 0: trips underflow
        if best is None or relative_gap < best[0]:
            best = (relative_gap, flow, time, total)  # the arrays are never changed in place: no copies
        if relative_gap <= gap or iterations >= max_iter:
            break
        target = targets.next(flow, load, time)
        step = _step_size(flow, target - flow, capacity, free_flow, alpha, beta)
        if step == 0.0 and target is load:
            break  # not even the all-or-nothing direction descends: the gap is rounding error
        flow = target.copy() if step == 1.0 else flow + step * (target - flow)
        targets.moved(step)
        iterations += 1
    best_gap, flow, time, total = best
    return Assignment(flow, time, total / 60.0, best_gap, iterations, best_gap <= gap)


def _capacity(network: RoadNetwork, capacity_veh_h: np.ndarray | None) -> np.ndarray:
    if capacity_veh_h is None:
        return np.asarray(network.capacity_veh_h, dtype=float)
    capacity = np.asarray(capacity_veh_h, dtype=float)
    if capacity.shape != (len(network.link_ids),):
        raise ValueError(f"capacity_veh_h must have one entry per link ({len(network.link_ids)}), "
                         f"got shape {capacity.shape}")
    if not np.all(np.isfinite(capacity) & (capacity > 0)):
        raise ValueError("capacity_veh_h must be finite and > 0")
    return capacity


def _moving(demand: Demand) -> np.ndarray:
    """Pairs that put vehicles on the roads: some trips, to somewhere else."""
    return (demand.trips_per_h > 0) & (demand.origin != demand.destination)


class _Router:
    """Shortest paths and all-or-nothing loads for one network and demand.

    Dijkstra runs on a graph over nodes with one arc per node pair; where
    parallel links join the same pair, the arc is the cheapest of them, and
    loads go back to that link.
    """

    def __init__(self, network: RoadNetwork, demand: Demand):
        self.n_nodes = n = len(network.node_ids)
        self.n_links = len(network.link_ids)
        used = _moving(demand)
        self.origins, self.row = np.unique(demand.origin[used], return_inverse=True)
        self.destination = demand.destination[used]
        self.trips = demand.trips_per_h[used]
        key = network.from_node * n + network.to_node
        # Sorted unique keys are node pairs in CSR order: row by row, columns ascending.
        self.pair_key, self.pair_of_link = np.unique(key, return_inverse=True)
        self.indices = (self.pair_key % n).astype(np.int32)
        self.indptr = np.searchsorted(self.pair_key // n, np.arange(n + 1)).astype(np.int32)
        self.parallel = len(self.pair_key) < self.n_links
        self.by_pair = np.argsort(self.pair_of_link, kind="stable")  # without parallels: the link of each pair
        self.chunk = max(1, _CHUNK_ENTRIES // n)

    def _link_of_pair(self, time_min: np.ndarray) -> np.ndarray:
        """For each node pair, its cheapest link at these times (the lowest position on ties)."""
        if not self.parallel:
            return self.by_pair
        order = np.lexsort((time_min, self.pair_of_link))
        group = self.pair_of_link[order]
        return order[np.flatnonzero(np.r_[True, group[1:] != group[:-1]])]

    def all_or_nothing(self, time_min: np.ndarray) -> tuple[np.ndarray, float]:
        """All demand on shortest paths at these link times: link flows and demand x shortest times."""
        link_of_pair = self._link_of_pair(time_min)
        graph = csr_matrix((time_min[link_of_pair], self.indices, self.indptr), shape=(self.n_nodes,) * 2)
        flow = np.zeros(self.n_links)
        shortest = 0.0
        for start in range(0, len(self.origins), self.chunk):
            origins = self.origins[start:start + self.chunk]
            dist, pred = dijkstra(graph, directed=True, indices=origins, return_predecessors=True)
            pairs = np.flatnonzero((self.row >= start) & (self.row < start + len(origins)))
            row, node, trips = self.row[pairs] - start, self.destination[pairs], self.trips[pairs]
            pair_dist = dist[row, node]
            if not np.all(np.isfinite(pair_dist)):
                k = pairs[np.flatnonzero(~np.isfinite(pair_dist))[0]]
                raise ValueError(f"no route from node position {self.origins[self.row[k]]} to {self.destination[k]}")
            shortest += float(trips @ pair_dist)
            flow += self._load(pred, origins, row, node, trips, link_of_pair)
        return flow, shortest

    def _load(self, pred: np.ndarray, origins: np.ndarray, row: np.ndarray, node: np.ndarray, trips: np.ndarray,
              link_of_pair: np.ndarray) -> np.ndarray:
        """Walk every pair back from its destination along the predecessor tree, one link per round."""
        flow = np.zeros(self.n_links)
        while node.size:
            previous = pred[row, node]
            link = link_of_pair[np.searchsorted(self.pair_key, previous * self.n_nodes + node)]
            flow += np.bincount(link, weights=trips, minlength=self.n_links)
            going = previous != origins[row]
            row, node, trips = row[going], previous[going], trips[going]
        return flow


class _Targets:
    """Where each Frank-Wolfe step heads: the all-or-nothing load, or a conjugate mix.

    ``plain`` heads for the all-or-nothing load itself. ``conjugate`` and
    ``biconjugate`` mix it with the last one or two targets so that the new
    direction is conjugate to the last one or two directions with respect to
    the Hessian of Beckmann's objective at the current flows (diagonal:
    ``t'(x)`` per link); see M. Mitradjieva and P. O. Lindberg, "The stiff
    is moving - conjugate direction Frank-Wolfe methods with applications to
    traffic assignment", Transportation Science 47:280-293, 2013. A mix is a
    convex combination of feasible loads, hence feasible. A full step (to the
    target itself) forgets the past directions.
    """

    def __init__(self, method: str, capacity: np.ndarray, free_flow: np.ndarray, alpha: np.ndarray,
                 beta: np.ndarray):
        self.depth = {"plain": 0, "conjugate": 1, "biconjugate": 2}[method]
        self.capacity = capacity
        self.free_flow = free_flow
        self.alpha = alpha
        self.beta = beta
        self.past: list[np.ndarray] = []  # last targets, newest first
        self.steps: list[float] = []  # steps taken towards them

    def next(self, flow: np.ndarray, load: np.ndarray, time_min: np.ndarray) -> np.ndarray:
        """The target of the next step from ``flow``, given the all-or-nothing ``load`` at ``time_min``."""
        past = self.past[:self.depth]
        candidates = []
        if past:
            hessian = _bpr_slope_factor(flow / self.capacity, self.free_flow, self.alpha, self.beta) / self.capacity
            # An exponent below 1 makes the Hessian infinite on a link without flow: then no mix, a plain step.
            if np.all(np.isfinite(hessian)):
                if len(past) == 2:
                    candidates.append(_biconjugate(flow, load, past[0], past[1], self.steps[0], hessian))
                candidates.append(_conjugate(flow, load, past[0], hessian))
        # A mix must descend at least a fair share as steeply as the plain direction does: conjugacy rests on
        # the Hessian at the current flows, which BPR times (4th powers, typically) make a poor guide far from them.
        plain_slope = float(time_min @ (load - flow))
        target = next((c for c in candidates if c is not None and time_min @ (c - flow) <= _MIN_NEW * plain_slope),
                      load)
        self.past = [target, *self.past[:1]]
        return target

    def moved(self, step: float) -> None:
        if step >= 1.0 or step == 0.0:
            self.past = []  # nothing to be conjugate to, or a mix that did not descend: start afresh
        self.steps = [step, *self.steps[:1]]


def _conjugate(flow: np.ndarray, load: np.ndarray, last: np.ndarray, hessian: np.ndarray) -> np.ndarray:
    """``w * last + (1 - w) * load`` with ``(target - flow)`` H-conjugate to ``(last - flow)``, w in [0, 1)."""
    back, ahead = last - flow, load - flow
    denominator = float(back @ (hessian * (ahead - back)))
    if denominator == 0:
        return load
    weight = float(back @ (hessian * ahead)) / denominator
    if not 0.0 < weight <= 1.0 - _MIN_NEW:
        return load
    return weight * last + (1.0 - weight) * load


def _biconjugate(flow: np.ndarray, load: np.ndarray, last: np.ndarray, before: np.ndarray, last_step: float,
                 hessian: np.ndarray) -> np.ndarray | None:
    """A mix of ``load``, ``last`` and ``before`` H-conjugate to the last two directions (None: cannot)."""
    # The last two directions, seen from here: towards `last`, and the one before (a point on its line).
    recent = last - flow
    earlier = last_step * last + (1.0 - last_step) * before - flow
    ahead = load - flow
    denominator = float(earlier @ (hessian * (before - last)))
    recent_norm = float(recent @ (hessian * recent))
    if denominator == 0 or recent_norm == 0 or last_step >= 1.0:
        return None
    mu = max(0.0, -float(earlier @ (hessian * ahead)) / denominator)
    nu = max(0.0, mu * last_step / (1.0 - last_step) - float(recent @ (hessian * ahead)) / recent_norm)
    if 1.0 / (1.0 + nu + mu) < _MIN_NEW:
        return None
    return (load + nu * last + mu * before) / (1.0 + nu + mu)


def _step_size(flow: np.ndarray, direction: np.ndarray, capacity: np.ndarray, free_flow: np.ndarray,
               alpha: np.ndarray, beta: np.ndarray) -> float:
    """The step in [0, 1] along ``direction`` that minimises Beckmann's objective, exactly.

    The objective's derivative along the direction, ``sum(direction * t(flow +
    step * direction))`` with each link's own BPR ``alpha`` and ``beta``,
    increases with the step; its root is found by Newton's method kept inside
    a shrinking bracket (bisection where Newton would leave it, or where the
    curvature is infinite: an exponent below 1 at zero flow).
    """
    moving = direction != 0
    x, d, c, t0, a, b = (v[moving] for v in (flow, direction, capacity, free_flow, alpha, beta))

    def slope(step: float) -> tuple[float, float]:
        ratio = (x + step * d) / c
        value = d @ (t0 * (1.0 + a * ratio ** b))
        curvature = (d * d / c) @ _bpr_slope_factor(ratio, t0, a, b)
        return float(value), float(curvature)

    low_value, _ = slope(0.0)
    high_value, _ = slope(1.0)
    if low_value >= 0:
        return 0.0
    if high_value <= 0:
        return 1.0
    low, high = 0.0, 1.0
    step = low_value / (low_value - high_value)
    for _ in range(100):
        value, curvature = slope(step)
        if value < 0:
            low = step
        elif value > 0:
            high = step
        else:
            return step
        newton = step - value / curvature if 0 < curvature < math.inf else -1.0
        following = newton if low < newton < high else 0.5 * (low + high)
        if abs(following - step) <= 1e-15 or high - low <= 1e-15:
            return following
        step = following
    return step
