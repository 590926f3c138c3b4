"""The compiled DC cascade kernel against the fast engine's Python path, on the same seeded attacks.

Usage: python benchmarks/bench_kernel.py [--attacks 2000] [--repeat 3] [--cases case118 case2869pegase]

For each case: ``--attacks`` seeded random 3-line attacks (``rng =
np.random.default_rng(0)``, ``rows[rng.choice(len(rows), 3, replace=False)]``
over the lines' branch rows), run one after another in one process by

- ``FastCascade.run_rows(rows)``, the Python path (DC);
- ``DcKernel.run(rows)``, the kernel's outcome: what a sweep reads (served
  load, states, trips, depth, islands); a cascade it declines is not run
  further here, and is counted;
- the kernel standing in for ``run_rows``: its ``CascadeResult``, and for a
  cascade it declines the Python path from where the kernel stopped
  (``continued``), so that every attack gets its whole result.

Imports, loading the grid, compiling it, the kernel's numba compile and base
inverse, and the Python path's factorisation are outside the clock (one
untimed cascade each). Figures are microseconds per cascade, medians of
``--repeat`` runs; the results of the two are checked equal, untimed.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numba
import numpy as np

from gridsim.loading import load_system
from gridsim.power.fast import fast_engine
from gridsim.power.kernel import DcKernel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import median_time  # noqa: E402


def attacks_of(engine, count: int) -> list[np.ndarray]:
    """The issue's seeded random 3-line attacks, as branch rows."""
    rng = np.random.default_rng(0)
    rows = engine.grid.line_branch
    return [rows[rng.choice(len(rows), 3, replace=False)] for _ in range(count)]


def stand_in(engine, kernel: DcKernel, rows: np.ndarray):
    """``run_rows(rows)`` by the kernel, the Python path finishing what the kernel declines."""
    outcome = kernel.run(rows)
    if outcome.handled:
        return kernel.result(outcome)
    if outcome.resume_rows is None:
        return engine.run_rows(rows)
    return kernel.continued(outcome, engine.run_rows(outcome.resume_rows))


def same(a, b) -> bool:
    """Two results agree as tests/test_kernel.py holds them (trips, ratios, served load, states, islands)."""
    return ([(t.table, t.index, t.generation) for t in a.trips] == [(t.table, t.index, t.generation) for t in b.trips]
            and np.allclose([t.loading for t in a.trips], [t.loading for t in b.trips], rtol=1e-9, atol=0)
            and np.allclose(a.served_mw, b.served_mw, rtol=0, atol=1e-6)
            and list(a.load_state) == list(b.load_state) and a.depth == b.depth and a.islands == b.islands)


def bench(case: str, count: int, repeat: int) -> list[str]:
    """The rows of the table for one case."""
    engine = fast_engine(load_system(f"pandapower:{case}"))
    kernel = DcKernel.of(engine)
    attacks = attacks_of(engine, count)
    started = time.perf_counter()
    kernel.run(attacks[0])  # numba's compile (or its cache) and the base inverse, outside the clock
    prepared = time.perf_counter() - started
    engine.run_rows(attacks[0])  # the Python path's factorisation, outside the clock

    python = median_time(lambda: [engine.run_rows(rows) for rows in attacks], repeat) / count
    outcome = median_time(lambda: [kernel.run(rows) for rows in attacks], repeat) / count
    whole = median_time(lambda: [stand_in(engine, kernel, rows) for rows in attacks], repeat) / count

    outcomes = [kernel.run(rows) for rows in attacks]
    declined = sum(not o.handled for o in outcomes)
    part_way = sum(not o.handled and o.depth > 0 for o in outcomes)
    agree = sum(same(stand_in(engine, kernel, rows), engine.run_rows(rows)) for rows in attacks)
    g = engine.grid
    label = f"{case} ({g.n_bus} buses)"
    return [
        f"| {label} | `run_rows` (Python path) | {python * 1e6:,.0f} | 1.0x | |",
        f"| {label} | kernel outcome (a sweep's arrays) | {outcome * 1e6:,.1f} | {python / outcome:.1f}x | "
        f"declined {declined} of {count} ({100 * declined / count:.1f} %), {part_way} of them part-way |",
        f"| {label} | kernel as `run_rows` (`CascadeResult`, declines finished by Python) | {whole * 1e6:,.1f} | "
        f"{python / whole:.1f}x | agree {agree} of {count}; first call (compile or cache, base inverse) "
        f"{prepared:.1f} s |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attacks", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cases", nargs="+", default=["case118", "case2869pegase"])
    args = parser.parse_args()
    rows = [row for case in args.cases for row in bench(case, args.attacks, args.repeat)]
    print(f"{args.attacks} seeded random 3-line attacks per case, one process, medians of {args.repeat} runs; "
          f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"numpy {np.__version__}, numba {numba.__version__}\n")
    print("| case | what runs the cascade | µs per cascade | speed-up | notes |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
