"""The AC cascade's own rules: voltage collapse, out of step, the shared slack of islands without a grid.

Voltage collapse: an AC flow that does not converge sheds the area that collapses, and says so.

The grid: a strong core (ext_grid - b1 - b2, 30 MW each) and a weak end b3
(60 MW) behind two 200 km lines from b2. With both lines b3 is served;
with one, the line cannot carry 60 MW (its nose is near 50 MW): no AC
solution. The rule must cut b3 alone, not the core, in both engines, and
the run must report how much the rule shed.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandapower
import pandapower as pp
import pytest
from click.testing import CliRunner
from test_fast_engine import assert_same_ac
from test_grid_values import activsg, seeded_substation_attack

from gridsim.cli.main import cli
from gridsim.metrics import summarize
from gridsim.power.cascade import run_cascade
from gridsim.power.contract import LOAD_SERVED, LOAD_SHED, UVLS_PU, Outages, stage_kept
from gridsim.power.fast import run_fast_cascade
from gridsim.power.powerflow import run_ac
from gridsim.scenario.schema import load_scenario, parse_scenario
from gridsim.sim.simulation import simulate

WEAK_LINE = 3  # one of the two long lines


def core_and_weak_end(sgen_mw: float = 0.0):
    net = pp.create_empty_network()
    b = [pp.create_bus(net, 110, name=f"b{i}") for i in range(4)]
    pp.create_ext_grid(net, b[0])
    for a, c, km in ((0, 1, 10), (1, 2, 10), (2, 3, 200), (2, 3, 200)):
        pp.create_line_from_parameters(net, b[a], b[c], km, 0.05, 0.4, 0.0, 1.0)
    pp.create_load(net, b[1], p_mw=30, q_mvar=6)
    pp.create_load(net, b[2], p_mw=30, q_mvar=6)
    pp.create_load(net, b[3], p_mw=60, q_mvar=12)
    if sgen_mw:
        pp.create_sgen(net, b[3], p_mw=sgen_mw)
    return net


def test_the_grid_collapses_only_without_the_second_line():
    net = core_and_weak_end()
    assert run_ac(copy.deepcopy(net))
    net.line.at[WEAK_LINE, "in_service"] = False
    assert not run_ac(net)


@pytest.mark.parametrize("engine", [run_cascade, run_fast_cascade])
def test_only_the_weak_end_is_shed(make_system, engine):
    result = engine(make_system(core_and_weak_end()), Outages(lines=frozenset({WEAK_LINE})), flow="ac")
    collapse = result.collapse
    assert collapse is not None and collapse.rings == 0  # the weak bus alone
    assert list(collapse.loads) == [False, False, True]
    assert result.served_mw[:2] == pytest.approx([30.0, 30.0])  # the core keeps all its load
    kept = stage_kept(collapse.stages)
    assert 0.0 < kept < 1.0
    assert result.served_mw[2] == pytest.approx(60.0 * kept, rel=1e-6)
    assert collapse.shed_mw == pytest.approx(60.0 * (1.0 - kept), rel=1e-9)
    assert list(result.load_state) == [LOAD_SERVED, LOAD_SERVED, LOAD_SHED]
    # The lightest stage: one stage less does not converge.
    net = core_and_weak_end()
    net.line.at[WEAK_LINE, "in_service"] = False
    net.load.at[2, "scaling"] = stage_kept(collapse.stages - 1)
    assert not run_ac(net)


def test_the_whole_island_cut_would_shed_more(make_system):
    """What the old rule did (every load of the island by the same stage) cuts the core for nothing."""
    net = core_and_weak_end()
    net.line.at[WEAK_LINE, "in_service"] = False
    stages = next(s for s in range(1, 11) if run_ac(_scaled(net, stage_kept(s))))
    uniform_mw = 120.0 * (1.0 - stage_kept(stages))
    local = run_cascade(make_system(core_and_weak_end()), Outages(lines=frozenset({WEAK_LINE})), flow="ac")
    assert local.collapse.shed_mw < uniform_mw
    # The weak bus was below the under-voltage threshold at the uniform stage: that is how it was found.
    work = _scaled(net, stage_kept(stages))
    assert run_ac(work)
    assert work.res_bus.vm_pu.at[3] < UVLS_PU < work.res_bus.vm_pu.loc[[0, 1, 2]].min()


def _scaled(net, kept: float):
    work = copy.deepcopy(net)
    work.load["scaling"] = kept
    return work


@pytest.mark.parametrize("engine", [run_cascade, run_fast_cascade])
def test_static_generation_of_the_area_is_cut_with_it(make_system, engine):
    system = make_system(core_and_weak_end(sgen_mw=10.0))
    result = engine(system, Outages(lines=frozenset({WEAK_LINE})), flow="ac")
    reference = run_cascade(system, Outages(lines=frozenset({WEAK_LINE})), flow="ac")
    assert result.collapse is not None
    assert result.collapse.stages == reference.collapse.stages
    np.testing.assert_allclose(result.served_mw, reference.served_mw, atol=1e-6)
    np.testing.assert_allclose(result.line_flow_mva, reference.line_flow_mva, atol=1e-3)


def test_a_run_reports_what_the_rule_shed(make_system):
    system = make_system(core_and_weak_end())
    plan = parse_scenario("name: t\nhorizon_h: 2\nsteps:\n"
                          "  - {at_min: 10, action: trip_branches, technique: T0855, duration_min: 30,"
                          f" targets: {{kind: line, ids: [{WEAK_LINE}]}}}}\n")
    result = simulate(system, plan, flow="ac")
    [record] = result.voltage_collapses
    assert record["t_min"] == 10 and record["loads"] == 1 and record["rings"] == 0
    assert record["shed_mw"] == pytest.approx(60.0 * (1.0 - stage_kept(record["stages"])), abs=1e-3)
    info = [e for e in result.events if e.cause == "voltage-collapse" and e.state == "info"]
    assert len(info) == 1 and "did not converge" in info[0].detail
    [load_out] = [e for e in result.events if e.element == "load:2" and e.state == "out"]
    assert load_out.cause == "voltage-collapse"
    summary = summarize(result)
    assert summary["voltage_collapse"]["largest_shed_mw"] == record["shed_mw"]
    assert summary["elements_failed_by_cause"].get("voltage-collapse") == 1
    # A DC run of the same attack has nothing of the kind.
    assert "voltage_collapse" not in summarize(simulate(system, plan, flow="dc"))


def test_gridsim_run_prints_the_voltage_collapse_line(tmp_path):
    net = core_and_weak_end()
    pp.to_json(net, str(tmp_path / "grid.json"))
    (tmp_path / "system.toml").write_text('name = "weak-end"\n[power]\nsource = "grid.json"\n')
    (tmp_path / "s.yaml").write_text(
        "name: t\nhorizon_h: 2\nsteps:\n"
        "  - {at_min: 10, action: trip_branches, technique: T0855, duration_min: 30,"
        f" targets: {{kind: line, ids: [{WEAK_LINE}]}}}}\n")
    runner = CliRunner()
    out = runner.invoke(cli, ["run", str(tmp_path / "s.yaml"), "--system", str(tmp_path),
                              "--flow", "ac", "--no-bundle"])
    assert out.exit_code == 0, out.output
    [line] = [x for x in out.output.splitlines() if x.strip().startswith("voltage collapse")]
    assert "1 time(s)" in line and "at 1 loads" in line
    as_json = runner.invoke(cli, ["run", str(tmp_path / "s.yaml"), "--system", str(tmp_path),
                                  "--flow", "ac", "--no-bundle", "--json"])
    assert json.loads(as_json.output)["voltage_collapse"]["events"][0]["loads"] == 1


# ---------------------------------------------------------------- out of step

def far_transfer(load_mw: float):
    """ext_grid - 200 km line - load: the line's steady-state limit V^2/X is 100 MVA x 121/80 = 151 MW."""
    net = pp.create_empty_network()
    b0, b1 = pp.create_bus(net, 110), pp.create_bus(net, 110)
    pp.create_ext_grid(net, b0)
    pp.create_line_from_parameters(net, b0, b1, 200, 0.1, 0.4, 0, 100.0)
    pp.create_load(net, b1, p_mw=load_mw, q_mvar=load_mw / 4)
    return net


@pytest.mark.parametrize("engine", [run_cascade, run_fast_cascade])
def test_a_transfer_beyond_the_stability_limit_trips_out_of_step(make_system, engine):
    result = engine(make_system(far_transfer(400.0)), flow="ac")
    [trip] = result.trips
    assert (trip.table, trip.index, trip.generation, trip.cause) == ("line", 0, 1, "out-of-step")
    assert trip.loading == pytest.approx(400.0 / (100.0 * 121.0 / 80.0), rel=1e-9)  # DC angle / 1 rad
    assert list(result.load_state) == ["island"] and result.collapse is None


@pytest.mark.parametrize("load_mw", [100.0, 150.0])
def test_within_the_stability_limit_it_is_voltage_collapse_instead(make_system, load_mw):
    result = run_cascade(make_system(far_transfer(load_mw)), flow="ac")
    assert not result.trips and result.collapse is not None
    fast = run_fast_cascade(make_system(far_transfer(load_mw)), flow="ac")
    assert not fast.trips and fast.collapse.stages == result.collapse.stages


def test_a_dc_cascade_has_no_stability_limit(make_system):
    assert run_cascade(make_system(far_transfer(400.0)), flow="dc").trips == []


def test_a_run_logs_the_out_of_step_trip(make_system):
    plan = parse_scenario("name: t\nhorizon_h: 1\nsteps:\n"
                          "  - {at_min: 5, action: scale_loads, technique: T0831, factor: 4, duration_min: 30,"
                          " targets: {kind: load, ids: [0]}}\n")
    result = simulate(make_system(far_transfer(100.0)), plan, flow="ac")
    [trip] = [e for e in result.events if e.element == "line:0" and e.state == "out"]
    assert trip.cause == "out-of-step" and trip.caused_by == "step:0"
    assert "steady-state stability limit" in trip.detail


# ---------------------------------------------------------------- the Texas synthetic grids in AC

def test_activsg200_fast_equals_reference_in_ac_on_seeded_attacks():
    system = activsg("case_ACTIVSg200")
    for seed in range(6):
        assert_same_ac(system, seeded_substation_attack(system, seed))


def test_activsg2000_seed_2_separates_out_of_step_instead_of_collapsing_whole():
    """The attack that once blacked out 90 % of Texas in AC (the whole island cut in 10 % stages)."""
    system = activsg("case_ACTIVSg2000")
    plan = load_scenario(str(Path(__file__).parents[1] / "attacks" / "random-substations.yaml"))
    seen = []

    class _Stop(Exception):
        pass

    def capture(system, outages, flow):
        if outages.lines:
            seen.append(outages)
            raise _Stop
        return run_fast_cascade(system, outages, flow=flow)

    with pytest.raises(_Stop):
        simulate(system, plan, flow="ac", seed=2, cascade=capture)
    reference = run_cascade(system, seen[0], flow="ac")
    fast = run_fast_cascade(system, seen[0], flow="ac")
    assert [(t.table, t.index, t.generation, t.cause) for t in fast.trips] == \
        [(t.table, t.index, t.generation, t.cause) for t in reference.trips]
    np.testing.assert_allclose(fast.served_mw, reference.served_mw, atol=1e-6)
    assert any(t.cause == "out-of-step" for t in reference.trips)
    assert reference.lost_mw < 0.2 * reference.demand_mw.sum()


# ---------------------------------------------------------------- islands: each on its own

def _both(system, outages=Outages()):
    reference, fast = run_cascade(system, outages, flow="ac"), run_fast_cascade(system, outages, flow="ac")
    assert [(t.table, t.index, t.generation, t.cause) for t in fast.trips] == \
        [(t.table, t.index, t.generation, t.cause) for t in reference.trips]
    np.testing.assert_allclose(fast.served_mw, reference.served_mw, atol=1e-6)
    np.testing.assert_allclose(fast.line_flow_mva, reference.line_flow_mva, atol=1e-3)
    assert fast.energised_buses == reference.energised_buses
    assert (reference.collapse is None) == (fast.collapse is None)
    if fast.collapse is not None:
        assert fast.collapse.stages == reference.collapse.stages and fast.collapse.rings == reference.collapse.rings
        assert list(fast.collapse.loads) == list(reference.collapse.loads)
    return reference


def grid_and_far_island(load_mw: float, gen_max_mw: float):
    """ext_grid b0 - b1 (a load), and apart an island: a generator at b2, 200 km of line, b3 (nothing yet)."""
    net = pp.create_empty_network()
    b = [pp.create_bus(net, 110) for _ in range(4)]
    pp.create_ext_grid(net, b[0])
    pp.create_line_from_parameters(net, b[0], b[1], 10, 0.05, 0.4, 0, 1.0)
    pp.create_load(net, b[1], p_mw=load_mw, q_mvar=load_mw / 5)
    pp.create_gen(net, b[2], p_mw=0, max_p_mw=gen_max_mw, min_p_mw=0, vm_pu=1.0)
    pp.create_line_from_parameters(net, b[2], b[3], 200, 0.05, 0.4, 0, 1.0)
    return net


def test_a_failing_island_without_load_is_cut_alone(make_system):
    """A generator, 200 km and a static generator drawing 60 Mvar: that island fails; the grid's load is not cut."""
    net = grid_and_far_island(20.0, gen_max_mw=50.0)
    pp.create_sgen(net, 3, p_mw=5, q_mvar=-60)
    result = _both(make_system(net))
    assert result.collapse is not None and not result.collapse.loads.any() and result.collapse.shed_mw == 0.0
    assert result.served_mw == pytest.approx([20.0])


def test_a_total_collapse_darkens_only_the_islands_that_fail(make_system):
    """An island that fails even with its load and generation cut (a ward the rule does not cut) goes dark alone."""
    net = grid_and_far_island(50.0, gen_max_mw=100.0)
    pp.create_load(net, 3, p_mw=5, q_mvar=1)
    pp.create_ward(net, 3, ps_mw=40, qs_mvar=60, pz_mw=0, qz_mvar=0)
    result = _both(make_system(net, overload_tolerance=5.0))
    assert result.collapse.stages == 10 and list(result.collapse.loads) == [False, True]
    assert result.served_mw == pytest.approx([50.0, 0.0])
    assert result.energised_buses == frozenset({0, 1})


@pytest.mark.parametrize("z_ohm", [0.0, 40.0])
def test_a_switch_with_impedance_is_one_branch_away(make_system, z_ohm):
    """pandapower fuses the buses of a closed bus-bus switch only without impedance; the area grows to match."""
    net = pp.create_empty_network()
    b = [pp.create_bus(net, 110) for _ in range(5)]
    pp.create_ext_grid(net, b[0])
    for a, c, km in ((0, 1, 10), (1, 2, 10), (2, 3, 20)):
        pp.create_line_from_parameters(net, b[a], b[c], km, 0.05, 0.4, 0, 1.0)
    pp.create_gen(net, b[3], p_mw=0, vm_pu=1.0)
    pp.create_switch(net, b[3], b[4], et="b", closed=True, z_ohm=z_ohm)
    pp.create_load(net, b[1], p_mw=30, q_mvar=6)
    pp.create_load(net, b[3], p_mw=30, q_mvar=6)
    pp.create_load(net, b[4], p_mw=400 if z_ohm == 0 else 80, q_mvar=80 if z_ohm == 0 else 16)
    result = _both(make_system(net, overload_tolerance=5.0))
    if z_ohm:
        assert list(result.collapse.loads) == [False, False, True]  # b4 alone: b3 is a branch away


# ---------------------------------------------------------------- the slack of an island without a grid

def two_generator_island():
    """A grid feeding an island through one tie; the island holds two generators (ranges 100 and 300 MW)."""
    net = pp.create_empty_network()
    b = [pp.create_bus(net, 110) for _ in range(5)]
    pp.create_ext_grid(net, b[0])
    for a, c, km in ((0, 1, 10), (1, 2, 30), (2, 3, 60), (3, 4, 60)):
        pp.create_line_from_parameters(net, b[a], b[c], km, 0.05, 0.4, 0, 1.0)
    pp.create_load(net, b[1], p_mw=10, q_mvar=2)
    pp.create_gen(net, b[2], p_mw=20, max_p_mw=100, min_p_mw=0, vm_pu=1.02)
    pp.create_gen(net, b[4], p_mw=20, max_p_mw=300, min_p_mw=0, vm_pu=1.0)
    pp.create_load(net, b[3], p_mw=120, q_mvar=30)
    return net


def test_the_generators_of_an_island_share_its_slack(make_system):
    system = make_system(two_generator_island(), overload_tolerance=5.0)
    tie = Outages(lines=frozenset({1}))
    result = _both(system, tie)
    # pandapower's distributed slack on the island alone, dispatched as the balance does (by range: 30 and 90 MW).
    island = two_generator_island()
    island.line.at[1, "in_service"] = False
    island.bus["in_service"] = island.bus.index.isin([2, 3, 4])
    island.gen["p_mw"] = [30.0, 90.0]
    island.gen["slack"] = [False, True]
    island.gen["slack_weight"] = [100.0, 300.0]
    pp.runpp(island, distributed_slack=True, numba=False, lightsim2grid=False)
    np.testing.assert_allclose(result.line_flow_mva[2:], np.maximum(
        np.hypot(island.res_line.p_from_mw, island.res_line.q_from_mvar),
        np.hypot(island.res_line.p_to_mw, island.res_line.q_to_mvar))[2:], atol=1e-6)
    losses = island.res_gen.p_mw.sum() - 120.0
    assert losses > 0.5
    np.testing.assert_allclose(island.res_gen.p_mw, [30.0 + losses / 4, 90.0 + 3 * losses / 4], atol=1e-6)


def test_a_generator_without_range_takes_no_slack_even_as_the_reference(make_system):
    """The largest generator (the island's reference) is must-run (min = max): the other one takes all the slack."""
    net = two_generator_island()
    net.gen.at[1, "min_p_mw"] = 300.0
    net.gen.at[1, "p_mw"] = 300.0
    result = _both(make_system(net, overload_tolerance=5.0), Outages(lines=frozenset({1})))
    single = copy.deepcopy(net)  # one slack at the reference would give other flows: the rule is seen
    single.line.at[1, "in_service"] = False
    single.bus["in_service"] = single.bus.index.isin([2, 3, 4])
    single.gen["slack"] = [False, True]
    assert run_ac(single)
    single_flow = np.hypot(single.res_line.p_from_mw, single.res_line.q_from_mvar).to_numpy()[2:]
    assert np.abs(result.line_flow_mva[2:] - single_flow).max() > 0.1


def test_a_jacobian_superlu_cannot_factorise_is_no_solution(monkeypatch):
    def singular(net, **kw):
        raise RuntimeError("failed to factorize matrix at line 110 in file dsnode_bmod.c")

    monkeypatch.setattr(pandapower, "runpp", singular)
    assert run_ac(core_and_weak_end()) is False

    def other(net, **kw):
        raise RuntimeError("something else")

    monkeypatch.setattr(pandapower, "runpp", other)
    with pytest.raises(RuntimeError, match="something else"):
        run_ac(core_and_weak_end())
