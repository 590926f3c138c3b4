"""Each cascade rule (the README's "How a cascade runs") on a grid small enough to solve by hand."""

from __future__ import annotations

import copy

import numpy as np
import pandapower as pp
import pytest
from conftest import island_with_generator, parallel_pair, radial_feeder, stock_system

from gridsim.power.cascade import run_cascade
from gridsim.power.contract import LOAD_ISLAND, LOAD_SERVED, LOAD_SHED, Outages


@pytest.mark.parametrize("flow", ["dc", "ac"])
def test_untouched_grid_serves_everything(make_system, flow):
    result = run_cascade(make_system(radial_feeder()), flow=flow)
    assert result.trips == []
    assert result.depth == 0
    np.testing.assert_allclose(result.served_mw, [10.0, 20.0], rtol=1e-6)
    assert list(result.load_state) == [LOAD_SERVED, LOAD_SERVED]


@pytest.mark.parametrize("flow", ["dc", "ac"])
def test_radial_feeder_losing_its_supply_goes_dark(make_system, flow):
    system = make_system(radial_feeder())
    result = run_cascade(system, Outages(lines=frozenset({0})), flow=flow)
    assert list(result.load_state) == [LOAD_ISLAND, LOAD_ISLAND]
    assert result.served_mw.sum() == 0.0
    assert result.lost_mw == pytest.approx(30.0)


def test_cutting_the_far_line_loses_only_the_far_load(make_system):
    result = run_cascade(make_system(radial_feeder()), Outages(lines=frozenset({1})))
    assert list(result.load_state) == [LOAD_SERVED, LOAD_ISLAND]
    assert result.lost_mw == pytest.approx(20.0)


def test_parallel_pair_one_trip_overloads_the_other(make_system):
    # 80 MW over two 50 MVA lines: 40 MW each. Lose one: 80 MW on the other > 50 -> trips.
    system = make_system(parallel_pair(80.0, 50.0))
    base = run_cascade(system)
    assert base.trips == [] and base.line_flow_mva == pytest.approx([40.0, 40.0])
    result = run_cascade(system, Outages(lines=frozenset({0})))
    assert [(t.table, t.index, t.generation) for t in result.trips] == [("line", 1, 1)]
    assert result.trips[0].loading == pytest.approx(80.0 / 50.0)
    assert result.depth == 1
    assert result.lost_mw == pytest.approx(80.0)
    assert list(result.load_state) == [LOAD_ISLAND]


def test_parallel_pair_within_tolerance_holds(make_system):
    # 80 MW on a 50 MVA line is 160 %: a tolerance of 0.7 (trip above 170 %) keeps it in.
    system = make_system(parallel_pair(80.0, 50.0), overload_tolerance=0.7)
    result = run_cascade(system, Outages(lines=frozenset({0})))
    assert result.trips == []
    assert result.lost_mw == pytest.approx(0.0)


@pytest.mark.parametrize("flow", ["dc", "ac"])
def test_island_with_too_little_generation_sheds_proportionally(make_system, flow):
    # Island keeps a 30 MW generator for a 50 MW load: 20 MW shed, 60 % served.
    system = make_system(island_with_generator(load_mw=50.0, gen_max_mw=30.0))
    result = run_cascade(system, Outages(lines=frozenset({0})), flow=flow)
    assert list(result.load_state) == [LOAD_SHED]
    assert result.served_mw[0] == pytest.approx(30.0, rel=1e-3)


def test_island_with_enough_generation_is_served_whole(make_system):
    system = make_system(island_with_generator(load_mw=25.0, gen_max_mw=30.0))
    result = run_cascade(system, Outages(lines=frozenset({0})))
    assert list(result.load_state) == [LOAD_SERVED]
    assert result.served_mw[0] == pytest.approx(25.0)


def test_tripped_generator_leaves_island_dark(make_system):
    system = make_system(island_with_generator())
    result = run_cascade(system, Outages(lines=frozenset({0}), gens=frozenset({0})))
    assert list(result.load_state) == [LOAD_ISLAND]


def test_static_generator_cannot_hold_an_island(make_system):
    net = radial_feeder()
    pp.create_sgen(net, 2, p_mw=50.0)  # more than the island's load, but grid-following
    result = run_cascade(make_system(net), Outages(lines=frozenset({1})))
    assert result.load_state[1] == LOAD_ISLAND


def test_load_factor_scales_demand(make_system):
    result = run_cascade(make_system(radial_feeder()), Outages(load_factor={1: 1.5}))
    assert result.demand_mw == pytest.approx([10.0, 30.0])
    assert result.served_mw == pytest.approx([10.0, 30.0])


def test_ac_non_convergence_sheds_in_stages_until_it_converges(make_system):
    # A 200 km line carrying 100 MW at 110 kV cannot be solved in AC (its DC angle, 0.66 rad, is within the
    # steady-state limit): voltage collapse.
    net = pp.create_empty_network()
    b0, b1 = pp.create_bus(net, 110), pp.create_bus(net, 110)
    pp.create_ext_grid(net, b0)
    pp.create_line_from_parameters(net, b0, b1, 200, 0.1, 0.4, 0, 100.0)
    pp.create_load(net, b1, p_mw=100, q_mvar=25)
    result = run_cascade(make_system(net), flow="ac")
    assert result.ac_shed_stages > 0 and not result.trips
    assert 0 < result.served_mw[0] < 100
    assert result.served_mw[0] == pytest.approx(100 * (1 - 0.1 * result.ac_shed_stages), rel=1e-6)
    assert list(result.load_state) == [LOAD_SHED]


def test_cascade_never_modifies_the_input_net(make_system):
    system = make_system(parallel_pair())
    before = copy.deepcopy(system.net)
    run_cascade(system, Outages(lines=frozenset({0}), load_factor={0: 2.0}))
    assert system.net.line.in_service.equals(before.line.in_service)
    assert system.net.load.scaling.equals(before.load.scaling)


@pytest.mark.parametrize("case", ["case9", "case30", "case118"])
def test_dc_flows_equal_pandapower_rundcpp_on_stock_cases(case):
    system = stock_system(case)
    result = run_cascade(system)
    net = copy.deepcopy(system.net)
    pp.rundcpp(net)
    np.testing.assert_allclose(result.line_flow_mva, np.abs(net.res_line.p_from_mw.to_numpy()), atol=1e-9)
    np.testing.assert_allclose(result.trafo_flow_mva, np.abs(net.res_trafo.p_hv_mw.to_numpy()), atol=1e-9)
    np.testing.assert_allclose(result.served_mw, net.res_load.p_mw.to_numpy(), atol=1e-9)
    assert result.trips == []


def test_unrated_stock_branches_get_base_flow_ratings():
    system = stock_system("case118")
    result = run_cascade(system)
    # Every rating covers (1 + margin) x base flow, so the base case sits at <= 1/1.5 loading.
    loading = result.line_flow_mva / system.line_rating_mva
    assert np.isfinite(system.line_rating_mva).all()
    assert loading.max() <= 1 / 1.5 + 1e-9


def test_grid_without_any_source_goes_dark_without_error(make_system):
    net = radial_feeder()
    net.ext_grid["in_service"] = False
    result = run_cascade(make_system(net))
    assert list(result.load_state) == [LOAD_ISLAND, LOAD_ISLAND]
    assert result.served_mw.sum() == 0.0


def test_ac_shedding_stays_in_the_island_that_collapses(make_system):
    # Two islands fed by their own external grids: a sound one (10 MW) and one that cannot converge (400 MW).
    net = pp.create_empty_network()
    a0, a1 = pp.create_bus(net, 110), pp.create_bus(net, 110)
    b0, b1 = pp.create_bus(net, 110), pp.create_bus(net, 110)
    for root in (a0, b0):
        pp.create_ext_grid(net, root)
    pp.create_line_from_parameters(net, a0, a1, 10, 0.1, 0.4, 0, 100.0)
    pp.create_line_from_parameters(net, b0, b1, 200, 0.1, 0.4, 0, 100.0)
    pp.create_load(net, a1, p_mw=10, q_mvar=2)
    pp.create_load(net, b1, p_mw=100, q_mvar=25)
    result = run_cascade(make_system(net), flow="ac")
    assert result.ac_shed_stages > 0
    assert result.served_mw[0] == pytest.approx(10.0)
    assert result.served_mw[1] < 100
