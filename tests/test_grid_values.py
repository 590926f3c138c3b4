"""What a grid holds, read faithfully: MATPOWER transformers kept, absurd values refused, dark loads not charged."""

from __future__ import annotations

import functools
import json
import math
import re
from pathlib import Path

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest
from click.testing import CliRunner
from pandapower.converter.matpower import from_mpc
from test_fast_engine import assert_same

from gridsim.cli.main import cli
from gridsim.errors import InputError
from gridsim.loading import load_system, system_from_net
from gridsim.model.grid import load_power_net, matpower_cases, read_grid, stock_cases
from gridsim.power.contract import Outages
from gridsim.power.dcsolver import DENSE_ROWS
from gridsim.power.fast import fast_engine

#: A 345 kV bus, two 138 kV buses: branch 1-2 is a transformer with TAP = 1 (MATPOWER's "no tap"), 2-3 a line.
TAP1_CASE = """function mpc = tap1
mpc.version = '2';
mpc.baseMVA = 100;
mpc.bus = [
1 3 0 0 0 0 1 1.0 0 345 1 1.1 0.9;
2 1 20 5 0 0 1 1.0 0 138 1 1.1 0.9;
3 1 60 20 0 0 1 1.0 0 138 1 1.1 0.9;
];
mpc.gen = [
1 80 0 300 -300 1.0 100 1 250 0;
];
mpc.branch = [
1 2 0.002 0.05 0 150 0 0 {tap} 0 1 -360 360;
2 3 0.01 0.08 0.02 90 0 0 0 0 1 -360 360;
];
"""


def write_case(tmp_path: Path, text: str, name: str = "case.m") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("tap", ["1", "0"])
def test_matpower_transformer_with_tap_1_stays_a_transformer_with_the_same_flows(tmp_path, tap):
    path = write_case(tmp_path, TAP1_CASE.format(tap=tap))
    theirs = from_mpc(str(path))
    assert len(theirs.impedance) == 1 and len(theirs.trafo) == 0  # what pandapower alone makes of it
    mine = load_power_net(str(path))
    assert len(mine.trafo) == 1 and len(mine.impedance) == 0 and len(mine.line) == 1
    assert mine.trafo.sn_mva.iloc[0] == 150.0
    assert (mine.trafo.hv_bus.iloc[0], mine.trafo.lv_bus.iloc[0]) == (0, 1)
    for run in (pp.rundcpp, lambda n: pp.runpp(n, numba=False, lightsim2grid=False)):
        run(theirs)
        run(mine)
        np.testing.assert_allclose(mine.res_bus.va_degree, theirs.res_bus.va_degree, atol=1e-8)
        np.testing.assert_allclose(mine.res_bus.vm_pu, theirs.res_bus.vm_pu, atol=1e-8)
        np.testing.assert_allclose(mine.res_trafo.p_hv_mw.iloc[0], theirs.res_impedance.p_from_mw.iloc[0], atol=1e-6)


def test_same_voltage_impedance_becomes_a_line_with_the_same_flows():
    theirs = pn.example_multivoltage()
    assert len(theirs.impedance) == 1
    mine = read_grid("pandapower:example_multivoltage")
    assert len(mine.net.impedance) == 0 and len(mine.net.line) == len(theirs.line) + 1
    assert "1 impedance elements read as lines" in mine.notes
    pp.runpp(theirs, numba=False, lightsim2grid=False)
    pp.runpp(mine.net, numba=False, lightsim2grid=False)
    np.testing.assert_allclose(mine.net.res_bus.vm_pu, theirs.res_bus.vm_pu, atol=1e-8)
    np.testing.assert_allclose(mine.net.res_bus.va_degree, theirs.res_bus.va_degree, atol=1e-6)


def test_substation_attack_opens_the_matpower_transformer(tmp_path):
    write_case(tmp_path, TAP1_CASE.format(tap="1"))
    (tmp_path / "system.toml").write_text('name = "tap1"\n[power]\nsource = "case.m"\n')
    system = load_system(tmp_path)
    from gridsim.scenario.schema import parse_scenario
    from gridsim.sim.simulation import simulate

    plan = parse_scenario("name: t\nsteps:\n  - {at_min: 0, action: open_breakers, technique: T0831,\n"
                          "     targets: {kind: bus, ids: [0]}}\n")
    result = simulate(system, plan, flow="dc", seed=0)
    assert float(result.lost_mw.max()) == pytest.approx(80.0)
    show = CliRunner().invoke(cli, ["show", str(tmp_path)])
    assert show.exit_code == 0 and "1 transformers" in show.output
    assert "1 impedance elements between buses of different voltage read as transformers" in show.output


def test_asymmetric_impedance_and_hvdc_lines_are_refused():
    net = pn.example_multivoltage()
    net.impedance["rtf_pu"] = net.impedance.rft_pu * 2
    with pytest.raises(InputError, match="impedance 0 is asymmetric"):
        from gridsim.model.grid import normalise_net

        normalise_net(net, "x")
    net = pn.case9()
    pp.create_dcline(net, 4, 6, p_mw=10, loss_percent=1, loss_mw=0, vm_from_pu=1, vm_to_pu=1)
    with pytest.raises(InputError, match="dcline 0 .*HVDC"):
        normalise_net(net, "x")


def test_zero_impedance_branch_is_one_line_exit_2(tmp_path):
    write_case(tmp_path, TAP1_CASE.format(tap="0").replace("2 3 0.01 0.08", "2 3 0 0"))
    (tmp_path / "system.toml").write_text('name = "z"\n[power]\nsource = "case.m"\n')
    result = CliRunner().invoke(cli, ["show", str(tmp_path)])
    assert result.exit_code == 2 and "zero reactance" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("row, message", [
    ("2 1 NaN 5 0 0 1 1.0 0 138 1 1.1 0.9;", r"mpc.bus row 2: PD is nan"),
    ("2 1 20 5 0 0 1 1.0 0 Inf 1 1.1 0.9;", r"mpc.bus row 2: BASE_KV is inf"),
])
def test_matpower_values_that_are_not_finite_are_refused_not_dropped(tmp_path, row, message):
    text = TAP1_CASE.format(tap="0").replace("2 1 20 5 0 0 1 1.0 0 138 1 1.1 0.9;", row)
    with pytest.raises(InputError, match=message):
        load_power_net(str(write_case(tmp_path, text)))


def json_system(tmp_path: Path, net) -> Path:
    pp.to_json(net, str(tmp_path / "grid.json"))
    (tmp_path / "system.toml").write_text('name = "v"\n[power]\nsource = "grid.json"\n')
    return tmp_path


def test_absurd_load_is_refused_and_implausible_ones_are_noted(tmp_path):
    net = pn.case9()
    net.load.loc[0, "p_mw"] = 1e300
    with pytest.raises(InputError, match=r"load 0 has p_mw 1e\+300, beyond any real grid"):
        load_system(json_system(tmp_path, net))
    net.load.loc[0, "p_mw"] = -500.0
    system = load_system(json_system(tmp_path, net))
    assert any("negative demand (lowest -500.0 MW)" in note for note in system.load_notes)


def test_a_load_dark_before_the_attack_is_not_charged_to_it(tmp_path):
    net = pn.case9()
    island = pp.create_bus(net, vn_kv=345.0)
    pp.create_load(net, island, p_mw=40.0)
    system = load_system(json_system(tmp_path, net))
    assert any("1 loads (40.0 MW) are dark in the base case" in note for note in system.load_notes)
    from gridsim.scenario.schema import parse_scenario
    from gridsim.sim.simulation import simulate

    plan = parse_scenario("name: t\nsteps:\n  - {at_min: 0, action: access, technique: T0822}\n")
    result = simulate(system, plan, flow="dc", seed=0)
    assert float(result.lost_mw.max()) == 0.0
    from gridsim.cli.run import format_summary
    from gridsim.results.bundle import run_summary

    summary = run_summary(result)
    assert any("dark in the base case" in note for note in summary["grid_notes"])
    assert "grid note             1 loads (40.0 MW) are dark" in format_summary(summary)


def test_a_400_digit_number_in_the_frequency_table_is_one_line(tmp_path):
    (tmp_path / "system.toml").write_text('name = "f"\n[power]\nsource = "pandapower:case9"\n'
                                          f'[power.frequency]\ndroop = 1{"0" * 400}\n')
    result = CliRunner().invoke(cli, ["show", str(tmp_path)])
    assert result.exit_code == 2
    assert "power.frequency.droop must be a number" in result.output and "too large" in result.output


def test_every_pandapower_network_is_offered_and_a_miss_lists_similar_names():
    cases = stock_cases()
    assert {"GBreducednetwork", "GBnetwork", "lv_schutterwald", "case9", "cigre_mv"} <= set(cases)
    with pytest.raises(InputError, match=r"similar: .*GBreducednetwork"):
        load_power_net("pandapower:GBreducednetwrk")


def test_stock_case_content_is_hashed_reproducibly():
    first, second = load_system("pandapower:case14"), load_system("pandapower:case14")
    digest = first.input_files["pandapower:case14"]
    assert len(digest) == 64 and digest == second.input_files["pandapower:case14"]
    assert digest != load_system("pandapower:case9").input_files["pandapower:case9"]


def test_matpower_cases_by_name():
    assert "case_ACTIVSg2000" in matpower_cases()
    net = load_power_net("matpower:case_ACTIVSg200")
    assert len(net.bus) == 200 and len(net.impedance) == 0 and len(net.trafo) > 0
    with pytest.raises(InputError, match="no MATPOWER case named 'case_ACTIVSg2001'.*case_ACTIVSg2000"):
        load_power_net("matpower:case_ACTIVSg2001")


def test_large_grids_never_get_a_dense_bus_by_bus_inverse():
    # A dense inverse spans every bus: on 200,000 buses it asked for 298 GiB.
    net = pn.case118()  # a small energised island on a large bus table: the old rule inverted n_bus x n_bus
    pp.create_buses(net, DENSE_ROWS, vn_kv=138.0)
    system = system_from_net(net)
    assert len(system.net.bus) > DENSE_ROWS
    engine = fast_engine(system)
    result = engine.run(flow="dc")
    assert engine.factorisation == "sparse-lu"
    assert math.isclose(float(result.served_mw.sum()), float(system.net.load.p_mw.sum()), rel_tol=1e-9)


def test_hostile_json_values_still_pass_through_the_value_checks(tmp_path):
    tree = json.loads(pp.to_json(pn.case9()))
    frame = json.loads(tree["_object"]["load"]["_object"])
    frame["data"][0][frame["columns"].index("p_mw")] = None
    tree["_object"]["load"]["_object"] = json.dumps(frame)
    (tmp_path / "grid.json").write_text(json.dumps(tree))
    (tmp_path / "system.toml").write_text('name = "n"\n[power]\nsource = "grid.json"\n')
    with pytest.raises(InputError, match="load 0 has a non-finite p_mw"):
        load_system(tmp_path)


@functools.cache
def activsg(name: str):
    return load_system(f"matpower:{name}")


def seeded_substation_attack(system, seed: int, k: int = 5):
    """Every branch at ``k`` substations drawn with ``seed``, as ``open_breakers`` on random substations does."""
    net = system.net
    rng = np.random.default_rng(seed)
    names = sorted(system.substations)
    buses = {b for n in rng.choice(names, size=k, replace=False) for b in system.substations[n].buses}
    lines = net.line.index[net.line.from_bus.isin(buses) | net.line.to_bus.isin(buses)]
    trafos = net.trafo.index[net.trafo.hv_bus.isin(buses) | net.trafo.lv_bus.isin(buses)]
    return Outages(lines=frozenset(map(int, lines)), trafos=frozenset(map(int, trafos)))


@pytest.mark.parametrize("name, seeds", [("case_ACTIVSg200", range(8)), ("case_ACTIVSg2000", range(4))])
def test_fast_equals_reference_on_the_texas_synthetic_grids(name, seeds):
    system = activsg(name)
    assert len(system.net.impedance) == 0 and len(system.net.trafo) > 0
    tripped_trafos = 0
    for seed in seeds:
        outages = seeded_substation_attack(system, seed)
        tripped_trafos += len(outages.trafos)
        assert_same(system, outages)
    assert tripped_trafos > 0  # the attacks reach transformers, which once were invisible impedances


def test_activsg2000_counts_its_847_transformers():
    system = activsg("case_ACTIVSg2000")
    assert len(system.net.trafo) == 847 and len(system.trafo_rating_mva) == 847
    assert np.isfinite(system.trafo_rating_mva).all()


@pytest.mark.parametrize("manifest, message", [
    ('name = "x"\n[power]\nsource = "pandapower:case9"\noverload_tolerance = ' + "9" * 5000 + "\n",
     "malformed TOML"),
    ('name = "x"\nx = ' + "[" * 1000 + "]" * 1000 + '\n[power]\nsource = "pandapower:case9"\n', "malformed TOML"),
    ('name = "x"\n[power]\nsource = "pandapower:case9"\nunrated_branches = 0x' + "f" * 5000 + "\n",
     "unrated_branches must be"),
    ('name = "x"\n[power]\nsource = "pandapower:case9"\n"a\\nb" = 1\n', r"unknown key power.a\\nb"),
])
def test_manifests_the_fuzzer_broke_are_one_line_exit_2(tmp_path, manifest, message):
    (tmp_path / "system.toml").write_text(manifest)
    result = CliRunner().invoke(cli, ["show", str(tmp_path)])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
    assert re.search(message, result.output)


def test_scale_loads_to_zero_for_a_while_comes_back(tmp_path):
    from gridsim.scenario.schema import parse_scenario
    from gridsim.sim.simulation import simulate

    plan = parse_scenario("name: x\nsteps:\n  - {at_min: 0, action: scale_loads, technique: none, "
                          "targets: {kind: load, ids: [0]}, factor: 0, duration_min: 30}\n")
    result = simulate(load_system("pandapower:case9"), plan, flow="dc", seed=0)
    assert float(result.demand_mw[-1]) == pytest.approx(315.0)
