"""The fast cascade engine against the reference: the same branches trip, the same load is served.

The reference (:func:`gridsim.power.cascade.run_cascade`) is plain
pandapower, slow and obviously right. :func:`assert_same` and
:func:`assert_same_ac` compare the two element by element; the agreement
suite of ``tests/test_engine_contract.py`` draws attacks on small stock
cases with them, and the tests here on grids with what the arrays must get
right: phase shifters, three-winding transformers, several external grids,
generator-only islands, and on how the engine is kept and pickled.
``benchmarks/check_fast_engine.py`` does the same on the large cases.
"""

from __future__ import annotations

import functools
import gc
import pickle
import weakref

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest
from conftest import _line, stock_system
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridsim.loading import load_system, system_from_net
from gridsim.power.cascade import run_cascade
from gridsim.power.compiled import compile_grid
from gridsim.power.contract import Outages
from gridsim.power.fast import FastCascade, fast_engine, run_fast_cascade

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_trips_agree(fast, ref) -> None:
    """The same branches trip, in the same order and generations, for the same cause."""
    assert [(t.table, t.index, t.generation, t.cause) for t in fast.trips] == \
        [(t.table, t.index, t.generation, t.cause) for t in ref.trips]


def assert_same(system, outages: Outages) -> None:
    """DC: the engines agree on every trip, every load's demand, service and state, every flow, the islands."""
    ref = run_cascade(system, outages)
    fast = run_fast_cascade(system, outages)
    assert_trips_agree(fast, ref)
    np.testing.assert_allclose([t.loading for t in fast.trips], [t.loading for t in ref.trips], rtol=1e-6)
    np.testing.assert_allclose(fast.served_mw, ref.served_mw, atol=1e-6)
    np.testing.assert_allclose(fast.demand_mw, ref.demand_mw, atol=1e-9)
    assert list(fast.load_state) == list(ref.load_state)
    assert fast.energised_buses == ref.energised_buses
    assert fast.islands == ref.islands and fast.depth == ref.depth
    np.testing.assert_allclose(fast.line_flow_mva, ref.line_flow_mva, atol=1e-6)
    np.testing.assert_allclose(fast.trafo_flow_mva, ref.trafo_flow_mva, atol=1e-6)


@functools.cache
def shifter_grid():
    """A meshed 110 kV ring fed through a phase-shifting transformer, with a second infeed and a generator."""
    net = pp.create_empty_network()
    hv = pp.create_bus(net, 220, name="hv")
    buses = [pp.create_bus(net, 110, name=f"b{i}") for i in range(5)]
    pp.create_ext_grid(net, hv)
    pp.create_transformer_from_parameters(net, hv, buses[0], sn_mva=200, vn_hv_kv=220, vn_lv_kv=110,
                                          vkr_percent=0.3, vk_percent=12, pfe_kw=0, i0_percent=0,
                                          shift_degree=8)
    for a, b in ((0, 1), (1, 2), (2, 3), (3, 4), (4, 0), (1, 3)):
        _line(net, buses[a], buses[b], max_i_ka=0.5)
    pp.create_ext_grid(net, buses[2], va_degree=0.0)
    pp.create_gen(net, buses[4], p_mw=40, max_p_mw=60, min_p_mw=5)
    for i, mw in enumerate((20, 35, 30, 25, 45)):
        pp.create_load(net, buses[i], p_mw=mw)
    pp.create_sgen(net, buses[3], p_mw=10)
    pp.create_shunt(net, buses[1], p_mw=1.5, q_mvar=0)
    return system_from_net(net, name="shifter", overload_tolerance=0.0)


@functools.cache
def multivoltage():
    """pandapower's example net: three-winding transformer, bus-bus switches, an impedance, a ward."""
    return system_from_net(pn.example_multivoltage(), name="multivoltage")


@st.composite
def attacks(draw, system):
    net = system.net
    lines = draw(st.sets(st.sampled_from(list(net.line.index)), max_size=5))
    trafos = draw(st.sets(st.sampled_from(list(net.trafo.index)), max_size=2)) if len(net.trafo) else set()
    gens = draw(st.sets(st.sampled_from(list(net.gen.index)), max_size=2)) if len(net.gen) else set()
    loads = draw(st.dictionaries(st.sampled_from(list(net.load.index)), st.floats(0.3, 2.5), max_size=4))
    shed = draw(st.dictionaries(st.sampled_from(list(net.load.index)), st.floats(0.0, 1.0), max_size=3))
    return Outages(lines=frozenset(map(int, lines)), trafos=frozenset(map(int, trafos)),
                   gens=frozenset(map(int, gens)), load_factor=loads, load_shed=shed)


@st.composite
def substation_attacks(draw, system):
    """Open every branch at 1-5 buses: splits the grid and leaves islands without a source."""
    net = system.net
    buses = draw(st.sets(st.sampled_from(list(net.bus.index)), min_size=1, max_size=5))
    lines = net.line.index[net.line.from_bus.isin(buses) | net.line.to_bus.isin(buses)]
    trafos = net.trafo.index[net.trafo.hv_bus.isin(buses) | net.trafo.lv_bus.isin(buses)]
    return Outages(lines=frozenset(map(int, lines)), trafos=frozenset(map(int, trafos)))


@SETTINGS
@given(data=st.data())
def test_fast_equals_reference_on_the_ukraine_grid(data):
    system = ukraine()
    assert_same(system, data.draw(substation_attacks(system)))


@functools.cache
def ukraine():
    return load_system("ukraine-2015")


@pytest.mark.parametrize("outages", [
    Outages(),
    Outages(trafo3ws=frozenset({0})),
    Outages(lines=frozenset({0, 1, 2}), trafos=frozenset({0})),
    Outages(switches=frozenset({0})),  # changes which buses pandapower fuses: handed to the reference
])
def test_fast_equals_reference_on_a_multivoltage_net(outages):
    system = multivoltage()
    if outages.switches:
        bus_bus = system.net.switch.index[(system.net.switch.et == "b") & system.net.switch.closed]
        outages = Outages(switches=frozenset({int(bus_bus[0])}))
    assert_same(system, outages)


def test_a_generator_island_is_balanced_and_shed_like_the_reference():
    # case9: opening the lines around generator bus 1 and a load leaves islands held by generators alone.
    system = stock_system("case9")
    for lines in ({0}, {2, 3}, {3, 4}, {1, 4, 7}, {0, 2, 5}):
        assert_same(system, Outages(lines=frozenset(lines)))
        assert_same(system, Outages(lines=frozenset(lines), load_factor={0: 2.5, 1: 2.5, 2: 2.5}))


def test_the_compiled_grid_pickles_and_the_engine_rebuilds_from_it():
    system = stock_system("case118")
    grid = pickle.loads(pickle.dumps(compile_grid(system)))
    out = Outages(lines=frozenset({7, 8, 9}))
    again = FastCascade(grid).run(out)
    ref = run_cascade(system, out)
    assert [(t.table, t.index) for t in again.trips] == [(t.table, t.index) for t in ref.trips]
    np.testing.assert_allclose(again.served_mw, ref.served_mw, atol=1e-6)


def test_an_engine_with_a_sparse_factorisation_pickles_for_worker_processes():
    system = stock_system("case1354pegase")
    engine = fast_engine(system)
    out = Outages(lines=frozenset({10, 20}))
    first = engine.run(out)
    assert engine.factorisation == "sparse-lu"  # large grid: sparse LU, not a dense inverse
    again = pickle.loads(pickle.dumps(engine))  # SuperLU objects do not pickle: the engine leaves them out
    assert again.factorisation == "sparse-lu"  # ... and factorises again on first use
    result = again.run(out)
    np.testing.assert_allclose(result.served_mw, first.served_mw)
    assert [t.index for t in result.trips] == [t.index for t in first.trips]
    # A worker's engine, without the system (and so without pandapower's net), pickles and runs the same.
    light = pickle.loads(pickle.dumps(engine.for_system(None)))
    assert light.system is None
    assert [t.index for t in light.run(out).trips] == [t.index for t in first.trips]


def test_engine_is_compiled_once_per_system_and_kept_beside_it():
    system = stock_system("case30")
    before = set(vars(system))
    assert fast_engine(system) is fast_engine(system)
    assert set(vars(system)) == before  # nothing written onto the system
    assert fast_engine(system).system is system
    twin = pickle.loads(pickle.dumps(system))  # another system (equal, not the same): its own engine
    assert fast_engine(twin) is not fast_engine(system) and fast_engine(twin).system is twin


def test_a_held_engine_runs_only_on_the_system_it_was_compiled_from():
    system, other = stock_system("case9"), stock_system("case30")
    engine = FastCascade(compile_grid(system), system)
    assert engine(system, Outages(lines=frozenset({3}))).islands == 2
    with pytest.raises(ValueError, match="compiled from another system"):
        engine(other)
    with pytest.raises(ValueError, match="compiled from another system"):
        engine.for_system(None)(system)


def test_the_kept_engine_does_not_keep_its_system_alive():
    system = system_from_net(pn.case9(), name="short-lived")
    engine = fast_engine(system)
    gone = weakref.ref(system)
    del system
    gc.collect()
    assert gone() is None and engine.system is None


def assert_same_ac(system, outages: Outages) -> None:
    """AC: as :func:`assert_same`, and the same voltage collapse; flows to a kVA."""
    ref = run_cascade(system, outages, flow="ac")
    fast = run_fast_cascade(system, outages, flow="ac")
    assert_trips_agree(fast, ref)
    np.testing.assert_allclose(fast.served_mw, ref.served_mw, atol=1e-6)
    np.testing.assert_allclose(fast.demand_mw, ref.demand_mw, atol=1e-9)
    assert list(fast.load_state) == list(ref.load_state)
    assert fast.energised_buses == ref.energised_buses
    assert fast.islands == ref.islands and fast.depth == ref.depth
    assert fast.ac_shed_stages == ref.ac_shed_stages
    assert (fast.collapse is None) == (ref.collapse is None)
    if ref.collapse is not None:
        assert fast.collapse.rings == ref.collapse.rings
        assert list(fast.collapse.loads) == list(ref.collapse.loads)
        assert fast.collapse.shed_mw == pytest.approx(ref.collapse.shed_mw, abs=1e-6)
    # Both Newton-Raphson solutions stop within 1e-8 p.u. of mismatch: flows agree to well under a kVA.
    np.testing.assert_allclose(fast.line_flow_mva, ref.line_flow_mva, atol=1e-3)
    np.testing.assert_allclose(fast.trafo_flow_mva, ref.trafo_flow_mva, atol=1e-3)


@pytest.mark.parametrize("lines, stages", [({0, 2, 4}, 4), ({5, 6, 7}, 0), (set(), 0)])
def test_ac_voltage_collapse_is_shed_in_the_same_stages(lines, stages):
    system = stock_system("case9")
    outages = Outages(lines=frozenset(lines))
    assert_same_ac(system, outages)
    assert run_fast_cascade(system, outages, flow="ac").ac_shed_stages == stages


def test_ac_with_two_references_in_one_island_is_left_to_the_reference():
    system = shifter_grid()  # two external grids in one ring
    assert_same_ac(system, Outages(lines=frozenset({0})))


def test_the_sparse_factorisation_s_columns_stay_right_when_its_column_cache_fills(monkeypatch):
    """Columns solved from the sparse LU equal the dense inverse's, also after the cache was cleared to make room."""
    import gridsim.power.dcsolver as dcsolver
    from gridsim.power.fast import FastCascade

    system = stock_system("case30")
    dense = FastCascade.kept_beside(system)._base_solver()
    monkeypatch.setattr(dcsolver, "DENSE_ROWS", 0)
    monkeypatch.setattr(dcsolver, "_COLUMN_CACHE", 2)
    sparse = FastCascade.kept_beside(system)._base_solver()
    assert dense.inverse is not None and sparse.inverse is None
    rows = dense.rows
    for asked in ([rows[0], rows[1]], [rows[1], rows[2]], [rows[3], rows[1], rows[0]]):  # each overflows the cache
        asked = np.array(asked)
        assert np.allclose(sparse.columns(asked), dense.columns(asked), atol=1e-12)


def test_a_held_engine_refuses_a_copy_of_its_system_with_other_limits():
    import dataclasses

    from gridsim.power.fast import fast_engine

    system = stock_system("case30")
    engine = fast_engine(system)
    assert engine(dataclasses.replace(system)).lost_mw == engine(system).lost_mw  # the same net, ratings and limit
    with pytest.raises(ValueError, match="compiled from another system"):
        engine(dataclasses.replace(system, overload_tolerance=5.0))
    with pytest.raises(ValueError, match="compiled from another system"):
        engine(dataclasses.replace(system, line_rating_mva=system.line_rating_mva * 2))
