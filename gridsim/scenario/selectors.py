"""Resolve a step's target selector against a system, reproducibly.

Explicit ids, tag filters, and the strategies ``random k`` and ``top k by
degree | betweenness | load | flow``. Candidates are always taken in index
order, so ties break the same way every time; random picks draw from a
generator seeded by the run's seed and the step's index. Names and tags from
the system's files go into errors through ``one_line``: an error is one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np

from gridsim.errors import InputError
from gridsim.model.elements import Ref
from gridsim.model.system import System
from gridsim.power.ratings import base_flows
from gridsim.scenario.schema import BOOL_HINT, LAYER_TARGET_KINDS, Selector, one_line, split_indexed_id

__all__ = ["resolve_targets", "step_rng"]


def step_rng(seed: int, step_index: int) -> np.random.Generator:
    """The random generator of one step: independent of the other steps' draws."""
    return np.random.default_rng([int(seed), int(step_index)])


def resolve_targets(selector: Selector, system: System, rng: np.random.Generator,
                    source: str = "<scenario>") -> list[Ref]:
    """Return the elements a selector picks, in a deterministic order.

    Raises
    ------
    InputError
        An id that is not in the system, a tag no site carries, or a strategy
        asking for more elements than match.
    """
    candidates = _candidates(selector.kind, system)
    if selector.ids is not None:
        # dict.fromkeys: the same element named twice (0 and "load:0") is acted on once.
        return list(dict.fromkeys(_lookup(selector, system, token, source) for token in selector.ids))
    if selector.where:
        candidates = [ref for ref in candidates if _matches(ref, selector, system, source)]
    if selector.strategy is None:
        if not candidates:
            raise InputError(source, f"no {selector.kind} matches the filter{_bool_hint(selector)}", selector.place)
        return candidates
    if selector.k > len(candidates):
        raise InputError(source, f"asks for k={selector.k} {selector.kind}(s) but only {len(candidates)} match"
                                 f"{_bool_hint(selector)}", selector.place)
    if selector.strategy == "random":
        picks = rng.choice(len(candidates), size=selector.k, replace=False)
        return [candidates[i] for i in sorted(picks)]
    if selector.kind in LAYER_TARGET_KINDS:
        raise InputError(source, f"strategy top ranks grid elements only, not {selector.kind}", selector.place)
    scores = _measure(selector.by, candidates, system)
    order = np.lexsort((np.arange(len(candidates)), -scores))  # descending score, then index
    return [candidates[i] for i in order[: selector.k]]


def _candidates(kind: str, system: System) -> list[Ref]:
    net = system.net
    if kind in LAYER_TARGET_KINDS:
        return [Ref(kind, element.id) for element in system.layers.of_kind(kind)]
    if kind == "substation":
        return [Ref("substation", name) for name in system.substations]
    if kind == "branch":
        return [Ref("line", int(i)) for i in net.line.index] + [Ref("trafo", int(i)) for i in net.trafo.index]
    return [Ref(kind, int(i)) for i in net[kind].index]


def _bool_hint(selector: Selector) -> str:
    """A hint when a filter value is a boolean: tags from a CSV never are, so it is an unquoted yes/no."""
    if any(isinstance(value, bool) for _, values in selector.where for value in values):
        return f" {BOOL_HINT}"
    return ""


def _lookup(selector: Selector, system: System, token: Any, source: str) -> Ref:
    """One explicit id: a substation name, or an element's name, index or ``table:index``.

    A bare index is refused for kind branch (the schema refuses it too): line 0
    and trafo 0 are both branch 0.
    """
    kind = selector.kind
    if kind in LAYER_TARGET_KINDS:
        return _lookup_layer(selector, system, token, source)
    if kind == "substation":
        if str(token) in system.substations:
            return Ref("substation", str(token))
        raise InputError(source, f"no substation named {token!r} in system {one_line(system.name)}", selector.place)
    if isinstance(token, int):
        return _lookup_index(selector, system, token, source)
    return _lookup_grid_id(selector, system, token, source)


def _lookup_layer(selector: Selector, system: System, token: Any, source: str) -> Ref:
    """A layer element by its id, with or without its ``kind:`` prefix."""
    kind = selector.kind
    name = str(token) if str(token).startswith(f"{kind}:") else f"{kind}:{token}"
    if name in system.layers.elements:
        return Ref(kind, system.layers.elements[name].id)
    raise InputError(source, f"no {kind} {str(token)!r} in system {one_line(system.name)}"
                             f"{'' if system.layers.of_kind(kind) else ' (it has no ' + kind + ' at all)'}",
                     selector.place)


def _lookup_index(selector: Selector, system: System, token: int, source: str) -> Ref:
    """A grid element by its bare pandapower index (never a branch: lines and transformers share numbers)."""
    kind = selector.kind
    if kind == "branch":
        raise InputError(source, f"ambiguous branch id {token}: write line:{token} or trafo:{token}",
                         selector.place)
    if token in system.net[kind].index:
        return Ref(kind, int(token))
    raise InputError(source, f"no {kind} {token} in system {one_line(system.name)}", selector.place)


def _lookup_grid_id(selector: Selector, system: System, token: Any, source: str) -> Ref:
    """A grid element by ``table:index`` (always read as an index), else by its name."""
    kind = selector.kind
    tables = ("line", "trafo") if kind == "branch" else (kind,)
    indexed = split_indexed_id(token)
    if indexed is not None and indexed[0] in tables:
        table, index = indexed
        if index in system.net[table].index:
            return Ref(table, index)
        raise InputError(source, f"no {table} {index} in system {one_line(system.name)}", selector.place)
    for table in tables:
        frame = system.net[table]
        if "name" in frame:
            hits = frame.index[frame["name"] == token]
            if len(hits):
                return Ref(table, int(hits[0]))
    raise InputError(source, f"no {kind} {token!r} in system {one_line(system.name)}", selector.place)


def _element_sites(ref: Ref, system: System) -> list[str]:
    net = system.net
    if ref.table == "substation":
        return [str(ref.key)]
    if ref.table == "bus":
        return [system.site_of_bus(ref.key)]
    if ref.table == "line":
        row = net.line.loc[ref.key]
        return [system.site_of_bus(row.from_bus), system.site_of_bus(row.to_bus)]
    if ref.table == "trafo":
        row = net.trafo.loc[ref.key]
        return [system.site_of_bus(row.hv_bus), system.site_of_bus(row.lv_bus)]
    return [system.site_of_bus(net[ref.table].at[ref.key, "bus"])]


def _matches(ref: Ref, selector: Selector, system: System, source: str) -> bool:
    if ref.table in LAYER_TARGET_KINDS:
        return _matches_layer(ref, selector, system, source)
    known = {tag for site in system.substations.values() for tag in site.tags}
    for tag, _ in selector.where:
        if tag not in known:
            raise InputError(source, f"no substation of {one_line(system.name)} has the tag {tag!r} "
                                     f"(tags: {', '.join(map(one_line, sorted(known))) or 'none'})", selector.place)
    for site in _element_sites(ref, system):
        tags = system.substations[site].tags
        if all(tags.get(tag) in values or str(tags.get(tag)) in map(str, values) for tag, values in selector.where):
            return True
    return False


def _matches_layer(ref: Ref, selector: Selector, system: System, source: str) -> bool:
    """Layer elements filter on the columns of their own table (telecom.csv's kind, operator ...)."""
    elements = system.layers.of_kind(ref.table)
    known = {tag for element in elements for tag in element.tags}
    for tag, _ in selector.where:
        if tag not in known:
            raise InputError(source, f"no {ref.table} of {one_line(system.name)} has the column {tag!r} "
                                     f"(columns: {', '.join(map(one_line, sorted(known))) or 'none'})", selector.place)
    tags = system.layers.elements[f"{ref.table}:{ref.key}"].tags
    return all(tags.get(tag) in values or str(tags.get(tag)) in map(str, values) for tag, values in selector.where)


@dataclass(frozen=True)
class _Grid:
    """What every measure reads: base flows, ratings, branch ends and positions, load per bus, the bus multigraph."""

    flows: dict[str, np.ndarray]
    ratings: dict[str, np.ndarray]
    ends: dict[str, tuple[np.ndarray, np.ndarray]]
    pos: dict[str, dict[int, int]]
    load_at_bus: dict[int, float]
    graph: nx.MultiGraph


def _grid(system: System) -> _Grid:
    net = system.net
    line_flow, trafo_flow = base_flows(system)
    ends = {"line": (net.line.from_bus.to_numpy(), net.line.to_bus.to_numpy()),
            "trafo": (net.trafo.hv_bus.to_numpy(), net.trafo.lv_bus.to_numpy())}
    graph = nx.MultiGraph()
    graph.add_nodes_from(int(b) for b in net.bus.index)
    for table in ("line", "trafo"):
        for p, (a, b) in enumerate(zip(*ends[table])):
            graph.add_edge(int(a), int(b), key=(table, p))
    return _Grid(flows={"line": np.abs(line_flow), "trafo": np.abs(trafo_flow)},
                 ratings={"line": system.line_rating_mva, "trafo": system.trafo_rating_mva}, ends=ends,
                 pos={t: {int(i): p for p, i in enumerate(net[t].index)} for t in ("line", "trafo")},
                 load_at_bus=net.load.groupby("bus").p_mw.sum().to_dict(), graph=graph)


def _measure(by: str, candidates: list[Ref], system: System) -> np.ndarray:
    """Score each candidate by one measure; see docs/FORMATS.md."""
    grid = _grid(system)
    kind = candidates[0].table if candidates else "bus"
    if kind == "substation":
        return _measure_sites(by, candidates, system, grid)
    if kind in ("line", "trafo") or any(r.table in ("line", "trafo") for r in candidates):
        return _measure_branches(by, candidates, grid)
    return _measure_buses(by, candidates, system, grid)


def _measure_sites(by: str, candidates: list[Ref], system: System, grid: _Grid) -> np.ndarray:
    """Substations: branches leaving the site, site-graph betweenness, load, or flow through the site's ties."""
    site_of = system.bus_site
    names = [str(r.key) for r in candidates]
    external = {n: 0.0 for n in names}
    through = {n: 0.0 for n in names}
    site_graph = nx.Graph()
    site_graph.add_nodes_from(system.substations)
    for table in ("line", "trafo"):
        for p, (a, b) in enumerate(zip(*grid.ends[table])):
            sa, sb = site_of[int(a)], site_of[int(b)]
            if sa != sb:
                site_graph.add_edge(sa, sb)
                for s in (sa, sb):
                    if s in external:
                        external[s] += 1
                        through[s] += grid.flows[table][p]
    if by == "degree":
        return np.array([external[n] for n in names], dtype=float)
    if by == "betweenness":
        bc = nx.betweenness_centrality(site_graph)
        return np.array([bc[n] for n in names])
    if by == "load":
        return np.array([sum(grid.load_at_bus.get(b, 0.0) for b in system.substations[n].buses) for n in names])
    return np.array([through[n] for n in names])


def _measure_branches(by: str, candidates: list[Ref], grid: _Grid) -> np.ndarray:
    """Lines and transformers: end-bus degrees, edge betweenness, loading of the rating, or base flow."""
    ends, pos, flows = grid.ends, grid.pos, grid.flows
    if by == "degree":
        return np.array([grid.graph.degree(int(ends[r.table][0][pos[r.table][r.key]]))
                         + grid.graph.degree(int(ends[r.table][1][pos[r.table][r.key]])) for r in candidates], float)
    if by == "betweenness":
        ebc = nx.edge_betweenness_centrality(nx.Graph(grid.graph))
        out = []
        for r in candidates:
            a, b = (int(e[pos[r.table][r.key]]) for e in ends[r.table])
            out.append(ebc.get((a, b), ebc.get((b, a), 0.0)))
        return np.array(out)
    if by == "load":
        return np.array([np.nan_to_num(flows[r.table][pos[r.table][r.key]] / grid.ratings[r.table][pos[r.table][r.key]])
                         for r in candidates])
    return np.array([flows[r.table][pos[r.table][r.key]] for r in candidates])


def _measure_buses(by: str, candidates: list[Ref], system: System, grid: _Grid) -> np.ndarray:
    """Buses, generators and loads, at their bus: degree, betweenness, MW (own, or load at the bus), flow through."""
    net = system.net
    kind = candidates[0].table if candidates else "bus"
    buses = [int(r.key) if r.table == "bus" else int(net[r.table].at[r.key, "bus"]) for r in candidates]
    if by == "degree":
        return np.array([grid.graph.degree(b) for b in buses], dtype=float)
    if by == "betweenness":
        bc = nx.betweenness_centrality(nx.Graph(grid.graph))
        return np.array([bc[b] for b in buses])
    if kind in ("gen", "load"):
        return np.array([float(net[kind].at[r.key, "p_mw"]) for r in candidates])
    if by == "load":
        return np.array([grid.load_at_bus.get(b, 0.0) for b in buses])
    through = np.zeros(len(net.bus.index) and int(net.bus.index.max()) + 1)
    for table in ("line", "trafo"):
        for p, (a, b) in enumerate(zip(*grid.ends[table])):
            through[int(a)] += grid.flows[table][p]
            through[int(b)] += grid.flows[table][p]
    return np.array([through[b] for b in buses])
