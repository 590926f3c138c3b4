"""Scenario files: schema errors with their line, ATT&CK ids, and reproducible target selection."""

from __future__ import annotations

import re

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from conftest import stock_system, three_sites
from hypothesis import given
from hypothesis import strategies as st

from gridsim.cli.main import cli
from gridsim.errors import InputError
from gridsim.model.elements import Ref
from gridsim.power.ratings import base_flows
from gridsim.scenario.schema import BOOL_HINT, _Lines, load_scenario, parse_scenario
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
    (GOOD.replace("kind: substation", "kind: valve"), r"steps\[0\].targets.kind \(line 6\): kind must be one of"),
    (GOOD.replace("action: open_breakers", "action: trip_generators"),
     r"line 6\): action trip_generators acts on gen, not substation"),
    (GOOD.replace("ids: [S1]", "strategy: top, k: 2"), r"top needs by"),
    (GOOD.replace("ids: [S1]", "strategy: random, k: 0"), r"needs k, a positive integer"),
    (GOOD.replace("at_min: 0", "at_min: -5"), r"at_min must be a number >= 0"),
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


def one_step(step: str, extra: str = "") -> str:
    """A scenario of one flow-style step (``step`` is the inside of the braces) plus top-level ``extra``."""
    return f"name: x\n{extra}steps:\n  - {{{step}}}\n"


@pytest.mark.parametrize("step, message", [
    ("at_min: 0, action: [access], technique: T0855", r"steps\[0\].action \(line 3\): action must be a string"),
    ("at_min: 0, action: {a: 1}, technique: T0855", r"action must be a string, got \{'a': 1\}"),
    ("at_min: 0, action: access, technique: [T0855]", r"technique must be a string, got \['T0855'\]"),
    ("at_min: 0, action: access, technique: 855", r"technique must be a string, got 855"),
    ("at_min: 0, action: open_breakers, technique: T0855, targets: {kind: substation, where: {yes: 1}}",
     r"where.True \(line 3\): a tag name must be text, got true \(YAML read yes"),
    ("at_min: 0, action: open_breakers, technique: T0855, targets: {kind: substation, where: {a: [[1]]}}",
     r"tag a takes a string or a number, or a list of them; got \[1\]"),
    ("at_min: 0, action: open_breakers, technique: T0855, targets: {kind: substation, where: {a: null}}",
     r"tag a takes a string or a number, or a list of them; got null"),
])
def test_values_of_the_wrong_type_are_errors_before_any_lookup(step, message):
    with pytest.raises(InputError, match=message):
        parse_scenario(one_step(step), source="s.yaml")


HUGE = "1" + "0" * 400  # a 401-digit integer: no float holds it


@pytest.mark.parametrize("text, message", [
    (one_step(f"at_min: {HUGE}, action: access, technique: T0855"),
     r"at_min must be a number >= 0, got a 401-digit integer"),
    (one_step(f"at_min: 0, action: access, technique: T0855, duration_min: {HUGE}"), r"duration_min must be"),
    (one_step("at_min: 0, action: access, technique: T0855", f"horizon_h: {HUGE}\n"), r"horizon_h must be"),
    (GOOD + f"reported:\n  peak_mw_lost: {{value: -{HUGE}, source: x}}\n", r"value must be a number >= 0"),
    (one_step("at_min: 1" + "0" * 5000 + ", action: access, technique: T0855"),
     r"line 3, column \d+: malformed YAML: cannot read"),
])
def test_integers_too_large_for_a_float_are_invalid_numbers(text, message):
    with pytest.raises(InputError, match=message):
        parse_scenario(text, source="s.yaml")


@pytest.mark.parametrize("text, message", [
    ("x: &a [*a]\n" + GOOD, r"x \(line 1\): unknown key 'x'"),
    (GOOD + "references: &a [*a]\n", r"references \(line 7\): references must be a list of strings"),
    ("name: x\nsteps: &a [{at_min: 0, action: access, technique: T0855, note: *a}]\n",
     r"steps\[0\].note \(line 2\): note must be a string"),
    (GOOD.replace("targets: {kind: substation, ids: [S1]}", "targets: &t {kind: substation, where: {me: *t}}"),
     r"steps\[0\].targets.where.me \(line 6\): tag me takes a string or a number"),
])
def test_recursive_aliases_are_errors_not_recursion(text, message):
    with pytest.raises(InputError, match=message):
        parse_scenario(text, source="s.yaml")


def alias_bomb(levels: int) -> str:
    """A "billion laughs" list under references: level i is nine aliases of level i - 1 (9**levels strings)."""
    rows = ["    - &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    rows += [f"    - &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return GOOD + "references:\n" + "\n".join(rows) + "\n"


def test_an_alias_bomb_is_walked_once_per_node_and_rejected():
    text = alias_bomb(8)  # 9**8 = 43 million paths if every alias were followed
    lines = _Lines(yaml.compose(text, Loader=yaml.SafeLoader))
    assert len(lines.lines) < 200
    with pytest.raises(InputError, match=r"references \(line 7\): references must be a list of strings"):
        parse_scenario(text, source="s.yaml")


def test_null_is_refused_for_at_min_and_means_absent_for_optional_keys():
    with pytest.raises(InputError, match=r"steps\[0\].at_min \(line 3\): at_min must be a number >= 0, "
                                         r"got null"):
        parse_scenario(one_step("at_min: null, action: access, technique: T0855"), source="s.yaml")
    plan = parse_scenario(one_step("at_min: 0, action: access, technique: T0855, duration_min: null, note: null, "
                                   "factor: null, targets: null",
                                   "description:\nreferences:\nreported:\nhorizon_h:\nstart:\nseed:\nsystem:\n"))
    assert (plan.horizon_h, plan.references, plan.reported, plan.description, plan.start) == (24.0, (), (), "", None)
    step = plan.steps[0]
    assert (step.duration_min, step.factor, step.note, step.targets) == (None, None, "", None)


@pytest.mark.parametrize("text, message", [
    ("name: t\nname: u\n" + GOOD.split("\n", 1)[1], r"name \(line 2\): duplicate key 'name'"),
    (GOOD + "    at_min: 3\n", r"steps\[0\].at_min \(line 7\): duplicate key 'at_min'"),
    (GOOD.replace("ids: [S1]}", "ids: [S1], kind: bus}"), r"steps\[0\].targets.kind \(line 6\): duplicate key 'kind'"),
    (GOOD.replace("ids: [S1]}", "where: {operator: op, operator: x}}"), r"where.operator \(line 6\): duplicate key"),
])
def test_duplicate_keys_name_the_second_occurrence(text, message):
    with pytest.raises(InputError, match=message):
        parse_scenario(text, source="s.yaml")


def test_a_merge_key_override_is_not_a_duplicate():
    plan = parse_scenario("name: x\nsteps:\n  - &s {at_min: 0, action: access, technique: T0855}\n"
                          "  - {<<: *s, at_min: 5}\n")
    assert [s.at_min for s in plan.steps] == [0.0, 5.0]


@pytest.mark.parametrize("extra, message", [
    ("description: {a: 1}\n", r"description \(line 2\): description must be a string, got \{'a': 1\}"),
    ("start: {a: 1}\n", r"start \(line 2\): start must be an ISO 8601 date-time"),
    ("start: [2015]\n", r"start must be an ISO 8601 date-time"),
    ("start: 2015\n", r"start must be an ISO 8601 date-time"),
    ("start: yesterday at noon\n", r"start must be an ISO 8601 date-time .* got 'yesterday at noon'"),
    ("start: 2015-02-30\n", r"line 2, column 8: malformed YAML: cannot read '2015-02-30'"),
])
def test_free_text_and_start_must_be_strings(extra, message):
    with pytest.raises(InputError, match=message):
        parse_scenario(one_step("at_min: 0, action: access, technique: T0855", extra), source="s.yaml")
    with pytest.raises(InputError, match=r"note must be a string, got \{'a': 1\}"):
        parse_scenario(one_step("at_min: 0, action: access, technique: T0855, note: {a: 1}"))


@pytest.mark.parametrize("start, expected", [
    ('"2015-12-23T15:30:00+02:00"', "2015-12-23T15:30:00+02:00"),
    ("2015-12-23T15:30:00+02:00", "2015-12-23T15:30:00+02:00"),  # unquoted: YAML makes a datetime
    ("2015-12-23", "2015-12-23"),  # unquoted: YAML makes a date
])
def test_start_is_kept_as_iso_text(start, expected):
    plan = parse_scenario(one_step("at_min: 0, action: access, technique: T0855", f"start: {start}\n"))
    assert plan.start == expected


@pytest.mark.parametrize("factor", ["1.0e+308", "1001", "-1", ".inf", ".nan", "1e308"])
def test_scale_loads_factor_is_bounded(factor):
    step = "at_min: 0, action: scale_loads, technique: T0831, targets: {kind: load, ids: [0]}, factor: "
    with pytest.raises(InputError, match=r"steps\[0\].factor \(line 3\): factor must be a number in \[0, 1000\]"):
        parse_scenario(one_step(step + factor), source="s.yaml")
    assert parse_scenario(one_step(step + "1000")).steps[0].factor == 1000.0


@pytest.mark.parametrize("at_min, horizon, message", [
    (100000, "", r"steps\[0\].at_min \(line 3\): step at 100000 min is after the scenario horizon of 24 h"),
    (60, "horizon_h: 1\n", r"step at 60 min is at the end of the scenario horizon of 1 h"),
    (90.5, "horizon_h: 1.5\n", r"step at 90.5 min is after the scenario horizon of 1.5 h"),
])
def test_steps_at_or_after_the_horizon_are_errors(at_min, horizon, message):
    with pytest.raises(InputError, match=message):
        parse_scenario(one_step(f"at_min: {at_min}, action: access, technique: T0855", horizon), source="s.yaml")
    assert parse_scenario(one_step("at_min: 59.9, action: access, technique: T0855", "horizon_h: 1\n"))


def branch_selector(targets: str):
    return parse_scenario(one_step(f"at_min: 0, action: trip_branches, technique: T0855, targets: {targets}"),
                          source="s.yaml").steps[0].targets


def test_branches_are_given_by_table_and_index_never_a_bare_integer():
    with pytest.raises(InputError, match=r"ids \(line 3\): ambiguous branch id 0: write line:0 or trafo:0"):
        branch_selector("{kind: branch, ids: [0]}")
    with pytest.raises(InputError, match=r"id 'trafo:0' is a trafo, not a line"):
        branch_selector("{kind: line, ids: ['trafo:0']}")
    system = stock_system("case118")
    picked = resolve_targets(branch_selector("{kind: branch, ids: ['trafo:0', 'line:3']}"), system, step_rng(0, 0))
    assert picked == [Ref("trafo", 0), Ref("line", 3)]
    picked = resolve_targets(branch_selector("{kind: line, ids: [2, 'line:3']}"), system, step_rng(0, 0))
    assert picked == [Ref("line", 2), Ref("line", 3)]
    with pytest.raises(InputError, match="no trafo 999"):
        resolve_targets(branch_selector("{kind: branch, ids: ['trafo:999']}"), system, step_rng(0, 0))


@pytest.mark.parametrize("text", [
    "{kind: substation, where: {operator: yes}}",
    "{kind: substation, where: {operator: [op2, false]}, strategy: random, k: 1}",
])
def test_a_filter_with_an_unquoted_yes_says_so_when_nothing_matches(text):
    with pytest.raises(InputError, match=re.escape(BOOL_HINT)):
        resolve_targets(selector(text), three_sites(), step_rng(0, 0))


def test_the_same_target_named_twice_is_acted_on_once():
    sel = parse_scenario("name: x\nsteps:\n  - {at_min: 0, action: scale_loads, factor: 2, technique: T0831, "
                         "targets: {kind: load, ids: [0, 0, 'load:0']}}\n").steps[0].targets
    assert resolve_targets(sel, stock_system("case9"), step_rng(0, 0)) == [Ref("load", 0)]


@pytest.mark.parametrize("action", ["destroy_firmware", "access"])
def test_duration_is_refused_where_it_means_nothing(action):
    targets = "" if action == "access" else ", targets: {kind: substation, ids: [S1]}"
    with pytest.raises(InputError, match=f"{action} takes no duration_min"):
        parse_scenario(f"name: x\nsteps:\n  - {{at_min: 0, action: {action}, technique: T0857, "
                       f"duration_min: 5{targets}}}\n")


def test_a_name_that_is_not_text_says_so():
    with pytest.raises(InputError, match="name must be a string, got 5"):
        parse_scenario("name: 5\nsteps:\n  - {at_min: 0, action: access, technique: T0865}\n")


GOOD_STEP = "  - {at_min: 0, action: open_breakers, targets: {kind: substation, ids: [A]}, technique: T0855}\n"


@pytest.mark.parametrize("text, message", [
    ("name: x\n", "steps must be a non-empty list"),
    ("steps:\n" + GOOD_STEP, "missing or empty name"),
    ("description: only this\n", "missing or empty name"),
    ("name: x\nsteps:\n  - {action: access, technique: T0822}\n", r"steps\[0\].*at_min"),
    ("name: x\nsteps:\n  - {at_min: 0, technique: T0822}\n", r"steps\[0\].*action"),
    ("name: x\nsteps:\n  - {at_min: 0, action: access}\n", r"steps\[0\].*technique"),
])
def test_each_missing_required_key_is_one_error_at_once(text, message):
    # A missing top-level key once sent the line finder into an endless loop.
    with pytest.raises(InputError, match=message) as caught:
        parse_scenario(text)
    assert "\n" not in str(caught.value)


def test_validate_of_a_scenario_with_only_a_name_exits_2(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: x\n")
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2 and "steps must be a non-empty list" in result.output


@given(st.text(alphabet="ab.[]0", max_size=12))
def test_the_line_finder_ends_for_any_path(path):
    lines = _Lines(yaml.compose("a: {b: [1]}\n"))
    assert lines.place(path).startswith(path or "top level")


@pytest.mark.parametrize("high", ["9" * 400, ".nan", ".inf", "true"])
def test_a_reported_range_that_is_not_two_finite_numbers_is_one_line(high):
    text = ("name: x\nsteps:\n  - at_min: 0\n    action: open_breakers\n    technique: T0855\n"
            "    targets: {kind: substation, ids: [a]}\nreported:\n  peak_mw_lost:\n    value: 1\n"
            f"    source: s\n    range: [0, {high}]\n")
    with pytest.raises(InputError, match=r"reported.peak_mw_lost.range \(line 11\): range must be \[low, high\]"):
        parse_scenario(text)


def test_the_base_flows_the_flow_selector_ranks_by_are_computed_once_and_cannot_be_changed():
    from gridsim.power.ratings import base_flows

    system = stock_system("case9")
    lines, trafos = base_flows(system)
    assert base_flows(system)[0] is lines
    with pytest.raises(ValueError, match="read-only"):
        lines[0] = 0.0
