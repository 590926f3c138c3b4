"""Case studies: every bundled incident agrees with what was reported, within the tolerance it declares.

Figures marked ``calibrated`` were inputs of the topology and are not checked
here; the others are outputs, and a change to the engine that moves one out of
its tolerance fails this test.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import bundled_run, loaded_system

from gridsim.analysis.casestudy import case_studies, run_case_study
from gridsim.cli.main import cli
from gridsim.errors import InputError
from gridsim.scenario.mitigations import MITIGATIONS, SPARE_INSTALL_H, apply_mitigation
from gridsim.scenario.schema import NOT_AN_ATTACK, Reported, load_scenario, parse_scenario

REPO = Path(__file__).resolve().parents[1]


@functools.cache
def case_study(name: str):
    """``run_case_study(name)`` once per session: the tests only read it."""
    return run_case_study(name)


@pytest.mark.parametrize("name", case_studies())
def test_every_judged_figure_agrees_with_what_was_reported(name):
    study = case_study(name)
    assert study.rows, f"{name} declares no reported figures"
    for row in study.judged:
        assert row["agrees"], (f"{name}: {row['measure']} simulated {row['simulated']}, reported {row['value']} "
                               f"(tolerance {row['tolerance_pct']} %, range {row['range']})")


def test_ukraine_is_a_case_study_with_outputs_judged_and_inputs_marked():
    study = case_study("ukraine-2015")
    rows = {row["measure"]: row for row in study.rows}
    assert rows["peak_customers_out"]["calibrated"] and rows["peak_customers_out"]["agrees"] is None
    assert rows["outage_duration_h.min"]["agrees"] is True
    assert rows["energy_not_served_mwh"]["agrees"] is None  # uncertain figure: shown, not judged
    assert rows["by_operator.kyivoblenergo.outage_h"]["simulated"] == pytest.approx(3.05, abs=0.01)


@pytest.mark.parametrize("reported, simulated, verdict", [
    (Reported("peak_mw_lost", 200, "s", tolerance_pct=5), 209.9, True),
    (Reported("peak_mw_lost", 200, "s", tolerance_pct=5), 210.1, False),
    (Reported("peak_mw_lost", 3, "s", range=(1, 6)), 6.0, True),
    (Reported("peak_mw_lost", 3, "s", range=(1, 6)), 0.5, False),
    (Reported("peak_mw_lost", 0, "s", range=(0, 0)), 0.0, True),
    (Reported("peak_mw_lost", 73, "s"), 414, None),
    (Reported("peak_mw_lost", 73, "s", tolerance_pct=10), None, False),
])
def test_agreement_rules(reported, simulated, verdict):
    assert reported.agrees(simulated) is verdict


@pytest.mark.parametrize("entry, message", [
    ("peak_mw_lost: {value: 1, source: s, range: [5, 1]}",
     r"reported.peak_mw_lost.range \(line 3\): range must be \[low, high\]"),
    ("peak_mw_lost: {value: 1, source: s, tolerance_pct: -2}", r"tolerance_pct must be"),
    ("peak_mw_lost: {value: 1, source: s, calibrated: maybe}", r"calibrated must be true or false"),
    ("megawatts: {value: 1, source: s}", r"unknown measure 'megawatts'"),
    ("peak_mw_lost: {value: 1, source: s, margin: 3}", r"margin"),
])
def test_bad_reported_figures_are_refused_with_their_path(entry, message):
    with pytest.raises(InputError, match=message):
        parse_scenario(f"name: t\nreported:\n  {entry}\nsteps:\n  - {{at_min: 0, action: access, technique: T0886}}\n")


def test_mitigations_change_copies_and_say_what_they_changed():
    plan = load_scenario(REPO / "attacks" / "ukraine-2015.yaml")
    system = loaded_system(plan.system)
    before_steps, before_crews = plan.steps, system.restoration.crews

    _, spared, what = apply_mitigation("spare-converters", system, plan)
    assert "2 firmware-destruction step(s): spare devices installed 2 h later" in what
    bounded = [s for s in spared.steps if s.action == "destroy_firmware"]
    assert len(bounded) == 2 and all(s.duration_min == 60.0 * SPARE_INSTALL_H for s in bounded)
    assert all("spares installed after 2 h" in s.note for s in bounded)

    _, early, what = apply_mitigation("detect-early", system, plan)
    assert {s.action for s in early.steps} == {"access"} and "never happen" in what

    ready, _, _ = apply_mitigation("manual-control-ready", system, plan)
    assert ready.restoration.crews == 2 * before_crews and ready.restoration.detect_blind_min == 0
    assert all(p.manual_h <= 0.25 for p in ready.operator_restoration.values())

    assert apply_mitigation("backup-generators-at-pumps", system, plan)[2] == ""  # no water layer here
    assert plan.steps == before_steps and system.restoration.crews == before_crews  # inputs untouched


def test_backup_generators_at_pumps_keep_the_city_in_water():
    plan, system, result = bundled_run("ieee118-city")  # the run without mitigation, shared with other tests
    changed, _, what = apply_mitigation("backup-generators-at-pumps", system, plan)
    assert what == "4 pump/plant supplies get 48 h of standby generation"
    pumps = [d for d in changed.layers.dependencies if d.dependent.startswith("pump:")]
    assert all(d.backup_h == 48.0 for d in pumps)
    from gridsim.metrics import summarize
    from gridsim.sim.simulation import simulate

    without = summarize(result)["layers"]["peak_people_without_water"]
    with_generators = summarize(simulate(changed, plan))["layers"]["peak_people_without_water"]
    assert without == pytest.approx(150_000) and with_generators < without


def test_spare_converters_give_remote_control_back_once_installed():
    from conftest import three_sites

    from gridsim.metrics import summarize
    from gridsim.sim.simulation import simulate

    # One crew, 3 h a site, the firmware of all three sites destroyed: by hand S3, S2, S1 at 3, 6 and 9 h.
    plan = parse_scenario("""name: t
horizon_h: 12
steps:
  - {at_min: 0, action: destroy_firmware, technique: T0857, targets: {kind: substation, ids: [S1, S2, S3]}}
  - {at_min: 0, action: open_breakers, technique: T0855, targets: {kind: substation, ids: [S1, S2, S3]}}
""")
    system = three_sites(crews=1, manual_h=3.0)

    def restored(result):
        return {e.element: e.t_min for e in result.events if e.state == "in" and e.element.startswith("substation:")}

    assert restored(simulate(system, plan)) == {"substation:S3": 180.0, "substation:S2": 360.0,
                                                "substation:S1": 540.0}
    changed_system, spared, what = apply_mitigation("spare-converters", system, plan)
    assert what.startswith("1 firmware-destruction step(s)")
    result = simulate(changed_system, spared)
    # Spares in at 2 h: the two sites still waiting for the crew are reclosed remotely (5 min); the crew
    # already at S3 finishes there.
    assert restored(result) == {"substation:S2": 125.0, "substation:S1": 125.0, "substation:S3": 180.0}
    summary = summarize(result)
    assert summary["restorations_by_cause"] == {"restored-manual": 1, "restored-remote": 2}
    assert summary["control"]["without_remote_control_at_end"] == {}
    assert summary["fully_restored"] is True


def test_a_mitigation_that_moves_nothing_says_so_and_why():
    study = run_case_study("ukraine-2015", mitigations=("spare-converters", "manual-control-ready"))
    spared = study.mitigations["spare-converters"]
    # The converters come back after 2 h, but the HMI takeovers and the wiped control centres still deny control.
    assert spared.moved == {}
    assert spared.unchanged_because.startswith("restoration stays manual (60 of 60 restorations by hand)")
    assert "deny_control (step 4) at 30 sites" in spared.unchanged_because
    assert "deny_control (step 7) at 30 sites" in spared.unchanged_because
    assert "control_centre down at 70 sites" in spared.unchanged_because
    assert "gateway down" not in spared.unchanged_because  # that is what the spares did fix
    ready = study.mitigations["manual-control-ready"]
    assert ready.moved["time_to_full_restoration_min"] == {"without": 390.0, "with": 75.0, "change": -315.0}
    assert set(ready.moved) == {"peak_mw_lost", "peak_customers_out", "energy_not_served_mwh",
                                "customer_hours_lost", "time_to_full_restoration_min"}
    assert ready.unchanged_because == ""


def test_case_study_command_prints_the_table_and_mitigations(in_process):
    done = in_process("case-study", "ukraine-2015", "--mitigate", "manual-control-ready", "--mitigate",
                      "spare-converters", "--check")
    assert done.returncode == 0, done.stderr
    assert "outage_duration_h.min" in done.stdout and "agrees" in done.stdout
    assert "calibrated input" in done.stdout and "what would have helped" in done.stdout
    assert "moved:   peak MW -52.80 (-29 %)" in done.stdout and "restored min -315 (-81 %)" in done.stdout
    assert "moved:   nothing: restoration stays manual (60 of 60 restorations by hand)" in done.stdout
    listed = in_process("case-study", "--list-mitigations")
    assert all(name in listed.stdout for name in MITIGATIONS)


@pytest.mark.parametrize("args, message", [
    (["case-study", "atlantis-1999"], "no bundled case study of that name"),
    (["case-study", "ukraine-2015", "--mitigate", "prayer"], "unknown mitigation 'prayer'"),
    (["case-study"], "name one case study, or pass --all"),
    (["case-study", "random-substations"], "declares no reported figures"),
])
def test_case_study_user_errors(in_process, args, message):
    done = in_process(*args)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_techniques_lists_what_the_scenarios_use(in_process):
    done = in_process("techniques")
    assert done.returncode == 0
    line = next(line for line in done.stdout.splitlines() if line.strip().startswith("T0855"))
    assert "Unauthorized Command Message" in line and "ukraine-2015" in line
    assert len(in_process("techniques", "--all").stdout.splitlines()) > len(done.stdout.splitlines())


def test_techniques_does_not_list_the_new_scenario_template():
    """attacks/template.yaml is the commented example ``gridsim new-scenario`` writes, not an incident."""
    result = CliRunner().invoke(cli, ["techniques", "--all"])
    assert result.exit_code == 0, result.output

    def listed(name: str) -> bool:
        return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", result.stdout) is not None

    assert (REPO / "attacks" / "template.yaml").is_file() and not listed("template")
    scenarios = [path for path in (REPO / "attacks").glob("*.yaml") if path.name != "template.yaml"]
    attacks = [path.stem for path in scenarios if any(step.technique != NOT_AN_ATTACK
                                                      for step in load_scenario(path).steps)]
    assert "ukraine-2015" in attacks and all(listed(name) for name in attacks), result.stdout


def test_a_mitigated_copy_does_not_share_mutable_state():
    plan = load_scenario(REPO / "attacks" / "ieee118-city.yaml")
    system = loaded_system(plan.system)
    changed, _, _ = apply_mitigation("signal-batteries", system, plan)
    assert changed.layers is not system.layers
    assert dataclasses.replace(system).layers.dependencies == system.layers.dependencies
