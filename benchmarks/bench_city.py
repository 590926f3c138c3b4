"""Time ``gridsim run attacks/ieee118-city.yaml`` (grid + water + roads + telecom) and show where the time goes.

Usage: python benchmarks/bench_city.py [--repeat 3]

Prints the median wall time of the whole command (a fresh process each time,
as a user runs it) and, in-process, of its parts: loading the system, the
simulation, and within it the power cascades, the hydraulic runs (each a
24 h WNTR pressure-dependent simulation of Net3, compared with one plain
``WNTRSimulator`` run of the same network) and the traffic assignments; then
the same scenario with the water layer in graph mode, and on the reference
power engine.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import median_time  # noqa: E402


class Timed:
    """Wrap a module function and record the wall time of every call."""

    def __init__(self, module, name: str):
        self.module, self.name, self.original, self.calls = module, name, getattr(module, name), []
        setattr(module, name, self)

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        result = self.original(*args, **kwargs)
        self.calls.append(time.perf_counter() - start)
        return result

    def restore(self) -> None:
        setattr(self.module, self.name, self.original)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "gridsim", "run", "attacks/ieee118-city.yaml", "--out", out]
        whole = median_time(lambda: subprocess.run(command, cwd=REPO, check=True, capture_output=True), args.repeat)

    import pandapower as pp
    import wntr

    from gridsim.layers import transport, water
    from gridsim.loading import load_system
    from gridsim.power import fast as fast_module
    from gridsim.scenario.schema import load_scenario
    from gridsim.sim.simulation import simulate

    plan = load_scenario(REPO / "attacks" / "ieee118-city.yaml")
    load = median_time(lambda: load_system(plan.system), args.repeat)
    system = load_system(plan.system)

    cascades = Timed(fast_module, "run_fast_cascade")
    hydraulics = Timed(water, "simulate_service")
    assignments = Timed(transport, "assign")
    sim = median_time(lambda: simulate(system, plan, cascade=fast_module.run_fast_cascade), args.repeat)
    for timed in (cascades, hydraulics, assignments):
        timed.restore()
    per_run = {t.name: (len(t.calls) // args.repeat, sum(t.calls) / args.repeat) for t in
               (cascades, hydraulics, assignments)}
    reference = median_time(lambda: simulate(system, plan, engine="reference"), 1)

    model = system.layers.water.model
    wn = copy.deepcopy(model)
    wn.options.time.duration = 24 * 3600
    wn.options.time.hydraulic_timestep = wn.options.time.report_timestep = 900
    wn.options.hydraulic.demand_model = "PDD"

    def plain_run():
        wn.reset_initial_values()  # WNTR resumes a finished run otherwise
        wntr.sim.WNTRSimulator(wn).run_sim()

    plain_wntr = median_time(plain_run, args.repeat)

    graph_system = copy.copy(system)
    graph_system.layers = copy.copy(system.layers)
    graph_system.layers.water = dataclasses.replace(
        system.layers.water, settings=dataclasses.replace(system.layers.water.settings, mode="graph"))
    sim_graph = median_time(lambda: simulate(graph_system, plan), args.repeat)

    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}, "
          f"pandapower {pp.__version__}, wntr {wntr.__version__}; medians of {args.repeat} runs")
    print(f"{'work':<58} {'seconds':>9}")
    print(f"{'gridsim run attacks/ieee118-city.yaml (process)':<58} {whole:>9.2f}")
    print(f"{'  load system (case118, ratings, Net3, roads, tables)':<58} {load:>9.2f}")
    print(f"{'  simulate, hydraulic water':<58} {sim:>9.2f}")
    n, total = per_run["run_fast_cascade"]
    print(f"{f'    {n} power cascades, fast engine (incl. trial recloses)':<58} {total:>9.2f}")
    n, total = per_run["simulate_service"]
    print(f"{f'    {n} hydraulic runs, 24 h of Net3 each':<58} {total:>9.2f}")
    n, total = per_run["assign"]
    print(f"{f'    {n} traffic assignments':<58} {total:>9.3f}")
    print(f"{'    one plain WNTRSimulator run, Net3 24 h, for scale':<58} {plain_wntr:>9.2f}")
    print(f"{'  simulate, water in graph mode':<58} {sim_graph:>9.2f}")
    print(f"{'  simulate, hydraulic water, reference power engine':<58} {reference:>9.2f}")


if __name__ == "__main__":
    main()
