"""Scenario files: parsed once into frozen dataclasses, every key checked.

YAML is read with the safe loader (no tags, no code). Each error names the
file, the path inside it (``steps[2].targets.where``) and its line. Every
value's type is checked before it is used (a YAML list is unhashable, a YAML
``yes`` is a boolean), so bad input is an :class:`InputError`, never a traceback.

The actions a step may take, their targets and their parameters are those of
the action table (:mod:`gridsim.scenario.actions`).
"""

from __future__ import annotations

import datetime
import hashlib
import re
import reprlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gridsim.bundled import bundled_dir
from gridsim.errors import InputError
from gridsim.io.numbers import finite_number, requirement
from gridsim.model.grid import STOCK_PREFIXES
from gridsim.scenario.actions import ACTION_TYPES, KINDS, LAYER_TARGET_KINDS, PARAMETERS, ActionType, takers
from gridsim.scenario.techniques import ATTACK_VERSION, techniques

__all__ = [
    "ACTIONS",
    "NOT_AN_ATTACK",
    "BOOL_HINT",
    "BUNDLED_ATTACKS",
    "KINDS",
    "LAYER_TARGET_KINDS",
    "MEASURES",
    "REPORTABLE",
    "Reported",
    "Scenario",
    "Selector",
    "Step",
    "load_scenario",
    "one_line",
    "parse_scenario",
    "split_indexed_id",
]

BUNDLED_ATTACKS = bundled_dir("attacks")

#: Longest simulated horizon, hours (one year).
MAX_HORIZON_H = 24.0 * 365

#: ``technique`` of a step that is not an attack (a storm, a fault, a cold snap).
NOT_AN_ATTACK = "none"
MEASURES = ("degree", "betweenness", "load", "flow")

#: action -> the target kinds it allows (None: it takes no targets). A view of
#: :data:`gridsim.scenario.actions.ACTION_TYPES`, the one table of actions, for callers that want only the kinds.
ACTIONS: dict[str, tuple[str, ...] | None] = {name: action.targets for name, action in ACTION_TYPES.items()}

_SCENARIO_KEYS = ("name", "description", "references", "system", "seed", "horizon_h", "start", "reported", "steps")
#: summary.json measures a scenario may declare reported values for.
REPORTABLE = ("peak_mw_lost", "peak_pct_lost", "peak_customers_out", "peak_people_out", "energy_not_served_mwh",
              "customer_hours_lost", "time_to_full_restoration_min", "cascade_depth", "by_operator", "layers",
              "outage_duration_h", "frequency", "control", "generation")
#: The keys of a step: its time, action, targets and technique, the parameters of the action table (by name), a note.
_STEP_KEYS = ("at_min", "action", "targets", "technique", *sorted(PARAMETERS), "note")
_SELECTOR_KEYS = ("kind", "ids", "where", "strategy", "by", "k")

#: Appended to errors about a boolean where text was meant: YAML 1.1 reads unquoted yes/no/on/off/true/false as bools.
BOOL_HINT = '(YAML read yes/no/true/false unquoted as a boolean; quote it: "yes")'
#: ``line:0``, ``trafo:3``: an element by pandapower table and index, as gridsim prints it (:class:`Ref`).
_INDEXED_ID = re.compile(r"(?P<table>[a-z][a-z0-9_]*):(?P<index>[0-9]+)")
#: Largest element index: pandapower's indices are int64.
_MAX_INDEX = 2 ** 63 - 1
#: Deepest nesting of YAML flow collections (``[...]``, ``{...}``); a scenario needs four or five.
_MAX_FLOW_DEPTH = 50

_Fail = Callable[[str, str], InputError]


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
    """A figure reported for the real incident, printed beside the simulated one.

    ``measure`` names a figure of ``summary.json``, dotted for nested ones
    (``by_operator.kyivoblenergo.outage_h``, ``layers.peak_people_without_water``).
    A simulated figure agrees when it lies within ``tolerance_pct`` per cent of
    ``value``, or within ``range`` (a reported span such as 1 to 6 h); with
    neither, the figure is shown and not judged. ``calibrated`` marks a figure
    the topology's inputs were set from: shown, and not counted as a check.
    """

    measure: str
    value: float
    source: str
    note: str = ""
    tolerance_pct: float | None = None
    range: tuple[float, float] | None = None
    calibrated: bool = False

    def agrees(self, simulated: float | None) -> bool | None:
        """True or False when the figure is judged, None when it is only shown."""
        if simulated is None:
            return False if (self.tolerance_pct is not None or self.range is not None) else None
        if self.range is not None:
            return self.range[0] <= simulated <= self.range[1]
        if self.tolerance_pct is not None:
            return abs(simulated - self.value) <= abs(self.value) * self.tolerance_pct / 100.0 + 1e-9
        return None


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


def split_indexed_id(token: object) -> tuple[str, int] | None:
    """``"line:0"`` -> ``("line", 0)``; a name or a bare integer -> None.

    This is how gridsim prints an element (``Ref``), so an id copied from a
    timeline selects the element it names, and it is the only unambiguous way
    to give a branch by index (lines and transformers are numbered separately).

    An index past int64 (no element has one) comes back as ``2**63``: ``int()``
    refuses more than 4300 digits, and ``line:`` with 5000 nines is text a user can write.
    """
    if not isinstance(token, str):
        return None
    match = _INDEXED_ID.fullmatch(token)
    if not match:
        return None
    digits = match["index"].lstrip("0") or "0"
    return match["table"], int(digits) if len(digits) <= 19 else _MAX_INDEX + 1


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 3, 60, 60, 40


def _show(value: Any) -> str:
    """A short rendering of a user's value for an error message, in YAML's words where they differ.

    Always bounded: ``repr`` of a recursive list or an alias bomb would loop or
    take minutes, and ``repr`` of an integer of more than 4300 digits raises.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and value.bit_length() > 128:
        digits = len(str(abs(value))) if value.bit_length() < 14000 else "4000+"
        return f"a {digits}-digit integer"
    return _REPR.repr(value)


def one_line(text: Any) -> str:
    """``text`` with its unprintable characters (line breaks, tabs, controls) escaped as ``repr`` writes them.

    A key, tag or name read from a file goes into an error message, and an
    error is one line on stderr: a YAML key ``"a\\nb"`` must not break it in two.
    """
    text = str(text)
    return text if text.isprintable() else "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _lone_surrogate(text: str) -> bool:
    """Whether ``text`` holds half of a UTF-16 surrogate pair, which YAML's ``"\\ud800"`` escape makes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class _SafeLoader(yaml.SafeLoader):
    """The safe loader (no tags, no code), but a scalar it cannot convert is a YAML error with its line.

    PyYAML's scalar constructors let ``ValueError`` and friends escape with no
    position: an integer of 5000 digits, ``2015-02-30`` (read as a date),
    ``!!float x``. Wrapping them keeps "never a traceback" true.

    A string with a lone surrogate (``"\\ud800"``, or an emoji written as two
    ``\\u`` escapes) is refused too: it is not text, and printing it (a
    scenario's name in the summary) raises ``UnicodeEncodeError``.
    """

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            value = super().construct_object(node, deep=deep)
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            shown = _show(node.value) if isinstance(node, yaml.ScalarNode) else node.tag
            raise yaml.constructor.ConstructorError(None, None, f"cannot read {shown}: {exc}",
                                                    node.start_mark) from None
        if isinstance(value, str) and _lone_surrogate(value):
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {_show(value)}: \\ud800 to \\udfff are halves of UTF-16 pairs, not "
                            "characters (write the character itself, or \\U0001F600 for one beyond \\uFFFF)",
                node.start_mark)
        return value

    def fetch_flow_collection_start(self, TokenClass) -> None:
        """``[`` or ``{``, refused past :data:`_MAX_FLOW_DEPTH` levels of them.

        PyYAML's scanner looks at every open level at every token: 50 lists
        nested 400 deep (40 kB) took 5 s to read, a megabyte of them minutes.
        """
        if self.flow_level >= _MAX_FLOW_DEPTH:
            raise yaml.scanner.ScannerError(None, None, f"[ and {{ nested more than {_MAX_FLOW_DEPTH} deep",
                                            self.get_mark())
        super().fetch_flow_collection_start(TokenClass)


class _Lines:
    """Line numbers of every path in a composed YAML document, and its first duplicated key.

    Each node is walked once (memo by identity). An alias is a second path to
    the same node: re-walking it made ``x: &a [*a]`` recurse forever and an
    alias bomb (8 levels of 9 aliases) cost 9**8 visits. A path that reaches an
    already-walked node gets that node's line; paths below it fall back to it.
    """

    def __init__(self, root: yaml.Node | None):
        self.lines: dict[str, int] = {}
        #: (path, key, line of the second occurrence) of the first duplicated key, if any.
        self.duplicate: tuple[str, str, int] | None = None
        self._walked: set[int] = set()
        self._keys = yaml.constructor.SafeConstructor()
        if root is not None:
            self._walk(root, "")

    def _walk(self, node: yaml.Node, path: str) -> None:
        self.lines[path] = node.start_mark.line + 1
        if id(node) in self._walked:
            return
        self._walked.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key, value in node.value:
                name = str(key.value) if isinstance(key, yaml.ScalarNode) else "?"
                sub = f"{path}.{name}" if path else name
                line = key.start_mark.line + 1
                identity = self._identity(key)
                if identity is not None:
                    if identity in seen and self.duplicate is None:
                        self.duplicate = (sub, name, line)
                    seen.add(identity)
                self._walk(value, sub)
                self.lines[sub] = line
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, f"{path}[{i}]")

    def _identity(self, key: yaml.Node) -> Any:
        """The key as the loader builds it, so ``1`` and ``0x1`` collide as they do in the dict; None to skip.

        Merge keys (``<<``) are not keys of the mapping, and a non-scalar key is
        refused by the loader anyway.
        """
        if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
            return None
        try:
            value = self._keys.construct_object(key)
            hash(value)
        except Exception:  # a key the loader will refuse with its own message
            return (key.tag, key.value)
        return value

    def place(self, path: str) -> str:
        probe = path
        while probe and probe not in self.lines:
            probe = _parent_path(probe)
        line = self.lines.get(probe)
        label = one_line(path) or "top level"
        return f"{label} (line {line})" if line else label


def _parent_path(path: str) -> str:
    """``steps[2].targets`` -> ``steps[2]`` -> ``steps`` -> ``""``: always strictly shorter, so lookups end."""
    cut = max(path.rfind("."), path.rfind("["))
    return path[:cut] if cut > 0 else ""


def load_scenario(spec: str | Path) -> Scenario:
    """Read and check a scenario file; a bare name is looked up among the bundled ones.

    Parameters
    ----------
    spec : str or Path
        A YAML file, or the name of a bundled scenario (``ukraine-2015``).

    Returns
    -------
    Scenario
        The timed steps, each with its action, targets and ATT&CK technique,
        and the figures reported for the incident, frozen; with the file's
        path and SHA-256 for the run's manifest.

    Raises
    ------
    InputError
        Missing file, malformed YAML, unknown key, action or technique.

    Examples
    --------
    >>> plan = load_scenario("ukraine-2015")
    >>> plan.name, [step.technique for step in plan.steps][:3]
    ('ukraine-2015', ['T0865', 'T0859', 'T0822'])
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


def _read_yaml(text: str, source: str | Path) -> tuple[Any, _Lines]:
    """Compose the node tree, refuse duplicated keys, then construct the data, in one pass of the loader.

    Duplicates are looked for in the node tree because the constructed dict
    silently keeps the last value; and before construction, because the loader
    flattens merge keys (``<<``) into the node in place.
    """
    loader = None
    try:
        loader = _SafeLoader(text)
        root = loader.get_single_node()
        lines = _Lines(root)
        if lines.duplicate is not None:
            path, key, line = lines.duplicate
            raise InputError(source, f"duplicate key {_show(key)}", f"{one_line(path)} (line {line})")
        doc = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(source, f"malformed YAML: {problem}", where) from None
    except RecursionError:
        raise InputError(source, "malformed YAML: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()
    return doc, lines


def parse_scenario(text: str, *, source: str | Path = "<scenario>", sha256: str = "") -> Scenario:
    """Parse scenario YAML text into a :class:`Scenario` (see docs/FORMATS.md).

    An optional key given as null (``note:`` with nothing after it) is taken as
    absent; a required one (``name``, ``steps``, ``at_min``, ``action``,
    ``technique``) may not be null.

    Parameters
    ----------
    text : str
        The YAML.
    source : str or Path
        Where the text came from, for error messages and the manifest.
    sha256 : str
        The hex digest of the file's bytes, recorded by the run's manifest.

    Returns
    -------
    Scenario
        As :func:`load_scenario` gives it.

    Raises
    ------
    InputError
        Malformed YAML, unknown key, action or technique, a value out of range:
        one line with the key's path and line.

    Examples
    --------
    >>> plan = parse_scenario("{name: one-site, steps: [{at_min: 5, action: open_breakers, technique: T0855, "
    ...                       "targets: {kind: substation, ids: [S1]}}]}")
    >>> plan.name, plan.steps[0].action, plan.steps[0].at_min
    ('one-site', 'open_breakers', 5.0)
    """
    doc, lines = _read_yaml(text, source)

    def fail(path: str, message: str) -> InputError:
        return InputError(source, message, lines.place(path))

    if not isinstance(doc, dict):
        raise fail("", "a scenario must be a mapping with name and steps")
    _reject_unknown(doc, _SCENARIO_KEYS, "", fail)
    name = doc.get("name")
    if name is not None and not isinstance(name, str):
        raise fail("name", f"name must be a string, got {_show(name)}")
    if not name or not name.strip():
        raise fail("name", "missing or empty name")
    horizon = _number(doc, "horizon_h", "horizon_h", fail, default=24.0, positive=True, maximum=MAX_HORIZON_H)
    steps_raw = doc.get("steps")
    if not isinstance(steps_raw, list) or not steps_raw:
        raise fail("steps", "steps must be a non-empty list")
    steps = tuple(_parse_step(raw, i, horizon, fail, lines) for i, raw in enumerate(steps_raw))

    references = _optional(doc, "references", [])
    if not isinstance(references, list) or not all(isinstance(r, str) for r in references):
        raise fail("references", "references must be a list of strings")
    seed = doc.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise fail("seed", f"seed must be a non-negative integer, got {_show(seed)}")
    return Scenario(
        name=name.strip(),
        reported=_parse_reported(_optional(doc, "reported", {}), fail),
        steps=tuple(sorted(steps, key=lambda s: (s.at_min, s.index))),
        description=_optional_text(doc, "description", "description", fail),
        references=tuple(references),
        system=_parse_system(doc.get("system"), source, fail),
        seed=seed,
        horizon_h=horizon,
        start=_parse_start(doc.get("start"), fail),
        path=str(source),
        sha256=sha256,
    )


def _optional(mapping: dict, key: str, default: Any) -> Any:
    """The value of an optional key; null counts as absent (``reported:`` left empty means none)."""
    value = mapping.get(key)
    return default if value is None else value


def _text(value: Any, key: str, path: str, fail: _Fail) -> str:
    """``value`` if it is a string, else an error.

    Checked before any lookup: a YAML list or mapping is unhashable (``x in
    ACTIONS`` would raise), and ``str()`` of a mapping is not what anyone meant.
    """
    if not isinstance(value, str):
        hint = f" {BOOL_HINT}" if isinstance(value, bool) else ""
        raise fail(path, f"{key} must be a string, got {_show(value)}{hint}")
    return value


def _optional_text(mapping: dict, key: str, path: str, fail: _Fail) -> str:
    """Free text such as ``note`` or ``description``: absent or null is empty, anything else must be a string."""
    value = mapping.get(key)
    return "" if value is None else _text(value, key, path, fail).strip()


def _parse_system(value: Any, source: str | Path, fail: _Fail) -> str | None:
    """The default system: ``pandapower:<case>`` as given, a folder relative to the scenario file."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise fail("system", "system must be a string (a folder or pandapower:<case>)")
    if not value.isprintable():  # NUL, a line break, an escape sequence: every error about it would print it
        raise fail("system", f"system {_show(value)} holds a control character or a line break")
    if value.startswith(STOCK_PREFIXES) or source == "<scenario>" or Path(value).is_absolute():
        return value
    return str((Path(source).parent / value).resolve())


def _parse_start(value: Any, fail: _Fail) -> str | None:
    """Wall-clock time of t = 0 as ISO 8601 text.

    YAML reads an unquoted ``2015-12-23`` (or a full unquoted timestamp) as a
    date or datetime; that is what the user meant, so it is written back as
    ISO text. Anything else must be a string Python's ISO parser accepts.
    """
    if value is None:
        return None
    if isinstance(value, datetime.date):  # datetime.datetime is a date too
        return value.isoformat()
    if isinstance(value, str):
        try:
            datetime.datetime.fromisoformat(value.strip())
        except ValueError:
            pass
        else:
            return value.strip()
    raise fail("start", f'start must be an ISO 8601 date-time such as "2015-12-23T15:30:00+02:00", '
                        f"got {_show(value)}")


def _parse_reported(raw: Any, fail: _Fail) -> tuple[Reported, ...]:
    if not isinstance(raw, dict):
        raise fail("reported", "reported must be a mapping of measure: {value, source}")
    out = []
    for measure, entry in raw.items():
        path = f"reported.{measure}"
        if not isinstance(measure, str) or measure.split(".", 1)[0] not in REPORTABLE:
            raise fail(path, f"unknown measure {_show(measure)} (known: {', '.join(REPORTABLE)}, "
                             "and dotted paths into by_operator, layers, outage_duration_h, frequency)")
        if not isinstance(entry, dict):
            raise fail(path, "each reported figure is a mapping {value, source}")
        _reject_unknown(entry, ("value", "source", "note", "tolerance_pct", "range", "calibrated"), path, fail)
        value = _number(entry, "value", f"{path}.value", fail)
        if value is None or not isinstance(entry.get("source"), str):
            raise fail(path, "a reported figure needs value (a number) and source (a string)")
        tolerance = _number(entry, "tolerance_pct", f"{path}.tolerance_pct", fail)
        if tolerance is not None and tolerance < 0:
            raise fail(f"{path}.tolerance_pct", f"tolerance_pct must be >= 0, got {_show(tolerance)}")
        span = entry.get("range")
        if span is not None:
            if (not isinstance(span, list) or len(span) != 2
                    or any(finite_number(v) is None for v in span) or span[0] > span[1]):
                raise fail(f"{path}.range", f"range must be [low, high] with low <= high, got {_show(span)}")
            span = (float(span[0]), float(span[1]))
        calibrated = entry.get("calibrated", False)
        if not isinstance(calibrated, bool):
            raise fail(f"{path}.calibrated", f"calibrated must be true or false, got {_show(calibrated)}")
        out.append(Reported(measure, value, entry["source"], _optional_text(entry, "note", f"{path}.note", fail),
                            tolerance, span, calibrated))
    return tuple(out)


def _reject_unknown(mapping: dict, allowed: tuple[str, ...], path: str, fail: _Fail) -> None:
    for key in mapping:
        if key not in allowed:
            sub = f"{path}.{key}" if path else str(key)
            raise fail(sub, f"unknown key {_show(key)} (allowed: {', '.join(allowed)})")


def _as_float(value: Any) -> float | None:
    """``value`` as a finite float, or None if it is not a number (a 400-digit YAML integer included)."""
    return finite_number(value)


def _number(mapping: dict, key: str, path: str, fail: _Fail, *, default: float | None = None,
            required: bool = False, positive: bool = False, maximum: float | None = None) -> float | None:
    """A finite non-negative number (positive, at most ``maximum`` if asked), worded as every reader words it.

    An absent or null optional key gives ``default``; a required key may not be null.
    """
    value = mapping.get(key)
    if value is None and not required:
        return default
    number = _as_float(value)
    if number is None or number < 0 or (positive and number == 0) or (maximum is not None and number > maximum):
        wanted = requirement(minimum=None if positive else 0, above=0 if positive else None, maximum=maximum)
        raise fail(path, f"{key} must be {wanted}, got {_show(value)}{_text_number_hint(value)}")
    return number


def _text_number_hint(value: Any) -> str:
    """A hint for a number YAML read as text: YAML 1.1 wants a dot and a signed exponent (``1e3`` is a string)."""
    if not isinstance(value, str):
        return ""
    try:
        float(value)
    except ValueError:
        return ""
    return " (this is text: YAML reads a quoted number, or one like 1e3 or 1.0e3, as a string; write 1.0e+3)"


def _horizon_error(at_min: float, horizon_h: float) -> str:
    when = "at the end of" if at_min == 60.0 * horizon_h else "after"
    return (f"step at {at_min:.15g} min is {when} the scenario horizon of {horizon_h:.15g} h; "
            f"steps must come before it (raise horizon_h)")


def _parse_step(raw: Any, i: int, horizon_h: float, fail: _Fail, lines: _Lines) -> Step:
    """One step, checked against the action table: its action, technique, targets and parameters, in that order."""
    path = f"steps[{i}]"
    if not isinstance(raw, dict):
        raise fail(path, "each step must be a mapping")
    _reject_unknown(raw, _STEP_KEYS, path, fail)
    for key in ("at_min", "action", "technique"):
        if key not in raw:
            raise fail(path, f"missing {key}")
    at_min = _number(raw, "at_min", f"{path}.at_min", fail, required=True)
    if at_min >= 60.0 * horizon_h:
        raise fail(f"{path}.at_min", _horizon_error(at_min, horizon_h))
    action = _parse_action(raw["action"], path, fail)
    technique = _parse_technique(raw["technique"], path, fail)
    selector = _parse_targets(raw.get("targets"), action, path, fail, lines)
    parameters = _parse_parameters(raw, action, path, fail)
    return Step(index=i, at_min=at_min, action=action.name, technique=technique, targets=selector,
                note=_optional_text(raw, "note", f"{path}.note", fail), place=lines.place(path), **parameters)


def _parse_action(value: Any, path: str, fail: _Fail) -> ActionType:
    """The action's record in the action table."""
    action = _text(value, "action", f"{path}.action", fail)
    if action not in ACTION_TYPES:
        raise fail(f"{path}.action", f"unknown action {_show(action)} (known: {', '.join(ACTION_TYPES)})")
    return ACTION_TYPES[action]


def _parse_technique(value: Any, path: str, fail: _Fail) -> str:
    """An ATT&CK for ICS technique id (upper case), or :data:`NOT_AN_ATTACK`."""
    technique = _text(value, "technique", f"{path}.technique", fail).strip().upper()
    if technique == NOT_AN_ATTACK.upper():
        return NOT_AN_ATTACK  # a storm, a fault, a cold snap: the stress cases that are not attacks
    if technique not in techniques():
        raise fail(f"{path}.technique", f"{_show(value)} is not an ATT&CK for ICS technique id (v{ATTACK_VERSION})")
    return technique


def _parse_targets(raw: Any, action: ActionType, path: str, fail: _Fail, lines: _Lines) -> Selector | None:
    """The step's selector, present exactly when the action takes targets, of a kind it acts on."""
    if action.targets is None:
        if raw is not None:
            raise fail(f"{path}.targets", f"action {action.name} takes no targets")
        return None
    if raw is None:
        raise fail(path, f"action {action.name} needs targets")
    selector = _parse_selector(raw, f"{path}.targets", fail, lines)
    if selector.kind not in action.targets:
        raise fail(f"{path}.targets.kind",
                   f"action {action.name} acts on {' or '.join(action.targets)}, not {selector.kind}")
    return selector


def _parse_parameters(raw: dict, action: ActionType, path: str, fail: _Fail) -> dict[str, float | None]:
    """Every parameter of the table: its number checked, then required or refused as the action says.

    Each parameter's number is checked first whatever the action, so a bad
    number is named as such before the question whether the action takes it.
    """
    values: dict[str, float | None] = {}
    for param in PARAMETERS.values():
        sub = f"{path}.{param.key}"
        value = _number(raw, param.key, sub, fail, default=param.default, positive=param.positive,
                        maximum=param.maximum)
        if value is None and param.key in action.needs:
            raise fail(path, f"{action.name} needs {param.key} ({param.meaning})")
        if raw.get(param.key) is not None and param.key not in action.takes:
            raise fail(sub, param.refusal.format(key=param.key, action=action.name,
                                                 takers=" or ".join(takers(param.key))))
        values[param.key] = value if param.key in action.takes else None
    return values


def _parse_selector(raw: Any, path: str, fail: _Fail, lines: _Lines) -> Selector:
    if not isinstance(raw, dict):
        raise fail(path, "targets must be a mapping with kind and ids, where or strategy")
    _reject_unknown(raw, _SELECTOR_KEYS, path, fail)
    kind = raw.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise fail(f"{path}.kind", f"kind must be one of {', '.join(KINDS)}, got {_show(kind)}")
    ids = _parse_ids(_optional(raw, "ids", None), kind, f"{path}.ids", fail)
    where = _parse_where(_optional(raw, "where", {}), f"{path}.where", fail)
    strategy = raw.get("strategy")
    if strategy is not None and (not isinstance(strategy, str) or strategy not in ("random", "top")):
        raise fail(f"{path}.strategy", f"strategy must be random or top, got {_show(strategy)}")
    by = raw.get("by")
    k = raw.get("k")
    if strategy is not None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise fail(f"{path}.k", f"strategy {strategy} needs k, a positive integer (got {_show(k)})")
        if strategy == "top" and (not isinstance(by, str) or by not in MEASURES):
            raise fail(f"{path}.by", f"top needs by: one of {', '.join(MEASURES)} (got {_show(by)})")
        if strategy == "random" and by is not None:
            raise fail(f"{path}.by", "by applies to strategy top only")
    elif k is not None or by is not None:
        raise fail(path, "k and by need a strategy (random or top)")
    if ids is not None and (where or strategy):
        raise fail(path, "give either ids or where/strategy, not both")
    return Selector(kind=kind, ids=ids, where=where, strategy=strategy, by=by, k=k, place=lines.place(path))


def _parse_ids(raw: Any, kind: str, path: str, fail: _Fail) -> tuple[str | int, ...] | None:
    """Names, indices or ``table:index`` ids, checked as far as they can be without the system.

    A bare index is refused for kind branch: lines and transformers are
    numbered separately, so ``0`` could be either.
    """
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw or not all(isinstance(x, (str, int)) and not isinstance(x, bool)
                                                       for x in raw):
        hint = f" {BOOL_HINT}" if isinstance(raw, list) and any(isinstance(x, bool) for x in raw) else ""
        raise fail(path, f"ids must be a non-empty list of names or indices{hint}")
    tables = ("line", "trafo") if kind == "branch" else (kind,)
    for token in raw:
        if isinstance(token, int) and token.bit_length() > 63:  # no pandapower index is that large
            raise fail(path, f"index {_show(token)} is out of range")
        if kind == "branch" and isinstance(token, int):
            raise fail(path, f"ambiguous branch id {token}: write line:{token} or trafo:{token}")
        table, index = split_indexed_id(token) or ("", 0)
        if index > _MAX_INDEX:
            raise fail(path, f"index {_show(token)} is out of range")
        if kind != "substation" and kind not in LAYER_TARGET_KINDS and table in KINDS and table not in tables:
            raise fail(path, f"id {_show(token)} is a {table}, not a {kind}")
    return tuple(raw)


def _parse_where(raw: Any, path: str, fail: _Fail) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """Tag filter: tag name -> one value or a list of values (any of them matches).

    Tag names and values must be scalars: they are compared with the tags read
    from substations.csv, which are always strings or numbers.
    """
    if not isinstance(raw, dict):
        raise fail(path, "where must be a mapping of tag: value or [values]")
    where = []
    for tag, value in raw.items():
        sub = f"{path}.{tag}"
        if isinstance(tag, bool) or not isinstance(tag, (str, int, float)):
            hint = f" {BOOL_HINT}" if isinstance(tag, bool) else ""
            raise fail(sub, f"a tag name must be text, got {_show(tag)}{hint}")
        values = tuple(value) if isinstance(value, list) else (value,)
        if not values:
            raise fail(sub, "empty list of values")
        for item in values:
            if item is None or not isinstance(item, (str, int, float, datetime.date)):
                raise fail(sub, f"tag {one_line(tag)} takes a string or a number, or a list of them; "
                                f"got {_show(item)}")
        where.append((str(tag), values))
    return tuple(where)
