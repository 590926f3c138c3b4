"""The water layer: junction service from WNTR's hydraulics, the graph mode, and pumps fed by buses.

The hydraulic mode is checked against WNTR itself, run the obvious way: an
element out for the whole run is the same as a network without it.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import wntr
from conftest import three_sites
from wntr.network import LinkStatus

from gridsim.errors import InputError
from gridsim.layers.water import (
    ServiceResult,
    WaterSettings,
    junction_people,
    library_networks,
    read_water_network,
    simulate_service,
)
from gridsim.metrics import summarize
from gridsim.model.layers import Dependency, LayerElement, Layers, WaterLayer
from gridsim.scenario.schema import parse_scenario
from gridsim.sim.simulation import simulate

HERE = Path(".")
SETTINGS = WaterSettings()


@pytest.fixture(scope="module")
def net1():
    return read_water_network("wntr:Net1", HERE)


@pytest.fixture(scope="module")
def net1_base(net1):
    return simulate_service(net1, {}, 24 * 60, SETTINGS)


def direct_pressures(model, horizon_min: float, settings: WaterSettings = SETTINGS) -> np.ndarray:
    """Junction pressures from a plain WNTRSimulator run of this model, on the report grid."""
    wn = copy.deepcopy(model)
    step = int(settings.timestep_min * 60)
    wn.options.time.duration = int(horizon_min * 60)
    wn.options.time.hydraulic_timestep = step
    wn.options.time.report_timestep = step
    wn.options.hydraulic.demand_model = "PDD"
    wn.options.hydraulic.required_pressure = settings.required_pressure_m
    wn.options.hydraulic.minimum_pressure = settings.minimum_pressure_m
    results = wntr.sim.WNTRSimulator(wn).run_sim()
    pressure = results.node["pressure"][list(model.junction_name_list)]
    keep = np.isin(pressure.index.to_numpy(), np.arange(0, horizon_min * 60 + 1, step))
    return pressure.to_numpy()[keep]


def without_link(model, link: str):
    wn = copy.deepcopy(model)
    for name, control in list(wn.controls()):
        if any(getattr(a.target()[0], "name", None) == link for a in control.actions()):
            wn.remove_control(name)
    wn.get_link(link).initial_status = LinkStatus.Closed
    return wn


# ---------------------------------------------------------------- hydraulic mode against WNTR


def test_no_outage_reports_what_wntr_reports(net1, net1_base):
    pressure = direct_pressures(net1, 24 * 60)
    assert net1_base.pressure_m.shape == pressure.shape == (97, 9)
    np.testing.assert_allclose(net1_base.pressure_m, pressure, atol=1e-6)
    np.testing.assert_array_equal(net1_base.served, pressure >= SETTINGS.service_pressure_m)
    np.testing.assert_array_equal(net1_base.times_min, np.arange(97) * 15.0)


def test_a_pump_out_for_the_whole_run_is_a_network_without_it(net1, net1_base):
    ours = simulate_service(net1, {"pump:9": [(0.0, math.inf)]}, 24 * 60, SETTINGS)
    pressure = direct_pressures(without_link(net1, "9"), 24 * 60)
    np.testing.assert_allclose(ours.pressure_m, pressure, atol=1e-3)
    np.testing.assert_array_equal(ours.served, pressure >= SETTINGS.service_pressure_m)
    # Net1's tank carries the town for a while, then every junction loses water.
    lost = (net1_base.served & ~ours.served).sum(axis=1)
    assert lost[0] == 0 and lost[-1] == 9


def test_a_reservoir_out_closes_every_link_it_feeds():
    model = read_water_network("wntr:Net3", HERE)
    ours = simulate_service(model, {"reservoir:Lake": [(0.0, math.inf)]}, 12 * 60, SETTINGS)
    links = model.get_links_for_node("Lake")
    wn = copy.deepcopy(model)
    for link in links:
        wn = without_link(wn, link)
    np.testing.assert_allclose(ours.pressure_m, direct_pressures(wn, 12 * 60), atol=1e-3)


def test_an_outage_that_ends_changes_nothing_before_it_and_service_comes_back(net1, net1_base):
    ours = simulate_service(net1, {"pump:9": [(120.0, 600.0)]}, 24 * 60, SETTINGS)
    before = net1_base.times_min < 120.0
    np.testing.assert_allclose(ours.pressure_m[before], net1_base.pressure_m[before], atol=1e-6)
    lost = (net1_base.served & ~ours.served).sum(axis=1)
    assert lost.max() == 9  # the tank ran dry while the pump was out
    assert lost[-1] == 0  # and the pump, back at 10 h, refilled it


def test_overlapping_intervals_are_one_outage(net1):
    one = simulate_service(net1, {"pump:9": [(60.0, 300.0)]}, 12 * 60, SETTINGS)
    two = simulate_service(net1, {"pump:9": [(60.0, 200.0), (150.0, 300.0)]}, 12 * 60, SETTINGS)
    np.testing.assert_array_equal(one.served, two.served)


# ---------------------------------------------------------------- graph mode by hand


def tiny_network(tank: bool):
    """R --pipe--> J1 --pump--> J2 --pipe--> J3 (--pipe-- T, an elevated tank, when asked)."""
    wn = wntr.network.WaterNetworkModel()
    wn.add_reservoir("R", base_head=50.0)
    for name in ("J1", "J2", "J3"):
        wn.add_junction(name, base_demand=0.001, elevation=0.0)
    wn.add_pipe("P1", "R", "J1", length=100, diameter=0.3, roughness=100)
    wn.add_curve("C", "HEAD", [(0.01, 30.0)])
    wn.add_pump("PU", "J1", "J2", "HEAD", "C")
    wn.add_pipe("P2", "J2", "J3", length=100, diameter=0.3, roughness=100)
    if tank:
        wn.add_tank("T", elevation=40.0, init_level=5.0, min_level=0.0, max_level=10.0, diameter=10.0)
        wn.add_pipe("P3", "J3", "T", length=100, diameter=0.3, roughness=100)
    return wn


GRAPH = WaterSettings(mode="graph", timestep_min=30.0, graph_tank_h=2.0)


def served_rows(result: ServiceResult) -> dict[float, list[bool]]:
    return {float(t): row.tolist() for t, row in zip(result.times_min, result.served)}


def test_graph_mode_cuts_what_lies_beyond_a_pump_out():
    rows = served_rows(simulate_service(tiny_network(tank=False), {"pump:PU": [(60.0, 120.0)]}, 180.0, GRAPH))
    assert rows[30.0] == [True, True, True]
    assert rows[60.0] == [True, False, False]  # pumps carry water one way only: J1 stays fed
    assert rows[90.0] == [True, False, False]
    assert rows[120.0] == [True, True, True]


def test_graph_mode_tank_supplies_for_graph_tank_h_then_runs_dry():
    # Cut off at 45 min (between grid instants): the tank lasts 2 h, so until 165 min.
    rows = served_rows(simulate_service(tiny_network(tank=True), {"pump:PU": [(45.0, math.inf)]}, 240.0, GRAPH))
    assert rows[60.0] == [True, True, True]
    assert rows[150.0] == [True, True, True]
    assert rows[180.0] == [True, False, False]


def test_graph_mode_with_everything_in_service_serves_every_connected_junction(net1):
    result = simulate_service(net1, {}, 120.0, WaterSettings(mode="graph"))
    assert result.served.all() and result.pressure_m is None


# ---------------------------------------------------------------- reading and people


def test_people_are_spread_by_base_demand_or_given_by_table(net1):
    people = junction_people(net1, population=1000)
    base = np.array([net1.get_node(j).demand_timeseries_list[0].base_value for j in net1.junction_name_list])
    assert people.sum() == pytest.approx(1000)
    np.testing.assert_allclose(people, 1000 * base / base.sum())
    table = junction_people(net1, table={"10": 5, "11": 7})
    assert table.sum() == 12 and table[net1.junction_name_list.index("11")] == 7
    assert junction_people(net1).sum() == 0


def test_read_errors_name_the_file(tmp_path):
    assert {"Net1", "Net3", "ky10"} <= set(library_networks())
    with pytest.raises(InputError, match=r"wntr:NetX: WNTR ships no network named 'NetX' \(known: .*Net3"):
        read_water_network("wntr:NetX", tmp_path)
    with pytest.raises(InputError, match=r"nowhere.inp: file not found"):
        read_water_network("nowhere.inp", tmp_path)
    (tmp_path / "bad.inp").write_text("[JUNCTIONS]\nJ1 not-a-number\n[END]\n")
    with pytest.raises(InputError, match=r"bad.inp: not a readable EPANET .inp file"):
        read_water_network("bad.inp", tmp_path)


# ---------------------------------------------------------------- a pump fed by a bus, through the clock


def pumped_town(model, backup_h: float, restart_min: float = 15.0, mode: str = "hydraulic"):
    """three_sites with Net1's pump fed by S1's bus."""
    system = three_sites(crews=1)
    bus = system.substations["S1"].buses[0]
    settings = WaterSettings(mode=mode)
    people = junction_people(model, population=9000)
    water = WaterLayer("wntr:Net1", model, settings, tuple(model.junction_name_list), people)
    system.layers = Layers(water=water, elements={"pump:9": LayerElement("pump", "9")},
                           dependencies=(Dependency(f"bus:{bus}", "pump:9", backup_h=backup_h,
                                                    restart_min=restart_min),))
    return system


def dark_s1(hours: float):
    return parse_scenario(
        "name: t\nhorizon_h: 24\nsteps:\n"
        f"  - {{at_min: 0, action: open_breakers, technique: T0855, duration_min: {60 * hours:g},\n"
        "     targets: {kind: substation, ids: [S1]}}\n")


@pytest.mark.parametrize("dark_h, pump_out", [(1.0, None), (3.0, 120.0)])
def test_pump_with_two_hours_backup(net1, dark_h, pump_out):
    result = simulate(pumped_town(net1, backup_h=2.0), dark_s1(dark_h))
    pump = [(e.t_min, e.state, e.cause) for e in result.events if e.element == "pump:9"]
    people = result.layer_series["people_without_water"]
    if pump_out is None:
        assert pump == [] and people.max() == 0
        assert result.hydraulic_runs == 1  # the base run only
    else:
        # Backup out at 2 h; S1 reclosed remotely 5 min after the 3 h step ends; pump restarts 15 min later.
        assert pump == [(120.0, "out", "backup-exhausted"), (185.0 + 15.0, "in", "restored")]
        # 80 min of pumping lost: Net1's tank covers it, nobody loses water.
        assert people.max() == 0


def test_pump_out_long_enough_leaves_the_town_dry_with_a_cause_chain(net1):
    result = simulate(pumped_town(net1, backup_h=0.0), dark_s1(12.0))
    people = result.layer_series["people_without_water"]
    assert people.max() == pytest.approx(9000)  # every junction of Net1 with demand
    first_dry = result.times_min[np.argmax(people > 0)]
    assert 60.0 < first_dry < 12 * 60.0  # the tank carries the town for some hours first
    junction = next(e for e in result.events if e.element.startswith("junction:") and e.state == "out")
    assert junction.cause == "dependency" and "pump:9" in junction.detail
    assert "no backup; bus:" in junction.detail  # ... and the pump's own cause, up to the bus
    assert summarize(result)["layers"]["peak_people_without_water"] == 9000
