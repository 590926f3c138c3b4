"""Timing helpers shared by the benchmark scripts (imported as ``_timing`` when a script runs)."""

from __future__ import annotations

import statistics
import time


def median_time(func, repeat: int) -> float:
    """Median wall time of ``func()`` over ``repeat`` calls, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
