"""Sweeps: every row equals a reference cascade of its scenario; files, order and seeds are reproducible."""

from __future__ import annotations

import json
import multiprocessing
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import stock_system, three_sites
from test_fast_engine import shifter_grid

from gridsim.analysis.sweep import SweepSettings, run_sweep, scenarios
from gridsim.analysis.sweep import runner as runner_module
from gridsim.analysis.sweep.runner import SweepPlan
from gridsim.errors import InputError
from gridsim.power.cascade import run_cascade
from gridsim.power.contract import LOAD_ISLAND, Outages
from gridsim.power.fast import fast_engine

REPO = Path(__file__).resolve().parents[1]


def collect(system, settings: SweepSettings) -> tuple[dict, object]:
    rows: dict[str, list] = {}

    def sink(columns):
        for name, values in columns.items():
            rows.setdefault(name, []).extend(values)

    accumulator = run_sweep(system, settings, sink=sink)
    return rows, accumulator


def reference_row(system, outages: Outages) -> tuple[float, float, int, list[str]]:
    base, result = run_cascade(system, Outages()), run_cascade(system, outages)

    def customers_out(r):
        fraction = np.where(r.demand_mw > 0, 1 - np.divide(r.served_mw, r.demand_mw, out=np.ones_like(r.served_mw),
                                                            where=r.demand_mw > 0), 0.0)
        fraction = np.where(r.load_state == LOAD_ISLAND, 1.0, np.clip(fraction, 0, 1))
        return float(fraction @ system.customers)

    lost = float(base.served_mw.sum() - result.served_mw.sum())
    return lost, customers_out(result) - customers_out(base), result.depth, [f"{t.table}:{t.index}"
                                                                           for t in result.trips]


def outages_of(labels: list[str], system) -> Outages:
    lines, trafos = set(), set()
    for label in labels:
        table, index = label.split(":")
        (lines if table == "line" else trafos).add(int(index))
    return Outages(lines=frozenset(lines), trafos=frozenset(trafos))


@pytest.mark.parametrize("system", [stock_system("case30"), stock_system("case118"), shifter_grid()],
                         ids=["case30", "case118", "shifter"])
def test_every_single_branch_row_equals_the_reference_cascade(system):
    rows, _ = collect(system, SweepSettings(targets="branches", k=1))
    assert rows["scenario"] == list(range(len(rows["scenario"])))
    for labels, lost, customers, depth, tripped in zip(rows["targets"], rows["mw_lost"], rows["customers_out"],
                                                       rows["cascade_depth"], rows["tripped"]):
        want = reference_row(system, outages_of(labels, system))
        assert lost == pytest.approx(want[0], abs=1e-6), labels
        assert customers == pytest.approx(want[1], abs=1e-3), labels
        assert (depth, tripped) == (want[2], want[3]), labels


def test_pairs_of_substations_equal_the_reference():
    system = three_sites()
    rows, acc = collect(system, SweepSettings(targets="substations", k=2))
    assert [tuple(t) for t in rows["targets"]] == [
        ("substation:S1", "substation:S2"), ("substation:S1", "substation:S3"), ("substation:S1", "substation:hub"),
        ("substation:S2", "substation:S3"), ("substation:S2", "substation:hub"), ("substation:S3", "substation:hub")]
    # Opening two feeder sites cuts their loads (10, 20, 30 MW); anything with the hub cuts all 60 MW.
    assert rows["mw_lost"] == pytest.approx([30, 40, 60, 50, 60, 60])
    summary = acc.summary()
    assert summary["most_harmful"][0]["element"] == "substation:hub"
    assert summary["mw_lost"]["max"] == 60


def test_monte_carlo_draws_are_reproducible_and_distinct():
    first = list(scenarios(20, 3, random=50, seed=4))
    assert first == list(scenarios(20, 3, random=50, seed=4))
    assert first != list(scenarios(20, 3, random=50, seed=5))
    assert all(len(set(s)) == 3 and list(s) == sorted(s) for s in first)
    with pytest.raises(InputError, match="k = 4 but there are only 3 candidates"):
        list(scenarios(3, 4))


def test_worker_processes_give_the_same_rows_in_the_same_order(monkeypatch):
    system = stock_system("case30")
    settings = SweepSettings(targets="branches", k=2, workers=1)
    alone, _ = collect(system, settings)
    monkeypatch.setattr(runner_module, "WORTH_WORKERS_S", 0.0)
    monkeypatch.setattr(runner_module, "CHUNK", 64)
    shared, acc = collect(system, SweepSettings(targets="branches", k=2, workers=2))
    assert acc.workers == 2
    assert shared == alone


#: What a sweep's worker process does: import the runner, unpickle the engine it is handed once, run on it.
WORKER = """
import pickle, sys
import gridsim.analysis.sweep.runner
print("pandapower" in sys.modules, "lightsim2grid" in sys.modules)
engine = pickle.load(sys.stdin.buffer)
result = engine.run_rows(engine.grid.line_branch[:2])
print("pandapower" in sys.modules, "lightsim2grid" in sys.modules, len(result.trips), float(result.served_mw.sum()))
"""


def test_a_worker_imports_and_runs_the_engine_it_is_handed_without_pandapower():
    engine = fast_engine(stock_system("case30")).for_system(None)  # what a DC sweep hands its workers
    expected = engine.run_rows(engine.grid.line_branch[:2])
    done = subprocess.run([sys.executable, "-c", WORKER], input=pickle.dumps(engine), capture_output=True, cwd=REPO)
    assert done.returncode == 0, done.stderr.decode()
    imported, ran = done.stdout.decode().splitlines()
    assert imported == "False False"  # importing the runner (as a spawned worker does) imports neither
    assert ran == f"False False {len(expected.trips)} {float(expected.served_mw.sum())}"  # nor does running


def test_ccdf_and_percentiles_follow_the_rows():
    rows, acc = collect(stock_system("case118"), SweepSettings(targets="branches", k=1))
    mw = np.array(rows["mw_lost"])
    summary = acc.summary()
    for point in summary["ccdf"]:
        assert point["probability"] == pytest.approx((mw >= point["mw"] - 1e-6).mean(), abs=1e-6)
    assert summary["mw_lost"]["max"] == pytest.approx(mw.max(), abs=1e-3)
    assert summary["scenarios_with_load_lost"] == int((mw > 1e-6).sum())
    means = [row["mean_mw_lost"] for row in summary["most_harmful"]]
    assert means == sorted(means, reverse=True)


def test_cli_writes_parts_summary_manifest_and_plot(tmp_path, in_process):
    done = in_process("sweep", "--system", "pandapower:case30", "--k", "2", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "sweep of pandapower:case30: 820 scenarios, every set of 2 branches" in done.stdout
    folder = tmp_path / "sweep_pandapower-case30_branches_k2"
    table = pq.read_table(folder / "parts")
    assert table.num_rows == 820 and table.column_names[:3] == ["scenario", "targets", "mw_lost"]
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["scenarios"] == 820 and summary["engine"] == "fast-dc"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["settings"]["k"] == 2 and "pyarrow" in manifest["versions"]
    assert (folder / "ccdf.png").stat().st_size > 1000
    assert not list(tmp_path.glob(".*partial"))


@pytest.mark.parametrize("args, message", [
    (["--system", "pandapower:case9", "--k", "10"], "--k 10: pandapower:case9 has only 9 branches"),
    (["--system", "pandapower:nosuchcase"], "nosuchcase"),
    (["--system", "pandapower:case2869pegase", "--k", "4"], "sample them with --random N"),
])
def test_cli_user_errors_are_one_line_with_status_2(tmp_path, args, message, in_process):
    done = in_process("sweep", *args, "--out", str(tmp_path))
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


# ----------------------------------------------------------------- issue 11: what a long sweep says, and when


@pytest.fixture
def cli_runner(monkeypatch):
    """Run ``gridsim`` in this process with click's CliRunner; the command's SIGTERM handler is undone after."""
    import signal

    from click.testing import CliRunner

    from gridsim.cli.main import cli

    saved = signal.getsignal(signal.SIGTERM)
    yield lambda *args: CliRunner().invoke(cli, list(args))
    signal.signal(signal.SIGTERM, saved)


class FakeClock:
    """A clock the test moves by hand: no test depends on how fast this machine is."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_durations_and_progress_lines_read_well():
    from gridsim.cli.sweep import format_duration, format_estimate, format_progress

    assert [format_duration(s) for s in (0.4, 45, 200, 7500, 3 * 86400 + 4 * 3600, float("inf"))] == [
        "under a second", "45 s", "3 min 20 s", "2 h 05 min", "3 d 4 h", "unknown"]
    assert format_progress(300, 1000, 20.0) == "  300 of 1,000 scenarios (30.0 %), 20 scenarios/s, ETA 35 s"
    assert format_progress(0, 1000, None) == "  0 of 1,000 scenarios (0.0 %), rate not measured yet"
    plan = SweepPlan(total=10_518_936, timed=256, seconds=0.5, workers=2)
    assert plan.estimate_s == pytest.approx(0.5 / 256 * (10_518_936 - 256) / 2)
    assert format_estimate(plan) == ("  estimate: about 2 h 51 min more with 2 workers "
                                     "(the first 256 scenarios ran at 512/s in this process)")
    quick = SweepPlan(total=3206, timed=256, seconds=0.03, workers=1)
    assert format_estimate(quick).startswith("  estimate: under a second more with 1 worker (")


def test_progress_off_a_terminal_is_plain_lines_every_5_percent_or_minute_not_within_10_s():
    from gridsim.cli.sweep import _progress

    clock, lines = FakeClock(), []
    progress = _progress(1000, clock=clock, tty=False, echo=lines.append)
    progress.plan(SweepPlan(total=1000, timed=100, seconds=2.0, workers=2))
    assert lines == ["  estimate: about 9 s more with 2 workers (the first 100 scenarios ran at 50/s in this process)"]
    lines.clear()

    def advance(to_s: float, done: int) -> None:
        clock.now = to_s
        progress(done - progress.done)

    advance(5, 150)  # 15 %, but only 5 s in: no line yet
    assert lines == []
    advance(10, 300)  # 10 s and a new 5 % step: a line; the rate counts from the first chunk on
    assert lines == ["  300 of 1,000 scenarios (30.0 %), 20 scenarios/s, ETA 35 s"]
    advance(15, 400)  # a new step, but 5 s after the last line
    advance(21, 420)  # a new step 11 s after: a line
    assert len(lines) == 2 and lines[1].startswith("  420 of 1,000 scenarios (42.0 %)")
    advance(40, 425)  # same step, 19 s: nothing
    advance(82, 430)  # same step, but a minute without a word: a line
    assert len(lines) == 3 and lines[2].startswith("  430 of 1,000 scenarios (43.0 %)")
    advance(200, 1000)  # the end: the summary follows, no 100 % line
    assert len(lines) == 3


def test_plan_comes_once_after_the_first_chunk_and_before_any_row(monkeypatch):
    monkeypatch.setattr(runner_module, "CHUNK", 64)
    events: list = []
    run_sweep(stock_system("case30"), SweepSettings(targets="branches", k=2),
              sink=lambda columns: events.append(len(columns["scenario"])), plan=events.append)
    assert isinstance(events[0], SweepPlan) and not any(isinstance(e, SweepPlan) for e in events[1:])
    assert (events[0].total, events[0].timed, events[0].workers) == (820, 64, 1)
    assert sum(events[1:]) == 820


def test_cli_says_the_count_before_the_work_and_an_estimate_after_the_first_chunk(cli_runner, tmp_path,
                                                                                   monkeypatch):
    monkeypatch.setattr(runner_module, "CHUNK", 64)
    done = cli_runner("sweep", "--system", "pandapower:case14", "--k", "2", "--no-plot", "--json",
                      "--out", str(tmp_path))
    assert done.exit_code == 0, done.output
    first, second = done.stderr.splitlines()[:2]
    assert first == "sweeping pandapower:case14: 190 scenarios, every set of 2 branches; estimate after the first chunk"
    assert second.startswith("  estimate: ") and " more with 1 worker (the first 64 scenarios ran at" in second
    summary = json.loads(done.stdout)  # the lines go to stderr: --json stays parseable
    assert summary["scenarios"] == 190


def test_summary_counts_the_ratings_gridsim_derived_and_prints_a_caveat(cli_runner, tmp_path):
    done = cli_runner("sweep", "--system", "pandapower:case14", "--no-plot", "--out", str(tmp_path))
    assert done.exit_code == 0, done.output
    assert ("  caveat                branch ratings: 20 of 20 derived from base-case flows ((1 + rating_margin) x "
            "flow; the grid data has none): the blackout sizes measure that rule, not the grid's protection"
            in done.stdout.splitlines())
    summary = json.loads((tmp_path / "sweep_pandapower-case14_branches_k1" / "summary.json").read_text())
    assert summary["ratings"] == {"branches": 20, "derived": 20, "raised": 0}

    rated = cli_runner("sweep", "--system", "pandapower:case9", "--no-plot", "--out", str(tmp_path))
    assert rated.exit_code == 0, rated.output
    assert "caveat" not in rated.stdout  # case9's ratings are all its own
    summary = json.loads((tmp_path / "sweep_pandapower-case9_branches_k1" / "summary.json").read_text())
    assert summary["ratings"] == {"branches": 9, "derived": 0, "raised": 0}


def test_format_ratings_names_raised_ratings_too():
    from gridsim.cli.sweep import format_ratings

    assert format_ratings({"branches": 41, "derived": 0, "raised": 0}) is None
    assert format_ratings({"branches": 41, "derived": 0, "raised": 3}) == (
        "  caveat                branch ratings: 3 of 41 raised to (1 + rating_margin) x base-case flow (the base "
        "case overloads them): the blackout sizes measure that rule, not the grid's protection")


def test_a_huge_random_is_refused_before_loading_with_the_limit_and_what_to_do(cli_runner, tmp_path, monkeypatch):
    import gridsim.loading as system_module

    def no_loading(*args, **kwargs):
        raise AssertionError("the system was loaded before --random was checked")

    monkeypatch.setattr(system_module, "load_system", no_loading)
    done = cli_runner("sweep", "--system", "pandapower:case9", "--targets", "branches",
                      "--random", "1000000000000", "--out", str(tmp_path / "out"))
    assert done.exit_code == 2
    message = done.stderr.strip()
    assert message == ("Error: --random 1,000,000,000,000: a sweep runs at most 100,000,000 scenarios; "
                       "draw fewer (--random 100000000 or less)")
    assert "Traceback" not in done.output and not any(tmp_path.iterdir())


def test_an_error_during_a_sweep_stops_the_workers_at_once(monkeypatch):
    monkeypatch.setattr(runner_module, "WORTH_WORKERS_S", 0.0)
    monkeypatch.setattr(runner_module, "CHUNK", 64)
    handed = []

    def failing_sink(columns):
        handed.append(columns)
        if len(handed) == 3:
            raise OSError("disk full")

    # The error is held, as it is while it propagates to the cleanup of the results folder: the workers must not
    # wait for it to be collected (nor for the chunks they are on) to stop.
    with pytest.raises(OSError, match="disk full") as raised:
        run_sweep(stock_system("case30"), SweepSettings(targets="branches", k=2, workers=2), sink=failing_sink)
    deadline = time.monotonic() + 10.0  # the workers get SIGTERM; they only have to die of it
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not multiprocessing.active_children()
    assert raised.value.args == ("disk full",)


class ThreadProbe:
    """An evaluator that reports the BLAS thread limit its worker started with (picklable: module level).

    Each chunk waits at a barrier of two, so two chunks run at once in two workers: every worker the pool
    starts is seen, with no sleep and no timing.
    """

    def __init__(self, barrier) -> None:
        self.barrier = barrier

    def portable(self) -> ThreadProbe:
        return self

    def evaluate(self, chunk):
        import os

        self.barrier.wait(timeout=120)
        return {"threads": os.environ.get("OMP_NUM_THREADS"), "pid": os.getpid()}


def test_every_worker_starts_with_one_blas_thread_and_the_parent_environment_comes_back(monkeypatch):
    import os

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with multiprocessing.get_context("spawn").Manager() as manager:
        probe = ThreadProbe(manager.Barrier(2))
        rows = list(runner_module._in_workers(2, probe, [(i, [(i,)]) for i in range(6)]))
    assert {row["threads"] for row in rows} == {"1"}
    assert len({row["pid"] for row in rows}) == 2
    assert "OMP_NUM_THREADS" not in os.environ


@pytest.mark.parametrize("case, settings", [("case30", SweepSettings(targets="branches", k=2)),
                                            ("case118", SweepSettings(targets="branches", k=2, random=1500, seed=3)),
                                            ("case118", SweepSettings(targets="branches", k=1))],
                         ids=["case30-pairs", "case118-pairs", "case118-singles"])
def test_scenarios_settled_without_a_cascade_give_the_rows_their_cascades_give(case, settings, monkeypatch):
    system = stock_system(case)
    screened, _ = collect(system, settings)
    settled = []
    original = runner_module._Evaluator._decide_without_cascade
    monkeypatch.setattr(runner_module._Evaluator, "_decide_without_cascade",
                        lambda self, combos: settled.append(len(original(self, combos))) or {})
    cascaded, _ = collect(system, settings)
    assert sum(settled) > 0.5 * len(screened["scenario"])  # most were settled: the comparison is not empty
    assert screened == cascaded


def test_the_compiled_loop_gives_the_rows_of_the_python_loop(monkeypatch):
    pytest.importorskip("numba")
    system = stock_system("case118")
    settings = SweepSettings(targets="branches", k=3, random=1500, seed=5)
    assert runner_module.Sweep(system, settings).engine.kernel is not None  # the compiled loop runs the cascades
    compiled, _ = collect(system, settings)
    monkeypatch.setattr(runner_module.kernel, "AVAILABLE", False)
    assert runner_module.Sweep(system, settings).engine.kernel is None
    python, _ = collect(system, settings)
    assert sum(d > 0 for d in python["cascade_depth"]) > 50  # cascades, not only settled outages
    assert compiled == python
