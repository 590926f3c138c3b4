"""A sweep written to its folder: the runner's rows streamed to Parquet, then the summary, manifest and plot.

The command line calls :func:`sweep_to_folder` and prints what it returns;
the library can call it the same way. The folder appears whole or not at all
(:func:`gridsim.results.staging.staged_folder`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gridsim.analysis.sweep.runner import SweepSettings, run_sweep
from gridsim.model.system import System
from gridsim.report.plots import plot_ccdf
from gridsim.results.files import write_json
from gridsim.results.staging import staged_folder
from gridsim.results.sweep import ParquetSink, sweep_folder_name, sweep_manifest

__all__ = ["sweep_to_folder"]


def sweep_to_folder(system: System, settings: SweepSettings, out_dir: str | Path, *,
                    progress: Callable[[int], None] | None = None, plan: Callable[[Any], None] | None = None,
                    plot: bool = True, command: list[str] | None = None,
                    load_seconds: float = 0.0) -> tuple[dict[str, Any], Path]:
    """Run a sweep into ``out_dir/<sweep folder>``; return its summary and the folder.

    Parameters
    ----------
    system : System
        The system attacked.
    settings : SweepSettings
        What each scenario takes out, how many, how they are drawn, the engine.
    out_dir : str or Path
        Folder that receives the sweep's folder (named by
        :func:`~gridsim.results.sweep.sweep_folder_name`).
    progress, plan : callable, optional
        Handed to :func:`~gridsim.analysis.sweep.runner.run_sweep`: called with
        each chunk's scenario count, and once with the timed first chunk.
    plot : bool
        Whether to draw ``ccdf.png``.
    command : list of str, optional
        The command line the manifest records (default ``sys.argv``).
    load_seconds : float
        Time spent loading the system, recorded in the summary.

    Returns
    -------
    summary : dict
        What ``summary.json`` holds: the blackout-size distribution, the CCDF,
        the most harmful elements, the settings and timings.
    folder : Path
        The sweep's folder.
    """
    started = time.perf_counter()
    with staged_folder(out_dir, sweep_folder_name(system.name, settings)) as stage:
        with ParquetSink(stage.path / "scenarios.parquet") as sink:
            accumulator = run_sweep(system, settings, sink=sink, progress=progress, plan=plan)
        summary = accumulator.summary()
        summary["seconds"] = round(time.perf_counter() - started, 3)
        summary["load_seconds"] = round(load_seconds, 3)
        write_json(stage.path / "summary.json", summary)
        write_json(stage.path / "manifest.json", sweep_manifest(system, settings, command))
        if plot:
            plot_ccdf(accumulator, stage.path / "ccdf.png")
    return summary, stage.final
