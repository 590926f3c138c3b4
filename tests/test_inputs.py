"""Loading systems and grids: every supported source, and every error named with its place."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest

from gridsim.engine.cascade import run_cascade
from gridsim.errors import InputError
from gridsim.model.power import load_power_net
from gridsim.model.system import load_system

DATA = Path(__file__).parent / "data"


def write_system(folder: Path, manifest: str, files: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "system.toml").write_text(manifest)
    for name, text in (files or {}).items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture
def grid_json(tmp_path) -> Path:
    net = pn.example_simple()
    path = tmp_path / "grid.json"
    pp.to_json(net, str(path))
    return path


def test_matpower_m_file_gives_the_same_dc_flows_as_the_stock_case():
    net = load_power_net(str(DATA / "case9.m"))
    stock = pn.case9()
    pp.rundcpp(net)
    pp.rundcpp(stock)
    np.testing.assert_allclose(np.sort(np.abs(net.res_line.p_from_mw.to_numpy())),
                               np.sort(np.abs(stock.res_line.p_from_mw.to_numpy())), atol=1e-6)


def test_matpower_mat_file_round_trip(tmp_path):
    from pandapower.converter.matpower import to_mpc

    path = tmp_path / "case30.mat"
    to_mpc(pn.case30(), str(path), init="flat")
    net = load_power_net(str(path))
    assert len(net.bus) == 30 and net.load.p_mw.sum() == pytest.approx(pn.case30().load.p_mw.sum())


@pytest.mark.parametrize("maker", [pn.case118, pn.mv_oberrhein, pn.example_multivoltage])
def test_pandapower_json_written_by_pandapower_loads(tmp_path, maker):
    path = tmp_path / "net.json"
    net = maker()
    pp.to_json(net, str(path))
    loaded = load_power_net(str(path))
    assert len(loaded.bus) == len(net.bus) and len(loaded.line) == len(net.line)


def test_pandapower_json_naming_a_foreign_module_is_refused(grid_json):
    tree = json.loads(grid_json.read_text())
    tree["_object"]["evil"] = {"_module": "os", "_class": "system", "_object": "echo pwned"}
    grid_json.write_text(json.dumps(tree))
    with pytest.raises(InputError, match="refusing to import module 'os'"):
        load_power_net(str(grid_json))


def test_pandapower_json_naming_a_foreign_class_is_refused(grid_json):
    tree = json.loads(grid_json.read_text())
    tree["_object"]["evil"] = {"_module": "pandapower.auxiliary", "_class": "Popen", "_object": "{}"}
    grid_json.write_text(json.dumps(tree))
    with pytest.raises(InputError, match="refusing to import module 'pandapower.auxiliary' \\(class 'Popen'\\)"):
        load_power_net(str(grid_json))


def test_malformed_json_names_line_and_column(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"_class": "pandapowerNet",\n  "x": [1, 2,,]}')
    with pytest.raises(InputError, match=r"bad.json: line 2, column \d+: malformed JSON"):
        load_power_net(str(path))


def test_unknown_stock_case_missing_file_and_wrong_type(tmp_path):
    with pytest.raises(InputError, match="no stock pandapower case named 'case12345'"):
        load_power_net("pandapower:case12345")
    with pytest.raises(InputError, match="power grid file not found"):
        load_power_net("nowhere/grid.json")
    sheet = tmp_path / "grid.xlsx"
    sheet.write_text("x")
    with pytest.raises(InputError, match="unsupported grid file type '.xlsx'"):
        load_power_net(str(sheet))


def test_manifest_with_substations_customers_and_operators(tmp_path, grid_json):
    net = pp.from_json(str(grid_json))
    names = list(net.bus.name)
    folder = write_system(tmp_path / "sys", f"""
name = "demo"
description = "example_simple with two sites"
[power]
source = "{grid_json}"
overload_tolerance = 0.2
[customers]
kw_per_customer = 1.0
table = "customers.csv"
[substations]
table = "substations.csv"
[restoration]
crews = 2
[restoration.operators.north]
crews = 5
manual_h = 2.5
""", {
        "substations.csv": f"name,buses,operator,manual_h\nA,{names[0]};{names[1]},north,\nB,{names[2]},south,0.5\n",
        "customers.csv": "load,customers\n0,1234\n",
    })
    system = load_system(folder)
    assert system.name == "demo" and system.overload_tolerance == 0.2
    assert system.substations["A"].buses == (int(net.bus.index[0]), int(net.bus.index[1]))
    assert system.customers[0] == 1234
    assert system.restoration_for("A").crews == 5 and system.restoration_for("A").manual_h == 2.5
    assert system.restoration_for("B").crews == 2 and system.restoration_for("B").manual_h == 0.5
    # Buses not in the table are sites of their own.
    assert all(b in system.bus_site for b in net.bus.index)
    assert len(system.input_files) == 4


@pytest.mark.parametrize("manifest, files, message", [
    ('name = "x"\n[power]\nsource = "pandapower:case9"\ncolour = 3\n', {},
     r"system.toml: line 4: unknown key power.colour"),
    ('name = "x"\n[power\nsource = 1\n', {}, r"malformed TOML"),
    ('name = "x"\n', {}, r"missing power.source"),
    ('name = "x"\n[power]\nsource = "pandapower:case9"\noverload_tolerance = -1\n', {},
     r"line 4: power.overload_tolerance must be a number >= 0"),
    ('name = "x"\n[power]\nsource = "pandapower:case9"\n[substations]\ntable = "s.csv"\n',
     {"s.csv": "name,buses\nA,1;2\nB,2\n"}, r"s.csv: line 3: bus '2' is in both 'A' and 'B'"),
    ('name = "x"\n[power]\nsource = "pandapower:case9"\n[substations]\ntable = "s.csv"\n',
     {"s.csv": "name,buses\nA,1\nB,99\n"}, r"s.csv: line 3: substation 'B': no bus named '99'"),
    ('name = "x"\n[power]\nsource = "pandapower:case9"\n[customers]\ntable = "c.csv"\n',
     {"c.csv": "load,customers\n0,-5\n"}, r"c.csv: line 2: customers must be a count >= 0"),
    ('name = "x"\n[power]\nsource = "pandapower:case9"\n[restoration]\ncrews = 0\n', {},
     r"line 5: restoration.crews must be a number >= 1"),
])
def test_manifest_errors_name_file_and_line(tmp_path, manifest, files, message):
    folder = write_system(tmp_path / "sys", manifest, files)
    with pytest.raises(InputError, match=message):
        load_system(folder)


def test_missing_system_folder():
    with pytest.raises(InputError, match="no system here"):
        load_system("no/such/topology")


def test_system_is_loaded_without_mutating_anything_it_shares(tmp_path):
    system = load_system("pandapower:case9")
    before = copy.deepcopy(system.net)
    run_cascade(system)
    assert system.net.line.equals(before.line)


@pytest.mark.parametrize("module", ["pandas_pwn", "numpyx.core", "pandapowerevil", "os.path", "",
                                    "numpy.f2py.__main__", "this"])
def test_pandapower_json_module_lookalikes_are_refused(tmp_path, grid_json, module, monkeypatch):
    # A module whose name merely starts like an allowed package must not be imported.
    (tmp_path / "pandas_pwn.py").write_text(f"open({str(tmp_path / 'RAN')!r}, 'w').write('ran')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    tree = json.loads(grid_json.read_text())
    tree["_object"]["evil"] = {"_module": module, "_class": "DataFrame", "_object": "{}"}
    grid_json.write_text(json.dumps(tree))
    with pytest.raises(InputError, match="refusing to import module"):
        load_power_net(str(grid_json))
    assert not (tmp_path / "RAN").exists()


def test_objects_hidden_in_nested_json_text_are_found(grid_json):
    # pandapower stores DataFrames as JSON text; a list-shaped one can carry an object too.
    tree = json.loads(grid_json.read_text())
    hidden = json.dumps([{"a": {"_module": "this", "_class": "function", "_object": "s"}}])
    tree["_object"]["evil"] = {"_module": "pandas.core.frame", "_class": "DataFrame", "_object": hidden,
                               "orient": "records"}
    grid_json.write_text(json.dumps(tree))
    with pytest.raises(InputError, match="refusing to import module 'this'"):
        load_power_net(str(grid_json))


def test_dataframe_pointing_at_a_file_is_refused(grid_json):
    tree = json.loads(grid_json.read_text())
    tree["_object"]["evil"] = {"_module": "pandas.core.frame", "_class": "DataFrame", "_object": "/etc/x.json"}
    grid_json.write_text(json.dumps(tree))
    with pytest.raises(InputError, match="not inline JSON"):
        load_power_net(str(grid_json))
