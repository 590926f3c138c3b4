"""One validator kit for every number an input file gives: the kit itself, then every key and column read through it.

:mod:`gridsim.io.numbers` decides what counts as a number (a 400-digit
integer, a boolean, NaN and the infinities do not), checks the bounds and
says what is wrong in one line. The second half of this file feeds every
number key of a system manifest and every number column of its tables a huge
integer, a NaN and a negative, through :func:`gridsim.loading.load_system`
(and ``gridsim show`` for the cases that once ended in a traceback), and
expects that one line.
"""

from __future__ import annotations

import copy
import functools
import math
from pathlib import Path

import pandapower.networks as pn
import pytest
from click.testing import CliRunner
from hypothesis import example, given
from hypothesis import strategies as st

import gridsim.model.grid
from gridsim.cli.main import cli
from gridsim.errors import InputError
from gridsim.io.manifest import manifest_number
from gridsim.io.numbers import LARGEST, finite_number, number, number_cell, requirement, shown
from gridsim.layers.transport import read_road_graphml
from gridsim.loading import load_system

#: A 400-digit integer: ``float`` and ``math.isfinite`` raise OverflowError on it, ``float("1000...0")`` is inf.
HUGE = 10**400
HUGE_TEXT = str(HUGE)
#: How a message shows the 400-digit text of a cell: quoted, cut at 60 characters.
HUGE_TEXT_SHOWN = "'" + HUGE_TEXT[:56] + "..."
TOO_LARGE = "an integer too large for a number"


def refusal(call, *args, **kwargs) -> str:
    """The message of the InputError ``call`` raises; it must be one line."""
    with pytest.raises(InputError) as caught:
        call(*args, **kwargs)
    message = str(caught.value)
    assert "\n" not in message and "\r" not in message
    return message


# --------------------------------------------------------------------------- the kit

def float_or_none(value: int) -> float | None:
    try:
        return float(value)
    except OverflowError:
        return None


@given(st.one_of(st.integers(), st.integers(min_value=10**300, max_value=10**1000),
                 st.integers(min_value=-(10**1000), max_value=-(10**300))))
@example(HUGE)
@example(-HUGE)
@example(10**5000)  # repr of it raises ValueError: the message must still be one line
def test_an_int_of_any_size_is_a_number_or_one_line_too_large(value):
    expected = float_or_none(value)
    if expected is not None:
        assert number(value, "k", "f.toml") == expected
    else:
        assert refusal(number, value, "k", "f.toml", "line 3") == f"f.toml: line 3: k must be a number, got {TOO_LARGE}"


@given(st.booleans())
def test_a_boolean_is_never_a_number(flag):
    assert finite_number(flag) is None
    assert refusal(number, flag, "k", "f.toml", minimum=0) == f"f.toml: k must be a number >= 0, got {flag}"


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_a_float_is_a_number_when_it_is_finite(value):
    if math.isfinite(value):
        assert number(value, "k", "f.toml") == value
    else:
        assert refusal(number, value, "k", "f.toml") == f"f.toml: k must be a number, got {value!r}"


@given(st.floats(allow_nan=False, allow_infinity=False), st.floats(-1e6, 1e6), st.floats(0, 1e6))
def test_bounds_are_inclusive_and_said_in_the_message(value, low, width):
    high = low + width
    if low <= value <= high:
        assert number(value, "k", "f.toml", minimum=low, maximum=high) == value
    else:
        message = refusal(number, value, "k", "f.toml", minimum=low, maximum=high)
        assert message == f"f.toml: k must be a number in [{low:g}, {high:g}], got {value!r}"


@pytest.mark.parametrize("bounds, inside, outside", [
    ({"minimum": 0.0}, [0.0, 5e-324, 1e308], [-5e-324, -1.0]),
    ({"above": 0.0}, [5e-324, 1.0], [0.0, -0.0, -5e-324]),
    ({"maximum": 1.0}, [1.0, math.nextafter(1.0, 0), -1e308], [math.nextafter(1.0, 2), 2.0]),
    ({"minimum": 0.005, "maximum": 0.5}, [0.005, 0.5], [math.nextafter(0.005, 0), math.nextafter(0.5, 1)]),
    ({"minimum": 0.0, "maximum": LARGEST}, [0.0, LARGEST], [math.nextafter(LARGEST, math.inf), 1.7976931348623157e308]),
    ({"integer": True}, [2.0, 0.0, -7.0, 1e300], [2.5, 5e-324]),
])
def test_floats_at_the_limits(bounds, inside, outside):
    for value in inside:
        assert number(value, "k", "f.toml", **bounds) == value
        assert number_cell(repr(value), "k", "f.csv", **bounds) == value
    for value in outside:
        wanted = requirement(**bounds)
        assert refusal(number, value, "k", "f.toml", **bounds) == f"f.toml: k must be {wanted}, got {value!r}"
        cell = refusal(number_cell, repr(value), "k", "f.csv", **bounds)
        assert cell == f"f.csv: k must be {wanted}, got '{value!r}'"


@pytest.mark.parametrize("bounds, said", [
    ({}, "a number"),
    ({"minimum": 0}, "a number >= 0"),
    ({"above": 0}, "a number > 0"),
    ({"maximum": 1.5}, "a number <= 1.5"),
    ({"minimum": 0.005, "maximum": 0.5}, "a number in [0.005, 0.5]"),
    ({"above": 0, "maximum": 1}, "a number in (0, 1]"),
    ({"minimum": 1e-9, "maximum": LARGEST}, "a number in [1e-09, 1e+12]"),
    ({"minimum": 1, "integer": True}, "a whole number >= 1"),
    ({"minimum": 0, "maximum": 1e10, "integer": True}, "a whole number in [0, 1e+10]"),
])
def test_the_requirement_is_said_one_way(bounds, said):
    assert requirement(**bounds) == said


def test_a_lower_bound_is_inclusive_or_exclusive_not_both():
    with pytest.raises(ValueError):
        number(1.0, "k", "f.toml", minimum=0, above=0)


@given(st.one_of(st.text(), st.none(), st.lists(st.integers()), st.dictionaries(st.text(), st.integers()),
                 st.complex_numbers(), st.binary()))
@example("0.5")  # a number as text is not a number of a manifest
@example("line\nbreak")
@example("x" * 5000)
def test_anything_else_is_refused_in_one_bounded_line(value):
    message = refusal(number, value, "k", "f.toml", "line 2")
    assert message.startswith("f.toml: line 2: k must be a number, got ") and len(message) < 120


@given(st.integers(min_value=-(10**1000), max_value=10**1000))
@example(HUGE)
@example(-HUGE)
def test_a_cell_holding_an_integer_of_any_length(value):
    text = str(value)
    if math.isfinite(float(text)):
        assert number_cell(text, "c", "f.csv") == float(text)
    else:  # a 400-digit integer reads as an infinity
        assert refusal(number_cell, text, "c", "f.csv", "line 2").startswith("f.csv: line 2: c must be a number, got '")


@pytest.mark.parametrize("text", ["nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e400", "-1e400", HUGE_TEXT,
                                  "", " ", "one", "1,5", "0x10", "True", "1e", "--1"])
def test_a_cell_that_is_no_finite_number_is_refused(text):
    assert refusal(number_cell, text, "c", "f.csv", "line 2") == f"f.csv: line 2: c must be a number, got {shown(text)}"


def test_a_blank_cell_gives_its_default_only_when_it_has_one():
    assert number_cell("", "c", "f.csv", blank=4.0) == 4.0
    assert math.isnan(number_cell("", "c", "f.csv", blank=math.nan))
    assert number_cell(" 7 ", "c", "f.csv", blank=4.0) == 7.0  # csv cells come stripped, but float takes spaces
    message = refusal(number_cell, "", "c", "f.csv", "line 9", minimum=0)
    assert message == "f.csv: line 9: c must be a number >= 0, got ''"


@given(st.text())
def test_any_cell_text_is_a_number_or_one_line(text):
    try:
        value = number_cell(text, "c", "f.csv", "line 2", minimum=0)
    except InputError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 120
    else:
        assert math.isfinite(value) and value >= 0


def test_shown_never_raises_and_stays_short():
    assert shown(10**5000) == TOO_LARGE and shown(-HUGE) == TOO_LARGE
    assert shown("a\nb") == "'a\\nb'"
    assert shown("x" * 100) == "'" + "x" * 56 + "..."
    assert shown(2**70) == "1180591620717411303424"  # large, but a float holds it


def test_manifest_number_reads_the_key_or_its_default_and_names_its_line():
    raw = "[power]\nsource = 'x'\noverload_tolerance = -1\n"
    table = {"source": "x", "overload_tolerance": -1}
    assert manifest_number(table, "rating_margin", 0.5, "power", "s.toml", raw, minimum=0) == 0.5
    assert refusal(manifest_number, table, "overload_tolerance", 0.1, "power", "s.toml", raw, minimum=0) == (
        "s.toml: line 3: power.overload_tolerance must be a number in [0, 1e+12], got -1")


# --------------------------------------------------------------------------- every key and column


@pytest.fixture
def quick_case9(monkeypatch):
    """``pandapower:case9`` from a copy of one net built once: pandapower's own JSON decoder takes seconds."""
    net = _case9()
    monkeypatch.setattr(gridsim.model.grid, "stock_cases", lambda: {"case9": lambda: copy.deepcopy(net)})


@functools.cache
def _case9():
    return pn.case9()


CASE9 = 'name = "x"\n[power]\nsource = "pandapower:case9"\n'
WATER = CASE9 + '[layers.water]\nnetwork = "wntr:Net1"\n'
TRANSPORT = CASE9 + ('[layers.transport]\nnodes = "nodes.csv"\nlinks = "links.csv"\ndemand = "demand.csv"\n'
                     'rail = "rail.csv"\n')
ROADS = {"nodes.csv": "id,x,y\nA,0,0\nB,1,0\n",
         "links.csv": "id,from,to,capacity_veh_h,free_flow_min,bpr_alpha,bpr_beta\nL1,A,B,1000,5,,\nL2,B,A,1000,5,,\n",
         "demand.csv": "origin,destination,trips_per_h\nA,B,100\n",
         "rail.csv": "id,riders_per_h\nR1,500\n"}
DEPENDENCIES = CASE9 + '[layers.facilities]\ntable = "facilities.csv"\n[dependencies]\ntable = "dependencies.csv"\n'

#: Every number key of a manifest: the table it is in, the text before the key, the key, what the message wants.
KEYS = [
    (CASE9, "power", "frequency_hz", "a number in [1, 1e+12]"),
    (CASE9, "power", "overload_tolerance", "a number in [0, 1e+12]"),
    (CASE9, "power", "rating_margin", "a number in [0, 1e+12]"),
    (CASE9 + "[customers]\n", "customers", "kw_per_customer", "a number in [1e-09, 1e+12]"),
    (CASE9 + "[customers]\n", "customers", "people_per_customer", "a number in [0, 1e+12]"),
    *((CASE9 + "[restoration]\n", "restoration", key, "a number in [0, 1e+12]")
      for key in ("remote_min", "manual_h", "detect_blind_min", "generator_restart_h")),
    (CASE9 + "[restoration]\n", "restoration", "crews", "a whole number in [1, 1e+12]"),
    (CASE9 + "[restoration]\n", "restoration", "max_reclose", "a whole number in [0, 1e+12]"),
    (CASE9 + "[restoration.operators.north]\n", "restoration.operators.north", "crews", "a whole number in [1, 1e+12]"),
    (CASE9 + "[restoration.operators.north]\n", "restoration.operators.north", "manual_h", "a number in [0, 1e+12]"),
    (CASE9 + "[power.frequency]\n", "power.frequency", "droop", "a number in [0.005, 0.5]"),
    (CASE9 + "[power.frequency]\n", "power.frequency", "governor_s", "a number in [0.05, 120]"),
    (CASE9 + "[power.frequency]\n", "power.frequency", "damping", "a number in [0, 10]"),
    (CASE9 + "[power.frequency]\n", "power.frequency", "trip_below_hz", "a number in [25, 50]"),
    (CASE9 + "[power.frequency]\n", "power.frequency", "trip_above_hz", "a number in [50, 75]"),
    (CASE9 + "[power.frequency]\n", "power.frequency", "default_inertia_s", "a number in [0.1, 100]"),
    (CASE9 + "[power.frequency]\n", "power.frequency", "reconnect_min", "a number in [0, 10080]"),
    *((WATER, "layers.water", key, "a number in [0, 1e+12]")
      for key in ("required_pressure_m", "minimum_pressure_m", "service_pressure_m", "graph_tank_h", "population")),
    (WATER, "layers.water", "timestep_min", "a number in [1, 1e+12]"),
    (TRANSPORT, "layers.transport", "dark_signal_capacity", "a number in [0.01, 1]"),
]
#: A huge integer, a NaN and a negative, as TOML writes them and as the message shows them.
BAD_VALUES = [(HUGE_TEXT, TOO_LARGE), ("nan", "nan"), ("-1", "-1")]

#: Every number column of a table: the manifest, the files with ``{}`` where the bad cell goes, what the message says.
COLUMNS = [
    ("customers.csv customers", CASE9 + '[customers]\ntable = "c.csv"\n', {"c.csv": "load,customers\n0,{}\n"},
     "c.csv: line 2: customers must be a whole number in [0, 1e+10]"),
    *((f"substations.csv {column}", CASE9 + '[substations]\ntable = "s.csv"\n',
       {"s.csv": f"name,buses,{column}\nA,0,{{}}\n"}, f"s.csv: line 2: {column} must be a number >= 0")
      for column in ("manual_h", "remote_min")),
    ("machines.csv rating_mva", CASE9 + '[power.frequency]\nmachines = "m.csv"\n',
     {"m.csv": "gen,rating_mva,inertia_s\n0,{},6.4\n"}, "m.csv: line 2: rating_mva must be a number > 0"),
    ("machines.csv inertia_s", CASE9 + '[power.frequency]\nmachines = "m.csv"\n',
     {"m.csv": "gen,rating_mva,inertia_s\n0,192,{}\n"}, "m.csv: line 2: inertia_s must be a number > 0"),
    ("water people.csv people", WATER + 'people = "p.csv"\n', {"p.csv": "junction,people\n10,{}\n"},
     "p.csv: line 2: people must be a number >= 0"),
    ("rail.csv riders_per_h", TRANSPORT, {**ROADS, "rail.csv": "id,riders_per_h\nR1,{}\n"},
     "rail.csv: line 2: riders_per_h must be a number >= 0"),
    *((f"dependencies.csv {column}", DEPENDENCIES, {"facilities.csv": "id,kind\ngas,compressor\n",
                                                    "dependencies.csv": f"supplier,dependent,{column}\n"
                                                                        "bus:4,facility:gas,{}\n"},
       f"dependencies.csv: line 2: {column} must be a number >= 0") for column in ("backup_h", "restart_min")),
    *((f"links.csv {column}", TRANSPORT,
       {**ROADS, "links.csv": "id,from,to,capacity_veh_h,free_flow_min,bpr_alpha,bpr_beta\n"
                              + ",".join("{}" if c == column else v for c, v in zip(
                                  ("id", "from", "to", "capacity_veh_h", "free_flow_min", "bpr_alpha", "bpr_beta"),
                                  ("L1", "A", "B", "1000", "5", "", "")))
                              + "\nL2,B,A,1000,5,,\n"},
       f"links.csv: line 2: link 'L1': {column} must be {wanted}")
      for column, wanted in (("capacity_veh_h", "a number > 0"), ("free_flow_min", "a number > 0"),
                             ("bpr_alpha", "a number >= 0"), ("bpr_beta", "a number >= 0"))),
    ("demand.csv trips_per_h", TRANSPORT, {**ROADS, "demand.csv": "origin,destination,trips_per_h\nA,B,{}\n"},
     "demand.csv: line 2: trips_per_h must be a number >= 0"),
]
#: The same three as CSV text; a coordinate may be negative, so nodes get an infinity instead.
BAD_CELLS = [(HUGE_TEXT, HUGE_TEXT_SHOWN), ("nan", "'nan'"), ("-1", "'-1'")]
COORDINATES = [(f"nodes.csv {axis}", TRANSPORT,
                {**ROADS, "nodes.csv": "id,x,y\n" + ("A,{},0" if axis == "x" else "A,0,{}") + "\nB,1,0\n"},
                f"nodes.csv: line 2: road node 'A': {axis} must be a number") for axis in ("x", "y")]
BAD_COORDINATES = [(HUGE_TEXT, HUGE_TEXT_SHOWN), ("nan", "'nan'"), ("-inf", "'-inf'")]


def write_folder(folder: Path, manifest: str, files: dict[str, str]) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "system.toml").write_text(manifest)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


@pytest.mark.parametrize("head, section, key, wanted", KEYS, ids=[f"{s}.{k}" for _, s, k, _ in KEYS])
@pytest.mark.parametrize("value, said", BAD_VALUES, ids=["huge", "nan", "negative"])
def test_every_number_key_refuses_a_huge_a_nan_and_a_negative_in_one_line(tmp_path, quick_case9, head, section,
                                                                          key, wanted, value, said):
    folder = write_folder(tmp_path / "system", f"{head}{key} = {value}\n", ROADS)
    message = refusal(load_system, folder)
    line = (head + key).count("\n") + 1
    assert message == f"{folder / 'system.toml'}: line {line}: {section}.{key} must be {wanted}, got {said}"


@pytest.mark.parametrize("label, manifest, files, fragment", [*COLUMNS, *COORDINATES],
                         ids=[c[0] for c in (*COLUMNS, *COORDINATES)])
@pytest.mark.parametrize("bad", [0, 1, 2], ids=["huge", "nan", "negative-or-infinite"])
def test_every_number_column_refuses_a_huge_a_nan_and_a_negative_in_one_line(tmp_path, quick_case9, label,
                                                                             manifest, files, fragment, bad):
    cell, said = (BAD_COORDINATES if label.startswith("nodes.csv") else BAD_CELLS)[bad]
    folder = write_folder(tmp_path / "system", manifest,
                          {name: text.replace("{}", cell) for name, text in files.items()})
    message = refusal(load_system, folder)
    assert message == f"{folder}/{fragment}, got {said}"


@pytest.mark.parametrize("ufls, message", [
    (f"[[{HUGE_TEXT}, 0.1]]", "power.frequency.ufls must be a list of [hz, share of load] pairs"),
    ("[[nan, 0.1]]", "power.frequency.ufls must be a list of [hz, share of load] pairs"),
    ("[[59.0, -0.1]]", "power.frequency.ufls: stages in falling frequency, shares in (0, 1] adding up to at most 1"),
], ids=["huge", "nan", "negative"])
def test_load_shedding_stages_refuse_a_huge_a_nan_and_a_negative_in_one_line(tmp_path, quick_case9, ufls, message):
    folder = write_folder(tmp_path / "system", f"{CASE9}[power.frequency]\nufls = {ufls}\n", {})
    assert refusal(load_system, folder) == f"{folder / 'system.toml'}: line 5: {message}"


GRAPHML = ('<?xml version="1.0" encoding="UTF-8"?>\n<graphml xmlns="http://graphml.graphdrawing.org/xmlns">\n'
           '<key id="c" for="edge" attr.name="capacity_veh_h" attr.type="string"/>\n'
           '<key id="t" for="edge" attr.name="free_flow_min" attr.type="string"/>\n'
           '<key id="a" for="edge" attr.name="bpr_alpha" attr.type="string"/>\n'
           '<key id="b" for="edge" attr.name="bpr_beta" attr.type="string"/>\n'
           '<key id="x" for="node" attr.name="x" attr.type="string"/>\n'
           '<key id="y" for="node" attr.name="y" attr.type="string"/>\n'
           '<graph edgedefault="directed">\n<node id="A"><data key="x">{x}</data><data key="y">{y}</data></node>\n'
           '<node id="B"/>\n<edge id="e1" source="A" target="B"><data key="c">{c}</data><data key="t">{t}</data>'
           '<data key="a">{a}</data><data key="b">{b}</data></edge>\n</graph>\n</graphml>\n')
GOOD_ATTRIBUTES = {"x": "0", "y": "0", "c": "900", "t": "2", "a": "0.15", "b": "4"}


@pytest.mark.parametrize("attribute, fragment", [
    ("c", "edge 'e1' ('A' -> 'B'): capacity_veh_h must be a number > 0"),
    ("t", "edge 'e1' ('A' -> 'B'): free_flow_min must be a number > 0"),
    ("a", "edge 'e1' ('A' -> 'B'): bpr_alpha must be a number >= 0"),
    ("b", "edge 'e1' ('A' -> 'B'): bpr_beta must be a number >= 0"),
    ("x", "node 'A': x must be a number"),
    ("y", "node 'A': y must be a number"),
])
@pytest.mark.parametrize("bad", [0, 1, 2], ids=["huge", "nan", "negative-or-infinite"])
def test_every_graphml_number_refuses_a_huge_a_nan_and_a_negative_in_one_line(tmp_path, attribute, fragment, bad):
    cell, said = (BAD_COORDINATES if attribute in "xy" else BAD_CELLS)[bad]
    path = tmp_path / "roads.graphml"
    path.write_text(GRAPHML.format(**{**GOOD_ATTRIBUTES, attribute: cell}))
    assert refusal(read_road_graphml, path) == f"{path}: {fragment}, got {said}"


@pytest.mark.parametrize("manifest, message", [
    (f"{CASE9}[power.frequency]\ndroop = {HUGE_TEXT}\n", f"power.frequency.droop must be a number in [0.005, 0.5], "
                                                         f"got {TOO_LARGE}"),
    (f"{CASE9}droop = {HUGE_TEXT}\n", None),  # the same number under [power], where droop is an unknown key
    (f"{WATER}population = {HUGE_TEXT}\n", f"layers.water.population must be a number in [0, 1e+12], got {TOO_LARGE}"),
    (f"{CASE9}overload_tolerance = {HUGE_TEXT}\n", f"power.overload_tolerance must be a number in [0, 1e+12], "
                                                   f"got {TOO_LARGE}"),
], ids=["power.frequency.droop", "power.droop", "layers.water.population", "power.overload_tolerance"])
def test_gridsim_show_answers_a_huge_number_in_one_line_exit_2(tmp_path, quick_case9, manifest, message):
    folder = write_folder(tmp_path / "system", manifest, {})
    result = CliRunner().invoke(cli, ["show", str(folder)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    if message is None:
        assert "unknown key power.droop" in lines[0]
    else:
        assert lines[0].endswith(message)

