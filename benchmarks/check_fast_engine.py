"""Check the fast DC cascade against the reference engine on the stock cases, large ones included.

Usage: python benchmarks/check_fast_engine.py [--attacks 1000] [--cases case9,case30,...] [--seed 0]

For every case, draws seeded random attacks, half of them 1-5 branches tripped
and half 1-5 substations (every branch at 1-5 buses opened: these split the
grid and leave islands without a source), runs both engines and compares the
branches tripped (with their generation) and the load served (within
1e-6 MW). Also checks every single-branch outage the sweep decides without a
cascade against a cascade. Prints one line per case and exits 1 on any
difference. The test suite keeps the same check on the small cases.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from gridsim.loading import load_system
from gridsim.model.grid import quiet_pandapower
from gridsim.power.cascade import run_cascade
from gridsim.power.contract import Outages
from gridsim.power.fast import fast_engine

CASES = ("case9", "case30", "case118", "case300", "case1354pegase", "case2869pegase")


def attack(net, rng: np.random.Generator) -> Outages:
    """1-5 branches tripped, or (half the time) every branch at 1-5 buses opened."""
    k = int(rng.integers(1, 6))
    if rng.random() < 0.5:
        branches = [("line", int(i)) for i in net.line.index] + [("trafo", int(i)) for i in net.trafo.index]
        picked = [branches[i] for i in rng.choice(len(branches), size=min(k, len(branches)), replace=False)]
        return Outages(lines=frozenset(i for t, i in picked if t == "line"),
                       trafos=frozenset(i for t, i in picked if t == "trafo"))
    buses = rng.choice(net.bus.index, size=k, replace=False)
    lines = net.line.index[net.line.from_bus.isin(buses) | net.line.to_bus.isin(buses)]
    trafos = net.trafo.index[net.trafo.hv_bus.isin(buses) | net.trafo.lv_bus.isin(buses)]
    return Outages(lines=frozenset(map(int, lines)), trafos=frozenset(map(int, trafos)))


def check_case(case: str, attacks: int, seed: int) -> bool:
    """Both engines on ``attacks`` seeded attacks of ``case``, and the single outages settled without a cascade."""
    system = load_system(f"pandapower:{case}")
    engine = fast_engine(system)
    rng = np.random.default_rng(seed)
    bad, split, dead, slow, fast = 0, 0, 0, 0.0, 0.0
    for n in range(attacks):
        outages = attack(system.net, rng)
        start = time.perf_counter()
        ref = run_cascade(system, outages)
        slow += time.perf_counter() - start
        start = time.perf_counter()
        got = engine.run(outages)
        fast += time.perf_counter() - start
        split += ref.islands > 1
        dead += bool((ref.load_state == "island").any())
        same = ([(t.table, t.index, t.generation) for t in got.trips] == [(t.table, t.index, t.generation)
                                                                           for t in ref.trips]
                and np.allclose(got.served_mw, ref.served_mw, atol=1e-6, rtol=0))
        if not same:
            bad += 1
            print(f"  {case} attack {n}: DIFFERENT ({outages})", file=sys.stderr)
    # Single-branch outages the sweep settles without a cascade.
    grid = engine.grid
    rows = np.concatenate([grid.line_branch, grid.trafo_branch])
    trivial, cut = engine.single_outages(rows)
    base = engine.run(Outages())
    wrong = 0
    for row, ok, loads in zip(rows, trivial, cut):
        if ok:
            expect = base.served_mw.copy()
            expect[loads] = 0.0
            got = engine.run_rows(np.array([row]))
            wrong += not (got.depth == 0 and np.allclose(got.served_mw, expect, atol=1e-6, rtol=0))
    print(f"{case:<16} {attacks} attacks ({split} split the grid, {dead} left islands without a source): "
          f"{bad} differ; {int(trivial.sum())}/{len(rows)} single outages settled without a cascade, "
          f"{wrong} wrong; reference {slow / attacks * 1e3:.1f} ms, fast {fast / attacks * 1e3:.2f} ms per attack")
    return bad == 0 and wrong == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attacks", type=int, default=1000)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    quiet_pandapower()
    ok = all([check_case(case, args.attacks, args.seed) for case in args.cases.split(",")])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
