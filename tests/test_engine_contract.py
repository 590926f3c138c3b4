"""The cascade engine contract: behaviours every engine must show, and the engines' agreement element by element.

:class:`EngineContract` is the conformance suite (as Grid2Op's numbered
backend interface tests): its tests are numbered and each asks
:meth:`EngineContract.make_engine` for the engine under test. Each engine
subclasses it once (``TestReferenceEngine``, ``TestFastEngine``, ...); a new
engine adds one subclass and must pass every test. The grids are small
enough to solve by hand (``conftest.py``) or to reason about in a line.

The agreement suite below holds the fast engine to the reference on random
outages (Hypothesis) on a few small grids, in DC and in AC: the same
branches trip, in the same generations and for the same cause, and every
load is served the same (``test_fast_engine.assert_same``).
"""

from __future__ import annotations

import copy

import numpy as np
import pandapower as pp
import pytest
from conftest import _line, island_with_generator, parallel_pair, radial_feeder, stock_system
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_ac_rules import WEAK_LINE, core_and_weak_end, far_transfer
from test_fast_engine import assert_same, assert_same_ac, attacks, shifter_grid, substation_attacks

from gridsim.power.cascade import run_cascade
from gridsim.power.compiled import compile_grid
from gridsim.power.contract import (
    FLOWS,
    LOAD_ISLAND,
    LOAD_SERVED,
    LOAD_SHED,
    TRIP_OUT_OF_STEP,
    TRIP_OVERLOAD,
    CascadeEngine,
    CascadeResult,
    Outages,
    labelled,
    stage_kept,
)
from gridsim.power.fast import FastCascade, run_fast_cascade

both_flows = pytest.mark.parametrize("flow", FLOWS)


def three_parallel_lines():
    """ext_grid b0 =three equal lines (100, 30 and 50 MVA)= b1, 84 MW: 28 MW on each."""
    net = pp.create_empty_network()
    b0, b1 = pp.create_bus(net, 110), pp.create_bus(net, 110)
    pp.create_ext_grid(net, b0)
    for rating in (100.0, 30.0, 50.0):
        _line(net, b0, b1, max_i_ka=rating / (3 ** 0.5 * 110))
    pp.create_load(net, b1, p_mw=84.0)
    return net


def switched_feeder():
    """ext_grid b0 - b1 (a generator, a 10 MW load) =closed bus-bus switch= b2 (a 20 MW load)."""
    net = pp.create_empty_network()
    b = [pp.create_bus(net, 110) for _ in range(3)]
    pp.create_ext_grid(net, b[0])
    _line(net, b[0], b[1])
    pp.create_switch(net, b[1], b[2], et="b", closed=True)
    pp.create_gen(net, b[1], p_mw=5.0, max_p_mw=15.0, min_p_mw=0.0)
    pp.create_load(net, b[1], p_mw=10.0)
    pp.create_load(net, b[2], p_mw=20.0)
    return net


class EngineContract:
    """What every cascade engine does. Subclass it with :meth:`make_engine` returning the engine under test."""

    #: The label the engine carries (``None``: any non-empty one).
    label: str | None = None

    def make_engine(self) -> CascadeEngine:
        """The engine under test."""
        raise NotImplementedError

    def run(self, system, outages: Outages = Outages(), flow: str = "dc") -> CascadeResult:
        return self.make_engine()(system, outages, flow=flow)

    def test_00_is_a_cascade_engine_with_its_label(self):
        engine = self.make_engine()
        assert isinstance(engine, CascadeEngine)
        assert isinstance(engine.label, str) and engine.label
        if self.label is not None:
            assert engine.label == self.label

    @both_flows
    def test_01_without_outages_nothing_trips_and_all_load_is_served(self, make_system, flow):
        result = self.run(make_system(radial_feeder()), flow=flow)
        assert isinstance(result, CascadeResult)
        assert result.trips == [] and result.depth == 0 and result.collapse is None
        np.testing.assert_allclose(result.served_mw, [10.0, 20.0], rtol=1e-6)
        np.testing.assert_allclose(result.demand_mw, [10.0, 20.0])
        assert list(result.load_state) == [LOAD_SERVED, LOAD_SERVED]
        assert result.islands == 1 and result.energised_buses == frozenset({0, 1, 2})
        assert result.lost_mw == pytest.approx(0.0, abs=1e-6) and result.ac_shed_stages == 0

    @both_flows
    def test_02_per_element_arrays_follow_the_net(self, flow):
        system = stock_system("case30")
        result = self.run(system, Outages(lines=frozenset({0, 5})), flow=flow)
        net = system.net
        assert len(result.demand_mw) == len(result.served_mw) == len(result.load_state) == len(net.load)
        assert len(result.line_flow_mva) == len(net.line) and len(result.trafo_flow_mva) == len(net.trafo)
        assert (result.served_mw >= 0).all() and (result.served_mw <= result.demand_mw + 1e-9).all()
        assert set(result.load_state) <= {LOAD_SERVED, LOAD_ISLAND, LOAD_SHED}
        assert result.energised_buses <= set(int(b) for b in net.bus.index)

    @both_flows
    def test_03_a_bridge_outage_islands_the_far_side(self, make_system, flow):
        result = self.run(make_system(radial_feeder()), Outages(lines=frozenset({1})), flow=flow)
        assert result.trips == []
        assert list(result.load_state) == [LOAD_SERVED, LOAD_ISLAND]
        assert result.served_mw[1] == 0.0 and result.lost_mw == pytest.approx(20.0, abs=1e-6)
        assert result.islands == 2 and result.energised_buses == frozenset({0, 1})

    @both_flows
    def test_04_losing_the_only_supply_darkens_everything(self, make_system, flow):
        result = self.run(make_system(radial_feeder()), Outages(lines=frozenset({0})), flow=flow)
        assert list(result.load_state) == [LOAD_ISLAND, LOAD_ISLAND]
        assert result.served_mw.sum() == 0.0 and result.lost_mw == pytest.approx(30.0)
        assert result.energised_buses == frozenset({0})

    @both_flows
    def test_05_an_overload_trips_with_its_cause_generation_and_loading(self, make_system, flow):
        # 80 MW over two 50 MVA lines: 40 MW each; lose one and the other carries 80 (160 %).
        system = make_system(parallel_pair(80.0, 50.0))
        result = self.run(system, Outages(lines=frozenset({0})), flow=flow)
        [trip] = result.trips
        assert (trip.table, trip.index, trip.generation, trip.cause) == ("line", 1, 1, TRIP_OVERLOAD)
        if flow == "dc":
            assert trip.loading == pytest.approx(80.0 / 50.0, rel=1e-9)
        else:
            assert trip.loading == pytest.approx(80.0 / 50.0, rel=0.02)  # and a little more with the losses
        assert result.depth == 1 and list(result.load_state) == [LOAD_ISLAND]
        assert result.lost_mw == pytest.approx(80.0)

    @both_flows
    def test_06_within_the_tolerance_nothing_trips(self, make_system, flow):
        system = make_system(parallel_pair(80.0, 50.0), overload_tolerance=0.7)  # trips above 170 %
        result = self.run(system, Outages(lines=frozenset({0})), flow=flow)
        assert result.trips == [] and result.lost_mw == pytest.approx(0.0, abs=1e-6)

    @both_flows
    def test_07_trips_come_in_generations(self, make_system, flow):
        # Lose the 100 MVA line: 42 MW on each of the others trips the 30 MVA one, then 84 MW the 50 MVA one.
        result = self.run(make_system(three_parallel_lines()), Outages(lines=frozenset({0})), flow=flow)
        assert [(t.table, t.index, t.generation, t.cause) for t in result.trips] == [
            ("line", 1, 1, TRIP_OVERLOAD), ("line", 2, 2, TRIP_OVERLOAD)]
        assert result.depth == 2 and list(result.load_state) == [LOAD_ISLAND]

    @both_flows
    def test_08_an_island_short_of_generation_sheds_in_proportion(self, make_system, flow):
        # The island keeps a 30 MW generator for its 50 MW load: 60 % served.
        system = make_system(island_with_generator(load_mw=50.0, gen_max_mw=30.0))
        result = self.run(system, Outages(lines=frozenset({0})), flow=flow)
        assert list(result.load_state) == [LOAD_SHED]
        assert result.served_mw[0] == pytest.approx(30.0, rel=1e-6)
        assert result.islands == 2 and result.energised_buses == frozenset({0, 1})

    @both_flows
    def test_09_an_island_with_enough_generation_is_served_whole(self, make_system, flow):
        system = make_system(island_with_generator(load_mw=25.0, gen_max_mw=30.0))
        result = self.run(system, Outages(lines=frozenset({0})), flow=flow)
        assert list(result.load_state) == [LOAD_SERVED] and result.served_mw[0] == pytest.approx(25.0)

    @both_flows
    def test_10_a_tripped_generator_leaves_its_island_dark(self, make_system, flow):
        system = make_system(island_with_generator())
        result = self.run(system, Outages(lines=frozenset({0}), gens=frozenset({0})), flow=flow)
        assert list(result.load_state) == [LOAD_ISLAND] and result.served_mw[0] == 0.0

    @both_flows
    def test_11_a_static_generator_cannot_hold_an_island(self, make_system, flow):
        net = radial_feeder()
        pp.create_sgen(net, 2, p_mw=50.0)  # more than the island's load, but grid-following
        result = self.run(make_system(net), Outages(lines=frozenset({1})), flow=flow)
        assert result.load_state[1] == LOAD_ISLAND and result.served_mw[1] == 0.0

    @both_flows
    def test_12_load_factors_scale_demand_and_shed_load_is_demand_not_served(self, make_system, flow):
        system = make_system(radial_feeder())
        scaled = self.run(system, Outages(load_factor={1: 1.5}), flow=flow)
        np.testing.assert_allclose(scaled.demand_mw, [10.0, 30.0])
        np.testing.assert_allclose(scaled.served_mw, [10.0, 30.0], rtol=1e-6)
        shed = self.run(system, Outages(load_shed={1: 0.25}), flow=flow)
        np.testing.assert_allclose(shed.demand_mw, [10.0, 20.0])
        np.testing.assert_allclose(shed.served_mw, [10.0, 15.0], rtol=1e-6)
        assert list(shed.load_state) == [LOAD_SERVED, LOAD_SHED]

    @both_flows
    def test_13_an_open_bus_bus_switch_separates_its_buses(self, make_system, flow):
        system = make_system(switched_feeder())
        result = self.run(system, Outages(switches=frozenset({0})), flow=flow)
        assert list(result.load_state) == [LOAD_SERVED, LOAD_ISLAND]
        assert result.served_mw[0] == pytest.approx(10.0) and result.islands == 2

    def test_14_ac_voltage_collapse_sheds_the_weak_area_and_says_so(self, make_system):
        system = make_system(core_and_weak_end())
        result = self.run(system, Outages(lines=frozenset({WEAK_LINE})), flow="ac")
        collapse = result.collapse
        assert collapse is not None and result.trips == []
        assert collapse.rings == 0 and list(collapse.loads) == [False, False, True]  # the weak bus alone
        assert 0 < collapse.stages < 10 and result.ac_shed_stages == collapse.stages
        kept = stage_kept(collapse.stages)
        assert collapse.shed_mw == pytest.approx(60.0 * (1.0 - kept), rel=1e-9)
        np.testing.assert_allclose(result.served_mw, [30.0, 30.0, 60.0 * kept], rtol=1e-6)
        assert list(result.load_state) == [LOAD_SERVED, LOAD_SERVED, LOAD_SHED]
        dc = self.run(system, Outages(lines=frozenset({WEAK_LINE})), flow="dc")
        assert dc.collapse is None and dc.ac_shed_stages == 0  # DC has no voltage

    def test_15_ac_beyond_the_stability_limit_trips_out_of_step(self, make_system):
        system = make_system(far_transfer(400.0))  # the line's limit V^2 / X is 151.25 MW
        result = self.run(system, flow="ac")
        [trip] = result.trips
        assert (trip.table, trip.index, trip.generation, trip.cause) == ("line", 0, 1, TRIP_OUT_OF_STEP)
        assert trip.loading == pytest.approx(400.0 / (100.0 * 121.0 / 80.0), rel=1e-9)
        assert list(result.load_state) == [LOAD_ISLAND] and result.collapse is None
        assert self.run(system, flow="dc").trips == []  # DC has no stability limit

    @both_flows
    def test_16_the_same_call_gives_the_same_result(self, flow):
        system = stock_system("case9")
        outages = Outages(lines=frozenset({2, 4}), load_factor={0: 1.8})
        first, again = self.run(system, outages, flow=flow), self.run(system, outages, flow=flow)
        assert first.trips == again.trips
        for name in ("demand_mw", "served_mw", "load_state", "line_flow_mva", "trafo_flow_mva"):
            np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
        assert (first.depth, first.islands, first.energised_buses) == (again.depth, again.islands,
                                                                       again.energised_buses)

    @both_flows
    def test_17_outages_never_modify_the_system(self, make_system, flow):
        system = make_system(switched_feeder())
        net_before, attributes = copy.deepcopy(system.net), dict(vars(system))
        ratings = system.line_rating_mva.copy(), system.trafo_rating_mva.copy()
        for outages in (Outages(lines=frozenset({0}), load_factor={0: 2.0}),
                        Outages(gens=frozenset({0}), load_shed={1: 0.5}), Outages(switches=frozenset({0}))):
            self.run(system, outages, flow=flow)
        for table in net_before:
            if isinstance(net_before[table], type(net_before.bus)):
                assert net_before[table].equals(system.net[table]), table
        assert set(vars(system)) == set(attributes)  # nothing written onto the system
        assert all(vars(system)[name] is value for name, value in attributes.items())
        np.testing.assert_array_equal(system.line_rating_mva, ratings[0])
        np.testing.assert_array_equal(system.trafo_rating_mva, ratings[1])

    def test_18_a_flow_that_is_not_dc_or_ac_is_refused(self, make_system):
        with pytest.raises(ValueError, match="flow must be 'dc' or 'ac', got 'dcac'"):
            self.run(make_system(radial_feeder()), flow="dcac")


class TestReferenceEngine(EngineContract):
    label = "reference"

    def make_engine(self) -> CascadeEngine:
        return run_cascade


class TestFastEngine(EngineContract):
    label = "fast"

    def make_engine(self) -> CascadeEngine:
        return run_fast_cascade


@labelled("fast")
def _held_fast_engine(system, outages: Outages = Outages(), *, flow: str = "dc") -> CascadeResult:
    """The compiled engine as a caller builds and holds it (itself a CascadeEngine), not the one kept beside."""
    engine = FastCascade(compile_grid(system), system)
    assert isinstance(engine, CascadeEngine) and engine.label == "fast"
    return engine(system, outages, flow=flow)


class TestAFastEngineTheCallerHolds(EngineContract):
    label = "fast"

    def make_engine(self) -> CascadeEngine:
        return _held_fast_engine


# ---------------------------------------------------------------- agreement: fast = reference, element by element

AGREEMENT = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
AC_AGREEMENT = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("case", ["case9", "case30", "case118", "shifter"])
@AGREEMENT
@given(data=st.data())
def test_the_engines_agree_in_dc(case, data):
    system = shifter_grid() if case == "shifter" else stock_system(case)
    assert_same(system, data.draw(attacks(system)))
    assert_same(system, data.draw(substation_attacks(system)))


@pytest.mark.parametrize("case", ["case9", "case30"])
@AC_AGREEMENT
@given(data=st.data())
def test_the_engines_agree_in_ac(case, data):
    system = stock_system(case)
    assert_same_ac(system, data.draw(substation_attacks(system)))
