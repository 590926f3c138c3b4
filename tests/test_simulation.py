"""The clock: restoration by remote switching or finite crews, timings checked by hand."""

from __future__ import annotations

import numpy as np
import pandapower as pp
import pytest
from conftest import _line, island_with_generator, parallel_pair, radial_feeder, three_sites
from test_ieee118_city import city_run

from gridsim.errors import InputError
from gridsim.loading import system_from_net
from gridsim.metrics import load_outage_hours, summarize
from gridsim.model.system import RestorationParams
from gridsim.power.cascade import run_cascade
from gridsim.power.fast import run_fast_cascade
from gridsim.scenario.schema import parse_scenario
from gridsim.sim.simulation import BASE_CASE, cause_of, simulate


def scenario(steps_yaml: str, horizon_h: float = 24):
    return parse_scenario(f"name: t\nhorizon_h: {horizon_h}\nsteps:\n{steps_yaml}")


OPEN_ALL = """
  - {at_min: 0, action: open_breakers, technique: T0855, targets: {kind: substation, ids: [S1, S2, S3]}}
"""
DENY_ALL = """
  - {at_min: 0, action: deny_control, technique: T0827, targets: {kind: substation, ids: [S1, S2, S3]}}
"""


def restored_at(result) -> dict[str, float]:
    return {e.element: e.t_min for e in result.events if e.state == "in" and e.element.startswith("substation:")}


def test_remote_reclosing_takes_remote_minutes():
    result = simulate(three_sites(), scenario(OPEN_ALL))
    assert restored_at(result) == {f"substation:S{i}": 5.0 for i in (1, 2, 3)}
    summary = summarize(result)
    assert summary["peak_mw_lost"] == pytest.approx(60.0)
    assert summary["energy_not_served_mwh"] == pytest.approx(60.0 * 5 / 60)
    assert summary["time_to_full_restoration_min"] == 5.0
    assert summary["restorations_by_cause"] == {"restored-remote": 3}


def test_one_crew_restores_sites_one_after_another_largest_first():
    result = simulate(three_sites(crews=1, manual_h=1.0), scenario(DENY_ALL + OPEN_ALL))
    # One crew, 1 h each, most customers first: S3 (30 MW) at 1 h, S2 at 2 h, S1 at 3 h.
    assert restored_at(result) == {"substation:S3": 60.0, "substation:S2": 120.0, "substation:S1": 180.0}
    summary = summarize(result)
    assert summary["energy_not_served_mwh"] == pytest.approx(30 * 1 + 20 * 2 + 10 * 3)
    assert summary["customer_hours_lost"] == pytest.approx(30_000 * 1 + 20_000 * 2 + 10_000 * 3)
    assert summary["time_to_full_restoration_min"] == 180.0
    assert summary["peak_customers_out"] == 60_000
    assert summary["restorations_by_cause"] == {"restored-manual": 3}
    np.testing.assert_allclose(sorted(load_outage_hours(result)), [1.0, 2.0, 3.0])


def test_three_crews_restore_in_parallel():
    result = simulate(three_sites(crews=3, manual_h=1.5), scenario(DENY_ALL + OPEN_ALL))
    assert set(restored_at(result).values()) == {90.0}


def test_destroyed_firmware_forces_manual_even_after_control_returns():
    steps = """
  - {at_min: 0, action: deny_control, technique: T0827, duration_min: 1, targets: {kind: substation, ids: [S1]}}
  - {at_min: 0, action: destroy_firmware, technique: T0857, targets: {kind: substation, ids: [S1]}}
  - {at_min: 10, action: open_breakers, technique: T0855, targets: {kind: substation, ids: [S1]}}
"""
    result = simulate(three_sites(crews=1, manual_h=2.0), scenario(steps))
    assert restored_at(result) == {"substation:S1": 10.0 + 120.0}


def test_a_job_waiting_for_a_crew_is_switched_remotely_once_control_returns():
    steps = """
  - {at_min: 0, action: deny_control, technique: T0827, duration_min: 30,
     targets: {kind: substation, ids: [S1, S2, S3]}}
""" + OPEN_ALL
    result = simulate(three_sites(crews=1, manual_h=2.0), scenario(steps))
    # The one crew takes S3 (largest) at once and finishes it; S2 and S1 wait until control is back at 30 min.
    assert restored_at(result) == {"substation:S3": 120.0, "substation:S2": 35.0, "substation:S1": 35.0}
    assert summarize(result)["restorations_by_cause"] == {"restored-manual": 1, "restored-remote": 2}


def test_denial_of_control_that_ended_allows_remote_reclosing():
    steps = """
  - {at_min: 0, action: deny_control, technique: T0827, duration_min: 1, targets: {kind: substation, ids: [S1]}}
  - {at_min: 10, action: open_breakers, technique: T0855, targets: {kind: substation, ids: [S1]}}
"""
    result = simulate(three_sites(), scenario(steps))
    assert restored_at(result) == {"substation:S1": 15.0}


def test_lost_view_delays_crew_dispatch():
    steps = """
  - {at_min: 0, action: deny_view, technique: T0815, targets: {kind: substation, ids: [S1]}}
  - {at_min: 0, action: open_breakers, technique: T0855, targets: {kind: substation, ids: [S1]}}
"""
    result = simulate(three_sites(crews=1, manual_h=1.0), scenario(steps))
    assert restored_at(result) == {"substation:S1": 30.0 + 60.0}  # detect_blind_min + manual_h


def test_held_breakers_are_restored_only_after_the_hold():
    steps = """
  - {at_min: 0, action: open_breakers, technique: T0855, duration_min: 45, targets: {kind: substation, ids: [S2]}}
"""
    result = simulate(three_sites(), scenario(steps))
    assert restored_at(result) == {"substation:S2": 50.0}


def test_load_scaling_ends_with_its_duration():
    steps = """
  - {at_min: 0, action: scale_loads, factor: 2.0, technique: T0831, duration_min: 30,
     targets: {kind: substation, ids: [S1]}}
"""
    result = simulate(three_sites(), scenario(steps))
    assert list(result.demand_mw) == [60.0, 70.0, 60.0]
    assert list(result.times_min) == [0.0, 0.0, 30.0]


def test_an_overload_reclose_waits_until_it_would_hold():
    # 80 MW over a 50 MVA pair. Line 0 held open 10 h: line 1 trips by overload at 0. Reclosing it
    # alone at 5 min would overload it again, so it waits; when line 0 returns (605 min) both close.
    system = system_from_net(parallel_pair(80.0, 50.0), overload_tolerance=0.0,
                             restoration=RestorationParams(remote_min=5, max_reclose=2))
    steps = ("  - {at_min: 0, action: trip_branches, technique: T0855, duration_min: 600,"
             " targets: {kind: line, ids: [0]}}\n")
    result = simulate(system, scenario(steps))
    trips = [(e.t_min, e.element) for e in result.events if e.cause == "overload"]
    assert trips == [(0.0, "line:1")]
    assert [(e.t_min, e.element) for e in result.events if e.cause == "reclose-deferred"] == [(5.0, "line:1")]
    back = sorted((e.t_min, e.element) for e in result.events if e.state == "in" and e.element.startswith("line"))
    assert back == [(605.0, "line:0"), (605.0, "line:1")]
    summary = summarize(result)
    assert summary["cascade_depth"] == 1
    assert summary["time_to_full_restoration_min"] == 605.0
    assert summary["energy_not_served_mwh"] == pytest.approx(80.0 * 605 / 60)


def test_parallel_branches_that_hold_only_together_are_reclosed_together():
    # Demand doubled for 10 min: 120 MW on the pair, both trip. Each alone would carry 60 MW > 50,
    # so neither can be reclosed alone; after the surge both close together.
    system = system_from_net(parallel_pair(60.0, 50.0), overload_tolerance=0.0,
                             restoration=RestorationParams(remote_min=5, max_reclose=2))
    steps = ("  - {at_min: 0, action: scale_loads, factor: 2.0, technique: T0831, duration_min: 10,"
             " targets: {kind: load, ids: [0]}}\n")
    result = simulate(system, scenario(steps))
    assert sorted(e.element for e in result.events if e.cause == "overload") == ["line:0", "line:1"]
    summary = summarize(result)
    assert summary["fully_restored"]
    assert summary["time_to_full_restoration_min"] == 15.0  # surge ends at 10, reclose takes 5


def test_repeated_overload_trips_end_in_lock_out():
    # A line that holds when reclosed but trips again at the next surge is locked out at max_reclose.
    system = system_from_net(parallel_pair(40.0, 50.0), overload_tolerance=0.0,
                             restoration=RestorationParams(remote_min=5, max_reclose=2))
    surge = ("  - {{at_min: {t}, action: scale_loads, factor: 3.0, technique: T0831, duration_min: 10,"
             " targets: {{kind: load, ids: [0]}}}}\n")
    result = simulate(system, scenario(surge.format(t=0) + surge.format(t=60)))
    trips = [(e.t_min, e.element) for e in result.events if e.cause == "overload"]
    assert trips == [(0.0, "line:0"), (0.0, "line:1"), (60.0, "line:0"), (60.0, "line:1")]
    assert sorted(e.element for e in result.events if e.cause == "locked-out") == ["line:0", "line:1"]
    summary = summarize(result)
    assert summary["fully_restored"] is False
    assert [(d["element"], d["since_min"], d["cause"]) for d in summary["still_down"]] == [
        ("line:0", 60.0, "overload"), ("line:1", 60.0, "overload"), ("load:0", 60.0, "island")]
    assert result.end_min == result.horizon_min


def test_a_line_locked_out_while_every_customer_is_served_is_not_full_restoration(make_system):
    # 40 MW over a 50 MVA pair: a surge trips both, twice; line 1 then recloses and holds on its own... unless
    # locked out. Here one line is left open for good (tripped twice), the other carries the 40 MW alone.
    net = parallel_pair(40.0, 50.0)
    net.line.loc[1, "max_i_ka"] = 1.0  # line 1 is strong: only line 0 trips
    system = make_system(net, restoration=RestorationParams(remote_min=5, max_reclose=2))
    surge = ("  - {{at_min: {t}, action: scale_loads, factor: 3.0, technique: T0831, duration_min: 10,"
             " targets: {{kind: load, ids: [0]}}}}\n")
    result = simulate(system, scenario(surge.format(t=0) + surge.format(t=60)))
    summary = summarize(result)
    assert summary["time_to_full_restoration_min"] == 0.0  # no customer ever lost supply
    assert summary["fully_restored"] is False
    assert [d["element"] for d in summary["still_down"]] == ["line:0"]


def test_generator_restarts_after_its_restart_time(make_system):
    system = system_from_net(island_with_generator(25.0, 30.0), overload_tolerance=0.0,
                             restoration=RestorationParams(generator_restart_h=2.0))
    steps = """
  - {at_min: 0, action: trip_branches, technique: T0855, duration_min: 600, targets: {kind: line, ids: [0]}}
  - {at_min: 0, action: trip_generators, technique: T0816, targets: {kind: gen, ids: [0]}}
"""
    result = simulate(system, scenario(steps))
    back = [e.t_min for e in result.events if e.element == "gen:0" and e.state == "in"]
    assert back == [120.0]
    assert summarize(result)["energy_not_served_mwh"] == pytest.approx(25.0 * 2)


def test_horizon_cuts_the_run_and_reports_unrestored():
    result = simulate(three_sites(crews=1, manual_h=5.0), scenario(DENY_ALL + OPEN_ALL, horizon_h=6))
    summary = summarize(result)
    assert summary["fully_restored"] is False
    assert summary["time_to_full_restoration_min"] is None
    assert [d["element"] for d in summary["still_down"]] == ["load:0", "load:1", "substation:S1", "substation:S2"]
    assert result.end_min == 360.0
    # S3 back at 5 h; S2 and S1 dark the whole 6 h.
    assert summary["energy_not_served_mwh"] == pytest.approx(30 * 5 + 20 * 6 + 10 * 6)


def test_every_failure_has_a_cause_and_loads_point_to_what_triggered_them():
    result = simulate(three_sites(), scenario(OPEN_ALL))
    outs = [e for e in result.events if e.state == "out"]
    assert {e.cause for e in outs} == {"attack", "island"}
    load_out = [e for e in outs if e.element.startswith("load:")]
    assert len(load_out) == 3
    assert all("open_breakers" in e.detail for e in load_out)
    # ... and name it: each load the substation opened over it, each substation the step.
    assert [(e.element, e.caused_by) for e in outs] == [
        ("substation:S1", "step:0"), ("substation:S2", "step:0"), ("substation:S3", "step:0"),
        ("load:0", "substation:S1"), ("load:1", "substation:S2"), ("load:2", "substation:S3")]


def walk_to_roots(events) -> dict[int, str]:
    """For every failure line, the root its ``caused_by`` chain ends at; fails on a dead end or a loop."""
    refs = cause_of(events)
    roots = {}
    for i, event in enumerate(events):
        if event.state != "out":
            continue
        assert event.caused_by, f"line {i}: {event.element} {event.cause} names no cause"
        seen, j = {i}, i
        while not (events[j].element.startswith("step:") or events[j].element == BASE_CASE):
            j = refs[j]
            assert j is not None, f"line {i}: the chain of {event.element} ends nowhere"
            assert j not in seen, f"line {i}: the chain of {event.element} loops"
            seen.add(j)
        roots[i] = events[j].element
    return roots


def four_lines(ratings_mva=(30.0, 45.0, 60.0, 100.0), load_mw=100.0):
    """ext - b0 =four identical lines= b1 with one load: each carries a quarter, trips follow the ratings."""
    net = pp.create_empty_network()
    b0, b1 = pp.create_bus(net, 110), pp.create_bus(net, 110)
    pp.create_ext_grid(net, b0)
    for rating in ratings_mva:
        _line(net, b0, b1, max_i_ka=rating / (3 ** 0.5 * 110))
    pp.create_load(net, b1, p_mw=load_mw)
    return net


def test_each_cascade_generation_names_the_trip_before_it(make_system):
    # Line 3 tripped: 33 MW each overloads line 0 (30), then 50 each line 1 (45), then 100 line 2 (60).
    system = make_system(four_lines(), restoration=RestorationParams(remote_min=5))
    steps = ("  - {at_min: 0, action: trip_branches, technique: T0855, duration_min: 60,\n"
             "     targets: {kind: line, ids: [3]}}\n")
    result = simulate(system, scenario(steps))
    trips = [(e.element, e.generation, e.caused_by) for e in result.events if e.cause == "overload" and e.t_min == 0]
    assert trips == [("line:0", 1, "line:3"), ("line:1", 2, "line:0"), ("line:2", 3, "line:1")]
    assert set(walk_to_roots(result.events).values()) == {"step:0"}


def test_every_failure_of_the_city_run_walks_back_to_an_attack_step():
    events = city_run().events
    failures = [e for e in events if e.state == "out"]
    roots = walk_to_roots(events)
    assert len(roots) == len(failures) == 163  # every one, overload trips, islands and junctions included
    assert set(roots.values()) == {"step:2", "step:3"}  # the breakers opened, the RTUs' firmware
    by_element = {e.element: e for e in failures}
    assert by_element["gen:4"].caused_by == "junction:15"  # the cooling-water loop, as the README tells it
    assert by_element["junction:15"].caused_by in {"pump:10", "pump:335"}


def test_open_breakers_opens_bus_bus_switches_and_three_winding_transformers():
    # hub -(closed bus-bus switch)- A (10 MW); hub - trafo3w - B (mv, 5 MW) / C (lv, 2 MW);
    # hub -(open bus-bus switch)- D (no load): a normally-open point that must stay open.
    net = pp.create_empty_network()
    hub = pp.create_bus(net, 110, name="hub")
    a = pp.create_bus(net, 110, name="A")
    b, c = pp.create_bus(net, 20, name="B"), pp.create_bus(net, 10, name="C")
    d = pp.create_bus(net, 110, name="D")
    pp.create_ext_grid(net, hub)
    pp.create_switch(net, hub, a, et="b", closed=True)
    pp.create_switch(net, hub, d, et="b", closed=False)
    pp.create_transformer3w(net, hub, b, c, std_type="63/25/38 MVA 110/20/10 kV")
    pp.create_load(net, a, p_mw=10)
    pp.create_load(net, b, p_mw=5)
    pp.create_load(net, c, p_mw=2)
    system = system_from_net(net, substations={"SA": [a], "SC": [c], "HUB": [hub, d]})
    steps = """
  - {at_min: 0, action: open_breakers, technique: T0855, duration_min: 60, targets: {kind: substation, ids: [SA, SC]}}
"""
    result = simulate(system, scenario(steps))
    assert result.lost_mw[1] == pytest.approx(17.0)  # A via its switch; B and C with the whole trafo3w
    assert result.lost_mw[-1] == pytest.approx(0.0)  # reclosed after the hold
    opened = {e.element for e in result.events if e.cause == "attack" and e.state == "out"}
    assert opened == {"substation:SA", "substation:SC"}
    assert result.system.net.switch.closed.tolist() == [True, False]  # input untouched


def test_percentage_lost_is_of_the_demand_at_that_instant():
    steps = """
  - {at_min: 0, action: scale_loads, factor: 3.0, technique: T0831, targets: {kind: substation, ids: [S3]}}
  - {at_min: 10, action: open_breakers, technique: T0855, targets: {kind: substation, ids: [S3]}}
"""
    summary = summarize(simulate(three_sites(), scenario(steps)))
    assert summary["peak_mw_lost"] == pytest.approx(90.0)
    assert summary["peak_pct_lost"] == pytest.approx(100.0 * 90 / 120)


def test_a_horizon_shorter_than_the_scenario_is_refused():
    steps = "  - {at_min: 90, action: open_breakers, technique: T0855, targets: {kind: substation, ids: [S1]}}\n"
    with pytest.raises(InputError, match="at 90 min is not before the horizon of 1 h"):
        simulate(three_sites(), scenario(steps), horizon_h=1.0)


def test_a_cascade_of_ones_own_is_labelled_as_such(make_system):
    system = make_system(radial_feeder())
    plan = scenario("  - {at_min: 0, action: trip_branches, technique: T0855, targets: {kind: line, ids: [1]}}\n",
                    horizon_h=1)

    def mine(system, outages, flow="dc"):
        return run_cascade(system, outages, flow=flow)

    assert simulate(system, plan, cascade=mine).engine_label == "custom-dc"
    mine.label = "checked"
    assert simulate(system, plan, cascade=mine).engine_label == "checked-dc"
    assert simulate(system, plan, cascade=run_fast_cascade).engine_label == "fast-dc"
    assert simulate(system, plan, engine="reference").engine_label == "reference-dc"
