"""The fast cascade engine against the reference engine and lightsim2grid, side by side in one run.

Usage: python benchmarks/bench_fast.py [--repeat 3] [--sample 0.1]

Prints a Markdown table of the issue's targets:

- one DC cascade (case118, case2869pegase): seeded random attacks of 1-5
  branches, mean seconds per attack on each engine;
- every single-branch attack with its full cascade (DC): ``run_sweep`` (one
  process, and all cores) against a loop of the reference engine (every
  branch of case118; a seeded sample of case2869pegase's branches, scaled to
  all of them: the full loop takes minutes) and against lightsim2grid's DC
  contingency analysis (plain N-1, no cascade, its C++ ``ContingencyAnalysisCPP``);
- one AC cascade on case2869pegase against the reference (``pandapower.runpp``);
- peak memory of the case2869pegase N-1 sweep, in a fresh process.

Timings are medians of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings

import lightsim2grid
import numpy as np
import pandapower as pp
import pandapower.networks as pn
from lightsim2grid.algorithm import AlgorithmType
from lightsim2grid.lightsim2grid_cpp import ContingencyAnalysisCPP
from lightsim2grid.network import init_from_pandapower

from gridsim.analysis.sweep import SweepSettings, candidates, run_sweep, runner
from gridsim.loading import load_system
from gridsim.model.grid import quiet_pandapower
from gridsim.power import powerflow
from gridsim.power.cascade import run_cascade
from gridsim.power.contract import Outages
from gridsim.power.fast import fast_engine

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import median_time, peak_memory_gib  # noqa: E402

RESULTS: list[tuple[str, str, float, float, str]] = []



def attacks(system, n: int, seed: int = 0) -> list[Outages]:
    """``n`` seeded attacks of 1-5 lines each."""
    rng = np.random.default_rng(seed)
    lines = system.net.line.index.to_numpy()
    return [Outages(lines=frozenset(int(i) for i in rng.choice(lines, size=int(rng.integers(1, 6)), replace=False)))
            for _ in range(n)]


def one_cascade(case: str, n_fast: int, n_ref: int, repeat: int, flow: str = "dc") -> None:
    """Mean seconds of one cascade on each engine, on the same random attacks."""
    system = load_system(f"pandapower:{case}")
    engine = fast_engine(system)
    sample = attacks(system, n_ref)  # the same attacks on both engines; the fast one runs them n_fast / n_ref times
    engine.run(sample[0], flow=flow)  # compile and factorise outside the clock
    rounds = max(1, n_fast // n_ref)
    fast = median_time(lambda: [engine.run(o, flow=flow) for _ in range(rounds) for o in sample], repeat)
    fast /= rounds * n_ref
    ref = median_time(lambda: [run_cascade(system, o, flow=flow) for o in sample], max(1, repeat // 2)) / n_ref
    RESULTS.append((f"one {flow.upper()} cascade, {case} (mean of {n_ref} random 1-5 branch attacks)",
                    "reference engine", fast, ref, f"{ref / fast:.0f}x faster"))


def n1_sweep(case: str, sample: float, repeat: int) -> None:
    """Every single-branch attack with its cascade: the sweep, a loop of the reference, lightsim2grid's N-1."""
    system = load_system(f"pandapower:{case}")
    cands = candidates(system, fast_engine(system).grid, "branches")
    one = median_time(lambda: run_sweep(system, SweepSettings(k=1, workers=1)), repeat)
    rng = np.random.default_rng(0)
    picked = cands if sample >= 1 else [cands[i] for i in
                                        rng.choice(len(cands), size=max(1, int(sample * len(cands))), replace=False)]
    start = time.perf_counter()
    for cand in picked:
        run_cascade(system, cand.outages)
    loop = (time.perf_counter() - start) * len(cands) / len(picked)
    how = "every branch" if len(picked) == len(cands) else f"{len(picked)} branches, scaled to {len(cands)}"
    RESULTS.append((f"every single-branch attack + cascade (DC), {case}, one process",
                    f"loop of the reference ({how})", one, loop, f"{loop / one:.0f}x faster"))
    ls2g = lightsim_n1(case, repeat)
    RESULTS.append(("... the same, one process, against plain N-1 (no cascade)",
                    "lightsim2grid DC contingency analysis", one, ls2g, f"{one / ls2g:.2f}x its time"))


def parallel_sweep(case: str, n: int, repeat: int) -> None:
    """A Monte Carlo sweep in one process and in one worker per core (workers forced on)."""
    system = load_system(f"pandapower:{case}")
    settings = SweepSettings(k=2, random=n, seed=1)
    alone = median_time(lambda: run_sweep(system, settings), max(1, repeat // 2))
    cores = os.cpu_count() or 1
    runner.WORTH_WORKERS_S = 0.0
    shared = median_time(lambda: run_sweep(system, SweepSettings(k=2, random=n, seed=1, workers=cores)),
                         max(1, repeat // 2))
    RESULTS.append((f"{n:,} random 2-branch attacks + cascades (DC), {case}, {cores} worker processes",
                    "the same in one process", shared, alone, f"{alone / shared:.2f}x faster"))


def lightsim_n1(case: str, repeat: int) -> float:
    """Seconds of lightsim2grid's DC contingency analysis of every single branch (no cascade)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = init_from_pandapower(getattr(pn, case)())
    model.change_algorithm(AlgorithmType.DC_KLU)
    v_dc = model.dc_pf(np.ones(model.total_bus(), dtype=complex), 10, 1e-8)

    def run() -> None:
        analysis = ContingencyAnalysisCPP(model)
        analysis.change_algorithm(AlgorithmType.DC_KLU)
        analysis.add_all_n1()
        analysis.compute(v_dc, 10, 1e-8)
        analysis.compute_flows()

    return median_time(run, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sample", type=float, default=0.1,
                        help="share of case2869pegase's branches the reference loop runs (scaled to all)")
    args = parser.parse_args()
    quiet_pandapower()
    one_cascade("case118", 500, 100, args.repeat)
    one_cascade("case2869pegase", 200, 40, args.repeat)
    n1_sweep("case118", 1.0, args.repeat)
    n1_sweep("case2869pegase", args.sample, args.repeat)
    one_cascade("case2869pegase", 20, 10, max(1, args.repeat // 2), flow="ac")
    powerflow.RUNPP_OPTIONS["lightsim2grid"] = "auto"  # pandapower picks lightsim2grid where it can
    one_cascade("case2869pegase", 20, 10, max(1, args.repeat // 2), flow="ac")
    RESULTS[-1] = (RESULTS[-1][0] + ", pandapower with its lightsim2grid backend", *RESULTS[-1][1:])
    powerflow.RUNPP_OPTIONS["lightsim2grid"] = False
    parallel_sweep("case2869pegase", 20_000, args.repeat)
    memory = peak_memory_gib("pandapower:case2869pegase")

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, "
          f"pandapower {pp.__version__}, lightsim2grid {lightsim2grid.__version__}; medians of {args.repeat} runs")
    print()
    print("| work | compared with | gridsim (s) | other (s) | ratio |")
    print("|---|---|---|---|---|")
    for work, other, ours, theirs, ratio in RESULTS:
        print(f"| {work} | {other} | {ours:.4g} | {theirs:.4g} | {ratio} |")
    print(f"| peak memory, case2869pegase N-1 sweep (one process) | | {memory:.2f} GiB | | |")


if __name__ == "__main__":
    main()
