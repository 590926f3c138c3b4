"""Scenario files: schema errors with their line, ATT&CK ids, and reproducible target selection."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import stock_system, three_sites

from gridsim.errors import InputError
from gridsim.model.elements import Ref
from gridsim.scenario.schema import load_scenario, parse_scenario
from gridsim.scenario.selectors import resolve_targets, step_rng
from gridsim.scenario.techniques import techniques

GOOD = """\
name: demo
steps:
  - at_min: 0
    action: open_breakers
    technique: T0855
    targets: {kind: substation, ids: [S1]}
"""


def test_a_good_scenario_parses_into_frozen_steps():
    plan = parse_scenario(GOOD)
    assert plan.name == "demo" and plan.horizon_h == 24.0
    step = plan.steps[0]
    assert (step.action, step.technique, step.targets.kind, step.targets.ids) == \
        ("open_breakers", "T0855", "substation", ("S1",))
    with pytest.raises(AttributeError):
        step.action = "other"


@pytest.mark.parametrize("text, message", [
    (GOOD.replace("    technique: T0855", "    technique: T9999"),
     r"steps\[0\].technique \(line 5\): 'T9999' is not an ATT&CK for ICS technique id"),
    (GOOD.replace("open_breakers", "explode"), r"steps\[0\].action \(line 4\): unknown action 'explode'"),
    (GOOD + "    colour: red\n", r"steps\[0\].colour \(line 7\): unknown key 'colour'"),
    (GOOD.replace("kind: substation", "kind: pump"), r"steps\[0\].targets.kind \(line 6\): kind must be one of"),
    (GOOD.replace("action: open_breakers", "action: trip_generators"),
     r"line 6\): action trip_generators acts on gen, not substation"),
    (GOOD.replace("ids: [S1]", "strategy: top, k: 2"), r"top needs by"),
    (GOOD.replace("ids: [S1]", "strategy: random, k: 0"), r"needs k, a positive integer"),
    (GOOD.replace("at_min: 0", "at_min: -5"), r"at_min must be a non-negative number"),
    (GOOD.replace("    technique: T0855\n", ""), r"steps\[0\] \(line 3\): missing technique"),
    ("name: x\nsteps: []\n", r"steps must be a non-empty list"),
    ("name: x\nsteps:\n  - [unclosed\n", r"line \d+, column \d+: malformed YAML"),
    ("- just a list\n", r"a scenario must be a mapping"),
    ("name: x\nsteps:\n  - {at_min: 0, action: scale_loads, technique: T0831, targets: {kind: load, ids: [0]}}\n",
     r"scale_loads needs factor"),
    ("name: x\nsteps:\n  - {at_min: 0, action: access, technique: T0865, targets: {kind: bus, ids: [0]}}\n",
     r"action access takes no targets"),
])
def test_schema_errors_name_the_path_and_line(text, message):
    with pytest.raises(InputError, match=message):
        parse_scenario(text, source="s.yaml")


def test_yaml_tags_that_would_run_code_are_refused():
    text = "name: !!python/object/apply:os.system ['echo pwned']\nsteps: []\n"
    with pytest.raises(InputError, match="malformed YAML"):
        parse_scenario(text)


def test_technique_table_is_the_v18_list():
    table = techniques()
    assert table["T0855"].name == "Unauthorized Command Message"
    assert len(table) == 83


def test_bundled_scenarios_all_parse():
    for name in ("ukraine-2015", "random-substations", "top-load-lines"):
        plan = load_scenario(name)
        assert plan.steps and all(s.technique in techniques() for s in plan.steps)


def selector(text: str):
    return parse_scenario(f"name: x\nsteps:\n  - {{at_min: 0, action: open_breakers, technique: T0855, "
                          f"targets: {text}}}\n").steps[0].targets


def test_ids_and_tag_filters_resolve():
    system = three_sites()
    rng = step_rng(0, 0)
    assert resolve_targets(selector("{kind: substation, ids: [S2]}"), system, rng) == [Ref("substation", "S2")]
    picked = resolve_targets(selector("{kind: substation, where: {operator: op}}"), system, rng)
    assert picked == [Ref("substation", f"S{i}") for i in (1, 2, 3)]


@pytest.mark.parametrize("text, message", [
    ("{kind: substation, ids: [S9]}", "no substation named 'S9'"),
    ("{kind: substation, where: {colour: red}}", "no substation of three-sites has the tag 'colour'"),
    ("{kind: substation, where: {operator: nobody}}", "no substation matches the filter"),
    ("{kind: substation, strategy: random, k: 99}", "asks for k=99"),
])
def test_selector_errors(text, message):
    with pytest.raises(InputError, match=message):
        resolve_targets(selector(text), three_sites(), step_rng(0, 0))


def test_top_by_load_picks_the_largest_sites_in_order():
    picked = resolve_targets(selector("{kind: substation, strategy: top, by: load, k: 2}"), three_sites(),
                             step_rng(0, 0))
    assert picked == [Ref("substation", "S3"), Ref("substation", "S2")]


def test_top_by_flow_on_case118_matches_the_base_flows():
    system = stock_system("case118")
    sel = parse_scenario("name: x\nsteps:\n  - {at_min: 0, action: trip_branches, technique: T0855, "
                         "targets: {kind: line, strategy: top, by: flow, k: 3}}\n").steps[0].targets
    picked = resolve_targets(sel, system, step_rng(0, 0))
    from gridsim.model.system import base_flows

    expected = np.argsort(-np.abs(base_flows(system)[0]), kind="stable")[:3]
    assert [r.key for r in picked] == [int(system.net.line.index[i]) for i in expected]


@pytest.mark.parametrize("by", ["degree", "betweenness", "load", "flow"])
@pytest.mark.parametrize("kind", ["substation", "bus", "branch"])
def test_every_measure_gives_k_distinct_targets(kind, by):
    system = stock_system("case30")
    action = "trip_branches" if kind == "branch" else "open_breakers"
    sel = parse_scenario(f"name: x\nsteps:\n  - {{at_min: 0, action: {action}, technique: T0855, "
                         f"targets: {{kind: {kind}, strategy: top, by: {by}, k: 4}}}}\n").steps[0].targets
    picked = resolve_targets(sel, system, step_rng(0, 0))
    assert len(set(picked)) == 4


def test_random_picks_repeat_with_the_seed_and_change_without_it():
    system = stock_system("case118")
    sel = selector("{kind: substation, strategy: random, k: 5}")
    first = resolve_targets(sel, system, step_rng(7, 1))
    assert resolve_targets(sel, system, step_rng(7, 1)) == first
    others = {tuple(resolve_targets(sel, system, step_rng(seed, 1))) for seed in range(8)}
    assert len(others) > 1


def test_reported_figures_are_parsed_and_checked():
    plan = parse_scenario(GOOD + "reported:\n  peak_customers_out: {value: 1000, source: 'a report'}\n")
    assert plan.reported[0].measure == "peak_customers_out" and plan.reported[0].value == 1000
    with pytest.raises(InputError, match=r"reported.happiness \(line \d+\): unknown measure"):
        parse_scenario(GOOD + "reported:\n  happiness: {value: 1, source: x}\n")
    with pytest.raises(InputError, match="needs value"):
        parse_scenario(GOOD + "reported:\n  peak_mw_lost: {source: x}\n")
