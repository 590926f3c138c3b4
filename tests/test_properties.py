"""Properties that hold for any attack: hypothesis draws the attacks."""

from __future__ import annotations

import numpy as np
from conftest import stock_system
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridsim.metrics import summarize
from gridsim.power.cascade import run_cascade
from gridsim.power.contract import LOAD_ISLAND, Outages
from gridsim.scenario.schema import parse_scenario
from gridsim.sim.simulation import simulate

CAUSES = {"attack", "island", "shed", "overload", "restored-remote", "restored-manual", "restored",
          "locked-out", "dispatched", "reclose-deferred"}
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def outages(draw, case="case30"):
    net = stock_system(case).net
    lines = draw(st.sets(st.sampled_from(list(net.line.index)), max_size=5))
    gens = draw(st.sets(st.sampled_from(list(net.gen.index)), max_size=2)) if len(net.gen) else set()
    loads = draw(st.dictionaries(st.sampled_from(list(net.load.index)), st.floats(0.5, 2.0), max_size=4))
    return Outages(lines=frozenset(int(i) for i in lines), gens=frozenset(int(i) for i in gens), load_factor=loads)


@SETTINGS
@given(outages())
def test_any_dc_cascade_serves_between_nothing_and_demand(out):
    system = stock_system("case30")
    result = run_cascade(system, out)
    assert np.all(result.served_mw >= -1e-9)
    assert np.all(result.served_mw <= result.demand_mw + 1e-9)
    assert np.all(result.served_mw[result.load_state == LOAD_ISLAND] == 0)
    # No branch is left above its trip limit at the fixed point.
    limit = 1 + system.overload_tolerance
    tripped = {t.index for t in result.trips if t.table == "line"}
    on = np.array([i not in out.lines and i not in tripped for i in system.net.line.index])
    assert np.all(result.line_flow_mva[on] <= system.line_rating_mva[on] * limit + 1e-6)
    # Generations count up from 1 without gaps.
    assert sorted({t.generation for t in result.trips}) == list(range(1, result.depth + 1))


@SETTINGS
@given(outages())
def test_the_cascade_end_state_is_a_fixed_point(out):
    system = stock_system("case30")
    first = run_cascade(system, out)
    tripped = {t.index for t in first.trips if t.table == "line"}
    again = run_cascade(system, Outages(lines=out.lines | tripped, gens=out.gens, load_factor=out.load_factor))
    assert again.trips == []
    np.testing.assert_allclose(again.served_mw, first.served_mw, atol=1e-9)


@SETTINGS
@given(outages())
def test_the_cascade_is_deterministic(out):
    system = stock_system("case30")
    a, b = run_cascade(system, out), run_cascade(system, out)
    assert a.trips == b.trips
    np.testing.assert_array_equal(a.served_mw, b.served_mw)


ACTIONS = st.sampled_from([
    "{action: open_breakers, technique: T0855, targets: {kind: substation, strategy: random, k: 2}}",
    "{action: trip_branches, technique: T0855, targets: {kind: branch, strategy: top, by: load, k: 2}}",
    "{action: trip_generators, technique: T0816, targets: {kind: gen, strategy: random, k: 1}}",
    "{action: scale_loads, factor: 1.4, duration_min: 30, technique: T0831, "
    "targets: {kind: load, strategy: random, k: 5}}",
    "{action: deny_control, technique: T0827, targets: {kind: substation, strategy: random, k: 10}}",
    "{action: destroy_firmware, technique: T0857, targets: {kind: substation, strategy: random, k: 5}}",
])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 120), ACTIONS), min_size=1, max_size=4), st.integers(0, 2**16))
def test_any_scenario_runs_and_measures_are_consistent(steps, seed):
    text = "name: prop\nhorizon_h: 12\nsteps:\n" + "".join(f"  - {{at_min: {t}, {a[1:]}\n" for t, a in steps)
    system = stock_system("case30")
    result = simulate(system, parse_scenario(text), seed=seed)
    summary = summarize(result)
    assert 0 <= summary["peak_customers_out"] <= system.customers.sum()
    assert summary["energy_not_served_mwh"] >= 0
    assert np.all(np.diff(result.times_min) >= 0)
    assert {e.cause for e in result.events} <= CAUSES
    assert all(0 <= t <= result.horizon_min for t in result.times_min)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 120), ACTIONS), min_size=1, max_size=4), st.integers(0, 2**16))
def test_reusing_the_last_fixed_point_changes_nothing(steps, seed):
    import pytest

    text = "name: prop\nhorizon_h: 12\nsteps:\n" + "".join(f"  - {{at_min: {t}, {a[1:]}\n" for t, a in steps)
    system, plan = stock_system("case30"), parse_scenario(text)
    fast = simulate(system, plan, seed=seed)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Outages, "__eq__", lambda a, b: False)  # the clock recomputes every instant
        slow = simulate(system, plan, seed=seed)
    assert fast.events == slow.events
    np.testing.assert_array_equal(fast.served_mw, slow.served_mw)
    np.testing.assert_array_equal(fast.load_out_fraction, slow.load_out_fraction)
