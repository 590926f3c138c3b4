"""Timing helpers shared by the benchmark scripts (imported as ``_timing`` when a script runs)."""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import time


def median_time(func, repeat: int) -> float:
    """Median wall time of ``func()`` over ``repeat`` calls, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_memory_gib(spec: str) -> float:
    """Peak resident memory (GiB) of an N-1 sweep of the system ``spec`` in a fresh process."""
    code = ("from gridsim.loading import load_system; from gridsim.analysis.sweep import SweepSettings, run_sweep; "
            f"run_sweep(load_system({spec!r}), SweepSettings(k=1, workers=1))")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # kB -> GiB

