"""Hostile pandapower JSON files: every one is refused with one line, and nothing it names is imported.

pandapower's own decoder imports the module a ``_module`` key names, passes
reader options to ``pandas.read_json`` and decodes text cells again. gridsim
reads the file itself (:mod:`gridsim.io.ppjson`); these files are the ways
in that a scan of the file would miss.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
from pathlib import Path

import pandapower as pp
import pandapower.networks as pn
import pandas as pd
import pytest
from click.testing import CliRunner

from gridsim.cli.main import cli
from gridsim.errors import InputError
from gridsim.io.ppjson import read_pandapower_json
from gridsim.model.grid import load_power_net

PLANTED = "planted_gridsim_probe"


@pytest.fixture
def planted(tmp_path, monkeypatch) -> Path:
    """A module on sys.path and in the working directory that leaves a mark when imported."""
    marker = tmp_path / "IMPORTED"
    (tmp_path / f"{PLANTED}.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, PLANTED, raising=False)
    return marker


@pytest.fixture(scope="module")
def base_tree() -> dict:
    return json.loads(pp.to_json(pn.case9()))


def _obj(module: str, cls: str = "f", inner: str = "") -> dict:
    return {"_module": module, "_class": cls, "_object": inner}


def _frame(inner: str, **extra) -> dict:
    return {"_module": "pandas.core.frame", "_class": "DataFrame", "_object": inner, "orient": "split", **extra}


def _split(cell) -> str:
    return json.dumps({"columns": ["a"], "index": [0], "data": [[cell]]})


def _add_object(module: str, tree: dict) -> None:
    tree["_object"]["extra"] = _obj(module)


def _add_reader_option(option: str, tree: dict) -> None:
    tree["_object"]["bus"] = _frame(_split(1), **{option: True})


NAMED_MODULES = ["os", "this", "antigravity", PLANTED, "pandas_pwn", "numpy.f2py.__main__", "subprocess", ""]
READ_JSON_OPTIONS = sorted(set(inspect.signature(pd.read_json).parameters) - {"path_or_buf", "orient", "dtype"})

HOSTILE: dict[str, callable] = {
    # A table as JSON lines: two documents in one string, the second an object to rebuild.
    "json-lines": lambda t: t["_object"].__setitem__(
        "bus", _frame(_split(1) + "\n" + json.dumps(_obj(PLANTED)), lines=True)),
    "json-lines-without-flag": lambda t: t["_object"].__setitem__(
        "bus", _frame(_split(1) + "\n" + json.dumps(_obj(PLANTED)))),
    "object-in-a-cell": lambda t: t["_object"].__setitem__("bus", _frame(_split(_obj(PLANTED)))),
    "object-in-a-list-cell": lambda t: t["_object"].__setitem__("bus", _frame(_split([1, [_obj("this")]]))),
    "object-in-columns-orient": lambda t: t["_object"].__setitem__(
        "bus", _frame(json.dumps({"a": {"0": _obj(PLANTED)}}), orient="columns")),
    "records-orient": lambda t: t["_object"].__setitem__(
        "bus", _frame(json.dumps([{"a": _obj("this")}]), orient="records")),
    "table-orient": lambda t: t["_object"].__setitem__("bus", _frame("{}", orient="table")),
    "series": lambda t: t["_object"].__setitem__(
        "extra", {"_module": "pandas.core.series", "_class": "Series", "_object": "{}"}),
    "multigraph": lambda t: t["_object"].__setitem__("extra", _obj("networkx", "MultiGraph", "{}")),
    "numpy-array": lambda t: t["_object"].__setitem__("extra", _obj("numpy", "array", "[1]")),
    "data-from-a-file": lambda t: t["_object"].__setitem__("bus", _frame("/etc/passwd.json")),
    "data-as-a-mapping": lambda t: t["_object"].__setitem__("bus", {**_frame(""), "_object": {"a": 1}}),
    "multiindex": lambda t: t["_object"].__setitem__("bus", _frame(_split(1), is_multiindex=True)),
    "odd-dtype": lambda t: t["_object"].__setitem__("bus", _frame(_split(1), dtype={"a": "object; import os"})),
    "datetime-dtype": lambda t: t["_object"].__setitem__("bus", _frame(_split(1), dtype={"a": "datetime64[ns]"})),
    "object-in-std-types": lambda t: t["_object"]["std_types"]["line"].__setitem__("x", _obj(PLANTED)),
    "object-in-a-plain-list": lambda t: t["_object"].__setitem__("name", [1, {"_class": "x"}]),
    "net-of-another-module": lambda t: t.__setitem__("_module", PLANTED),
    "net-as-text": lambda t: t.__setitem__("_object", json.dumps(t["_object"])),
    "extra-top-level-key": lambda t: t.__setitem__("lines", True),
    **{f"module-{m or 'empty'}": functools.partial(_add_object, m) for m in NAMED_MODULES},
    **{f"reader-option-{o}": functools.partial(_add_reader_option, o) for o in READ_JSON_OPTIONS},
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_file_is_refused_and_imports_nothing(tmp_path, planted, base_tree, name):
    tree = json.loads(json.dumps(base_tree))
    HOSTILE[name](tree)
    path = tmp_path / "grid.json"
    path.write_text(json.dumps(tree))
    before = set(sys.modules)
    with pytest.raises(InputError) as caught:
        load_power_net(str(path))
    imported = set(sys.modules) - before
    assert not planted.exists()
    assert not imported & {"this", "antigravity", PLANTED, "pandas_pwn", "numpy.f2py.__main__"}
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(path))


def test_hostile_file_through_the_cli_is_one_line_and_exit_2(tmp_path, planted, base_tree):
    tree = json.loads(json.dumps(base_tree))
    HOSTILE["json-lines"](tree)
    (tmp_path / "grid.json").write_text(json.dumps(tree))
    (tmp_path / "system.toml").write_text('name = "x"\n[power]\nsource = "grid.json"\n')
    result = CliRunner().invoke(cli, ["show", str(tmp_path)])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1 and "bus" in result.output
    assert not planted.exists()


def test_object_text_in_a_cell_stays_text(tmp_path, planted, base_tree):
    # pandapower would decode this cell again (and import the module); gridsim keeps the text.
    tree = json.loads(json.dumps(base_tree))
    frame = json.loads(tree["_object"]["bus"]["_object"])
    frame["data"][0][0] = json.dumps(_obj(PLANTED))
    tree["_object"]["bus"]["_object"] = json.dumps(frame)
    path = tmp_path / "grid.json"
    path.write_text(json.dumps(tree))
    net = load_power_net(str(path))
    assert net.bus.name.iloc[0] == json.dumps(_obj(PLANTED))
    assert not planted.exists() and PLANTED not in sys.modules


GRIDS = sorted(Path(__file__).parents[1].glob("topologies/*/grid.json"))


@pytest.mark.parametrize("source", [*GRIDS, "mv_oberrhein", "example_multivoltage", "cigre_lv"],
                         ids=str)
def test_data_only_reader_equals_pandapowers_on_files_pandapower_writes(tmp_path, source):
    if isinstance(source, Path):
        path = source
    else:
        maker = {"cigre_lv": pn.create_cigre_network_lv}.get(source) or getattr(pn, source)
        path = tmp_path / "net.json"
        pp.to_json(maker(), str(path))
    mine = read_pandapower_json(path)
    theirs = pp.from_json_string(path.read_text())
    for key, value in theirs.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(mine[key], value, check_dtype=True, obj=key)
        else:
            assert mine[key] == value, key
