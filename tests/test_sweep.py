"""Sweeps: every row equals a reference cascade of its scenario; files, order and seeds are reproducible."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import stock_system, three_sites
from test_fast_engine import shifter_grid

from gridsim.engine.cascade import LOAD_ISLAND, Outages, run_cascade
from gridsim.errors import InputError
from gridsim.sweep import SweepSettings, run_sweep, scenarios
from gridsim.sweep import runner as runner_module

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
    monkeypatch.setattr(runner_module, "_WORTH_WORKERS_S", 0.0)
    monkeypatch.setattr(runner_module, "CHUNK", 64)
    shared, acc = collect(system, SweepSettings(targets="branches", k=2, workers=2))
    assert acc.workers == 2
    assert shared == alone


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


def gridsim(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gridsim", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_writes_parquet_summary_manifest_and_plot(tmp_path):
    done = gridsim("sweep", "--system", "pandapower:case30", "--k", "2", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "sweep of pandapower:case30: 820 scenarios, every set of 2 branches" in done.stdout
    folder = tmp_path / "sweep_pandapower-case30_branches_k2"
    table = pq.read_table(folder / "scenarios.parquet")
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
def test_cli_user_errors_are_one_line_with_status_2(tmp_path, args, message):
    done = gridsim("sweep", *args, "--out", str(tmp_path))
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())
