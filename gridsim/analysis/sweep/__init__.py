"""Many attacks on one system: exhaustive N-k or Monte Carlo sweeps, streamed to Parquet."""

from gridsim.analysis.sweep.runner import COLUMNS, SweepSettings, run_sweep
from gridsim.analysis.sweep.scenarios import TARGETS, Candidate, candidates, count_scenarios, scenarios
from gridsim.analysis.sweep.summary import Accumulator

__all__ = ["COLUMNS", "TARGETS", "Accumulator", "Candidate", "SweepSettings", "candidates", "count_scenarios",
           "run_sweep", "scenarios"]
