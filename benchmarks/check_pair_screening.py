"""Check the double-outage screen against cascades: every pair it settles must equal its cascade.

Usage: python benchmarks/check_pair_screening.py [--sample 100000] [--seed 0] [--cases case118,case2869pegase]
       [--all-up-to 300]

For every case, screens double branch outages (lines and transformers) with
:meth:`gridsim.power.fast.FastCascade.double_outages` and runs the cascade
(``run_rows``) of every pair it settles: no trip, depth 0, the load served
within 1e-6 MW (the cut loads at 0), the islands and the customers' share off
supply as the screen says. Cases with at most ``--all-up-to`` branches get
every pair; larger ones ``--sample`` seeded distinct random pairs. Prints
the counts (pairs, settled, pairs that split an island and how many of them
are settled), the screen's rate on one core and how long the full N-2 of the
case would take at these rates, and exits 1 on any difference (issue 13).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one core, as a sweep worker has
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402

from gridsim.loading import load_system  # noqa: E402
from gridsim.model.grid import quiet_pandapower  # noqa: E402
from gridsim.power.fast import fast_engine  # noqa: E402

CASES = ("case118", "case2869pegase")


def pairs_of(rows: np.ndarray, sample: int, all_up_to: int, rng: np.random.Generator) -> np.ndarray:
    """Every pair of ``rows`` (few rows), or ``sample`` distinct pairs drawn uniformly from them."""
    n = len(rows)
    if n <= all_up_to:
        i, j = np.triu_indices(n, k=1)
        return np.stack([rows[i], rows[j]], axis=1)
    total = n * (n - 1) // 2
    index = np.sort(rng.choice(total, size=min(sample, total), replace=False))
    # The index-th pair (i < j) in the order of np.triu_indices.
    start = np.concatenate([[0], np.cumsum(np.arange(n - 1, 0, -1))])
    i = np.searchsorted(start, index, side="right") - 1
    j = i + 1 + (index - start[i])
    return np.stack([rows[i], rows[j]], axis=1)


def same(engine, base, base_fraction, pair: np.ndarray, loads: np.ndarray, extra: int) -> bool:
    """Whether the cascade of ``pair`` is what the screen settled: nothing trips, ``loads`` cut, ``extra`` islands."""
    result = engine.run_rows(pair)
    served, fraction = base.served_mw.copy(), base_fraction.copy()
    served[loads] = 0.0
    fraction[loads] = 1.0
    return (not result.trips and result.depth == 0 and result.islands == base.islands + extra
            and np.allclose(result.served_mw, served, atol=1e-6, rtol=0)
            and np.allclose(result.out_fraction(), fraction, atol=1e-9, rtol=0))


def check_case(case: str, sample: int, all_up_to: int, seed: int) -> bool:
    """Screen the pairs of ``case`` and run the cascade of every settled pair; print one line; True if all agree."""
    system = load_system(f"pandapower:{case}")
    engine = fast_engine(system)
    grid = engine.grid
    rows = np.concatenate([grid.line_branch, grid.trafo_branch]).astype(np.int64)
    pairs = pairs_of(rows, sample, all_up_to, np.random.default_rng(seed))
    base = engine.run_rows(np.zeros(0, dtype=np.int64))
    start = time.perf_counter()
    screen = engine.pair_screen
    built = time.perf_counter() - start
    start = time.perf_counter()
    trivial, cut, extra = engine.double_outages(pairs)
    screened = time.perf_counter() - start
    splits = screen.splits(pairs) if screen is not None else np.zeros(len(pairs), dtype=bool)
    base_fraction = base.out_fraction()
    wrong, cascade_s = 0, 0.0
    for k in np.flatnonzero(trivial):
        start = time.perf_counter()
        ok = same(engine, base, base_fraction, pairs[k], cut[k], int(extra[k]))
        cascade_s += time.perf_counter() - start
        if not ok:
            wrong += 1
            print(f"  {case} pair {pairs[k].tolist()}: DIFFERENT from its cascade", file=sys.stderr)
    ordered_rate = None
    if len(rows) > all_up_to:  # the full N-2's own order (pairs of one branch with every later one) screens faster
        i, j = np.triu_indices(len(rows), k=1)
        ordered = np.stack([rows[i[:len(pairs)]], rows[j[:len(pairs)]]], axis=1)
        start = time.perf_counter()
        engine.double_outages(ordered)
        ordered_rate = len(ordered) / (time.perf_counter() - start)
    n, settled = len(pairs), int(trivial.sum())
    per_cascade = cascade_s / max(settled, 1)
    # What the pairs left to the cascade cost (a sample of them): the sweep's time beside the screen's.
    left = np.flatnonzero(~trivial)[:2000]
    start = time.perf_counter()
    for k in left:
        engine.run_rows(pairs[k])
    per_left = (time.perf_counter() - start) / max(len(left), 1)
    full = len(rows) * (len(rows) - 1) // 2
    estimate = full / (n / screened) + full * (1 - settled / n) * per_left
    kind = "all" if len(rows) <= all_up_to else f"{n} random"
    print(f"{case:<15} {kind} pairs of {len(rows)} branches: {settled} settled ({100 * settled / n:.1f} %), "
          f"{wrong} differ from their cascade; {int(splits.sum())} split an island "
          f"({100 * splits.mean():.1f} %), {int((trivial & splits).sum())} of them settled; "
          f"screen built in {built:.2f} s, {n / screened:,.0f} pairs/s"
          + (f" ({ordered_rate:,.0f}/s on as many pairs in the N-2's order)" if ordered_rate else "")
          + "; a cascade of a settled pair "
          f"{per_cascade * 1e3:.2f} ms, of one left {per_left * 1e3:.2f} ms; "
          f"full N-2 ({full:,} pairs) on one core: about {estimate / 60:.0f} min")
    return wrong == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=100_000)
    parser.add_argument("--all-up-to", type=int, default=300, help="cases with at most this many branches: all pairs")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    quiet_pandapower()
    ok = all([check_case(case, args.sample, args.all_up_to, args.seed) for case in args.cases.split(",")])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
