"""The action table: one record per action drives the schema, the clock's effects and restoration, the sweep.

The records live in :mod:`gridsim.scenario.actions`; the effects, which act on
the clock's state, in ``gridsim.sim.simulation.STEP_EFFECTS``. These tests
hold the two together (same actions; an ``end`` exactly where the restoration
kind says the step's end undoes the effect; a job for every crew kind) and
show that adding an action is a record and an effect.
"""

from __future__ import annotations

import dataclasses

import pytest
from conftest import stock_system, three_sites

from gridsim.analysis.sweep.scenarios import TARGET_ACTIONS, TARGETS, candidates
from gridsim.errors import InputError
from gridsim.model.elements import Ref, breakers_at
from gridsim.power.fast import fast_engine
from gridsim.scenario import actions
from gridsim.scenario.actions import ACTION_TYPES, KINDS, PARAMETERS, RESTORATIONS, ActionType, takers
from gridsim.scenario.mitigations import apply_mitigation
from gridsim.scenario.schema import ACTIONS, Step, parse_scenario
from gridsim.sim.simulation import CREW_KINDS, STEP_EFFECTS, simulate


def test_every_action_has_an_effect_and_every_effect_an_action():
    assert list(STEP_EFFECTS) == list(ACTION_TYPES)


@pytest.mark.parametrize("name", list(ACTION_TYPES))
def test_an_effect_ends_exactly_where_the_restoration_kind_says_the_step_end_undoes_it(name):
    action, effect = ACTION_TYPES[name], STEP_EFFECTS[name]
    assert action.restoration in RESTORATIONS
    assert (effect.end is not None) == (action.restoration == "step-end"), name
    assert (effect.start is None) == (not action.physical), name


def test_the_clock_builds_a_job_for_every_crew_kind_and_only_for_those():
    assert set(CREW_KINDS) == set(RESTORATIONS) - {"none", "step-end"}


@pytest.mark.parametrize("name", list(ACTION_TYPES))
def test_each_record_names_known_kinds_and_parameters(name):
    action = ACTION_TYPES[name]
    assert set(action.targets or ()) <= set(KINDS)
    assert set(action.needs) <= set(action.takes) <= set(PARAMETERS)
    step_fields = {f.name for f in dataclasses.fields(Step)}
    assert set(PARAMETERS) <= step_fields, "each parameter is a field of Step"
    assert ACTIONS[name] == action.targets  # the schema's kinds view is the table's


def test_the_step_keys_come_from_the_parameters():
    with pytest.raises(InputError, match=r"unknown key 'colour' \(allowed: at_min, action, targets, technique, "
                                         r"duration_min, factor, note\)"):
        parse_scenario("name: x\nsteps:\n  - {at_min: 0, action: access, technique: T0865, colour: red}\n")


def test_a_parameter_is_refused_by_the_actions_that_do_not_take_it_in_the_words_of_the_table():
    assert takers("factor") == ["scale_loads"]
    with pytest.raises(InputError, match=r"steps\[0\].factor \(line 3\): factor applies to scale_loads only, "
                                         r"not trip_branches"):
        parse_scenario("name: x\nsteps:\n  - {at_min: 0, action: trip_branches, technique: T0855, factor: 2, "
                       "targets: {kind: line, ids: [0]}}\n")
    # The number is checked first, whatever the action.
    with pytest.raises(InputError, match=r"factor must be a number in \[0, 1000\]"):
        parse_scenario("name: x\nsteps:\n  - {at_min: 0, action: access, technique: T0865, factor: -1}\n")


#: A new action, as a contributor would add it: a record (here reusing open_breakers' effect) and its effect.
RECLOSABLE = ActionType("cut_site", ("substation",), "the site's breakers are opened by a new action", "reclose-site",
                        takes=("duration_min", "factor"), takes_out=ACTION_TYPES["open_breakers"].takes_out)


@pytest.fixture
def new_action(monkeypatch):
    monkeypatch.setitem(actions.ACTION_TYPES, RECLOSABLE.name, RECLOSABLE)
    monkeypatch.setitem(STEP_EFFECTS, RECLOSABLE.name, STEP_EFFECTS["open_breakers"])
    return RECLOSABLE


def test_an_action_added_to_the_table_is_checked_by_the_schema_and_run_by_the_clock(new_action):
    with pytest.raises(InputError, match=r"action cut_site acts on substation, not bus"):
        parse_scenario("name: x\nsteps:\n  - {at_min: 0, action: cut_site, technique: T0855, "
                       "targets: {kind: bus, ids: [0]}}\n")
    with pytest.raises(InputError, match=r"factor applies to scale_loads or cut_site only, not trip_branches"):
        parse_scenario("name: x\nsteps:\n  - {at_min: 0, action: trip_branches, technique: T0855, factor: 2, "
                       "targets: {kind: line, ids: [0]}}\n")
    step = "{at_min: 0, action: %s, technique: T0855, duration_min: 30, targets: {kind: substation, ids: [S2]}}"
    new = simulate(three_sites(), parse_scenario(f"name: x\nsteps:\n  - {step % 'cut_site'}\n"))
    old = simulate(three_sites(), parse_scenario(f"name: x\nsteps:\n  - {step % 'open_breakers'}\n"))
    lines = [(e.t_min, e.element, e.state, e.cause, e.detail.replace("open_breakers", "cut_site")) for e in old.events]
    assert [(e.t_min, e.element, e.state, e.cause, e.detail) for e in new.events] == lines
    assert ("substation:S2", "in", 35.0) in {(e.element, e.state, e.t_min) for e in new.events}


def test_detect_early_keeps_the_steps_without_physical_effect():
    plan = parse_scenario("name: x\nsteps:\n  - {at_min: 0, action: access, technique: T0865}\n"
                          "  - {at_min: 5, action: open_breakers, technique: T0855, "
                          "targets: {kind: substation, ids: [S1]}}\n")
    _, mitigated, changed = apply_mitigation("detect-early", three_sites(), plan)
    assert [s.action for s in mitigated.steps] == ["access"]
    assert changed == "1 step(s) from t = 5 min on never happen"


def test_the_sweeps_targets_play_actions_of_the_table():
    assert TARGETS == tuple(TARGET_ACTIONS)
    for target, (name, tables) in TARGET_ACTIONS.items():
        action = ACTION_TYPES[name]
        assert action.takes_out is not None, target
        assert set(tables) <= set(action.targets) | ({"line", "trafo"} if "branch" in action.targets else set())


def test_a_substation_candidate_takes_out_what_open_breakers_opens():
    system = stock_system("case30")
    grid = fast_engine(system).grid
    sites = candidates(system, grid, "substations")
    assert [c.label for c in sites] == [f"substation:{name}" for name in system.substations]
    for cand, site in zip(sites, system.substations.values()):
        opened = breakers_at(system.net, set(site.buses))
        assert cand.outages.lines == {int(r.key) for r in opened if r.table == "line"}
        assert cand.outages.trafos == {int(r.key) for r in opened if r.table == "trafo"}
        assert not cand.outages.gens and len(cand.gen_positions) == 0
    gens = candidates(system, grid, "gens")
    assert [(c.label, list(c.gen_positions), len(c.branch_rows)) for c in gens] == \
        [(f"gen:{i}", [p], 0) for p, i in enumerate(system.net.gen.index)]
    lines = candidates(system, grid, "lines")
    assert [c.outages.lines for c in lines] == [{int(i)} for i in system.net.line.index]
    assert [list(c.branch_rows) for c in lines] == [[grid.line_branch[p]] for p in range(len(system.net.line))]


def test_open_breakers_takes_out_a_bus_only_at_that_bus():
    system = three_sites()
    opens = ACTION_TYPES["open_breakers"].takes_out
    bus = next(iter(system.substations["S1"].buses))
    assert opens(system, Ref("bus", bus)) == breakers_at(system.net, {int(bus)})
    assert opens(system, Ref("substation", "S1")) == breakers_at(system.net, set(system.substations["S1"].buses))
