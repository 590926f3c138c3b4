"""Time ``gridsim run attacks/ukraine-2015.yaml`` and show where the time goes.

Usage: python benchmarks/bench_run.py [--repeat 5]

Prints the median wall time of the whole command (a fresh process each time,
as a user runs it) and, in-process, of its parts: loading the system, the
simulation on the fast engine and on the reference engine (and within them
one power cascade, compared with one plain pandapower ``rundcpp`` of the same
grid), and writing the bundle.
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import median_time  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "gridsim", "run", "attacks/ukraine-2015.yaml", "--out", out]
        whole = median_time(lambda: subprocess.run(command, cwd=REPO, check=True, capture_output=True), args.repeat)

    import pandapower as pp

    from gridsim.loading import load_system
    from gridsim.power import cascade as cascade_module
    from gridsim.results.bundle import write_bundle
    from gridsim.scenario.schema import load_scenario
    from gridsim.sim.simulation import simulate

    plan = load_scenario(REPO / "attacks" / "ukraine-2015.yaml")
    load = median_time(lambda: load_system(plan.system), args.repeat)
    system = load_system(plan.system)

    from gridsim.power.fast import fast_engine

    fast_engine(system)  # compiled once per system, as gridsim run does while loading

    def timed(engine_function):
        calls = []

        def counted(*a, **kw):
            start = time.perf_counter()
            result = engine_function(*a, **kw)
            calls.append(time.perf_counter() - start)
            return result

        seconds = median_time(lambda: simulate(system, plan, cascade=counted), args.repeat)
        return seconds, len(calls) // args.repeat, statistics.median(calls)

    from gridsim.power.fast import run_fast_cascade

    sim_fast, n_fast, each_fast = timed(run_fast_cascade)
    sim_ref, cascades_per_run, cascade_each = timed(cascade_module.run_cascade)
    net = copy.deepcopy(system.net)
    rundcpp = median_time(lambda: pp.rundcpp(net), args.repeat * 4)
    result = simulate(system, plan)
    with tempfile.TemporaryDirectory() as out:
        bundle = median_time(lambda: write_bundle(result, out), args.repeat)

    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}, "
          f"pandapower {pp.__version__}; medians of {args.repeat} runs")
    print(f"{'work':<52} {'seconds':>9}")
    print(f"{'gridsim run attacks/ukraine-2015.yaml (process)':<52} {whole:>9.2f}")
    print(f"{'  load system (grid.json, tables, ratings)':<52} {load:>9.2f}")
    print(f"{'  simulate, fast engine (' + str(n_fast) + ' cascades)':<52} {sim_fast:>9.2f}")
    print(f"{'  simulate, reference engine (' + str(cascades_per_run) + ' cascades)':<52} {sim_ref:>9.2f}")
    print(f"{'    one fast cascade (median)':<52} {each_fast:>9.4f}")
    print(f"{'    one reference cascade (median)':<52} {cascade_each:>9.4f}")
    print(f"{'    one plain pandapower rundcpp, same grid':<52} {rundcpp:>9.4f}")
    print(f"{'  write bundle with timeline.png':<52} {bundle:>9.2f}")
    print(f"ratio one reference cascade / one fast cascade: {cascade_each / each_fast:.0f}x")


if __name__ == "__main__":
    main()
