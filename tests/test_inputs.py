"""Loading systems and grids: every supported source, and every error named with its place."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest
from conftest import parallel_pair, radial_feeder
from pandapower.converter.matpower import to_mpc

from gridsim.errors import InputError
from gridsim.loading import load_system, system_from_net
from gridsim.model.grid import load_power_net
from gridsim.power.cascade import run_cascade

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
    assert len(loaded.bus) == len(net.bus) and len(loaded.line) == len(net.line) + len(net.impedance)


def test_malformed_json_names_line_and_column(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"_class": "pandapowerNet",\n  "x": [1, 2,,]}')
    with pytest.raises(InputError, match=r"bad.json: line 2, column \d+: malformed JSON"):
        load_power_net(str(path))


def test_unknown_stock_case_missing_file_and_wrong_type(tmp_path):
    with pytest.raises(InputError, match="no stock pandapower network named 'case12345'"):
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
     r"line 4: power.overload_tolerance must be a number in \[0, 1e\+12\], got -1$"),
    ('name = "x"\n[power]\nsource = "pandapower:case9"\n[substations]\ntable = "s.csv"\n',
     {"s.csv": "name,buses\nA,1;2\nB,2\n"}, r"s.csv: line 3: bus '2' is in both 'A' and 'B'"),
    ('name = "x"\n[power]\nsource = "pandapower:case9"\n[substations]\ntable = "s.csv"\n',
     {"s.csv": "name,buses\nA,1\nB,99\n"}, r"s.csv: line 3: substation 'B': no bus named '99'"),
    ('name = "x"\n[power]\nsource = "pandapower:case9"\n[customers]\ntable = "c.csv"\n',
     {"c.csv": "load,customers\n0,-5\n"},
     r"c.csv: line 2: customers must be a whole number in \[0, 1e\+10\], got '-5'$"),
    ('name = "x"\n[power]\nsource = "pandapower:case9"\n[restoration]\ncrews = 0\n', {},
     r"line 5: restoration.crews must be a whole number in \[1, 1e\+12\], got 0$"),
    ('name = "x"\n[power]\nsource = "pandapower:case9"\n[layers.water]\ninp = "Net3.inp"\n', {},
     r"unknown key layers.water.inp"),
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


CASE9 = 'name = "x"\n[power]\nsource = "pandapower:case9"\n'


@pytest.mark.parametrize("extra, files, message", [
    ('[substations]\ntable = "s.csv"\n', {"s.csv": "\ufeffname,buses\nA,1\n"}, None),  # byte-order mark is fine
    ('[substations]\ntable = "s.csv"\n', {"s.csv": b"name,buses\nA\xe9,1\n"}, r"s.csv: line 2: not UTF-8"),
    ('[substations]\ntable = "s.csv"\n', {"s.csv": "name,buses,op,op\nA,1,x,y\n"}, r"duplicate column\(s\) op"),
    ('[customers]\ntable = "c.csv"\n', {"c.csv": "load,customers\n0,5\n0,7\n"}, r"line 3: load '0' is listed twice"),
    ('[customers]\ntable = "c.csv"\n', {"c.csv": "load,customers\n0,2.5\n"},
     r"customers must be a whole number in \[0, 1e\+10\], got '2.5'$"),
    ('[restoration]\ncrews = 1.7\n', {}, r"restoration.crews must be a whole number"),
    ('[restoration]\nmanual_h = 1' + "0" * 400 + '\n', {}, r"restoration.manual_h must be a number"),
    ('description = {a = 1}\n', {}, r"description must be a string"),
])
def test_table_and_value_checks(tmp_path, extra, files, message):
    folder = tmp_path / "sys"
    folder.mkdir()
    manifest = CASE9 + extra if not extra.startswith("description") else extra + CASE9
    (folder / "system.toml").write_text(manifest)
    for name, content in files.items():
        (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    if message is None:
        assert "A" in load_system(folder).substations
    else:
        with pytest.raises(InputError, match=message):
            load_system(folder)


def test_site_names_never_collide_with_bus_labels(tmp_path):
    # A site named like bus 1's automatic label, and two buses sharing a name: every bus still gets a site.
    net = pn.case9()
    net.bus.loc[[3, 4], "name"] = "X"
    pp.to_json(net, str(tmp_path / "grid.json"))
    folder = write_system(tmp_path / "sys", 'name = "x"\n[power]\nsource = "../grid.json"\n'
                                            '[substations]\ntable = "s.csv"\n', {"s.csv": "name,buses\nbus1,0\n"})
    system = load_system(folder)
    assert set(system.bus_site) == set(int(b) for b in net.bus.index)
    assert len(set(system.bus_site.values())) == len(net.bus)


@pytest.mark.parametrize("breakage, message", [
    (lambda net: net.load.__setitem__("bus", [0, 77, 2][: len(net.load)]), r"load 1 is connected to bus 77"),
    (lambda net: net.load.__setitem__("p_mw", [float("nan")] * len(net.load)), r"load 0 has a non-finite p_mw"),
])
def test_structurally_broken_grids_are_refused_at_load_time(tmp_path, breakage, message):
    net = pn.case9()
    breakage(net)
    pp.to_json(net, str(tmp_path / "grid.json"))
    folder = write_system(tmp_path / "sys", 'name = "x"\n[power]\nsource = "../grid.json"\n')
    with pytest.raises(InputError, match=message):
        load_system(folder)


def test_base_case_overloads_get_raised_ratings_unless_asked_to_trip(tmp_path):
    net = parallel_pair(load_mw=120.0, rating_mva=50.0)  # 60 MW on each 50 MVA line in the base case
    tripping = system_from_net(net, overload_tolerance=0.0, base_overloads="trip")
    assert len(run_cascade(tripping).trips) == 2
    raised = system_from_net(net, overload_tolerance=0.0, base_overloads="raise", rating_margin=0.5)
    assert raised.rating_notes == {"derived": 0, "raised": 2}
    assert raised.line_rating_mva == pytest.approx([90.0, 90.0], rel=5e-3)  # 1.5 x 60 MW (AC MVA adds a little)
    assert run_cascade(raised).trips == []


def test_a_grid_with_no_source_is_refused(tmp_path):
    net = pn.case9()
    net.ext_grid["in_service"] = False
    net.gen["in_service"] = False
    pp.to_json(net, str(tmp_path / "grid.json"))
    folder = write_system(tmp_path / "sys", 'name = "x"\n[power]\nsource = "../grid.json"\n')
    with pytest.raises(InputError, match="no source in service"):
        load_system(folder)


def test_a_grid_of_generators_only_loads_and_rates(tmp_path):
    # No external grid: the largest generator is the reference of the base-case flows.
    net = pn.case9()
    net.ext_grid["in_service"] = False
    pp.to_json(net, str(tmp_path / "grid.json"))
    system = load_system(write_system(tmp_path / "sys", 'name = "x"\n[power]\nsource = "../grid.json"\n'))
    result = run_cascade(system)
    assert result.trips == [] and result.served_mw.sum() == pytest.approx(315.0)


def test_negative_loads_are_injections_not_demand():
    net = radial_feeder()
    pp.create_load(net, 2, p_mw=-5.0)
    system = system_from_net(net)
    assert system.base_demand_mw == pytest.approx(30.0)
    result = run_cascade(system)
    assert result.demand_mw.tolist() == [10.0, 20.0, 0.0] and result.lost_mw == pytest.approx(0.0)
