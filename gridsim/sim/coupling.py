"""Dependency propagation between the grid and the infrastructure layers.

The dependency rules of docs/PROPAGATION.md, as a state machine the
simulation clock drives:

- every row of the dependency table is a *requirement* of a dependent on a
  supplier; rows with the same ``group`` for one dependent are alternatives;
- when a supplier fails, the requirement holds on the dependent's backup for
  ``backup_h`` hours (the backup drains while the supplier is down and is not
  recharged within a run), then fails: cause ``backup-exhausted``; with no
  backup it fails at once: cause ``dependency``;
- a dependent is down while any requirement (group) fails or an attack holds
  it; once everything holds again it restarts after the longest
  ``restart_min`` of the requirements it lost;
- *black start*: members of a dependency cycle that are all down wait for
  each other, so none of them could ever restart on its own. Once every
  requirement they have on suppliers outside the cycle holds (and no attack
  holds one of them), operators start them together by hand: all come back
  at once, after the longest ``restart_min`` of the requirements any of them
  lost. Elements that merely depend on a cycle follow it as usual.

:meth:`Coupling.propagate` runs these rules to a fixed point at one instant.
Within an instant elements only fail, except those whose restart falls due
then, each at most once: so the loop ends, on any graph, cycles included.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from gridsim.model.layers import Dependency, Layers

__all__ = ["Change", "Coupling", "format_time"]

_EPS_H = 1e-9


def format_time(t_min: float) -> str:
    """``245.0`` -> ``"4 h 05 min"``: how the event log writes an instant."""
    whole = int(round(t_min))
    return f"{whole // 60} h {whole % 60:02d} min"


@dataclass(frozen=True)
class Change:
    """An element of a layer (or a generator) went down or came back."""

    element: str
    state: str  # "out" or "in"
    cause: str  # attack, dependency, backup-exhausted, restored
    caused_by: str | None  # a failure: the supplier it lost, or the attack step ("step:3") that took it down
    detail: str


class Coupling:
    """Which layer elements are down, since when and why, and the backup timers.

    Parameters
    ----------
    layers : Layers
        The dependency edges and the elements that can fail.
    is_up : callable
        ``is_up(name)`` for suppliers outside the layers' own state: buses,
        substations and water junctions (the clock answers from the power
        cascade and the hydraulics).
    why : callable
        ``why(name)``: a short text saying why such a supplier is down.
    """

    def __init__(self, layers: Layers, is_up: Callable[[str], bool], why: Callable[[str], str]):
        self.edges: list[Dependency] = list(layers.dependencies)
        self._is_up_outside, self._why_outside = is_up, why
        dependents = {e.dependent for e in self.edges}
        self.elements = sorted(set(layers.elements) - {n for n in layers.elements if n.startswith("junction:")}
                               | dependents)
        self.edges_of: dict[str, list[int]] = defaultdict(list)
        for i, edge in enumerate(self.edges):
            self.edges_of[edge.dependent].append(i)
        self.remaining_h = [e.backup_h for e in self.edges]
        self.lost_since: list[float | None] = [None] * len(self.edges)
        self.down: dict[str, str] = {}  # element -> why it is down (the cause chain, as text)
        self.attack: dict[str, dict[str, str]] = defaultdict(dict)  # element -> holder key -> description
        self.attack_source: dict[str, dict[str, str | None]] = defaultdict(dict)  # element -> key -> "step:N"
        self.backup_off: dict[str, set[str]] = defaultdict(set)
        self.lost_edges: dict[str, set[int]] = defaultdict(set)
        self.restart_at: dict[str, float] = {}
        self.black_start: dict[str, frozenset[str]] = {}  # member -> the dead cycle being started with it
        self._due: set[str] = set()

    # ------------------------------------------------------------ queries

    def is_up(self, name: str) -> bool:
        if name in self._own:
            return name not in self.down
        return self._is_up_outside(name)

    def why(self, name: str) -> str:
        if name in self._own:
            return self.down.get(name, "")
        return self._why_outside(name)

    @property
    def _own(self) -> set[str]:
        own = getattr(self, "_own_cache", None)
        if own is None:
            own = self._own_cache = set(self.elements)
        return own

    def backup_left_h(self, edge: int, now: float) -> float:
        """Hours of backup the requirement still has at ``now`` (0 while its backup is disabled)."""
        if self.backup_off[self.edges[edge].dependent]:
            return 0.0
        since = self.lost_since[edge]
        spent = 0.0 if since is None else (now - since) / 60.0
        return max(0.0, self.remaining_h[edge] - spent)

    def on_backup(self, now: float) -> dict[str, float]:
        """Elements running on backup now -> hours left (the shortest of their lost supplies)."""
        out: dict[str, float] = {}
        for i, edge in enumerate(self.edges):
            if self.lost_since[i] is not None and edge.dependent not in self.down:
                left = self.backup_left_h(i, now)
                if left > _EPS_H:
                    out[edge.dependent] = min(out.get(edge.dependent, left), left)
        return out

    # ------------------------------------------------------------ changes from outside

    def hold(self, element: str, key: str, description: str, source: str | None = None) -> None:
        """An attack takes the element down (until :meth:`release`); ``source`` names the step (``step:3``)."""
        self.attack[element][key] = description
        self.attack_source[element][key] = source

    def release(self, element: str, key: str) -> None:
        self.attack[element].pop(key, None)
        self.attack_source[element].pop(key, None)

    def disable_backup(self, element: str, key: str) -> None:
        self.backup_off[element].add(key)

    def enable_backup(self, element: str, key: str) -> None:
        self.backup_off[element].discard(key)

    def restart_due(self, element: str, now: float) -> None:
        """Called by the clock when a restart it scheduled falls due."""
        if self.restart_at.get(element) == now:
            self._due.add(element)

    # ------------------------------------------------------------ the fixed point

    def propagate(self, now: float) -> tuple[list[Change], list[float], list[tuple[float, str]]]:
        """Run the dependency rules to a fixed point at ``now``.

        Returns
        -------
        changes : list of Change
            Elements that went down or came back, in the order they did.
        expiries : list of float
            Instants at which a backup now in use runs out (the clock wakes then).
        restarts : list of (float, str)
            Restarts to schedule: at that instant, the element comes back if
            its requirements still hold.
        """
        changes: list[Change] = []
        restarts: list[tuple[float, str]] = []
        while True:
            self._update_supplies(now)
            if self._black_starts(now, changes):
                continue  # the cycle's supplies are back: see them before judging anything else
            progressed = False
            for element in self.elements:
                if element not in self.black_start:  # a black-started cycle's members came back above
                    progressed |= self._step(element, now, changes, restarts)
            if not progressed and not self._schedule_black_starts(now, restarts):
                break
        self._due.clear()
        expiries = sorted({now + 60.0 * self.backup_left_h(i, now) for i in range(len(self.edges))
                           if self.lost_since[i] is not None and self.backup_left_h(i, now) > _EPS_H})
        return changes, expiries, restarts

    def _step(self, element: str, now: float, changes: list[Change], restarts: list[tuple[float, str]]) -> bool:
        """One element's turn in the fixed point: fail it, hold it down, or bring it (or its restart) on.

        True if something changed that the next round must see.
        """
        failing = self._failing_edge(element, now)
        held = self.attack[element]
        if element not in self.down:
            if held or failing is not None:
                changes.append(self._fail(element, now, failing))
                return True
            return False
        if held or failing is not None:
            if failing is not None:
                self.lost_edges[element].add(failing)
            self.restart_at.pop(element, None)
            self._due.discard(element)
            return False
        if element in self._due:
            changes.append(self._recover(element, now))
            return True
        if element in self.restart_at:
            return False
        delay = max((self.edges[i].restart_min for i in self.lost_edges[element]), default=0.0)
        self.restart_at[element] = now + delay
        if delay > 0:
            restarts.append((now + delay, element))
            return False
        self._due.add(element)  # back at once: the next round of this loop brings it in
        return True

    # ------------------------------------------------------------ black start of dead cycles

    def _black_starts(self, now: float, changes: list[Change]) -> bool:
        """Bring back every scheduled dead cycle whose restart is due; call off those that cannot start.

        A cycle is called off when an attack holds a member or a requirement on
        a supplier outside it fails again; it is looked for anew at the next
        fixed point. True if members came back.
        """
        progressed = False
        for cycle in sorted(set(self.black_start.values()), key=sorted):
            members = sorted(cycle)
            if any(self.attack[m] or self._failing_edge(m, now, cycle) is not None for m in members):
                for m in members:
                    failing = self._failing_edge(m, now, cycle)
                    if failing is not None:
                        self.lost_edges[m].add(failing)
                    del self.black_start[m]
                    self.restart_at.pop(m, None)
                    self._due.discard(m)
                continue
            if all(m in self._due for m in members):
                changes.extend(self._recover(m, now, cycle) for m in members)
                progressed = True
        return progressed

    def _schedule_black_starts(self, now: float, restarts: list[tuple[float, str]]) -> bool:
        """At a fixed point: find dead cycles whose outside supplies all hold and schedule their black start.

        A *dead cycle* is a set of down elements, none held by an attack or
        waiting for a restart of its own, in which every failing requirement
        (group) of every member has a supplier inside the set, and which is a
        cycle (each member waits, through the others, for itself). True if one
        restarts at once (the caller runs the rules again).
        """
        waiting = {e for e in self.down if not self.attack[e] and e not in self.restart_at
                   and e not in self.black_start}
        groups = {e: self._failing_groups(e, now) for e in waiting}
        shrinking = True
        while shrinking:  # drop what waits for anything outside the set
            shrinking = False
            for e in sorted(waiting):
                if not groups[e] or any(not any(self.edges[i].supplier in waiting for i in g) for g in groups[e]):
                    waiting.discard(e)
                    shrinking = True
        waits_for = {e: sorted({self.edges[i].supplier for g in groups[e] for i in g} & waiting) for e in waiting}
        at_once = False
        for cycle in _strongly_connected(waits_for):
            members = frozenset(cycle)
            closed = all(any(self.edges[i].supplier in members for i in g) for e in members for g in groups[e])
            if not closed or (len(members) == 1 and cycle[0] not in waits_for[cycle[0]]):
                continue  # waits for another cycle first, or no cycle at all: it follows as usual
            for e in members:
                self.lost_edges[e].update(i for g in groups[e] for i in g)
            delay = max((self.edges[i].restart_min for e in members for i in self.lost_edges[e]), default=0.0)
            for e in sorted(members):
                self.black_start[e] = members
                self.restart_at[e] = now + delay
                if delay > 0:
                    restarts.append((now + delay, e))
                else:
                    self._due.add(e)
                    at_once = True
        return at_once

    def _failing_groups(self, element: str, now: float) -> list[list[int]]:
        """Every requirement (group of alternatives) of an element that fails now, as edge indices."""
        groups: dict[str, list[int]] = {}
        for i in self.edges_of.get(element, ()):
            groups.setdefault(self.edges[i].group or f"#{i}", []).append(i)
        return [members for members in groups.values() if not any(self._edge_holds(i, now) for i in members)]

    def _update_supplies(self, now: float) -> None:
        for i, edge in enumerate(self.edges):
            up = self.is_up(edge.supplier)
            since = self.lost_since[i]
            if not up and since is None:
                self.lost_since[i] = now
            elif up and since is not None:
                self.remaining_h[i] = max(0.0, self.remaining_h[i] - (now - since) / 60.0)
                self.lost_since[i] = None

    def _edge_holds(self, i: int, now: float) -> bool:
        return self.lost_since[i] is None or self.backup_left_h(i, now) > _EPS_H

    def _failing_edge(self, element: str, now: float, assume_up: frozenset[str] = frozenset()) -> int | None:
        """The first requirement (or group of alternatives) of an element that fails now, else None.

        Suppliers in ``assume_up`` count as working (the members of a cycle being black-started).
        """
        groups: dict[str, list[int]] = {}
        for i in self.edges_of.get(element, ()):
            groups.setdefault(self.edges[i].group or f"#{i}", []).append(i)
        for members in groups.values():
            if not any(self._edge_holds(i, now) or self.edges[i].supplier in assume_up for i in members):
                return members[0]
        return None

    def _fail(self, element: str, now: float, edge: int | None) -> Change:
        if edge is None:
            description = "; ".join(self.attack[element].values())
            self.down[element] = f"attack ({description})"
            source = next((s for s in self.attack_source[element].values() if s), None)
            return Change(element, "out", "attack", source, f"taken down by {description}")
        self.lost_edges[element].add(edge)
        dep = self.edges[edge]
        since = self.lost_since[edge]
        supplier_why = self.why(dep.supplier)
        lost = f"{dep.supplier} down since {format_time(since)}" + (f" ({supplier_why})" if supplier_why else "")
        if dep.backup_h > _EPS_H and not self.backup_off[element]:
            cause = "backup-exhausted"
            text = f"backup of {dep.backup_h:g} h exhausted at {format_time(now)} after {lost}"
        elif dep.backup_h > _EPS_H:
            cause = "dependency"
            text = f"backup disabled by the attack; {lost}"
        else:
            cause = "dependency"
            text = f"no backup; {lost}"
        self.down[element] = text
        return Change(element, "out", cause, dep.supplier, text)

    def _recover(self, element: str, now: float, cycle: frozenset[str] = frozenset()) -> Change:
        lost = sorted({self.edges[i].supplier for i in self.lost_edges[element]})
        del self.down[element]
        self.lost_edges.pop(element, None)
        self.restart_at.pop(element, None)
        self.black_start.pop(element, None)
        self._due.discard(element)
        detail = f"supplies back ({', '.join(lost)})" if lost else "attack ended"
        if cycle:
            detail = f"black start of the dependency cycle {', '.join(sorted(cycle))}: outside supplies back"
        return Change(element, "in", "restored", None, detail)


def _strongly_connected(graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components of ``graph`` (node -> successors), each sorted, in a repeatable order.

    Tarjan's algorithm, iterative (no recursion limit on long chains).
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            successors = graph.get(node, [])
            if child < len(successors):
                work.append((node, child + 1))
                nxt = successors[child]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return components
