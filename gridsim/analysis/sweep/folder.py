"""A sweep run into its store: the parts a store lacks run and are written, then the summary of all parts.

The command line calls :func:`sweep_to_folder` and prints what it returns;
the library can call it the same way. Running into a folder that holds the
same sweep (same system fingerprint, settings, gridsim) resumes it: only the
parts not there yet run. The store's layout and guarantees are those of
:mod:`gridsim.results.sweep`; the summary is always computed from the stored
parts (:func:`summarise_store`), a part at a time, so a resumed sweep and an
uninterrupted one give the same summary.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from gridsim.analysis.sweep.runner import Sweep, SweepSettings
from gridsim.analysis.sweep.summary import Accumulator
from gridsim.errors import InputError
from gridsim.model.system import System
from gridsim.report.plots import plot_ccdf
from gridsim.results.files import write_json
from gridsim.results.staging import check_writable
from gridsim.results.sweep import (
    SweepStore,
    fingerprint,
    read_manifest,
    rows_table,
    sweep_folder_name,
    sweep_manifest,
    write_atomically,
)

#: Most parts a store is cut into (each is a file and a line of the manifest).
MAX_PARTS = 100_000

__all__ = ["MAX_PARTS", "StoreRun", "default_part_size", "resummarise", "summarise_store", "sweep_to_folder"]


def default_part_size(settings: SweepSettings, total: int) -> int:
    """Scenarios per stored part: a sixty-fourth of the sweep, in whole chunks, within a bound set by the engine.

    A kill loses at most the parts in flight, so parts should be small next
    to the sweep (at least 64 of them, where a part holds more than one
    chunk of 256) and small in seconds: at most 16,384 scenarios on the fast
    DC engine (seconds to a minute of work), 1,024 on its AC flow and 256 on
    the reference engine (tens of scenarios a second). It depends on the
    sweep only, never on this machine's speed, so the same command gives the
    same parts anywhere.
    """
    bound = 16_384 if settings.engine == "fast" and settings.flow == "dc" else 1_024 if settings.engine == "fast" \
        else 256
    share = -(-max(total, 1) // 64)
    return min(bound, -(-share // 256) * 256)


@dataclass(frozen=True)
class StoreRun:
    """What one call of :func:`sweep_to_folder` found and did: parts already there, parts run."""

    folder: Path
    parts: int
    already: int  # parts found done when it started
    scenarios_left: int  # scenarios it set out to run


def sweep_to_folder(system: System, settings: SweepSettings, out_dir: str | Path, *,
                    progress: Callable[[int], None] | None = None, plan: Callable[[Any], None] | None = None,
                    start: Callable[[StoreRun], None] | None = None, plot: bool = True,
                    command: list[str] | None = None, spec: str | None = None, part_size: int | None = None,
                    folder: str | Path | None = None, scheduler: str | None = None,
                    load_seconds: float = 0.0) -> tuple[dict[str, Any], Path]:
    """Run a sweep into its store ``out_dir/<sweep folder>`` (or ``folder``), resuming it if it is there.

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
        Handed to :meth:`~gridsim.analysis.sweep.runner.Sweep.run`: called with
        each chunk's scenario count, and once with the timed first chunk.
    start : callable, optional
        Called once with a :class:`StoreRun` before any scenario runs (how
        many parts were there already).
    plot : bool
        Whether to draw ``ccdf.png``.
    command : list of str, optional
        The command line the manifest records (default ``sys.argv``).
    spec : str, optional
        How the system was named (``pandapower:case118``, a folder), recorded
        so that the sweep can be resumed from its folder alone.
    part_size : int, optional
        Scenarios per stored part (default :func:`default_part_size`); a
        store is resumed with the part size it was begun with.
    folder : str or Path, optional
        The store itself, instead of a folder named after the sweep in ``out_dir``.
    scheduler : str, optional
        A Dask scheduler (``tcp://host:port``, or ``"local"`` for a cluster
        started here) that runs the chunks; by default this machine's processes.
    load_seconds : float
        Time spent loading the system, recorded in the summary.

    Returns
    -------
    summary : dict
        What ``summary.json`` holds: the blackout-size distribution, the CCDF,
        the most harmful elements, the settings and timings.
    folder : Path
        The sweep's folder.

    Raises
    ------
    InputError
        The folder holds another sweep, or another sweep is writing into it.
    """
    started = time.perf_counter()
    check_writable(out_dir)
    sweep = Sweep(system, settings)
    size = part_size or default_part_size(settings, sweep.total)
    if -(-sweep.total // size) > MAX_PARTS:
        raise InputError("--part-size", f"{size:,} makes {-(-sweep.total // size):,} parts of {sweep.total:,} "
                                        f"scenarios, more than {MAX_PARTS:,}; give a larger one")
    manifest = sweep_manifest(system, settings, system_fingerprint=fingerprint(*sweep.inputs()), labels=sweep.labels,
                              total=sweep.total, part_size=size, base_demand_mw=sweep.base_demand_mw,
                              loop=sweep.loop, spec=spec, command=command)
    target = Path(folder) if folder is not None else Path(out_dir) / sweep_folder_name(system.name, settings)
    with SweepStore.open(target, manifest) as store:
        size = store.manifest["part_size"]
        done = frozenset(store.done_parts())
        entries = store.manifest["parts"]
        left = sum(e["scenarios"] for e in entries if e["part"] not in done)
        if start is not None:
            start(StoreRun(target, len(entries), len(done), left))
        writer = _PartWriter(store)
        workers = sweep.run(writer, progress=progress, plan=plan, part_size=size, skip=done,
                            scheduler=scheduler) if left else 1
        accumulator = summarise_store(store)
        if accumulator.done != sweep.total:  # every part was handed to the writer: a shortfall is a bug, not a result
            raise RuntimeError(f"the store holds {accumulator.done:,} rows of {sweep.total:,} scenarios")
        accumulator.workers = workers
        summary = accumulator.summary()
        summary.update(seconds=round(time.perf_counter() - started, 3), load_seconds=round(load_seconds, 3),
                       parts=len(entries), parts_done=len(entries), parts_resumed=len(done),
                       scenarios_run=left, scheduler=scheduler)
        write_atomically(target / "summary.json", lambda path: write_json(path, summary))
        if plot:
            write_atomically(target / "ccdf.png", lambda path: plot_ccdf(accumulator, path, summary))
    return summary, target


def resummarise(folder: str | Path, *, plot: bool = True) -> dict[str, Any]:
    """Summarise a store again from its parts (finished or not): rewrite ``summary.json`` (and ``ccdf.png``).

    The timings and worker count of the run that wrote it are kept from its
    summary, if there is one; ``parts_done`` says how many parts the figures
    cover. While a sweep is writing into the folder (it holds the lock), the
    summary is returned and nothing is written.

    Raises
    ------
    InputError
        ``folder`` is not a sweep store of this gridsim.
    """
    folder = Path(folder)
    store = SweepStore(folder, read_manifest(folder), None)
    writing = store.being_written()
    done = store.done_parts()
    accumulator = summarise_store(store)
    summary = accumulator.summary()
    try:
        before = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        before = {}
    accumulator.workers = before.get("workers", 1) if isinstance(before, dict) else 1
    summary["workers"] = accumulator.workers
    for name in ("seconds", "load_seconds", "parts_resumed", "scenarios_run", "scheduler"):
        if isinstance(before, dict) and name in before:
            summary[name] = before[name]
    summary.update(parts=len(store.manifest["parts"]), parts_done=len(done))
    if writing:  # the sweep writing here will write its own summary: this one is only printed
        return summary
    write_atomically(folder / "summary.json", lambda path: write_json(path, summary))
    if plot:
        write_atomically(folder / "ccdf.png", lambda path: plot_ccdf(accumulator, path, summary))
    return summary


def summarise_store(store: SweepStore | str | Path) -> Accumulator:
    """The figures of a store's parts, read one part at a time (the parts not there yet are missing from them).

    Accepts an open :class:`~gridsim.results.sweep.SweepStore` or a folder (read-only: no lock is taken,
    parts are only ever renamed into place whole).
    """
    if not isinstance(store, SweepStore):
        store = SweepStore(Path(store), read_manifest(store), None)
    accumulator = Accumulator.from_manifest(store.manifest)
    for table in store.tables():
        accumulator.add(table)
    return accumulator


class _PartWriter:
    """Gathers chunks of rows, in scenario order, into the store's parts; writes each part once it is whole."""

    def __init__(self, store: SweepStore) -> None:
        self.store = store
        self.part: int | None = None
        self.tables: list[pa.Table] = []
        self.rows = 0

    def __call__(self, columns: dict) -> None:
        size = self.store.manifest["part_size"]
        table = rows_table(columns)
        part = int(columns["scenario"][0]) // size
        if self.part is not None and part != self.part:
            raise RuntimeError(f"part {self.part} was left incomplete before part {part} began")
        self.part = part
        self.tables.append(table)
        self.rows += table.num_rows
        if self.rows == self.store.manifest["parts"][part]["scenarios"]:
            self.store.write_part(part, pa.concat_tables(self.tables).combine_chunks())
            self.part, self.tables, self.rows = None, [], 0
