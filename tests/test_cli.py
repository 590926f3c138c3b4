"""The command line, as a user runs it.

Most tests run the commands in this process through click's ``CliRunner`` (the ``in_process`` fixture of
conftest.py, answered as a finished process would be): a new process pays 2 to 3 s of imports. What only a real
process shows runs one, through ``python -m gridsim``: the exit statuses of the entry point, a clean stderr
from a fresh interpreter, the exit status and cleanup of a run killed by SIGTERM or interrupted by SIGINT, and
the same results from a process with another hash seed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def gridsim(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """``gridsim *args`` as a real process."""
    return subprocess.run([sys.executable, "-m", "gridsim", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def assert_user_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_help_and_version(in_process):
    help_ = in_process("--help")
    assert help_.returncode == 0 and "run" in help_.stdout and "validate" in help_.stdout
    version = gridsim("--version")  # the real entry point: python -m gridsim exits 0
    assert version.returncode == 0 and "gridsim, version 0.1.0" in version.stdout


def test_list_shows_bundled_topologies_and_scenarios(in_process):
    proc = in_process("list")
    assert proc.returncode == 0
    for name in ("ukraine-2015", "random-substations", "top-load-lines", "pandapower:<network>", "GBreducednetwork",
                 "matpower:<case>"):
        assert name in proc.stdout


def test_show_describes_a_topology_by_path_and_by_name(in_process, tmp_path):
    by_path = in_process("show", "topologies/ukraine-2015")
    assert by_path.returncode == 0, by_path.stderr
    assert "169 buses" in by_path.stdout and "348,500" in by_path.stdout and "kyivoblenergo" in by_path.stdout
    assert "layers           telecom" in by_path.stdout and "3 control_centre, 70 gateway" in by_path.stdout
    assert "dependencies     73" in by_path.stdout and "substation -> telecom      73" in by_path.stdout
    by_name = in_process("show", "ukraine-2015", cwd=tmp_path)
    assert by_name.returncode == 0 and by_name.stdout == by_path.stdout


def test_validate_accepts_the_bundled_scenario(in_process):
    proc = in_process("validate", "attacks/ukraine-2015.yaml")
    assert proc.returncode == 0, proc.stderr
    assert "schema OK" in proc.stdout and "targets resolve on ukraine-2015" in proc.stdout


def test_validate_reports_a_bad_step_with_file_and_line(in_process, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nsteps:\n  - at_min: 0\n    action: open_breakers\n    technique: T0855\n"
                   "    targets: {kind: substation, ids: [NOPE]}\n")
    assert_user_error(in_process("validate", str(bad), "--system", "topologies/ukraine-2015"),
                      "bad.yaml", "line 6", "no substation named 'NOPE'")


@pytest.mark.parametrize("args, fragments", [
    (["run", "attacks/nope.yaml"], ["nope.yaml", "scenario file not found"]),
    (["run", "attacks/random-substations.yaml"], ["names no system", "--system"]),
    (["run", "attacks/random-substations.yaml", "--system", "pandapower:case999"], ["no stock pandapower"]),
    (["show", "topologies/missing"], ["no system here"]),
])
def test_user_errors_are_one_line_with_status_2(in_process, args, fragments):
    assert_user_error(in_process(*args), *fragments)


def test_a_user_error_is_one_line_and_status_2_from_a_real_process():
    """A fresh interpreter's stderr: no warning of an import, no log line, only the error."""
    assert_user_error(gridsim("show", "topologies/missing"), "no system here")


def test_bad_option_value_is_a_usage_error(in_process):
    proc = in_process("run", "attacks/ukraine-2015.yaml", "--engine", "quantum")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_failed_run_writes_nothing(in_process, tmp_path):
    out = tmp_path / "results"
    proc = in_process("run", "attacks/random-substations.yaml", "--system", "pandapower:case999", "--out", str(out))
    assert proc.returncode == 2
    assert not out.exists() or not any(out.iterdir())


def test_run_writes_a_complete_bundle_and_json_summary(in_process, tmp_path):
    out = tmp_path / "results"
    proc = in_process("run", "attacks/top-load-lines.yaml", "--system", "pandapower:case30", "--seed", "3",
                      "--json", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    bundle = Path(summary["bundle"])
    assert bundle.parent == out
    assert sorted(p.name for p in bundle.iterdir()) == \
        ["events.jsonl", "manifest.json", "summary.json", "timeline.csv", "timeline.png"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary folder left
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["seed"] == 3
    assert len(manifest["inputs"]["scenario"]["sha256"]) == 64
    assert {"gridsim", "pandapower", "numpy", "python"} <= set(manifest["versions"])
    on_disk = json.loads((bundle / "summary.json").read_text())
    assert on_disk["peak_mw_lost"] == summary["peak_mw_lost"]
    header = (bundle / "timeline.csv").read_text().splitlines()[0]
    assert header.startswith("t_min,t_h,demand_mw,served_mw,lost_mw,customers_out,people_out")
    events = [json.loads(line) for line in (bundle / "events.jsonl").read_text().splitlines()]
    assert all({"t_min", "element", "state", "cause"} <= set(e) for e in events)


def test_same_inputs_and_seed_give_the_same_results(in_process, tmp_path):
    outputs = []
    # One run in this process, one in a new one: another process, another hash seed (set and dict orders of
    # strings), the same figures.
    for attempt, gridsim_ in enumerate((in_process, gridsim)):
        out = tmp_path / f"r{attempt}"
        proc = gridsim_("run", "attacks/random-substations.yaml", "--system", "pandapower:case30", "--seed", "11",
                        "--no-plot", "--out", str(out))
        assert proc.returncode == 0, proc.stderr
        (bundle,) = list(out.iterdir())
        outputs.append([(bundle / name).read_text() for name in ("summary.json", "timeline.csv", "events.jsonl")])
    assert outputs[0] == outputs[1]


def test_a_second_run_never_overwrites_the_first(in_process, tmp_path):
    out = tmp_path / "results"
    for _ in range(2):
        proc = in_process("run", "attacks/top-load-lines.yaml", "--system", "pandapower:case9", "--no-plot",
                          "--out", str(out))
        assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == \
        ["top-load-lines_pandapower-case9_dc_seed0", "top-load-lines_pandapower-case9_dc_seed0-2"]


def test_ukraine_run_prints_the_human_summary(in_process, tmp_path):
    proc = in_process("run", "attacks/ukraine-2015.yaml", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "peak customers out    225,000" in proc.stdout
    assert "energy not served" in proc.stdout and "full restoration      6 h 30 min" in proc.stdout
    assert re.search(r"\n    energy_not_served_mwh +414  73 +shown only +widely quoted summary figure", proc.stdout)
    # The gateways of the 60 attacked sites bricked, and the three control centres wiped by KillDisk at 45 min
    # (Prykarpattya's already dark with its city since 30 min, its UPS cut).
    assert "telecom sites down    63 at peak" in proc.stdout
    assert "substations without remote control 70, without view 70" in proc.stdout
    (bundle,) = list(tmp_path.iterdir())
    events = [json.loads(line) for line in (bundle / "events.jsonl").read_text().splitlines()]
    cc = [e for e in events if e["element"] == "telecom:CC-PK" and e["state"] == "out"]
    assert cc[0]["t_min"] == 30.0 and cc[0]["caused_by"] == "substation:PK-110-01"
    assert "backup disabled by the attack" in cc[0]["detail"] and "de-energised at 0 h 30 min" in cc[0]["detail"]
    header = (bundle / "timeline.csv").read_text().splitlines()[0]
    assert "telecom_sites_down" in header and header.endswith("what_happened")


@pytest.mark.parametrize("args, fragments", [
    (["run", "attacks/ukraine-2015.yaml", "--horizon-h", "nan"], ["--horizon-h", "not a finite number"]),
    (["run", "attacks/ukraine-2015.yaml", "--engine", "quantum"], ["gridsim run", "--engine"]),
    (["frobnicate"], ["No such command 'frobnicate'"]),
])
def test_usage_errors_are_one_line_too(in_process, args, fragments):
    assert_user_error(in_process(*args), *fragments)


def test_a_usage_error_is_one_line_and_status_2_from_a_real_process():
    assert_user_error(gridsim("frobnicate"), "No such command 'frobnicate'")


def test_unwritable_out_is_refused_before_simulating(in_process, tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    assert_user_error(in_process("run", "attacks/ukraine-2015.yaml", "--out", str(blocker / "sub")),
                      "cannot write results here", "is not a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_bare_gridsim_prints_help():
    proc = gridsim()
    assert proc.returncode == 0 and "Usage: gridsim" in proc.stdout and not proc.stderr


def test_a_path_too_long_for_the_file_system_is_a_user_error(in_process, tmp_path):
    assert_user_error(in_process("run", "attacks/ukraine-2015.yaml", "--out", str(tmp_path / ("d" * 300))),
                      "cannot write results here")
    assert_user_error(in_process("show", "d" * 300), "d" * 20)


def test_an_empty_out_is_refused_and_nothing_written(in_process, tmp_path):
    proc = in_process("run", str(REPO / "attacks" / "ukraine-2015.yaml"), "--out", "", cwd=tmp_path)
    assert_user_error(proc, "--out", "empty folder name")
    assert list(tmp_path.iterdir()) == []


def test_show_says_whether_there_is_a_frequency_model(in_process):
    with_model = in_process("show", "wscc9")
    assert with_model.returncode == 0, with_model.stderr
    assert "  frequency        model at 60 Hz: droop 5 %, governor 5 s, load damping 1" in with_model.stdout
    assert "    shedding       5 stages, 59.1 to 58.3 Hz, 31.1 % of load" in with_model.stdout
    assert "    trips          generators below 57.5 Hz or above 61.8 Hz" in with_model.stdout
    without = in_process("show", "ukraine-2015")
    assert "  frequency        no model" in without.stdout


def test_show_and_run_say_how_many_ratings_gridsim_set(in_process):
    shown = in_process("show", "pandapower:case14")
    assert shown.returncode == 0, shown.stderr
    assert "  ratings          20 of 20 branches rated by gridsim (Motter-Lai rule)" in shown.stdout
    assert "all 177 as the grid gives them" in in_process("show", "ukraine-2015").stdout
    run = in_process("run", "attacks/top-load-lines.yaml", "--system", "pandapower:case14", "--no-bundle")
    assert run.returncode == 0, run.stderr
    assert "  caveat                ratings of 20 of 20 branches derived by gridsim as (1 + margin) x base-case " \
           "flow (Motter-Lai)" in run.stdout
    as_json = json.loads(in_process("run", "attacks/top-load-lines.yaml", "--system", "pandapower:case14",
                                    "--no-bundle", "--json").stdout)
    assert as_json["ratings"]["derived"] == 20 and as_json["ratings"]["branches"] == 20
    given = in_process("run", "attacks/top-load-lines.yaml", "--system", "pandapower:case9", "--no-bundle")
    assert given.returncode == 0 and "caveat" not in given.stdout


def test_long_names_widen_their_column_instead_of_overflowing():
    from gridsim.cli.run import format_summary

    row = {"simulated": 80000, "value": 80000, "range": None, "tolerance_pct": 5, "source": "E-ISAC", "note": "",
           "calibrated": False, "agrees": True}
    summary = _minimal_summary()
    summary["reported"] = {"peak_customers_out": dict(row, simulated=225000, value=225000),
                           "by_operator.a-very-long-operator-name.peak_customers_out": row}
    summary["by_operator"] = {"a-very-long-operator-name-of-thirty": {"peak_customers_out": 1, "outage_h": 1.0},
                              "short": {"peak_customers_out": 22, "outage_h": 2.0}}
    lines = format_summary(summary).splitlines()
    table = lines[lines.index("  compared with what was reported") + 1:]
    assert table[0].split() == ["measure", "simulated", "reported", "verdict", "source"]
    ends = {line.index(" simulated") + len(" simulated") for line in table[:1]}
    ends |= {line.index(figure) + len(figure) for line, figure in zip(table[1:], ("225,000", "80,000"))}
    assert len(ends) == 1  # the simulated figures line up under their header, long measure or not
    assert len({line.index("agrees") for line in table[1:]}) == 1
    operators = [line for line in lines if "customers, out" in line]
    assert len({line.index(" customers, out") for line in operators}) == 1


def _minimal_summary() -> dict:
    return {"scenario": "s", "system": "y", "engine": "fast-dc", "seed": 0, "peak_mw_lost": 1.0, "peak_pct_lost": 1.0,
            "demand_at_peak_mw": 100.0, "peak_time_min": 5.0, "peak_customers_out": 23, "base_customers": 100,
            "peak_people_out": 50, "energy_not_served_mwh": 1.0, "customer_hours_lost": 10.0,
            "time_to_full_restoration_min": 60.0, "outage_duration_h": {"loads_affected": 0}, "cascade_depth": 0,
            "elements_failed_by_cause": {}, "by_operator": {}}


def test_the_template_is_a_valid_scenario(in_process):
    proc = in_process("validate", "attacks/template.yaml")
    assert proc.returncode == 0, proc.stderr
    assert "schema OK" in proc.stdout and "targets resolve on ukraine-2015" in proc.stdout


def test_new_scenario_writes_the_template_and_never_overwrites(in_process, tmp_path):
    target = tmp_path / "kyiv.yaml"
    proc = in_process("new-scenario", str(target))
    assert proc.returncode == 0, proc.stderr
    text = target.read_text()
    assert text.startswith("# A scenario to copy and edit") and '\nname: "kyiv"' in text
    assert "targets resolve on ukraine-2015" in in_process("validate", str(target), cwd=tmp_path).stdout
    target.write_text("my own work")
    assert_user_error(in_process("new-scenario", str(target)), "kyiv.yaml", "already exists")
    assert target.read_text() == "my own work"
    assert_user_error(in_process("new-scenario", str(tmp_path / "missing" / "x.yaml")), "no such folder")
    os.symlink(tmp_path / "elsewhere.yaml", tmp_path / "link.yaml")
    assert_user_error(in_process("new-scenario", str(tmp_path / "link.yaml")), "already exists")
    assert not (tmp_path / "elsewhere.yaml").exists()


def test_list_shows_the_template_apart_from_the_runnable_scenarios(in_process):
    lines = in_process("list").stdout.splitlines()
    scenarios = lines[lines.index("scenarios (gridsim run NAME):") + 1:]
    runnable = scenarios[:scenarios.index("a new scenario:")]
    assert not [line for line in runnable if "template" in line]
    assert any("gridsim new-scenario PATH" in line and "attacks/template.yaml" in line for line in scenarios)


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.mark.skipif(sys.platform == "win32", reason="a pseudo-terminal and POSIX signals")
@pytest.mark.parametrize("sig, status, said", [(signal.SIGTERM, 128 + signal.SIGTERM, []),
                                               (signal.SIGINT, 1, ["Aborted."])], ids=["SIGTERM", "SIGINT"])
def test_a_run_killed_or_interrupted_exits_with_its_status_and_leaves_nothing(tmp_path, sig, status, said):
    """A real ``gridsim run`` at a terminal, signalled once its progress bar shows (the system loaded, the clock
    running), not as soon as it starts: pandapower, imported while the system loads, wraps some of its own imports
    in bare ``except:`` clauses, which would swallow a KeyboardInterrupt."""
    import pty
    import select

    out = tmp_path / "results"
    terminal, its_end = pty.openpty()  # stderr a terminal: the bar is drawn
    # A child inherits an ignored signal, and a test runner started in the background by a script (`pytest &`
    # without job control) ignores SIGINT: the run starts with SIGINT as a user at a terminal has it.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "gridsim", "run", "attacks/ukraine-2015.yaml", "--out",
                                 str(out)], cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=its_end)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        os.close(its_end)
    shown, signalled = b"", False
    try:
        deadline = time.monotonic() + 300
        while True:
            assert time.monotonic() < deadline, f"no end within 300 s; stderr so far: {shown!r}"
            if select.select([terminal], [], [], 0.5)[0]:
                try:
                    chunk = os.read(terminal, 4096)
                except OSError:  # EIO: the process closed the terminal's other end (it has ended)
                    chunk = b""
                if not chunk:
                    break
                shown += chunk
            if not signalled and b"simulating" in shown:
                proc.send_signal(sig)
                signalled = True
        stdout = proc.communicate(timeout=120)[0].decode()
    finally:
        proc.kill()
        os.close(terminal)
    stderr = ANSI.sub("", shown.decode(errors="replace"))
    assert signalled, f"no progress bar was drawn: {stderr!r}"
    assert proc.returncode == status, stderr
    assert "Traceback" not in stderr
    assert [line.strip() for line in re.split(r"[\r\n]+", stderr) if line.strip() and "simulating" not in line] \
        == said, stderr
    assert "results:" not in stdout
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("args", [["run", "ukraine-2015", "--no-bundle", "--json"],
                                  ["sweep", "--system", "pandapower:case9", "--targets", "gens", "--no-plot"]])
def test_a_command_run_in_process_puts_back_the_sigterm_handler_it_found(args, tmp_path):
    import signal

    from click.testing import CliRunner

    from gridsim.cli.main import cli

    def mine(signum, frame):
        raise AssertionError("not called")

    before = signal.signal(signal.SIGTERM, mine)
    try:
        done = CliRunner().invoke(cli, [*args, *(["--out", str(tmp_path)] if args[0] == "sweep" else [])])
        assert done.exit_code == 0, done.output
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, before)
