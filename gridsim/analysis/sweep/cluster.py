"""Run a sweep's chunks on a Dask distributed cluster: one already running (``tcp://host:port``) or one started here.

The backend beside the runner's process pool (``runner._in_workers``), with
the same shape: it takes the sweep's evaluator and its chunks, and yields
each chunk's rows, in chunk order, with a bounded number of chunks in flight
(memory stays flat however long the sweep).

The evaluator travels once per worker, inside a worker plugin. A plugin is
pickled once here, kept by the scheduler as bytes (the scheduler never
unpickles it, so it needs no gridsim) and handed to each worker as it
registers, including a worker that joins later and one its nanny restarts
after a crash; each unpickles it once. A scattered and broadcast evaluator
would not stay once per worker: the scheduler's active memory manager drops
replicas of data no task waits for (every 2 s by default), so the grid would
be fetched and unpickled again and again as chunks land on workers that lost
their copy, and a cluster whose workers all restarted would have lost it.

A chunk is a task that names the sweep's plugin, not the evaluator: it
carries its scenarios only. Dask reruns a task whose worker died (up to
``distributed.scheduler.allowed-failures`` deaths, 3 by default) and
recomputes results lost with a worker before they were gathered; a chunk's
rows depend only on its scenarios, so a rerun gives the same rows.

Dask is an optional extra (``pip install 'gridsim[dask]'``): it is imported
when a sweep runs on a cluster, never by the rest of gridsim, so the
process pool's workers do not import it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import gc
import importlib.util
import logging
import os
import pickle
import threading
import uuid
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from gridsim.errors import InputError, SimulationError
from gridsim.version import __version__

__all__ = ["CONNECT_S", "IN_FLIGHT_PER_THREAD", "Evaluator", "on_cluster"]

#: Seconds to reach the scheduler (and, if it has none, for a first worker to join) before giving up.
CONNECT_S = 10.0
#: Chunks in flight per worker thread: enough that no worker waits while rows are gathered, few enough for flat memory.
IN_FLIGHT_PER_THREAD = 4
#: Seconds allowed to close the client and a cluster started here (a dead scheduler must not hang the exit).
CLOSE_S = 10.0
#: One BLAS thread per worker process: the processes are the parallelism (Dask's nanny sets the same by default).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

Chunk = tuple[int, list[tuple[int, ...]]]

logger = logging.getLogger(__name__)


class Evaluator(Protocol):
    """What a sweep's chunks are run with: the runner's evaluator, or anything of its shape."""

    def portable(self) -> Evaluator:
        """This evaluator as it should travel to a worker (the runner's drops what workers do not need)."""

    def evaluate(self, chunk: Chunk) -> dict:
        """The rows of one chunk (its first scenario's number and its scenarios), as a dict of columns."""


def on_cluster(scheduler: str, evaluator: Evaluator, chunks: Iterable[Chunk], *,
               in_flight: int | None = None) -> Iterator[dict]:
    """Each chunk's rows, evaluated on a Dask cluster, yielded in chunk order.

    A generator, like the process pool's: nothing is contacted until the
    first row is asked for. When it ends, fails, is interrupted or is closed
    by its consumer, the chunks still out are cancelled, the evaluator is
    removed from the workers and the scheduler, the client is closed, and so
    is a cluster started here.

    Parameters
    ----------
    scheduler : str
        ``"local"``: start a ``LocalCluster`` on 127.0.0.1, one single-threaded
        worker process per core (its dashboard on 127.0.0.1:8787 if bokeh is
        installed, logged at INFO); otherwise the address of a running
        scheduler, ``tcp://host:port``, whose workers have the same gridsim
        installed. Workers are best started with one thread each (``dask
        worker ADDRESS --nworkers N --nthreads 1``): a cascade holds the GIL,
        and a worker with more threads keeps one copy of the evaluator per
        thread (an evaluator keeps caches, and is not shared between threads).
    evaluator : Evaluator
        Turns a chunk into rows (``evaluate(chunk)``); ``evaluator.portable()``
        is what travels, once per worker.
    chunks : iterable of (int, list of tuple of int)
        The chunks, each its first scenario's number and its scenarios (each
        a tuple of candidate positions); read as the cluster takes them.
    in_flight : int, optional
        Chunks submitted and not yet handed on, at most; by default
        :data:`IN_FLIGHT_PER_THREAD` times the worker threads the cluster has
        when the sweep starts.

    Yields
    ------
    dict
        Each chunk's rows, as ``evaluator.evaluate(chunk)`` returns them, in
        the order of ``chunks``.

    Raises
    ------
    InputError
        Dask's distributed package is not installed; the scheduler does not
        answer within :data:`CONNECT_S` seconds or has no worker; a worker
        cannot take the evaluator (another gridsim, or none).
    SimulationError
        A chunk's workers died more often than Dask's ``allowed-failures``
        (out of memory, say).
    """
    if in_flight is not None and in_flight < 1:
        raise ValueError(f"in_flight must be at least 1, not {in_flight}")
    try:
        import distributed  # noqa: PLC0415 -- the optional extra, ~0.3 s: only sweeps on a cluster need it
    except ImportError:
        raise InputError(scheduler, "a sweep on a Dask cluster needs Dask: pip install 'gridsim[dask]'") from None
    cluster = client = plugin = None
    pending: deque = deque()
    try:
        cluster, client = _connect(distributed, scheduler)
        threads = sum(client.nthreads().values())
        limit = in_flight or IN_FLIGHT_PER_THREAD * max(1, threads)
        plugin = f"gridsim-sweep-{uuid.uuid4().hex}"
        _install(client, scheduler, plugin, evaluator.portable())
        for number, chunk in enumerate(chunks):
            # A key of its own (the plugin's name and the chunk's place): no two chunks are merged as the same task.
            pending.append(client.submit(_evaluate_on_worker, plugin, chunk, key=(plugin, number)))
            if len(pending) >= limit:
                yield _rows(distributed, pending.popleft())
        while pending:
            yield _rows(distributed, pending.popleft())
    except BaseException:  # an error, Ctrl-C, SIGTERM, or the consumer closing this generator
        if client is not None and pending:
            with contextlib.suppress(Exception):
                client.cancel(list(pending))
        raise
    finally:
        _close(client, cluster, plugin)


def _connect(distributed: Any, scheduler: str) -> tuple[Any, Any]:
    """A client of ``scheduler`` with at least one worker, and the cluster started here if it is ``"local"``."""
    if scheduler == "local":
        # The dashboard needs bokeh; without it, the scheduler's HTTP server (health checks) takes any free port.
        dashboard = importlib.util.find_spec("bokeh") is not None
        cluster = distributed.LocalCluster(n_workers=os.cpu_count() or 1, threads_per_worker=1, processes=True,
                                           host="127.0.0.1", dashboard_address=f"127.0.0.1:{8787 if dashboard else 0}",
                                           scheduler_kwargs={"dashboard": dashboard},
                                           env=dict.fromkeys(THREAD_VARIABLES, "1"))
        try:
            client = distributed.Client(cluster, set_as_default=False)
        except BaseException:
            cluster.close()
            raise
        if dashboard:
            logger.info("Dask dashboard: %s", client.dashboard_link)
        return cluster, client
    client = _client(distributed, scheduler)
    try:
        if not client.nthreads():
            client.wait_for_workers(1, timeout=CONNECT_S)
    except TimeoutError:
        _close(client, None, None)
        raise InputError(scheduler, f"the Dask scheduler has no worker (none joined within {CONNECT_S:g} s)") from None
    except BaseException:
        _close(client, None, None)
        raise
    return None, client


def _client(distributed: Any, scheduler: str) -> Any:
    """A client of the scheduler at ``scheduler``, or an InputError in one line."""
    try:
        return distributed.Client(scheduler, timeout=CONNECT_S, set_as_default=False)
    except (ValueError, TypeError) as exc:  # not an address: nothing was started
        failure = f"not the address of a Dask scheduler ({str(exc).splitlines()[0]})"
    except Exception:  # refused, timed out, no such host, or no Dask at the other end (which raises anything)
        failure = f"no Dask scheduler answers there within {CONNECT_S:g} s"
    # The client the failed call half made is closed now, while Dask's event loop runs: left to the collector
    # (at exit, the loop gone) it would wait seconds to close and print a traceback.
    gc.collect()
    raise InputError(scheduler, failure)


def _install(client: Any, scheduler: str, name: str, evaluator: Evaluator) -> None:
    """Send ``evaluator`` to every worker of ``client``'s cluster, and to those that join later, as plugin ``name``."""
    payload = pickle.dumps(evaluator, protocol=pickle.HIGHEST_PROTOCOL)  # once, here
    try:
        client.register_plugin(_plugin(name, payload, __version__), name=name)
    except (ImportError, AttributeError, RuntimeError) as exc:  # raised by a worker that cannot load it
        raise InputError(scheduler, f"a Dask worker cannot take the sweep ({type(exc).__name__}: {exc}); "
                                    f"every worker needs gridsim {__version__}, as here") from None


def _rows(distributed: Any, future: Any) -> dict:
    """A chunk's rows, once computed (the future is then released: the cluster forgets them)."""
    try:
        return future.result()
    except distributed.KilledWorker as exc:
        raise SimulationError(f"the Dask workers running a chunk of the sweep died too often ({exc})") from None
    except (concurrent.futures.CancelledError, OSError) as exc:  # the scheduler gone, the connection lost
        raise SimulationError(f"the Dask cluster stopped answering ({type(exc).__name__}: {exc}); the parts "
                              "finished are kept: run the sweep again to go on") from None


def _close(client: Any, cluster: Any, plugin: str | None) -> None:
    """Take the evaluator off the cluster, close the client and the cluster started here: each tried, none hangs."""
    if client is not None:
        if plugin is not None:
            with contextlib.suppress(Exception):  # a dead scheduler or worker: nothing left to remove it from
                client.unregister_worker_plugin(plugin)
        with contextlib.suppress(Exception):
            client.close(timeout=CLOSE_S)
    if cluster is not None:
        with contextlib.suppress(Exception):
            cluster.close(timeout=CLOSE_S)


# On a worker: the evaluators its sweeps' plugins installed, by plugin name.
_KEPT: dict[str, _Kept] = {}


class _Kept:
    """A sweep's evaluator on one worker: unpickled once, as the plugin is set up; one per thread if it has more.

    An evaluator keeps caches as it runs (the factorisation's columns, the
    untouched grid's flows), so threads do not share one: on a worker of one
    thread (the recommended kind) every chunk runs on the evaluator unpickled
    at set-up; on a worker of more, the first thread to ask takes it and each
    other thread unpickles its own from the bytes, kept for them.
    """

    def __init__(self, payload: bytes, threads: int):
        self.first = pickle.loads(payload)
        self.payload = payload if threads > 1 else None
        self.taken = False
        self.lock = threading.Lock()
        self.local = threading.local()

    def evaluator(self) -> Evaluator:
        """This thread's evaluator."""
        if self.payload is None:
            return self.first
        mine = getattr(self.local, "evaluator", None)
        if mine is None:
            with self.lock:
                if not self.taken:
                    mine, self.taken = self.first, True
            if mine is None:
                mine = pickle.loads(self.payload)
            self.local.evaluator = mine
        return mine


def _evaluate_on_worker(plugin: str, chunk: Chunk) -> dict:
    """One chunk, on a worker, with the evaluator its sweep's plugin installed there."""
    kept = _KEPT.get(plugin)
    if kept is None:
        raise RuntimeError(f"this Dask worker holds no evaluator for {plugin}: its set-up failed (see its log)")
    return kept.evaluator().evaluate(chunk)


def _plugin(name: str, payload: bytes, version: str) -> Any:
    """The worker plugin that installs a sweep's evaluator (pickled in ``payload``) on each worker as ``name``."""
    return _plugin_class()(name, payload, version)


@functools.cache
def _plugin_class() -> type:
    """The plugin's class, made when first needed: a worker plugin must subclass Dask's, imported late."""
    from distributed import WorkerPlugin  # noqa: PLC0415 -- the optional extra; on the worker, it is there already

    class SweepEvaluator(WorkerPlugin):
        """Keeps a sweep's evaluator on each worker, from its set-up to its removal at the sweep's end."""

        def __init__(self, name: str, payload: bytes, version: str):
            self.name, self.payload, self.version = name, payload, version

        def __reduce__(self) -> tuple:
            # Pickled as a call of the module's function: the class is made on the worker as it is unpickled.
            return _plugin, (self.name, self.payload, self.version)

        def setup(self, worker: Any) -> None:
            if self.version != __version__:
                raise RuntimeError(f"gridsim {__version__} on worker {worker.address}, {self.version} on the client")
            _KEPT[self.name] = _Kept(self.payload, worker.state.nthreads)
            self.payload = None  # this worker's copy is unpickled (or kept by _Kept); the scheduler keeps its own

        def teardown(self, worker: Any) -> None:
            _KEPT.pop(self.name, None)

    return SweepEvaluator
