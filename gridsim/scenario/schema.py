"""Scenario files: parsed once into frozen dataclasses, every key checked.

YAML is read with the safe loader (no tags, no code). Each error names the
file, the path inside it (``steps[2].targets.where``) and its line.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gridsim.bundled import bundled_dir
from gridsim.errors import InputError
from gridsim.scenario.techniques import ATTACK_VERSION, techniques

__all__ = [
    "ACTIONS",
    "BUNDLED_ATTACKS",
    "KINDS",
    "MEASURES",
    "REPORTABLE",
    "Reported",
    "Scenario",
    "Selector",
    "Step",
    "load_scenario",
    "parse_scenario",
]

BUNDLED_ATTACKS = bundled_dir("attacks")

KINDS = ("substation", "bus", "line", "trafo", "branch", "gen", "load")
MEASURES = ("degree", "betweenness", "load", "flow")
_SITE_KINDS = ("substation",)

#: action -> (target kinds allowed; None = takes no targets)
ACTIONS: dict[str, tuple[str, ...] | None] = {
    "access": None,
    "open_breakers": ("substation", "bus"),
    "trip_branches": ("line", "trafo", "branch"),
    "trip_generators": ("gen",),
    "scale_loads": ("load", "substation", "bus"),
    "deny_control": _SITE_KINDS,
    "deny_view": _SITE_KINDS,
    "destroy_firmware": _SITE_KINDS,
}

_SCENARIO_KEYS = ("name", "description", "references", "system", "seed", "horizon_h", "start", "reported", "steps")
#: summary.json measures a scenario may declare reported values for.
REPORTABLE = ("peak_mw_lost", "peak_pct_lost", "peak_customers_out", "peak_people_out", "energy_not_served_mwh",
              "customer_hours_lost", "time_to_full_restoration_min", "cascade_depth")
_STEP_KEYS = ("at_min", "action", "targets", "technique", "duration_min", "factor", "note")
_SELECTOR_KEYS = ("kind", "ids", "where", "strategy", "by", "k")


@dataclass(frozen=True)
class Selector:
    """Which elements a step acts on; resolved against a system by :mod:`gridsim.scenario.selectors`."""

    kind: str
    ids: tuple[str | int, ...] | None = None
    where: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    strategy: str | None = None  # None, "random" or "top"
    by: str | None = None
    k: int | None = None
    place: str = ""


@dataclass(frozen=True)
class Step:
    """One timed action of the attacker."""

    index: int
    at_min: float
    action: str
    technique: str
    targets: Selector | None = None
    duration_min: float | None = None
    factor: float | None = None
    note: str = ""
    place: str = ""

    @property
    def label(self) -> str:
        return f"step {self.index} {self.action} ({self.technique})"


@dataclass(frozen=True)
class Reported:
    """A figure reported for the real incident, printed beside the simulated one."""

    measure: str
    value: float
    source: str
    note: str = ""


@dataclass(frozen=True)
class Scenario:
    """A named, referenced, timed list of steps."""

    name: str
    steps: tuple[Step, ...]
    description: str = ""
    references: tuple[str, ...] = ()
    system: str | None = None
    seed: int | None = None
    horizon_h: float = 24.0
    start: str | None = None
    reported: tuple[Reported, ...] = ()
    path: str = ""
    sha256: str = ""


class _Lines:
    """Line numbers of every path in a YAML document, for error messages."""

    def __init__(self, text: str):
        self.lines: dict[str, int] = {}
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            root = None
        if root is not None:
            self._walk(root, "")

    def _walk(self, node, path: str) -> None:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = f"{path}.{key.value}" if path else str(key.value)
                self.lines[sub] = key.start_mark.line + 1
                self._walk(value, sub)
                self.lines[sub] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, f"{path}[{i}]")

    def place(self, path: str) -> str:
        probe = path
        while probe and probe not in self.lines:
            probe = probe.rsplit(".", 1)[0] if "." in probe else probe.rsplit("[", 1)[0]
        line = self.lines.get(probe)
        label = path or "top level"
        return f"{label} (line {line})" if line else label


def load_scenario(spec: str | Path) -> Scenario:
    """Read and check a scenario file; a bare name is looked up among the bundled ones.

    Raises
    ------
    InputError
        Missing file, malformed YAML, unknown key, action or technique.
    """
    path = _find_scenario(Path(spec))
    data = path.read_bytes()
    text = data.decode("utf-8", errors="replace")
    return parse_scenario(text, source=path, sha256=hashlib.sha256(data).hexdigest())


def _find_scenario(path: Path) -> Path:
    candidates = [path, BUNDLED_ATTACKS / path.name, BUNDLED_ATTACKS / f"{path.name}.yaml"]
    for cand in candidates:
        if cand.is_file():
            return cand
    raise InputError(path, "scenario file not found")


def parse_scenario(text: str, *, source: str | Path = "<scenario>", sha256: str = "") -> Scenario:
    """Parse scenario YAML text into a :class:`Scenario` (see docs/FORMATS.md)."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(source, f"malformed YAML: {problem}", where) from None
    lines = _Lines(text)

    def fail(path: str, message: str) -> InputError:
        return InputError(source, message, lines.place(path))

    if not isinstance(doc, dict):
        raise fail("", "a scenario must be a mapping with name and steps")
    _reject_unknown(doc, _SCENARIO_KEYS, "", fail)
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip():
        raise fail("name", "missing or empty name")
    steps_raw = doc.get("steps")
    if not isinstance(steps_raw, list) or not steps_raw:
        raise fail("steps", "steps must be a non-empty list")
    steps = tuple(_parse_step(raw, i, fail, lines) for i, raw in enumerate(steps_raw))

    references = doc.get("references", [])
    if not isinstance(references, list) or not all(isinstance(r, str) for r in references):
        raise fail("references", "references must be a list of strings")
    system = doc.get("system")
    if system is not None:
        if not isinstance(system, str):
            raise fail("system", "system must be a string (a folder or pandapower:<case>)")
        if not system.startswith("pandapower:") and source != "<scenario>":
            system = str((Path(source).parent / system).resolve()) if not Path(system).is_absolute() else system
    seed = doc.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise fail("seed", f"seed must be a non-negative integer, got {seed!r}")
    horizon = _number(doc, "horizon_h", 24.0, "horizon_h", fail, positive=True)
    start = doc.get("start")
    if start is not None and not isinstance(start, str):
        start = str(start)
    reported = _parse_reported(doc.get("reported", {}), fail)
    return Scenario(
        name=name.strip(),
        reported=reported,
        steps=tuple(sorted(steps, key=lambda s: (s.at_min, s.index))),
        description=str(doc.get("description", "") or "").strip(),
        references=tuple(references),
        system=system,
        seed=seed,
        horizon_h=horizon,
        start=start,
        path=str(source),
        sha256=sha256,
    )


def _parse_reported(raw: Any, fail) -> tuple[Reported, ...]:
    if not isinstance(raw, dict):
        raise fail("reported", "reported must be a mapping of measure: {value, source}")
    out = []
    for measure, entry in raw.items():
        path = f"reported.{measure}"
        if measure not in REPORTABLE:
            raise fail(path, f"unknown measure {measure!r} (known: {', '.join(REPORTABLE)})")
        if not isinstance(entry, dict):
            raise fail(path, "each reported figure is a mapping {value, source}")
        _reject_unknown(entry, ("value", "source", "note"), path, fail)
        value = _number(entry, "value", None, f"{path}.value", fail)
        if value is None or not isinstance(entry.get("source"), str):
            raise fail(path, "a reported figure needs value (a number) and source (a string)")
        out.append(Reported(str(measure), value, entry["source"], str(entry.get("note", "") or "")))
    return tuple(out)


def _reject_unknown(mapping: dict, allowed, path: str, fail) -> None:
    for key in mapping:
        if key not in allowed:
            sub = f"{path}.{key}" if path else str(key)
            raise fail(sub, f"unknown key {key!r} (allowed: {', '.join(allowed)})")


def _number(mapping: dict, key: str, default, path: str, fail, *, positive: bool = False):
    value = mapping.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < 0 or (positive and value == 0):
        raise fail(path, f"{key} must be a {'positive' if positive else 'non-negative'} number, got {value!r}")
    return float(value)


def _parse_step(raw: Any, i: int, fail, lines: _Lines) -> Step:
    path = f"steps[{i}]"
    if not isinstance(raw, dict):
        raise fail(path, "each step must be a mapping")
    _reject_unknown(raw, _STEP_KEYS, path, fail)
    for key in ("at_min", "action", "technique"):
        if key not in raw:
            raise fail(path, f"missing {key}")
    at_min = _number(raw, "at_min", 0.0, f"{path}.at_min", fail)
    action = raw["action"]
    if action not in ACTIONS:
        raise fail(f"{path}.action", f"unknown action {action!r} (known: {', '.join(ACTIONS)})")
    technique = str(raw["technique"]).strip().upper()
    if technique not in techniques():
        raise fail(f"{path}.technique",
                   f"{raw['technique']!r} is not an ATT&CK for ICS technique id (v{ATTACK_VERSION})")
    kinds = ACTIONS[action]
    targets = raw.get("targets")
    selector = None
    if kinds is None:
        if targets is not None:
            raise fail(f"{path}.targets", f"action {action} takes no targets")
    else:
        if targets is None:
            raise fail(path, f"action {action} needs targets")
        selector = _parse_selector(targets, f"{path}.targets", fail, lines)
        if selector.kind not in kinds:
            raise fail(f"{path}.targets.kind",
                       f"action {action} acts on {' or '.join(kinds)}, not {selector.kind}")
    factor = _number(raw, "factor", None, f"{path}.factor", fail)
    if action == "scale_loads" and factor is None:
        raise fail(path, "scale_loads needs factor (demand multiplier, e.g. 1.3)")
    if action != "scale_loads" and factor is not None:
        raise fail(f"{path}.factor", f"factor applies to scale_loads only, not {action}")
    duration = _number(raw, "duration_min", None, f"{path}.duration_min", fail, positive=True)
    note = raw.get("note", "")
    return Step(index=i, at_min=at_min, action=action, technique=technique, targets=selector,
                duration_min=duration, factor=factor, note=str(note or ""), place=lines.place(path))


def _parse_selector(raw: Any, path: str, fail, lines: _Lines) -> Selector:
    if not isinstance(raw, dict):
        raise fail(path, "targets must be a mapping with kind and ids, where or strategy")
    _reject_unknown(raw, _SELECTOR_KEYS, path, fail)
    kind = raw.get("kind")
    if kind not in KINDS:
        raise fail(f"{path}.kind", f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    ids = raw.get("ids")
    if ids is not None:
        if not isinstance(ids, list) or not ids or not all(isinstance(x, (str, int)) and not isinstance(x, bool)
                                                         for x in ids):
            raise fail(f"{path}.ids", "ids must be a non-empty list of names or indices")
        ids = tuple(ids)
    where_raw = raw.get("where", {})
    if not isinstance(where_raw, dict):
        raise fail(f"{path}.where", "where must be a mapping of tag: value or [values]")
    where = []
    for tag, value in where_raw.items():
        values = tuple(value) if isinstance(value, list) else (value,)
        if not values:
            raise fail(f"{path}.where.{tag}", "empty list of values")
        where.append((str(tag), values))
    strategy = raw.get("strategy")
    if strategy not in (None, "random", "top"):
        raise fail(f"{path}.strategy", f"strategy must be random or top, got {strategy!r}")
    by = raw.get("by")
    k = raw.get("k")
    if strategy is not None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise fail(f"{path}.k", f"strategy {strategy} needs k, a positive integer (got {k!r})")
        if strategy == "top" and by not in MEASURES:
            raise fail(f"{path}.by", f"top needs by: one of {', '.join(MEASURES)} (got {by!r})")
        if strategy == "random" and by is not None:
            raise fail(f"{path}.by", "by applies to strategy top only")
    elif k is not None or by is not None:
        raise fail(path, "k and by need a strategy (random or top)")
    if ids is not None and (where or strategy):
        raise fail(path, "give either ids or where/strategy, not both")
    return Selector(kind=kind, ids=ids, where=tuple(where), strategy=strategy, by=by, k=k,
                    place=lines.place(path))
