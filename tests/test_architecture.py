"""The package's layout holds: rooms in a declared order, arrows one way, no cycles, no private names borrowed.

docs/ARCHITECTURE.md describes the rooms; this test is what keeps the code
and that page in agreement. It reads every ``import`` in ``gridsim/`` from
the source (function-local ones and ``TYPE_CHECKING`` ones included, since a
deferred import that closes a loop is still a loop) and fails on:

- an import from a room later in :data:`ORDER` than the importing one;
- a cycle among modules (a module importing itself back through others);
- a private name (``_x``, not ``__x__``) imported from another module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gridsim"

#: The rooms, lowest first: a module may import from its own room and the rooms before it, never after.
ORDER: tuple[tuple[str, ...], ...] = (
    ("gridsim.version", "gridsim.errors", "gridsim.bundled", "gridsim.data"),
    ("gridsim.io",),
    ("gridsim.layers",),
    ("gridsim.model",),
    ("gridsim.power",),
    ("gridsim.loading",),
    ("gridsim.scenario",),
    ("gridsim.sim",),
    ("gridsim.metrics",),
    ("gridsim.report",),
    ("gridsim.results",),
    ("gridsim.analysis",),
    ("gridsim.cli",),
    ("gridsim", "gridsim.__main__"),
)


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(module: str) -> list[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) for every import statement of a module."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                out.append((submodule, None, node.lineno) if submodule in MODULES else (target, alias.name,
                                                                                         node.lineno))
    return [item for item in out if item[0] == "gridsim" or item[0].startswith("gridsim.")]


def room(module: str) -> int:
    """Index in :data:`ORDER` of the room a module belongs to (the longest matching prefix)."""
    best, length = None, -1
    for index, names in enumerate(ORDER):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > length:
                best, length = index, len(name)
    assert best is not None, f"{module} is in no room of ORDER: add it, and to docs/ARCHITECTURE.md"
    return best


def _graph() -> dict[str, set[str]]:
    return {m: {target for target, _, _ in _imports(m) if target != m} for m in MODULES}


def test_every_module_has_a_room():
    for module in MODULES:
        room(module)


def test_arrows_run_one_way():
    against = [f"{m} (room {ORDER[room(m)][0]}) imports {t} (room {ORDER[room(t)][0]}), line {line}"
               for m in MODULES for t, _, line in _imports(m) if room(t) > room(m)]
    assert not against, "\n".join(against)


def test_no_private_name_crosses_a_module():
    borrowed = [f"{m} line {line}: {name} from {t}" for m in MODULES for t, name, line in _imports(m)
                if name and name.startswith("_") and not name.startswith("__")]
    assert not borrowed, "\n".join(borrowed)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of a directed graph as a list of nodes, or None (depth-first search, colours)."""
    colour: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if colour.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if colour.get(nxt) is None and (found := visit(nxt)):
                return found
        stack.pop()
        colour[node] = 2
        return None

    for node in sorted(graph):
        if colour.get(node) is None and (found := visit(node)):
            return found
    return None


def test_no_import_cycle():
    cycle = find_cycle(_graph())
    assert cycle is None, " -> ".join(cycle or [])


@pytest.mark.parametrize("graph, cyclic", [
    ({"a": {"b"}, "b": {"c"}, "c": set()}, False),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, True),
    ({"a": {"a"}}, True),
    ({"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set()}, False),
])
def test_the_cycle_finder_finds_cycles_and_only_cycles(graph, cyclic):
    cycle = find_cycle(graph)
    assert (cycle is not None) == cyclic
    if cycle:
        assert cycle[0] == cycle[-1] and all(b in graph[a] for a, b in zip(cycle, cycle[1:]))


def test_the_reader_sees_function_local_and_relative_imports(tmp_path):
    assert ("gridsim.power.cascade", "run_cascade") in {(t, n) for t, n, _ in _imports("gridsim.sim.simulation")}
    assert room("gridsim.power.fast") < room("gridsim.sim.simulation") < room("gridsim.cli.run")
