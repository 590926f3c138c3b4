"""The sweep store: parts written whole, a killed sweep resumed to exactly the rows of an uninterrupted one,
another sweep's folder refused, one writer at a time, and the summary read back from the parts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from conftest import stock_system

from gridsim.analysis.sweep import SweepSettings, run_sweep
from gridsim.analysis.sweep.folder import resummarise, summarise_store, sweep_to_folder
from gridsim.errors import InputError
from gridsim.results import sweep as store_module
from gridsim.results.sweep import SweepStore, read_manifest

REPO = Path(__file__).resolve().parents[1]
PAIRS = SweepSettings(targets="branches", k=2)  # case30: 820 scenarios
FOLDER = "sweep_pandapower-case30_branches_k2"
#: Figures of a summary that depend on the run (its timing, what it found stored), not on the rows.
RUN_FIELDS = ("seconds", "load_seconds", "parts_resumed", "scenarios_run", "workers", "scheduler")


def part_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((folder / "parts").iterdir())}


def figures(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in RUN_FIELDS}


@pytest.fixture(scope="module")
def case30():
    return stock_system("case30")


@pytest.fixture(scope="module")
def whole(case30, tmp_path_factory):
    """An uninterrupted sweep of every branch pair of case30, in parts of 100 scenarios."""
    out = tmp_path_factory.mktemp("whole")
    summary, folder = sweep_to_folder(case30, PAIRS, out, part_size=100, plot=False)
    return summary, folder


def test_the_store_holds_every_row_once_in_order_equal_to_the_sweep_in_memory(case30, whole):
    summary, folder = whole
    rows: dict[str, list] = {}
    accumulator = run_sweep(case30, PAIRS, sink=lambda c: [rows.setdefault(k, []).extend(v) for k, v in c.items()])
    table = ds.dataset(folder / "parts").to_table()
    assert table.num_rows == 820 and table["scenario"].to_pylist() == list(range(820))
    assert table.to_pydict() == rows
    assert sorted(part_bytes(folder)) == [f"part-{i:06d}.parquet" for i in range(9)]
    assert figures(summary) == figures({**accumulator.summary(), "parts": 9, "parts_done": 9})
    manifest = read_manifest(folder)
    assert manifest["scenarios"] == 820 and manifest["part_size"] == 100 and len(manifest["parts"]) == 9
    assert manifest["system_spec"] == "pandapower:case30" and len(manifest["labels"]) == 41
    assert json.loads((folder / "summary.json").read_text())["scenarios"] == 820


class Crash(Exception):
    """Stands for the process dying between two parts."""


@pytest.mark.parametrize("crash_at", [0, 1, 4, 8])
def test_a_sweep_stopped_after_any_part_resumes_to_the_same_bytes(case30, whole, tmp_path, monkeypatch, crash_at):
    written: list[int] = []
    original = SweepStore.write_part

    def dies(self, index, table):
        if len(written) == crash_at:
            # Half a part on disk under its temporary name, as a kill during the write leaves it.
            (self.parts_dir / f".part-{index:06d}.parquet.99999.tmp").write_bytes(b"PAR1 half a part")
            raise Crash
        written.append(index)
        original(self, index, table)

    monkeypatch.setattr(SweepStore, "write_part", dies)
    with pytest.raises(Crash):
        sweep_to_folder(case30, PAIRS, tmp_path, part_size=100, plot=False)
    folder = tmp_path / FOLDER
    assert len(list((folder / "parts").glob("part-*.parquet"))) == crash_at
    monkeypatch.setattr(SweepStore, "write_part", original)
    summary, again = sweep_to_folder(case30, PAIRS, tmp_path, part_size=100, plot=False)
    assert again == folder and summary["parts_resumed"] == crash_at
    assert summary["scenarios_run"] == 820 - 100 * crash_at
    assert part_bytes(folder) == part_bytes(whole[1])  # none lost, none twice, no temporary file left
    assert figures(summary) == figures(whole[0])


KILLED_ARGS = ["sweep", "--system", "pandapower:case118", "--k", "3", "--random", "20000", "--seed", "7",
               "--part-size", "256", "--workers", "1", "--no-plot"]
KILLED_FOLDER = "sweep_pandapower-case118_branches_k3_mc20000_seed7"


@pytest.fixture(scope="module")
def whole_case118(tmp_path_factory):
    """The parts of the sweep the kill tests interrupt, run without interruption."""
    from click.testing import CliRunner

    from gridsim.cli.main import cli

    out = tmp_path_factory.mktemp("whole118")
    saved = signal.getsignal(signal.SIGTERM)
    try:
        done = CliRunner().invoke(cli, [*KILLED_ARGS, "--out", str(out)])
    finally:
        signal.signal(signal.SIGTERM, saved)
    assert done.exit_code == 0, done.output
    return part_bytes(out / KILLED_FOLDER)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_sweep_killed_resumes_to_the_rows_of_an_uninterrupted_one(tmp_path, in_process, whole_case118, sig):
    """A real ``gridsim sweep`` process, killed once it has stored a part, then run again."""
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "gridsim", *KILLED_ARGS, "--out", str(killed)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    folder = killed / KILLED_FOLDER
    try:
        deadline = time.monotonic() + 300
        while not (folder / "parts" / "part-000001.parquet").exists():  # the second part: the sweep is under way
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.kill(proc.pid, sig)
        stderr = proc.communicate(timeout=60)[1].decode()
    finally:
        proc.kill()
    kept = len(list((folder / "parts").glob("part-*.parquet")))
    assert 2 <= kept < 79  # 20,000 scenarios are 79 parts: it was stopped with parts to go
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:  # stopped cleanly: it says what it kept and how to go on
        assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in stderr, stderr
        assert stderr.splitlines()[-1] == (f"interrupted: {kept} of 79 parts are kept in {folder}; run the same "
                                           f"command again, or gridsim sweep --resume {folder}, to run the rest")

    resumed = in_process(*KILLED_ARGS, "--out", str(killed))  # the kernel let go of the dead process's lock
    assert resumed.returncode == 0, resumed.stderr
    assert f"{kept} of 79 parts done" in resumed.stderr
    assert part_bytes(folder) == whole_case118
    assert not list(folder.rglob("*.tmp"))


def test_a_folder_holding_another_sweep_is_refused_and_left_as_it_was(case30, whole, tmp_path):
    folder = tmp_path / "store"
    sweep_to_folder(case30, PAIRS, tmp_path, part_size=100, plot=False, folder=folder)
    before = part_bytes(folder)
    with pytest.raises(InputError, match="begun with --part-size 100"):
        sweep_to_folder(case30, PAIRS, tmp_path, part_size=50, folder=folder)
    with pytest.raises(InputError, match="of another system"):
        sweep_to_folder(stock_system("case14"), PAIRS, tmp_path, part_size=100, folder=folder)
    with pytest.raises(InputError, match="of other settings"):
        sweep_to_folder(case30, SweepSettings(targets="branches", k=2, random=820), tmp_path, part_size=100,
                        folder=folder)
    assert part_bytes(folder) == before

    legacy = tmp_path / "legacy"  # what gridsim wrote before the store: one scenarios.parquet
    legacy.mkdir()
    (legacy / "scenarios.parquet").write_bytes(b"PAR1")
    with pytest.raises(InputError, match="not a gridsim sweep store"):
        sweep_to_folder(case30, PAIRS, tmp_path, folder=legacy)
    assert sorted(p.name for p in legacy.iterdir()) == ["scenarios.parquet"]  # untouched


def test_a_part_that_is_not_this_sweeps_is_run_again(case30, whole, tmp_path):
    folder = tmp_path / FOLDER
    sweep_to_folder(case30, PAIRS, tmp_path, part_size=100, plot=False)
    (folder / "parts" / "part-000003.parquet").write_bytes(b"not parquet")  # damaged
    other = pq.read_table(folder / "parts" / "part-000005.parquet").replace_schema_metadata({})
    pq.write_table(other, folder / "parts" / "part-000005.parquet")  # unstamped: whose is it?
    summary, _ = sweep_to_folder(case30, PAIRS, tmp_path, part_size=100, plot=False)
    assert summary["parts_resumed"] == 7
    assert part_bytes(folder) == part_bytes(whole[1])


def test_a_second_sweep_into_a_folder_being_written_is_refused_in_one_line(case30, tmp_path, in_process):
    folder = tmp_path / FOLDER
    manifest = {"format": store_module.FORMAT, "parts": []}
    with SweepStore.open(folder, manifest):  # a sweep writing here (this process holds the lock)
        done = in_process("sweep", "--system", "pandapower:case30", "--k", "2", "--out", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"Error: {folder}: another gridsim sweep is writing here (pid {os.getpid()}); wait for it to finish, "
        "or choose another --out"]
    assert sorted(p.name for p in folder.iterdir()) == [".lock", "manifest.json", "parts"]


def test_resume_reads_system_and_settings_from_the_manifest(case30, tmp_path, in_process, monkeypatch):
    written: list[int] = []
    original = SweepStore.write_part

    def three_then_die(self, index, table):
        if len(written) == 3:
            raise Crash
        written.append(index)
        original(self, index, table)

    monkeypatch.setattr(SweepStore, "write_part", three_then_die)
    with pytest.raises(Crash):
        sweep_to_folder(case30, PAIRS, tmp_path, part_size=100, plot=False, spec="pandapower:case30")
    monkeypatch.setattr(SweepStore, "write_part", original)
    folder = tmp_path / FOLDER

    partial = in_process("sweep-summary", str(folder), "--no-plot")
    assert partial.returncode == 0, partial.stderr
    assert "  partial               3 of 9 parts stored: the figures cover their 300 scenarios only" in partial.stdout

    refused = in_process("sweep", "--resume", str(folder), "--k", "3", "--system", "pandapower:case9")
    assert refused.returncode == 2
    assert "drop --system, --k" in refused.stderr

    done = in_process("sweep", "--resume", str(folder), "--no-plot", "--json")
    assert done.returncode == 0, done.stderr
    assert "resuming " in done.stderr and "3 of 9 parts done, 520 scenarios left" in done.stderr
    summary = json.loads(done.stdout)
    assert (summary["scenarios"], summary["parts_resumed"], summary["scenarios_run"]) == (820, 3, 520)


def test_sweep_summary_recomputes_the_summary_from_the_parts(whole, tmp_path, in_process):
    summary, folder = whole
    (folder / "summary.json").unlink()
    done = in_process("sweep-summary", str(folder), "--json")
    assert done.returncode == 0, done.stderr
    again = json.loads(done.stdout)
    assert again.pop("folder") == str(folder)
    assert figures(again) == figures(summary) and "partial" not in done.stdout
    assert json.loads((folder / "summary.json").read_text()) == again
    assert (folder / "ccdf.png").stat().st_size > 1000
    assert summarise_store(folder).summary()["mw_lost"] == summary["mw_lost"]

    nothing = in_process("sweep-summary", str(tmp_path))
    assert nothing.returncode == 2 and "is not a sweep folder (no manifest.json)" in nothing.stderr
    with pytest.raises(InputError):
        resummarise(tmp_path)


def test_the_summary_is_the_same_bytes_whatever_the_parts_size(case30, whole, tmp_path):
    """Sums are added row by row in scenario order: the split into parts does not change a figure."""
    summary, _ = sweep_to_folder(case30, PAIRS, tmp_path, part_size=7, plot=False)
    layout = ("parts", "parts_done")
    assert {k: v for k, v in figures(summary).items() if k not in layout} == {
        k: v for k, v in figures(whole[0]).items() if k not in layout}
    tables = [pq.read_table(p) for p in sorted((tmp_path / FOLDER / "parts").iterdir())]
    assert pa.concat_tables(tables).to_pydict() == ds.dataset(whole[1] / "parts").to_table().to_pydict()


def test_what_the_review_found_a_store_must_refuse_or_ignore(case30, whole, tmp_path, in_process):
    folder = tmp_path / FOLDER
    sweep_to_folder(case30, PAIRS, tmp_path, part_size=100, plot=False)
    parts = folder / "parts"
    (parts / "part-000005.parquet").write_bytes((parts / "part-000001.parquet").read_bytes())  # another part's rows
    summary = resummarise(folder, plot=False)
    assert (summary["parts_done"], summary["scenarios"]) == (8, 720)  # read only the parts that are this part

    # An exhaustive sweep draws nothing: its seed is no part of what it is.
    again, _ = sweep_to_folder(case30, SweepSettings(targets="branches", k=2, seed=9), tmp_path, part_size=100,
                               plot=False)
    assert again["parts_resumed"] == 8 and again["scenarios"] == 820

    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["loop"] = "another loop"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="computed by another cascade loop"):
        sweep_to_folder(case30, PAIRS, tmp_path, part_size=100)

    many = in_process("sweep", "--system", "pandapower:case30", "--k", "4", "--part-size", "1", "--out",
                      str(tmp_path / "many"))
    assert many.returncode == 2 and not (tmp_path / "many").exists()
    assert "--part-size: 1 makes 101,270 parts of 101,270 scenarios, more than 100,000" in many.stderr
    out = in_process("sweep", "--resume", str(folder), "--out", str(tmp_path))
    assert out.returncode == 2 and "drop --out" in out.stderr
