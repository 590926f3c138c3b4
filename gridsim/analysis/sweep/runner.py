"""Run many scenarios: in this process or in worker processes, results handed on a chunk at a time.

Each scenario is one power cascade (no clock, no restoration): what the
attack takes out at once, and what the cascade does with it. Rows come back
in scenario order whatever the number of workers, so the same inputs and
seed give the same file. Memory stays flat: a chunk's rows go to the sink
(the Parquet writer) and only the figures the summary needs are kept.

Scenarios of one or two single-branch candidates on the fast DC engine are
first decided a chunk at a time by :meth:`gridsim.power.fast.FastCascade.single_outages`
and :meth:`~gridsim.power.fast.FastCascade.double_outages` (outage factors
on the base factorisation); only those they cannot decide exactly run a
cascade.

The engine is compiled once, in this process (:func:`gridsim.power.fast.fast_engine`,
kept beside the caller's system, not on it), and handed to each worker
process once, as it starts, inside the evaluator it runs its chunks with: no
worker compiles the grid again. A worker imports this module, the contract,
the fast engine and the compiled grid's types, none of which imports
pandapower (2.8 s) or lightsim2grid at module level; when what a sweep
runs needs only the compiled grid, the evaluator it is handed holds no
pandapower net either, and the worker never imports pandapower at all.
"""

from __future__ import annotations

import concurrent.futures as futures
import copy
import dataclasses
import importlib.metadata
import itertools
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from gridsim.analysis.sweep.cluster import on_cluster
from gridsim.analysis.sweep.scenarios import Candidate, candidates, count_scenarios, scenarios
from gridsim.analysis.sweep.summary import Accumulator
from gridsim.model.layers import Layers
from gridsim.model.system import System
from gridsim.power import kernel
from gridsim.power.cache import per_system
from gridsim.power.cascade import run_cascade
from gridsim.power.contract import CascadeResult, Outages
from gridsim.power.fast import FastCascade, fast_engine

__all__ = ["CHUNK", "COLUMNS", "Sweep", "SweepPlan", "SweepSettings", "run_sweep"]

#: Columns of a sweep's rows, in order (the Parquet schema follows them).
COLUMNS = ("scenario", "targets", "mw_lost", "pct_lost", "customers_out", "cascade_depth", "elements_tripped",
           "tripped", "islands")
#: Scenarios per task: large enough to amortise a task, small enough for a smooth progress bar.
CHUNK = 256
#: Worker processes take most of a second to start (imports, the factorisation): worth it past this many seconds.
WORTH_WORKERS_S = 10.0


@dataclass(frozen=True)
class SweepSettings:
    """What a sweep runs: targets, k, exhaustive or Monte Carlo, engine and workers."""

    targets: str = "branches"
    k: int = 1
    random: int | None = None  # Monte Carlo draws; None: exhaustive
    seed: int = 0
    workers: int = 1
    engine: str = "fast"  # or "reference"
    flow: str = "dc"


@dataclass(frozen=True)
class SweepPlan:
    """How a sweep will run, known once its first chunk has been timed in this process.

    The estimate is measured, not assumed: the first chunk's seconds per
    scenario times the scenarios left, shared evenly among the workers
    (their start-up, most of a second, left out).
    """

    total: int  # scenarios in the sweep
    timed: int  # scenarios of the first chunk, run in this process
    seconds: float  # what they took
    workers: int  # processes that run the rest

    @property
    def rate(self) -> float:
        """Scenarios per second of the first chunk in this process."""
        return self.timed / self.seconds if self.seconds > 0 else float("inf")

    @property
    def estimate_s(self) -> float:
        """Seconds the scenarios after the first chunk should take."""
        left = self.total - self.timed
        return self.seconds / self.timed * left / self.workers if self.timed and left > 0 else 0.0


def run_sweep(system: System, settings: SweepSettings, *, sink: Callable[[dict], None] | None = None,
              progress: Callable[[int], None] | None = None,
              plan: Callable[[SweepPlan], None] | None = None) -> Accumulator:
    """Run every scenario of ``settings`` on ``system``; return the summary's accumulator.

    The engine is compiled once (kept beside ``system``) and handed to the
    worker processes, if any, as they start. Rows are kept in memory only
    as the summary's figures; :func:`gridsim.analysis.sweep.folder.sweep_to_folder`
    writes them to a resumable store instead.

    Parameters
    ----------
    system : System
        The system attacked; its layers play no part (a sweep runs power cascades only).
    settings : SweepSettings
        What each scenario takes out, how many, exhaustive or drawn, the engine, the flow, the workers.
    sink : callable, optional
        ``sink(columns)`` receives each chunk's rows as a dict of lists (see
        :data:`COLUMNS`), in scenario order.
    progress : callable, optional
        ``progress(n)`` receives the number of scenarios just finished.
    plan : callable, optional
        ``plan(SweepPlan)`` receives, once, before any row is handed on, the
        timing of the first chunk and the number of workers (so that an
        estimate can be printed before the progress starts).

    Returns
    -------
    Accumulator
        The figures of every row, for the sweep's summary (``summary()``).

    Examples
    --------
    >>> from gridsim import load_system
    >>> sweep = run_sweep(load_system("pandapower:case30"), SweepSettings(targets="branches", k=2))
    >>> sweep.summary()["scenarios"], sweep.summary()["candidates"]
    (820, 41)
    """
    sweep = Sweep(system, settings)
    accumulator = sweep.accumulator()

    def hand_on(columns: dict) -> None:
        accumulator.add(columns)
        if sink is not None:
            sink(columns)

    accumulator.workers = sweep.run(hand_on, progress=progress, plan=plan)
    return accumulator


class Sweep:
    """A sweep ready to run: its candidates, its scenario count and the evaluator holding the compiled engine.

    Built once per sweep (the engine is compiled once, kept beside
    ``system``); :meth:`run` runs all of it, or all but the parts a store
    already holds.
    """

    def __init__(self, system: System, settings: SweepSettings) -> None:
        self.system, self.settings = system, settings
        power_only = dataclasses.replace(system, layers=Layers())  # sweeps are power cascades; pickles small
        # Compiled once per system (the layers play no part in it); its fallback runs on the power-only copy.
        # The untouched grid is factorised on the system's own engine first, so that the copy shares the
        # factorisation and the next sweep of the same system does not do it again.
        kept = fast_engine(system)
        _ = kept.factorisation
        if settings.k == 2 and settings.engine == "fast" and settings.flow == "dc":
            _ = kept.pair_screen  # the double-outage screen's factors, likewise shared (seconds on a large grid)
        self.engine = kept.for_system(power_only)
        if settings.engine == "fast" and settings.flow == "dc" and kernel.AVAILABLE:
            # The DC loop compiled (numba), kept beside the system as the engine is: built once, its inverse shared.
            self.engine = self.engine.with_kernel(per_system(system, "dc_kernel", lambda: kernel.DcKernel.of(kept)))
        #: Which loop computes the cascades: a store records it (the two agree, but a store is not filled by both).
        self.loop = f"numba {importlib.metadata.version('numba')}" if self.engine.kernel is not None else "python"
        self.candidates = candidates(power_only, self.engine.grid, settings.targets)
        self.labels = [c.label for c in self.candidates]
        self.total = count_scenarios(len(self.candidates), settings.k, settings.random)
        self.evaluator = _Evaluator(power_only, self.candidates, settings, self.engine)
        self.base_demand_mw = self.evaluator.base_demand_mw

    def accumulator(self) -> Accumulator:
        """An empty accumulator of this sweep's summary."""
        settings = {name: getattr(self.settings, name) for name in ("targets", "k", "random", "seed", "engine", "flow")}
        return Accumulator.of_system(self.system, settings, self.labels, self.total, self.base_demand_mw)

    def inputs(self) -> tuple:
        """What this sweep's rows depend on besides the settings: the compiled grid, customers, candidates."""
        return (self.engine.grid, np.asarray(self.system.customers, dtype=float), self.labels,
                [c.branch_rows for c in self.candidates], [c.gen_positions for c in self.candidates],
                [sorted(c.outages.switches) for c in self.candidates], self.system.overload_tolerance)

    def run(self, hand_on: Callable[[dict], None], *, progress: Callable[[int], None] | None = None,
            plan: Callable[[SweepPlan], None] | None = None, part_size: int | None = None,
            skip: frozenset[int] = frozenset(), scheduler: str | None = None) -> int:
        """Evaluate every chunk, in scenario order, but those of the parts in ``skip``; return the workers used.

        ``hand_on(columns)`` receives each chunk's rows; chunks never straddle
        two parts of ``part_size`` scenarios (default: one part). With a
        ``scheduler`` (``"local"`` or ``tcp://host:port``) the chunks after the
        first run on that Dask cluster (:func:`gridsim.analysis.sweep.cluster.on_cluster`),
        and 0 is returned: the cluster's workers are its own; ``plan`` is not
        called (this process's rate says nothing of the cluster's).
        """
        settings = self.settings
        part_size = part_size or max(self.total, 1)
        chunks = _chunks(scenarios(len(self.candidates), settings.k, settings.random, settings.seed), CHUNK,
                         part_size, skip)
        todo = self.total - sum(max(0, min(part_size, self.total - p * part_size)) for p in skip)

        def handed(columns: dict) -> None:
            hand_on(columns)
            if progress is not None:
                progress(len(columns["scenario"]))

        # The first chunk runs here and is timed: workers only start if what is left would take a while.
        first = next(chunks, None)
        if first is None:
            return 1
        started = time.perf_counter()
        first_rows = self.evaluator.evaluate(first)
        seconds = time.perf_counter() - started
        left = todo - len(first[1])
        workers = settings.workers if seconds / len(first[1]) * left > WORTH_WORKERS_S else 1
        workers = max(1, min(workers, -(-left // CHUNK)))
        if plan is not None and scheduler is None:
            plan(SweepPlan(total=todo, timed=len(first[1]), seconds=seconds, workers=workers))
        handed(first_rows)
        if scheduler is not None:
            results = on_cluster(scheduler, self.evaluator, chunks)
            workers = 0
        elif workers == 1:
            for columns in map(self.evaluator.evaluate, chunks):
                handed(columns)
            return 1
        else:
            results = _in_workers(workers, self.evaluator, chunks)
        try:
            for columns in results:
                handed(columns)
        finally:
            results.close()  # on an error here (the sink, SIGTERM), stops the workers at once
        return workers


def _chunks(items: Iterable[tuple[int, ...]], size: int, part_size: int,
            skip: frozenset[int]) -> Iterator[tuple[int, list[tuple[int, ...]]]]:
    """``(first scenario, scenarios)`` of at most ``size``, within one part each; the parts in ``skip`` left out.

    The scenarios of a skipped part are still drawn (a Monte Carlo draw
    depends on those before it), not evaluated.
    """
    items = iter(items)
    start = 0
    while True:
        part = itertools.islice(items, part_size)
        n = 0
        if start // part_size in skip:
            n = sum(1 for _ in part)
        else:
            while chunk := list(itertools.islice(part, size)):
                yield start + n, chunk
                n += len(chunk)
        if not n:
            return
        start += n


def _in_workers(workers: int, evaluator: _Evaluator, chunks) -> Iterator[dict]:
    """Chunks evaluated by worker processes, yielded in order, with few chunks in flight (flat memory).

    Each worker is handed the evaluator (:meth:`_Evaluator.portable`), and
    with it the compiled engine, once, as it starts: its chunks all run on it.
    """
    context = multiprocessing.get_context("spawn")  # no fork: BLAS threads and fork do not mix
    # One BLAS thread per worker: the workers are the parallelism. The pool starts its workers as work is
    # submitted, and each reads the variables as it starts, so they stay set until the pool is shut down.
    saved = {name: os.environ.get(name) for name in _THREAD_VARIABLES}
    os.environ.update(dict.fromkeys(_THREAD_VARIABLES, "1"))
    pool = None
    try:
        pool = futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                                           initargs=(evaluator.portable(),))
        pending: list[futures.Future] = []
        for chunk in chunks:
            pending.append(pool.submit(_evaluate_in_worker, chunk))
            if len(pending) >= 2 * workers:
                yield pending.pop(0).result()
        for future in pending:
            yield future.result()
    except BaseException:  # an error, Ctrl-C, SIGTERM, or the consumer closing this generator
        if pool is not None:
            _stop_now(pool)
        raise
    else:
        pool.shutdown(wait=True)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _stop_now(pool: futures.ProcessPoolExecutor) -> None:
    """Stop the workers without waiting for the chunks they are on.

    ``shutdown(wait=True)`` would let every chunk in flight finish first,
    seconds on a large grid, while the half-written results wait to be
    removed: a supervisor's SIGKILL after its grace period would then leave
    them behind. The executor has no public way to stop its workers before
    Python 3.14 (``terminate_workers``), hence the private table.
    """
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        if process.is_alive():
            process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)


_WORKER: _Evaluator | None = None
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _start_worker(evaluator: _Evaluator) -> None:
    """A worker's start: keep the evaluator (and the engine in it) it was handed for every chunk it runs."""
    global _WORKER
    _WORKER = evaluator


def _evaluate_in_worker(chunk: tuple[int, list[tuple[int, ...]]]) -> dict:
    """One chunk, in a worker, on the evaluator it started with."""
    return _WORKER.evaluate(chunk)


class _Evaluator:
    """Turns scenarios into rows: one per scenario, figures relative to the untouched grid."""

    def __init__(self, system: System, cands: list[Candidate], settings: SweepSettings, engine: FastCascade):
        self.system, self.cands, self.settings = system, cands, settings
        # The fast engine runs the cascades (its fallback on ``system``); in DC its arrays take the outages as rows.
        self.fast = engine if settings.engine == "fast" else None
        self.rows = self.fast is not None and settings.flow == "dc"
        self.customers = np.asarray(system.customers, dtype=float)
        base = self._cascade(Outages())
        self.base_served = base.served_mw.copy()
        self.base_served_mw = float(base.served_mw.sum())
        self.base_demand_mw = float(base.demand_mw.sum())
        self.base_fraction = base.out_fraction()
        self.base_customers_out = float(self.base_fraction @ self.customers)
        self.base_islands = base.islands

    def portable(self) -> _Evaluator:
        """This evaluator for worker processes, with its engine.

        Without the pandapower net when the compiled grid is all it needs (DC
        on the fast engine, no candidate opening bus-bus switches), so that a
        worker starts without importing pandapower (a second or so).
        """
        if not self.rows or any(c.needs_reference for c in self.cands):
            return self
        light = copy.copy(self)
        light.system = None
        light.fast = self.fast.for_system(None)
        return light

    def _cascade(self, outages: Outages) -> CascadeResult:
        if self.fast is not None:
            return self.fast.run(outages, flow=self.settings.flow)
        return run_cascade(self.system, outages, flow=self.settings.flow)

    def evaluate(self, chunk: tuple[int, list[tuple[int, ...]]]) -> dict:
        """The rows (:data:`COLUMNS`) of a chunk: its first scenario's number and its scenarios."""
        start, combos = chunk
        rows = {name: [] for name in COLUMNS}
        decided = self._decide_without_cascade(combos)
        for offset, combo in enumerate(combos):
            outcome = decided.get(offset) or self._outcome(self._run(combo))
            served_mw, out_fraction, tripped, depth, islands = outcome
            lost = self.base_served_mw - float(np.sum(served_mw))
            rows["scenario"].append(start + offset)
            rows["targets"].append([self.cands[i].label for i in combo])
            rows["mw_lost"].append(round(lost, 6))
            rows["pct_lost"].append(round(100.0 * lost / self.base_demand_mw, 6) if self.base_demand_mw else 0.0)
            rows["customers_out"].append(round(float(out_fraction @ self.customers) - self.base_customers_out, 3))
            rows["cascade_depth"].append(int(depth))
            rows["elements_tripped"].append(len(tripped))
            rows["tripped"].append(tripped)
            rows["islands"].append(int(islands))
        return rows

    @staticmethod
    def _outcome(result: CascadeResult) -> tuple:
        tripped = [f"{t.table}:{t.index}" for t in result.trips]
        return result.served_mw, result.out_fraction(), tripped, result.depth, result.islands

    def _run(self, combo: tuple[int, ...]) -> CascadeResult:
        parts = [self.cands[i] for i in combo]
        if self.rows and not any(c.needs_reference for c in parts):
            rows = np.concatenate([c.branch_rows for c in parts])
            gens = np.concatenate([c.gen_positions for c in parts])
            return self.fast.run_rows(rows, gens)
        merged = Outages(
            lines=frozenset().union(*(c.outages.lines for c in parts)),
            trafos=frozenset().union(*(c.outages.trafos for c in parts)),
            gens=frozenset().union(*(c.outages.gens for c in parts)),
            trafo3ws=frozenset().union(*(c.outages.trafo3ws for c in parts)),
            switches=frozenset().union(*(c.outages.switches for c in parts)))
        return self._cascade(merged)

    def _decide_without_cascade(self, combos: list[tuple[int, ...]]) -> dict[int, tuple]:
        """Scenarios of one or two single-branch candidates that outage factors settle exactly, by offset.

        :meth:`~gridsim.power.fast.FastCascade.single_outages` and
        :meth:`~gridsim.power.fast.FastCascade.double_outages` say which trip
        nothing and which loads they cut off; the rest run a cascade.
        """
        if not self.rows:
            return {}
        decided: dict[int, tuple] = {}
        for k, screen in ((1, self._screen_singles), (2, self._screen_pairs)):
            offsets = [j for j, combo in enumerate(combos) if len(combo) == k and all(
                len(self.cands[i].branch_rows) == 1 and not len(self.cands[i].gen_positions) for i in combo)]
            if not offsets:
                continue
            rows = np.array([[self.cands[i].branch_rows[0] for i in combos[j]] for j in offsets], dtype=np.int64)
            trivial, cut, extra = screen(rows)
            for j, ok, loads, more in zip(offsets, trivial.tolist(), cut, extra.tolist()):
                if ok:
                    decided[j] = self._settled(loads, more)
        return decided

    def _screen_singles(self, rows: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        trivial, cut = self.fast.single_outages(rows[:, 0])
        return trivial, cut, np.array([1 if len(loads) else 0 for loads in cut], dtype=np.int64)

    def _screen_pairs(self, rows: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        return self.fast.double_outages(rows)

    def _settled(self, loads: np.ndarray, extra: int) -> tuple:
        """A scenario that trips nothing and cuts off ``loads``: islands are the untouched grid's plus ``extra``."""
        served, fraction = self.base_served, self.base_fraction
        if len(loads):
            served, fraction = served.copy(), fraction.copy()
            served[loads] = 0.0
            fraction[loads] = 1.0
        return served, fraction, [], 0, self.base_islands + extra


