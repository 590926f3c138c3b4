"""Fuzzing the command line (issue 11): hypothesis writes scenario YAML and system manifests, the CLI reads them.

Every generated input is mostly well formed (names, steps, selectors and manifest keys from gridsim's own
vocabulary), then mutated: keys dropped, renamed or added, values swapped for the wrong type, 400-digit
integers, 1e308, nan, inf, negatives, unicode, deep nesting, YAML anchors and aliases, invalid text.
``gridsim validate``, ``show`` and ``run`` are run in-process through click's ``CliRunner``, and each
invocation must end in one of two ways:

* success: exit status 0, and ``run`` leaves exactly one bundle folder in ``--out``;
* a user error: exit status 2, exactly one non-empty line on stderr, starting with ``Error:`` (and nothing on
  stdout from ``run``), and nothing at all in ``--out``: no bundle, no ``.partial`` folder, not even the folder.

Never a traceback (exit status 1, an exception other than ``SystemExit``), and never a hang: the stated bound
is ``HANG_BOUND_S`` = 30 s per invocation, enforced by ``signal.alarm`` (a run on case9 takes about a second).

Examples are derandomized, so CI draws the same inputs every time. pandapower rebuilds its case9 from JSON
in seconds, which would dominate the run time; the fuzzer is about how gridsim reads its inputs, so the stock
net is built once per session (conftest's ``stock_net``) and copied for each load
(:func:`_stock_case9_built_once`).
"""

from __future__ import annotations

import copy
import datetime
import math
import re
import shutil
import signal
import tempfile
import time
import traceback
from pathlib import Path

import pandapower as pp
import pytest
import yaml
from click.testing import CliRunner, Result
from conftest import stock_net
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gridsim.cli.main import cli
from gridsim.errors import InputError
from gridsim.model.grid import stock_cases
from gridsim.scenario.schema import ACTIONS, KINDS, LAYER_TARGET_KINDS, MEASURES, parse_scenario, split_indexed_id
from gridsim.scenario.techniques import techniques

#: Longest any one invocation may take before it counts as a hang, seconds.
HANG_BOUND_S = 30
CASE9 = "pandapower:case9"
#: Reproducible draws; no example database, so a run does not depend on what an earlier one found.
FUZZ = settings(deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --------------------------------------------------------------------------- running the CLI


class _Hang(BaseException):
    """Raised by the alarm: a BaseException, so neither gridsim's handlers nor CliRunner swallow it."""


def _on_alarm(signum, frame):
    raise _Hang(f"no answer within {HANG_BOUND_S} s")


@pytest.fixture(scope="module", autouse=True)
def _stock_case9_built_once():
    """``pandapower:case9`` built once and deep-copied per load (the same net, in milliseconds, not seconds)."""
    net = stock_net("case9")
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(stock_cases(), "case9", lambda: copy.deepcopy(net))
        yield


def invoke(*args: str) -> Result:
    """``gridsim *args`` in-process, failing the test if it takes longer than ``HANG_BOUND_S``.

    ``gridsim run`` installs a SIGTERM handler; the test process gets its own back afterwards.
    """
    term, alarm = signal.getsignal(signal.SIGTERM), signal.signal(signal.SIGALRM, _on_alarm)
    started = time.monotonic()
    signal.alarm(HANG_BOUND_S)
    try:
        result = CliRunner().invoke(cli, list(args))
    except _Hang:
        pytest.fail(f"gridsim {' '.join(args)}: hung (no answer within {HANG_BOUND_S} s)")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, alarm)
        signal.signal(signal.SIGTERM, term)
    elapsed = time.monotonic() - started
    assert elapsed < HANG_BOUND_S, f"gridsim {' '.join(args)} took {elapsed:.0f} s"
    return result


def check(result: Result, *, out: Path | None = None, quiet_on_error: bool = False) -> None:
    """Exit 0 (and one bundle in ``out``), or exit 2 with one ``Error:`` line and nothing in ``out``."""
    crash = result.exception is not None and not isinstance(result.exception, SystemExit)
    trace = "".join(traceback.format_exception(*result.exc_info)) if crash and result.exc_info else ""
    assert not crash and result.exit_code in (0, 2), (
        f"exit {result.exit_code}, {result.exception!r}\n{trace}\nstderr: {result.stderr}")
    if result.exit_code == 0:
        if out is not None:
            found = sorted(p.name for p in out.iterdir())
            assert len(found) == 1 and not found[0].startswith("."), f"--out holds {found}"
            assert (out / found[0] / "summary.json").is_file()
        return
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and lines[0][len("Error:"):].strip(), (
        f"not one error line: {result.stderr!r}")
    if quiet_on_error:
        assert result.stdout == "", f"stdout of a failed run: {result.stdout!r}"
    if out is not None:
        assert not out.exists(), f"a failed run left {sorted(p.name for p in out.iterdir())} in --out"


# --------------------------------------------------------------------------- values and mutations


class Raw:
    """Text written verbatim into the document (YAML or TOML) in place of a value: what a dumper cannot make."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return f"Raw({self.text[:40]!r})"


BIG = 10 ** 400
#: Values of the wrong kind or size, written by the dumpers themselves.
COMMON_NASTY = [BIG, -BIG, 1e308, -1e308, math.inf, -math.inf, math.nan, 0, -1, -0.0, 5e-324, 1e-300, 2 ** 63,
                True, False, "", " ", "x" * 5000, "Київ 東京 \u202e", "\t", "0", "1e3", "yes",
                [], {}, [1, 2], [[[]]], {"a": 1}, {"a": {"b": {"c": [1]}}}, datetime.date(2015, 12, 23)]
#: Text with line breaks, as values and as keys: every error line must escape them.
LINE_BROKEN = ["a\nb", "\u2028", "a\r\nb", "\x85"]
YAML_NASTY = COMMON_NASTY + [None, b"\x00\xff", *LINE_BROKEN]
UNKNOWN_KEYS = ["colour", "Name", "note ", "\u00e9t\u00e9", "1", "__proto__", "a.b", "[x]", "a\tb", *LINE_BROKEN]
#: YAML scalars and structures no dumper writes: bad tags, bad dates, huge numbers, recursion, deep nesting.
YAML_RAW = [
    "9" * 5000, "-" + "9" * 400, "0x" + "f" * 5000, "0o777", "0b101", "1_000", "190:20:30", ".NaN", "-.inf",
    "1.0e+3", "2015-02-30", "2001-12-14 21:59:43.10 -5", "~", "no", "on", "!!float x", "!!int 0xZZ",
    "!!binary aGVsbG8=", "!!python/object/apply:os.system ['true']", "!!set {a, b}", "!!omap [a: 1]",
    '"\\ud800"', '"\\udfff x"', '"\\x00"', '"\\u2028"', '"\\U0010FFFF"', "&a [*a]", "&b {k: *b}", "*nowhere",
    "[" * 45 + "]" * 45, "[" * 60 + "]" * 60, "[" * 3000 + "]" * 3000, "{? [1, 2]: 3}", "{a: 1, a: 2}",
    "!!timestamp 2001-12-14",
]


def _slots(node, out, seen):
    """Every (container, key) of a document, each container once (documents may share or contain themselves)."""
    if id(node) in seen:
        return out
    seen.add(id(node))
    if isinstance(node, dict):
        for key in list(node):
            out.append((node, key))
            _slots(node[key], out, seen)
    elif isinstance(node, list):
        for i in range(len(node)):
            out.append((node, i))
            _slots(node[i], out, seen)
    return out


@st.composite
def mutated(draw, doc: dict, values: list, raw: list[str], keys: list[str], max_mutations: int = 3) -> dict:
    """``doc`` with up to ``max_mutations`` random edits (none in about half the draws), in place: dropped,
    renamed or added keys, replaced values, nodes shared under two keys or containing themselves.

    ``values`` are replacements a dumper writes, ``raw`` ones written verbatim, ``keys`` the names of unknown
    keys.
    """
    nasty = st.one_of(st.sampled_from(values), st.sampled_from(raw).map(Raw), st.text(max_size=12))
    if not draw(st.booleans()):
        return doc
    for _ in range(draw(st.integers(1, max_mutations))):
        slots = _slots(doc, [], set())
        if not slots:
            break
        parent, key = draw(st.sampled_from(slots))
        how = draw(st.sampled_from(["value", "drop", "unknown key", "value", "rename", "unknown key", "share", "wrap",
                                    "self"]))
        if how == "drop":
            del parent[key]
        elif how == "value":
            parent[key] = draw(nasty)
        elif how == "unknown key" and isinstance(parent, dict):
            parent[draw(st.sampled_from(keys))] = draw(nasty)
        elif how == "rename" and isinstance(parent, dict):
            new = draw(st.sampled_from([str(key).upper(), str(key)[:-1] or "x", f"{key} ", f"{key}\r", f"{key}\n"]))
            parent[new] = parent.pop(key)
        elif how == "share":  # one node under two keys: the YAML dumper writes an anchor and an alias
            other_parent, other_key = draw(st.sampled_from(slots))
            parent[key] = other_parent[other_key]
        elif how == "wrap":
            parent[key] = draw(st.sampled_from([[parent[key]], {"x": parent[key]}, [parent[key]] * 3]))
        elif how == "self" and isinstance(parent[key], (list, dict)):  # a node that contains itself
            inner = parent[key]
            inner.append(inner) if isinstance(inner, list) else inner.__setitem__("self", inner)
    return doc


# --------------------------------------------------------------------------- scenarios

TECHNIQUE_IDS = sorted(techniques())
#: Actions that case9 (no infrastructure layers) can carry out.
GRID_ACTIONS = [a for a, kinds in ACTIONS.items() if kinds is None or set(kinds) - set(LAYER_TARGET_KINDS)]
#: Ids of case9's elements by kind, most of them there (case9 has no transformers).
SELECTOR_KINDS = {"substation": ["bus0", "bus4", "bus8", "bus1", "bus2", "bus6", "nowhere", 0, "substation:1"],
                  "bus": [0, 4, 8, "bus:3", 1, 2, 99, -1, "line:0", "1"],
                  "line": [0, 3, 8, "line:2", 5, 6, 9, "line:" + "9" * 30, "trafo:0", -1],
                  "trafo": ["trafo:0", 0], "branch": ["line:0", "line:8", "line:4", "line:1", "trafo:0", 3],
                  "gen": [0, 1, "gen:1", 2], "load": [0, 1, 2, "load:2", "L1"]}


def _selector(draw, kinds) -> dict:
    grid = [k for k in kinds if k not in LAYER_TARGET_KINDS and k != "trafo"] or list(kinds)
    kind = draw(st.sampled_from(grid) if draw(st.integers(0, 9)) < 9 else st.sampled_from(KINDS))
    form = draw(st.sampled_from(["ids", "where", "random", "top"]))
    if form == "ids":
        return {"kind": kind, "ids": draw(st.lists(st.sampled_from(SELECTOR_KINDS.get(kind, ["x", 0])),
                                                   min_size=1, max_size=3))}
    if form == "where":
        values = st.sampled_from([345, "345", [345, 230], 230, "north", "a"])
        tag = draw(st.sampled_from(["voltage_kv"] * 4 + ["operator", "zone"]))  # case9's sites have voltage_kv only
        return {"kind": kind, "where": {tag: draw(values)}}
    selector = {"kind": kind, "strategy": form, "k": draw(st.integers(1, 3))}
    if form == "top":
        selector["by"] = draw(st.sampled_from(MEASURES))
    return selector


@st.composite
def scenario_docs(draw) -> dict:
    """A scenario as a Python structure, valid for case9 in most draws before mutation."""
    doc: dict = {"name": draw(st.sampled_from(["fuzz", "Київ 2015", "a/b", " spaced ", "x" * 300, "two\nlines"]))}
    if draw(st.booleans()):
        doc["description"] = draw(st.text(max_size=30))
    if draw(st.booleans()):
        doc["references"] = draw(st.lists(st.text(max_size=10), max_size=2))
    if draw(st.booleans()):
        doc["seed"] = draw(st.integers(0, 2 ** 70))
    horizon = draw(st.sampled_from([None, 0.5, 1, 6, 24.0, 8760]))
    if horizon is not None:
        doc["horizon_h"] = horizon
    if draw(st.integers(0, 3)) == 0:
        doc["start"] = draw(st.sampled_from(["2015-12-23T15:30:00+02:00", datetime.date(2015, 12, 23)]))
    if draw(st.integers(0, 3)) == 0:
        doc["system"] = draw(st.sampled_from([CASE9, "pandapower:case9999", "nowhere", "matpower:nocase"]))
    if draw(st.integers(0, 4)) == 0:
        doc["reported"] = {draw(st.sampled_from(["peak_mw_lost", "cascade_depth", "frequency.lowest_hz"])): {
            "value": draw(st.floats(0, 1e6)), "source": "fuzz", "tolerance_pct": 10}}
    limit_min = 60.0 * (horizon or 24.0)
    steps = []
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(GRID_ACTIONS * 3 + list(ACTIONS)))
        step: dict = {"at_min": draw(st.sampled_from([0, 10, 0.25 * limit_min, 59.5])), "action": action,
                      "technique": draw(st.sampled_from(["none", "T0855", " t0816 ", *TECHNIQUE_IDS[:40]]))}
        if ACTIONS[action] is not None:
            step["targets"] = _selector(draw, ACTIONS[action])
        if action == "scale_loads":
            step["factor"] = draw(st.sampled_from([0, 0.5, 1.3, 1000]))
        if action not in ("access", "destroy_firmware") and draw(st.booleans()):
            step["duration_min"] = draw(st.sampled_from([1, 30, 1e-9, 1e6]))
        if draw(st.booleans()):
            step["note"] = draw(st.text(max_size=20))
        steps.append(step)
    doc["steps"] = steps
    return doc


def yaml_text(doc, flow: bool) -> str:
    """``doc`` as YAML, shared and recursive nodes as anchors and aliases, :class:`Raw` values verbatim."""
    raws: list[str] = []
    memo: dict[int, object] = {}

    def plain(node):
        if isinstance(node, Raw):
            raws.append(node.text)
            return f"RAW{len(raws) - 1}Z"
        if id(node) in memo:
            return memo[id(node)]
        if isinstance(node, dict):
            memo[id(node)] = copied = {}
            copied.update({plain(k) if isinstance(k, Raw) else k: plain(v) for k, v in node.items()})
            return copied
        if isinstance(node, list):
            memo[id(node)] = copied = []
            copied.extend(plain(v) for v in node)
            return copied
        return node

    text = yaml.safe_dump(plain(doc), default_flow_style=flow, allow_unicode=True, sort_keys=False, width=10 ** 6)
    return re.sub(r"RAW(\d+)Z", lambda m: raws[int(m[1])], text)


#: Whole documents: empty, not a mapping, several documents, an alias bomb, a BOM, bytes that are not UTF-8.
WHOLE_YAML = [
    b"", b"---\n", b"~\n", b"[]\n", b"42\n", b'"text"\n', b"name: x\n---\nname: y\n", b"\xef\xbb\xbfname: x\n",
    b"name: \xff\xfe\nsteps: [{at_min: 0, action: access, technique: T0886}]\n", b"\x00\x01\x02",
    b"name: x\nsteps:\n\t- at_min: 0\n", b"[" * 100000,
    ("a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))
     + "name: *i\nsteps: *i\n").encode(),
]


@st.composite
def scenario_files(draw) -> bytes:
    """The bytes of a scenario file: a mutated scenario, its text cut short, or a whole odd document."""
    choice = draw(st.integers(0, 9))  # hypothesis starts from 0: the plain, mutated document
    if choice == 9:
        return draw(st.sampled_from(WHOLE_YAML))
    doc = draw(mutated(draw(scenario_docs()), YAML_NASTY, YAML_RAW, UNKNOWN_KEYS))
    text = yaml_text(doc, flow=draw(st.booleans()))
    if choice == 8:
        text = text[: draw(st.integers(0, len(text)))]
    return text.encode("utf-8", errors="surrogatepass")


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


GOOD_SCENARIO = yaml_text({"name": "good", "steps": [
    {"at_min": 0, "action": "access", "technique": "T0886"},
    {"at_min": 10, "action": "open_breakers", "technique": "T0855",
     "targets": {"kind": "substation", "strategy": "random", "k": 2}, "duration_min": 30}]}, flow=False).encode()


@settings(FUZZ, max_examples=100)
@given(scenario_files(), st.booleans())
@example(GOOD_SCENARIO, True)
def test_validate_exits_0_or_2_with_one_line(data, resolve):
    """``gridsim validate``, on its own or (``resolve``) resolving the targets on case9."""
    with tempfile.TemporaryDirectory(prefix="gridsim-fuzz-") as tmp:
        scenario = str(_write(Path(tmp), "scenario.yaml", data))
        check(invoke("validate", scenario, *(("--system", CASE9) if resolve else ())))


#: Loads scaled to nothing for a while, then back (was a ZeroDivisionError when the step ended).
ZERO_FACTOR_SCENARIO = yaml_text({"name": "zero", "horizon_h": 2, "steps": [
    {"at_min": 10, "action": "scale_loads", "technique": "none", "targets": {"kind": "load", "ids": [0, 1]},
     "factor": 0, "duration_min": 30}]}, flow=False).encode()


@settings(FUZZ, max_examples=60)
@given(scenario_files())
@example(GOOD_SCENARIO)
@example(ZERO_FACTOR_SCENARIO)
def test_run_exits_0_or_2_and_leaves_a_bundle_or_nothing(data):
    with tempfile.TemporaryDirectory(prefix="gridsim-fuzz-") as tmp:
        scenario, out = _write(Path(tmp), "scenario.yaml", data), Path(tmp) / "out"
        check(invoke("run", str(scenario), "--system", CASE9, "--out", str(out), "--no-plot"), out=out,
              quiet_on_error=True)


# --------------------------------------------------------------------------- system manifests

#: TOML has no null; the rest as for YAML.
TOML_NASTY = COMMON_NASTY + LINE_BROKEN
TOML_RAW = [
    "-" + "9" * 400, "0x" + "f" * 20, "1e400", "-1e400", "+inf", "-nan", "0o777", "0b1", "1_000", "01", "1__0",
    "1979-05-27T07:32:00Z", "07:32:00", "1979-05-27", "true", "[1,", "{a = 1", "'unterminated", '"\\ud800"',
    '"\\u0000"', "[[1, 2], [3]]", "{ a = { b = { c = [] } } }", "[" * 50 + "]" * 50,
    "[1, 'two', 3.0, true]", "nan", "inf", "'''literal'''", "'''\nmulti-line'''",
    "9" * 5000, "0x" + "f" * 5000, "[" * 1000 + "]" * 1000, '"a\\nb"', '"a\\u2028b"', '"\\u001b[2J"',
]


def _toml_key(key) -> str:
    key = str(key)
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_string(key)


def _toml_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\u{ord(m[0]):04x}", escaped) + '"'


def _toml_value(value, seen=()) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if id(value) in seen:  # TOML cannot refer back: a node that contains itself is written as an empty one
        return "[]" if isinstance(value, list) else "{}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v, (*seen, id(value))) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v, (*seen, id(value)))}" for k, v in value.items()) + "}"
    raise TypeError(value)


def toml_text(doc: dict) -> str:
    """``doc`` as TOML, by hand (tomllib only reads): tables as ``[a.b]`` headers, the rest inline."""
    lines: list[str] = []

    def table(node: dict, path: list[str], seen: tuple) -> None:
        inner = [(k, v) for k, v in node.items() if isinstance(v, dict) and id(v) not in seen]
        if path:
            lines.append("[" + ".".join(_toml_key(p) for p in path) + "]")
        for key, value in node.items():
            if not (isinstance(value, dict) and id(value) not in seen):
                lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
        for key, value in inner:
            table(value, [*path, str(key)], (*seen, id(value)))

    table(doc, [], (id(doc),))
    return "\n".join(lines) + "\n"


@st.composite
def manifest_docs(draw) -> dict:
    """A system.toml for case9 (stock, or its grid.json) with the keys of docs/FORMATS.md, valid before mutation."""
    power: dict = {"source": draw(st.sampled_from([CASE9] * 6 + ["grid.json", "nowhere.json", "pandapower:nope"]))}
    for key, values in (("frequency_hz", [50, 60, 60.0]), ("overload_tolerance", [0, 0.1, 0.5]),
                        ("rating_margin", [0, 0.5, 2.0]), ("unrated_branches", ["base-flow", "never-trip"]),
                        ("base_overloads", ["raise", "trip"])):
        if draw(st.booleans()):
            power[key] = draw(st.sampled_from(values))
    if draw(st.booleans()):
        frequency: dict = {}
        hz = power.get("frequency_hz", 50) / 60  # thresholds are in Hz of the system's frequency
        for key, values in (("droop", [0.05, 0.04]), ("governor_s", [5.0, 0.5]), ("damping", [1.0, 0]),
                            ("trip_below_hz", [57.5 * hz, 59.0 * hz]), ("trip_above_hz", [61.8 * hz]),
                            ("default_inertia_s", [4.0, 0.1]), ("reconnect_min", [30, 0]),
                            ("ufls", [[[59.1 * hz, 0.05], [58.9 * hz, 0.06]], [], [[59.5 * hz, 0.5]]]),
                            ("machines", ["machines.csv"])):
            if draw(st.booleans()):
                frequency[key] = draw(st.sampled_from(values))
        power["frequency"] = frequency
    doc: dict = {"name": draw(st.sampled_from(["fuzz-grid", "Київ", "two\nlines", "a\u2028b"])), "power": power}
    if draw(st.booleans()):
        doc["description"] = draw(st.text(max_size=20))
    if draw(st.booleans()):
        doc["references"] = ["a", "b"]
    if draw(st.booleans()):
        doc["customers"] = {"kw_per_customer": draw(st.sampled_from([2.0, 0.5])), "people_per_customer": 2.5}
        if draw(st.booleans()):
            doc["customers"]["table"] = "customers.csv"
    if draw(st.booleans()):
        restoration = {key: draw(st.sampled_from(values)) for key, values in (
            ("remote_min", [5, 0]), ("manual_h", [1.0, 0.25]), ("crews", [1, 4]), ("detect_blind_min", [30]),
            ("max_reclose", [0, 2]), ("generator_restart_h", [4.0])) if draw(st.booleans())}
        if draw(st.booleans()):
            restoration["operators"] = {"north": {"crews": 2, "manual_h": 2.0}}
        doc["restoration"] = restoration
    if draw(st.booleans()):
        doc["substations"] = {"table": "substations.csv"}
    return doc


CSV_NASTY = ["", "nan", "inf", "-1", "1e400", "9" * 400, "abc", "0", "2.5", "1;2", "Київ", '"quoted"', "x" * 300]


@st.composite
def csv_tables(draw) -> dict[str, bytes]:
    """substations.csv, customers.csv and machines.csv of case9, with a few cells replaced by odd ones."""
    sites = draw(st.sampled_from([[("north", "0;1;2", "north"), ("south", "3;4", "south")],
                                  [("all", "0;1;2;3;4;5;6;7;8", "one")], [("a", "0", "x"), ("b", "1", "y")]]))
    tables = {
        "substations.csv": [["name", "buses", "operator", "manual_h", "remote_min"],
                            *([name, buses, op, "1.5", ""] for name, buses, op in sites)],
        "customers.csv": [["load", "customers"], ["0", "1000"], ["1", "2000"], ["2", "0"]],
        "machines.csv": [["gen", "rating_mva", "inertia_s"], ["0", "192", "6.4"], ["1", "128", "3.0"],
                         ["2", "247.5", "9.55"]],
    }
    for _ in range(max(0, draw(st.integers(0, 4)) - 2)):  # no odd cell in about half the draws
        rows = tables[draw(st.sampled_from(sorted(tables)))]
        row = draw(st.integers(0, len(rows) - 1))
        if draw(st.integers(0, 4)) == 4:
            rows[row] = rows[row] + ["extra"]
        else:
            rows[row][draw(st.integers(0, len(rows[row]) - 1))] = draw(st.sampled_from(CSV_NASTY))
    files = {name: "".join(",".join(row) + "\n" for row in rows).encode() for name, rows in tables.items()}
    if draw(st.integers(0, 9)) == 9:
        files[draw(st.sampled_from(sorted(files)))] = b"name,buses\n\xff\xfe,0\n"
    return files


#: Whole manifests: empty, malformed, a duplicated table, NUL, bytes that are not UTF-8.
WHOLE_TOML = [b"", b"name = \n", b"[power\n", b'name = "x"\n\x00', b"\xff\xfe", b'name = "x"\n[power]\n',
              b'name = "x"\n[power]\nsource = "pandapower:case9"\n[power]\nsource = "x"\n',
              b'name = "x"\nname = "y"\n[power]\nsource = "pandapower:case9"\n']


@st.composite
def system_folders(draw) -> tuple[bytes, dict[str, bytes]]:
    """The bytes of a system.toml and the tables beside it."""
    files = draw(csv_tables())
    choice = draw(st.integers(0, 9))  # hypothesis starts from 0: the plain, mutated document
    if choice == 9:
        return draw(st.sampled_from(WHOLE_TOML)), files
    text = toml_text(draw(mutated(draw(manifest_docs()), TOML_NASTY, TOML_RAW, UNKNOWN_KEYS)))
    if choice == 8:
        text = text[: draw(st.integers(0, len(text)))]
    return text.encode("utf-8", errors="surrogatepass"), files


@pytest.fixture(scope="module")
def case9_json(tmp_path_factory) -> Path:
    """case9 written by pandapower, for manifests whose source is a grid file.

    Its external grid is made a slack generator, as in topologies/wscc9: an isolated grid, so that the
    frequency model of ``[power.frequency]`` has machines to work with.
    """
    net = stock_net("case9")  # a copy: the net built once is not changed
    ext = net.ext_grid.iloc[0]
    pp.create_gen(net, int(ext.bus), p_mw=71.6, vm_pu=float(ext.vm_pu), max_p_mw=250.0, min_p_mw=10.0, slack=True,
                  index=2)
    net.ext_grid.drop(net.ext_grid.index, inplace=True)
    path = tmp_path_factory.mktemp("case9") / "grid.json"
    pp.to_json(net, str(path))
    return path


MANIFEST_SCENARIO = yaml_text({"name": "fuzz-manifest", "horizon_h": 6, "steps": [
    {"at_min": 10, "action": "open_breakers", "technique": "T0855",
     "targets": {"kind": "substation", "strategy": "random", "k": 1}, "duration_min": 30},
    {"at_min": 20, "action": "trip_generators", "technique": "T0816", "targets": {"kind": "gen", "ids": [1]}},
    {"at_min": 30, "action": "scale_loads", "technique": "none", "targets": {"kind": "load", "ids": [0]},
     "factor": 1.2}]}, flow=False).encode()
GOOD_MANIFEST = (toml_text({"name": "good", "power": {"source": CASE9, "frequency_hz": 60, "frequency": {}},
                            "restoration": {"crews": 2}, "substations": {"table": "substations.csv"}}).encode(),
                 {"substations.csv": b"name,buses,operator\nnorth,0;1;2,north\n"})


@settings(FUZZ, max_examples=40)
@given(system_folders(), st.one_of(st.just(MANIFEST_SCENARIO), scenario_docs().map(
    lambda doc: yaml_text(doc, flow=False).encode())))
@example(GOOD_MANIFEST, MANIFEST_SCENARIO)
def test_show_and_run_exit_0_or_2_on_any_manifest(case9_json, folder_files, scenario_text):
    """``gridsim show`` the system, then ``gridsim run`` a scenario on it: a fixed one, or an unmutated draw."""
    manifest, files = folder_files
    with tempfile.TemporaryDirectory(prefix="gridsim-fuzz-") as tmp:
        folder = Path(tmp) / "system"
        folder.mkdir()
        _write(folder, "system.toml", manifest)
        if b"grid.json" in manifest:
            shutil.copy(case9_json, folder / "grid.json")
        for name, data in files.items():
            _write(folder, name, data)
        check(invoke("show", str(folder)))
        scenario, out = _write(Path(tmp), "scenario.yaml", scenario_text), Path(tmp) / "out"
        check(invoke("run", str(scenario), "--system", str(folder), "--out", str(out), "--no-plot"), out=out,
              quiet_on_error=True)


def test_the_unmutated_examples_succeed(case9_json, tmp_path):
    """The fuzzer's vocabulary is gridsim's: its unmutated inputs validate, show and run (exit 0, one bundle)."""
    scenario = _write(tmp_path, "scenario.yaml", GOOD_SCENARIO)
    assert invoke("validate", str(scenario), "--system", CASE9).exit_code == 0
    result = invoke("run", str(scenario), "--system", CASE9, "--out", str(tmp_path / "out"), "--no-plot")
    assert result.exit_code == 0
    check(result, out=tmp_path / "out")
    folder = tmp_path / "system"
    folder.mkdir()
    manifest, files = GOOD_MANIFEST
    _write(folder, "system.toml", manifest)
    for name, data in files.items():
        _write(folder, name, data)
    assert invoke("show", str(folder)).exit_code == 0
    scenario = _write(tmp_path, "manifest-scenario.yaml", MANIFEST_SCENARIO)
    result = invoke("run", str(scenario), "--system", str(folder), "--out", str(tmp_path / "out2"), "--no-plot")
    assert result.exit_code == 0, result.stderr
    check(result, out=tmp_path / "out2")


# --------------------------------------------------------------------------- what the fuzzer found, fixed

ONE_STEP = "  - {at_min: 0, action: open_breakers, technique: T0855, targets: {kind: substation, %s}}\n"


@pytest.mark.parametrize("text", [
    'name: x\n"a\\nb": 1\nsteps: [{at_min: 0, action: access, technique: T0886}]\n',
    'name: x\nsteps: [{at_min: 0, action: access, technique: T0886, "a\\rb": 1}]\n',
    'name: x\nsteps:\n' + ONE_STEP % 'where: {"a\\u2028b": [[1]]}',
    'name: x\nsteps: [{at_min: 0, action: access, technique: T0886}]\nreported: {"a\\x85b": 1}\n',
    'name: x\n"a\\nb": 1\n"a\\nb": 2\nsteps: [{at_min: 0, action: access, technique: T0886}]\n',
    'name: x\nsystem: "a\\nb"\nsteps: [{at_min: 0, action: access, technique: T0886}]\n',
    'name: x\nsystem: "pandapower:case9\\x1b[2J"\nsteps: [{at_min: 0, action: access, technique: T0886}]\n',
], ids=["top-level key", "step key", "where tag", "reported measure", "duplicate key", "system", "system escape"])
def test_a_line_break_from_the_scenario_stays_escaped_in_the_one_error_line(tmp_path, text):
    """A key is part of the error's path (``steps[0].a\\nb (line 2)``): written raw, it broke the line in two.

    A ``system`` folder is printed by every error about it: one with a line break or a control character is
    refused where it is read.
    """
    with pytest.raises(InputError) as caught:
        parse_scenario(text, source="s.yaml")
    assert len(str(caught.value).splitlines()) == 1 and "\\" in str(caught.value)
    check(invoke("validate", str(_write(tmp_path, "s.yaml", text.encode()))))


@pytest.mark.parametrize("index", ["9" * 5000, "1" + "0" * 19])
def test_an_index_past_int64_is_out_of_range_not_a_traceback(tmp_path, index):
    """``line:`` and 5000 digits raised ValueError (int() refuses more than 4300 digits) in split_indexed_id."""
    text = f"name: x\nsteps:\n  - {{at_min: 0, action: trip_branches, technique: T0855, " \
           f"targets: {{kind: line, ids: ['line:{index}']}}}}\n"
    with pytest.raises(InputError, match=r"steps\[0\].targets.ids \(line 3\): index 'line:\d+.*' is out of range"):
        parse_scenario(text, source="s.yaml")
    check(invoke("validate", str(_write(tmp_path, "s.yaml", text.encode())), "--system", CASE9))


def test_leading_zeros_do_not_make_an_index_long():
    assert split_indexed_id("line:" + "0" * 5000 + "7") == ("line", 7)
    assert split_indexed_id("line:9223372036854775807") == ("line", 2 ** 63 - 1)


@pytest.mark.parametrize("text", ['"\\ud800x"', '"\\ud83d\\ude00"', '"ok \\udfff"'])
def test_a_lone_surrogate_is_malformed_yaml_not_a_crash_after_the_run(tmp_path, text):
    """``name: "\\ud800"`` ran, wrote its bundle, then crashed printing the summary (UnicodeEncodeError)."""
    scenario = _write(tmp_path, "s.yaml", f"name: {text}\nsteps: [{{at_min: 0, action: access, technique: T0886}}]\n"
                                          .encode())
    with pytest.raises(InputError, match=r"line 1, column 7: malformed YAML: cannot read .* halves of UTF-16 pairs"):
        parse_scenario(scenario.read_text(), source="s.yaml")
    out = tmp_path / "out"
    check(invoke("run", str(scenario), "--system", CASE9, "--out", str(out), "--no-plot"), out=out,
          quiet_on_error=True)


def test_names_and_tags_from_the_system_are_escaped_in_target_errors(tmp_path):
    """A manifest name or a substations.csv column with a line break reaches the selectors' errors: one line."""
    folder = tmp_path / "system"
    folder.mkdir()
    _write(folder, "system.toml", b'name = "two\\nlines"\n[power]\nsource = "pandapower:case9"\n'
                                  b'[substations]\ntable = "substations.csv"\n')
    _write(folder, "substations.csv", b'name,buses,"zo\nne"\nnorth,0;1,a\n')
    for target in ("ids: [nowhere]", "where: {colour: red}"):
        scenario = _write(tmp_path, "s.yaml", ("name: x\nsteps:\n" + ONE_STEP % target).encode())
        result = invoke("validate", str(scenario), "--system", str(folder))
        check(result)
        assert result.exit_code == 2 and "two\\nlines" in result.stderr


def test_deep_flow_nesting_is_refused_at_once_not_read_for_minutes(tmp_path):
    """PyYAML's scanner checks every open ``[`` at every token: 1000 lists nested 400 deep (800 kB) took minutes.

    The fuzzer's slowest inputs (a list 3000 deep, 2 s each) led here; the loader now stops at 50 levels.
    """
    nests = ", ".join(["[" * 400 + "]" * 400] * 1000)
    text = f"name: x\nk: [{nests}]\nsteps: [{{at_min: 0, action: access, technique: T0886}}]\n"
    result = invoke("validate", str(_write(tmp_path, "s.yaml", text.encode())))  # first: within the hang bound
    check(result)
    assert "line 2, column 54: malformed YAML: [ and { nested more than 50 deep" in result.stderr
    with pytest.raises(InputError, match="references must be a list of strings"):  # 45 deep is read
        parse_scenario("name: x\nreferences: " + "[" * 45 + "]" * 45 + "\n"
                       "steps: [{at_min: 0, action: access, technique: T0886}]\n", source="s.yaml")
