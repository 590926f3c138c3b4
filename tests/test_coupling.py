"""Dependencies between the grid and the layers: backups, restarts, cycles, feedback, cause chains.

Every figure here is checked by hand: a supplier dark for known hours, a
backup of known hours, and the instant the dependent must fail or survive.
"""

from __future__ import annotations

import pandapower as pp
import pytest
from conftest import _line, empty_net, three_sites

from gridsim.loading import system_from_net
from gridsim.metrics import summarize
from gridsim.model.layers import Dependency, LayerElement, Layers, TelecomSite
from gridsim.model.system import RestorationParams
from gridsim.scenario.schema import parse_scenario
from gridsim.sim.coupling import Coupling
from gridsim.sim.simulation import simulate


def scenario(steps_yaml: str, horizon_h: float = 12):
    return parse_scenario(f"name: t\nhorizon_h: {horizon_h}\nsteps:\n{steps_yaml}")


def facilities(*ids: str) -> dict[str, LayerElement]:
    return {f"facility:{i}": LayerElement("facility", i, {"kind": "test"}) for i in ids}


def events_of(result, element: str) -> list[tuple[float, str, str]]:
    return [(e.t_min, e.state, e.cause) for e in result.events if e.element == element]


# ---------------------------------------------------------------- the state machine alone


class World:
    """Suppliers outside the layers, switched by hand."""

    def __init__(self):
        self.up: dict[str, bool] = {}

    def is_up(self, name: str) -> bool:
        return self.up.get(name, True)

    def why(self, name: str) -> str:
        return "switched off by the test"


def coupling(edges, elements=("P",)):
    world = World()
    layers = Layers(elements=facilities(*elements), dependencies=tuple(edges))
    return world, Coupling(layers, world.is_up, world.why)


def test_backup_longer_than_the_outage_never_fails():
    world, c = coupling([Dependency("bus:1", "facility:P", backup_h=2.0)])
    world.up["bus:1"] = False
    changes, expiries, _ = c.propagate(0.0)
    assert changes == [] and expiries == [120.0]
    world.up["bus:1"] = True
    changes, expiries, _ = c.propagate(60.0)
    assert changes == [] and expiries == []
    assert c.backup_left_h(0, 60.0) == pytest.approx(1.0)  # drained, not recharged


def test_backup_shorter_than_the_outage_fails_when_it_runs_out():
    world, c = coupling([Dependency("bus:1", "facility:P", backup_h=2.0, restart_min=15)])
    world.up["bus:1"] = False
    c.propagate(0.0)
    changes, _, _ = c.propagate(119.0)
    assert changes == []
    changes, _, _ = c.propagate(120.0)
    assert [(ch.element, ch.state, ch.cause, ch.caused_by) for ch in changes] == [
        ("facility:P", "out", "backup-exhausted", "bus:1")]
    assert "backup of 2 h exhausted at 2 h 00 min" in changes[0].detail
    world.up["bus:1"] = True
    changes, _, restarts = c.propagate(180.0)
    assert changes == [] and restarts == [(195.0, "facility:P")]
    c.restart_due("facility:P", 195.0)
    changes, _, _ = c.propagate(195.0)
    assert [(ch.element, ch.state) for ch in changes] == [("facility:P", "in")]


def test_a_drained_backup_is_not_recharged_between_outages():
    world, c = coupling([Dependency("bus:1", "facility:P", backup_h=2.0)])
    world.up["bus:1"] = False
    c.propagate(0.0)
    world.up["bus:1"] = True
    c.propagate(90.0)  # 1.5 h used
    world.up["bus:1"] = False
    _, expiries, _ = c.propagate(200.0)
    assert expiries == [230.0]  # the 0.5 h left


def test_alternative_suppliers_in_one_group():
    world, c = coupling([Dependency("bus:1", "facility:P", group="feed"),
                         Dependency("bus:2", "facility:P", group="feed")])
    world.up["bus:1"] = False
    assert c.propagate(0.0)[0] == []
    world.up["bus:2"] = False
    changes, _, _ = c.propagate(10.0)
    assert [ch.element for ch in changes] == ["facility:P"]


def cycle_of_two(extra=()):
    """A and B each need the other and bus:1; A's supply from bus:1 restarts in 15 min, B's from A in 30."""
    return coupling([Dependency("bus:1", "facility:A", restart_min=15), Dependency("facility:B", "facility:A"),
                     Dependency("bus:1", "facility:B"), Dependency("facility:A", "facility:B", restart_min=30),
                     *extra], elements=("A", "B", "D"))


def test_a_dead_cycle_is_black_started_once_its_outside_supply_is_back():
    world, c = cycle_of_two()
    world.up["bus:1"] = False
    changes, _, _ = c.propagate(0.0)
    assert sorted(ch.element for ch in changes) == ["facility:A", "facility:B"]
    assert c.propagate(30.0) == ([], [], [])  # the bus still dark: nothing to start yet
    world.up["bus:1"] = True
    changes, _, restarts = c.propagate(60.0)
    # Each waits for the other, so neither could restart alone: both are started together, after the longest
    # restart of what either lost (B's 30 min on A).
    assert changes == [] and restarts == [(90.0, "facility:A"), (90.0, "facility:B")]
    for element in ("facility:A", "facility:B"):
        c.restart_due(element, 90.0)
    changes, _, _ = c.propagate(90.0)
    assert [(ch.element, ch.state) for ch in changes] == [("facility:A", "in"), ("facility:B", "in")]
    assert "black start of the dependency cycle facility:A, facility:B" in changes[0].detail
    assert c.down == {}


def test_a_black_start_is_called_off_when_the_outside_supply_fails_again():
    world, c = cycle_of_two()
    world.up["bus:1"] = False
    c.propagate(0.0)
    world.up["bus:1"] = True
    assert c.propagate(60.0)[2] == [(90.0, "facility:A"), (90.0, "facility:B")]
    world.up["bus:1"] = False
    assert c.propagate(80.0) == ([], [], [])
    for element in ("facility:A", "facility:B"):
        c.restart_due(element, 90.0)
    assert c.propagate(90.0)[0] == [] and set(c.down) == {"facility:A", "facility:B"}
    world.up["bus:1"] = True
    assert c.propagate(120.0)[2] == [(150.0, "facility:A"), (150.0, "facility:B")]


def test_what_depends_on_a_dead_cycle_follows_it_as_usual():
    world, c = cycle_of_two([Dependency("facility:A", "facility:D", restart_min=10)])
    world.up["bus:1"] = False
    c.propagate(0.0)
    world.up["bus:1"] = True
    assert c.propagate(60.0)[2] == [(90.0, "facility:A"), (90.0, "facility:B")]  # D is no member
    for element in ("facility:A", "facility:B"):
        c.restart_due(element, 90.0)
    changes, _, restarts = c.propagate(90.0)
    assert [ch.element for ch in changes] == ["facility:A", "facility:B"] and restarts == [(100.0, "facility:D")]


def test_an_attack_names_its_step_as_the_cause():
    _, c = coupling([], elements=("P",))
    c.hold("facility:P", "step3", "step 3 (disable T0816)", "step:3")
    changes, _, _ = c.propagate(0.0)
    assert [(ch.element, ch.cause, ch.caused_by) for ch in changes] == [("facility:P", "attack", "step:3")]


def test_zero_restart_delay_brings_a_chain_back_at_once():
    world, c = coupling([Dependency("bus:1", "facility:A"), Dependency("facility:A", "facility:B")],
                        elements=("A", "B"))
    world.up["bus:1"] = False
    changes, _, _ = c.propagate(0.0)
    assert [ch.element for ch in changes] == ["facility:A", "facility:B"]
    assert changes[1].caused_by == "facility:A" and "facility:A down since 0 h 00 min" in changes[1].detail
    world.up["bus:1"] = True
    changes, _, _ = c.propagate(30.0)
    assert [(ch.element, ch.state) for ch in changes] == [("facility:A", "in"), ("facility:B", "in")]


# ---------------------------------------------------------------- through the clock


def with_layers(system, layers: Layers):
    system.layers = layers
    return system


DARK_S1 = """
  - {at_min: 0, action: deny_control, technique: T0827, targets: {kind: substation, ids: [S1]}}
  - {at_min: 0, action: open_breakers, technique: T0855, targets: {kind: substation, ids: [S1]}}
"""


@pytest.mark.parametrize("dark_h, fails_at", [(1.0, None), (3.0, 120.0)])
def test_two_hour_backup_on_a_bus_dark_for_one_or_three_hours(dark_h, fails_at):
    system = three_sites(crews=1, manual_h=dark_h)  # the crew recloses S1 after dark_h
    bus = system.substations["S1"].buses[0]
    layers = Layers(elements=facilities("pump"),
                    dependencies=(Dependency(f"bus:{bus}", "facility:pump", backup_h=2.0, restart_min=15),))
    result = simulate(with_layers(system, layers), scenario(DARK_S1))
    events = events_of(result, "facility:pump")
    if fails_at is None:
        assert events == []
    else:
        assert events == [(120.0, "out", "backup-exhausted"), (180.0 + 15.0, "in", "restored")]
    bus_events = events_of(result, f"bus:{bus}")
    assert bus_events == [(0.0, "out", "island"), (60.0 * dark_h, "in", "restored")]


def test_rtu_without_power_makes_restoration_manual():
    system = three_sites(crews=1, manual_h=1.0)
    s2_bus = system.substations["S2"].buses[0]
    layers = Layers(elements={"telecom:RTU-1": LayerElement("telecom", "RTU-1", {"kind": "rtu"})},
                    telecom={"RTU-1": TelecomSite("RTU-1", "rtu", substation="S1")},
                    dependencies=(Dependency(f"bus:{s2_bus}", "telecom:RTU-1"),))
    steps = "  - {at_min: 0, action: open_breakers, technique: T0855, targets: {kind: substation, ids: [S1, S2]}}\n"
    result = simulate(with_layers(system, layers), scenario(steps))
    restored = {e.element: (e.t_min, e.cause) for e in result.events
                if e.state == "in" and e.element.startswith("substation:")}
    # S2 has no RTU of its own to lose: remote in 5 min. S1's RTU sits on S2's bus, dark at t = 0:
    # S1 must wait for a crew (1 h), although nothing attacked its control.
    assert restored == {"substation:S2": (5.0, "restored-remote"), "substation:S1": (60.0, "restored-manual")}
    assert summarize(result)["layers"]["peak_substations_without_control"] == 1


def test_control_centre_down_blinds_its_operator():
    system = three_sites(crews=3, manual_h=1.0)
    s1_bus = system.substations["S1"].buses[0]
    layers = Layers(elements={"telecom:CC": LayerElement("telecom", "CC", {"kind": "control_centre"})},
                    telecom={"CC": TelecomSite("CC", "control_centre", operator="op")},
                    dependencies=(Dependency(f"bus:{s1_bus}", "telecom:CC", backup_h=0.0),))
    steps = "  - {at_min: 0, action: open_breakers, technique: T0855, targets: {kind: substation, ids: [S1, S2]}}\n"
    result = simulate(with_layers(system, layers), scenario(steps))
    restored = {e.element: e.t_min for e in result.events if e.state == "in" and e.element.startswith("substation:")}
    # No view and no control: crews go out blind (30 min to find out) and switch by hand (1 h).
    assert restored == {"substation:S1": 90.0, "substation:S2": 90.0}


def cycle_layers(bus: int) -> Layers:
    """Two facilities that need each other and a bus; B restarts 20 min after A is back (a black start)."""
    return Layers(elements=facilities("A", "B"),
                  dependencies=(Dependency(f"bus:{bus}", "facility:A"), Dependency("facility:B", "facility:A"),
                                Dependency(f"bus:{bus}", "facility:B"),
                                Dependency("facility:A", "facility:B", restart_min=20)))


OPEN_S1 = "  - {at_min: 0, action: open_breakers, technique: T0855, targets: {kind: substation, ids: [S1]}}\n"


def test_a_two_member_cycle_restarts_by_black_start_after_the_grid_returns():
    system = three_sites()
    result = simulate(with_layers(system, cycle_layers(system.substations["S1"].buses[0])), scenario(OPEN_S1))
    # S1 is reclosed remotely at 5 min; the cycle's outside supply is back, so both are started at 5 + 20.
    assert events_of(result, "facility:A") == [(0.0, "out", "dependency"), (25.0, "in", "restored")]
    assert events_of(result, "facility:B") == [(0.0, "out", "dependency"), (25.0, "in", "restored")]
    summary = summarize(result)
    assert summary["fully_restored"] is True and summary["still_down"] == []


def test_a_cycle_that_cannot_restart_is_not_fully_restored_and_is_listed():
    system = three_sites()
    steps = ("  - {at_min: 0, action: disable, technique: T0816, targets: {kind: facility, ids: [A]}}\n"
             "  - {at_min: 1, action: open_breakers, technique: T0855, targets: {kind: substation, ids: [S1]}}\n")
    result = simulate(with_layers(system, cycle_layers(system.substations["S1"].buses[0])), scenario(steps))
    summary = summarize(result)
    # Every customer is back at 6 min, but A stays disabled and B waits for it: not fully restored.
    assert summary["time_to_full_restoration_min"] == 6.0
    assert summary["fully_restored"] is False
    assert summary["still_down"] == [
        {"element": "facility:A", "since_min": 0.0, "cause": "attack", "caused_by": "step:0"},
        {"element": "facility:B", "since_min": 0.0, "cause": "dependency", "caused_by": "facility:A"}]


def gas_loop_net():
    """ext - b0; b0 - b1 (10 MW, gas compressor); b0 - b2 (20 MW, gas-fired generator, 30 MW max)."""
    net = empty_net()
    b0, b1, b2 = (pp.create_bus(net, 110, name=f"b{i}") for i in range(3))
    pp.create_ext_grid(net, b0)
    _line(net, b0, b1)
    _line(net, b0, b2)
    pp.create_load(net, b1, p_mw=10)
    pp.create_load(net, b2, p_mw=20)
    pp.create_gen(net, b2, p_mw=0.0, max_p_mw=30.0, min_p_mw=0.0)
    return net


def test_fuel_supply_feeds_back_into_the_grid():
    system = system_from_net(gas_loop_net(), restoration=RestorationParams(remote_min=5))
    layers = Layers(elements=facilities("compressor"),
                    dependencies=(Dependency("bus:1", "facility:compressor"),
                                  Dependency("facility:compressor", "gen:0", backup_h=1.0, restart_min=60)))
    steps = ("  - {at_min: 0, action: trip_branches, technique: T0855, duration_min: 180,\n"
             "     targets: {kind: line, ids: [0, 1]}}\n")
    result = simulate(with_layers(system, layers), scenario(steps))
    gen = events_of(result, "gen:0")
    # Compressor dark at 0 -> 1 h of stored gas -> generator out at 60 min, so b2's island dies.
    assert gen[0] == (60.0, "out", "backup-exhausted")
    out = next(e for e in result.events if e.element == "gen:0")
    assert out.caused_by == "facility:compressor" and "bus:1 down since 0 h 00 min" in out.detail
    served = dict(zip(result.times_min, result.served_mw))
    assert served[0.0] == pytest.approx(20.0)  # b2 islanded but held by its generator
    assert served[60.0] == pytest.approx(0.0)
    # Lines back at 185 min; compressor at once; generator after its 60 min restart.
    assert gen[1] == (185.0 + 60.0, "in", "restored")


def test_a_facility_on_a_shed_feeder_loses_power_though_its_bus_stays_energised():
    from conftest import island_with_generator

    system = system_from_net(island_with_generator(load_mw=50.0, gen_max_mw=30.0),
                             restoration=RestorationParams(remote_min=5))
    layers = Layers(elements=facilities("compressor"), dependencies=(Dependency("load:0", "facility:compressor"),))
    steps = ("  - {at_min: 0, action: trip_branches, technique: T0855, duration_min: 60,\n"
             "     targets: {kind: line, ids: [0]}}\n")
    result = simulate(with_layers(system, layers), scenario(steps))
    # The island holds its bus up with its 30 MW generator but sheds 40 % of the 50 MW load: the feeder is in
    # the rotation, so what hangs on it is dark until the line is back (60 + 5 min).
    assert events_of(result, "facility:compressor") == [(0.0, "out", "dependency"), (65.0, "in", "restored")]
    out = next(e for e in result.events if e.element == "facility:compressor")
    assert out.caused_by == "load:0" and "40% of its demand shed or cut" in out.detail


def test_a_facility_on_a_feeder_with_no_demand_goes_dark_with_the_feeder_s_island():
    net = empty_net()
    hub, far = pp.create_bus(net, 110), pp.create_bus(net, 110)
    pp.create_ext_grid(net, hub)
    _line(net, hub, far)
    pp.create_load(net, far, p_mw=0.0)  # a feeder that draws nothing (a spare), yet what hangs on it needs it live
    pp.create_load(net, hub, p_mw=10.0)
    system = system_from_net(net, restoration=RestorationParams(remote_min=5))
    layers = Layers(elements=facilities("pump"), dependencies=(Dependency("load:0", "facility:pump"),))
    steps = ("  - {at_min: 0, action: trip_branches, technique: T0855, duration_min: 60,\n"
             "     targets: {kind: line, ids: [0]}}\n")
    result = simulate(with_layers(system, layers), scenario(steps))
    # The feeder's bus is in a dark island: the load serves no one, and the pump on it is out until the line is
    # back (60 + 5 min), though the load lost no demand (it had none).
    assert events_of(result, "facility:pump") == [(0.0, "out", "dependency"), (65.0, "in", "restored")]
