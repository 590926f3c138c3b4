"""A sweep on a real Dask cluster: a ``dask scheduler`` and two ``dask worker`` processes on localhost.

The workers run with this folder on their path, so that the evaluators
defined here (which count their unpickles on the worker, or slow each chunk)
travel by reference. Imports at the top stay light: each worker imports this
module when it unpickles one of them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from gridsim.analysis.sweep import cluster  # noqa: E402
from gridsim.errors import InputError  # noqa: E402

HERE = Path(__file__).resolve().parent

# On a worker: one entry per unpickle of a Counted evaluator there.
LOADS: list[int] = []


class Counted:
    """An evaluator around another that counts, on the worker, how often it was unpickled; it may slow each chunk,
    and tag its rows with the process that ran it."""

    def __init__(self, inner, delay: float = 0.0, tag: bool = False):
        self.inner, self.delay, self.tag = inner, delay, tag

    def portable(self) -> Counted:
        return Counted(self.inner.portable(), self.delay, self.tag)

    def __getstate__(self) -> dict:
        return dict(self.__dict__)

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        LOADS.append(os.getpid())

    def evaluate(self, chunk):
        if self.delay:
            time.sleep(self.delay)
        rows = self.inner.evaluate(chunk)
        return {**rows, "pid": os.getpid()} if self.tag else rows


class Echo:
    """A tiny evaluator: a chunk's scenario numbers; the first chunk (number 0) is slowed to finish last."""

    def __init__(self, first_delay: float = 0.0, delay: float = 0.0, fail_at: int | None = None):
        self.first_delay, self.delay, self.fail_at = first_delay, delay, fail_at

    def portable(self) -> Echo:
        return self

    def evaluate(self, chunk):
        start, combos = chunk
        time.sleep(self.first_delay if start == 0 else self.delay)
        if start == self.fail_at:
            raise ValueError(f"chunk {start} fails")
        return {"scenario": [start + i for i in range(len(combos))], "pid": os.getpid()}


def loads() -> int:
    """On a worker: how often a Counted evaluator was unpickled there."""
    return len(LOADS)


def blas_threads() -> str | None:
    """On a worker: the BLAS thread limit it started with (``os.environ.get`` itself would travel with this
    process's environment)."""
    return os.environ.get("OMP_NUM_THREADS")


def sweep_state(dask_scheduler) -> dict:
    """On the scheduler: the clients, tasks and worker plugins a sweep may have left."""
    return {"clients": sorted(c for c in dask_scheduler.clients if c != "fire-and-forget"),
            "tasks": len(dask_scheduler.tasks),
            "plugins": [n for n in dask_scheduler.worker_plugins if n.startswith("gridsim-sweep")]}


def kept() -> list:
    """On a worker: the sweeps whose evaluator it still holds."""
    return list(cluster._KEPT)


def chunked(count: int, k: int, size: int) -> list:
    """Every set of ``k`` of ``count`` candidates, in chunks of ``size``: ``(first scenario's number, scenarios)``."""
    from gridsim.analysis.sweep.scenarios import scenarios

    combos = list(scenarios(count, k, None, 0))
    return [(start, combos[start:start + size]) for start in range(0, len(combos), size)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """``(address, client)``: a real scheduler and two single-threaded workers (each under its nanny) on localhost."""
    logs = tmp_path_factory.mktemp("dask")
    address = f"tcp://127.0.0.1:{_free_port()}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))}
    commands = [[sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                 "--port", address.rsplit(":", 1)[1], "--no-dashboard"]]
    commands += [[sys.executable, "-m", "distributed.cli.dask_worker", address, "--host", "127.0.0.1",
                  "--nthreads", "1", "--nworkers", "1", "--no-dashboard"]] * 2
    processes = []
    try:
        for number, command in enumerate(commands):
            with open(logs / f"{number}.log", "wb") as log:
                processes.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))
        with distributed.Client(address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=60)
            yield address, client
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def case30():
    """``(evaluator, chunks, rows)``: case30's full N-2 (820 scenarios) in chunks of 64, and its rows in process."""
    from gridsim import load_system
    from gridsim.analysis.sweep import runner

    sweep = runner.Sweep(load_system("pandapower:case30"), runner.SweepSettings(targets="branches", k=2))
    evaluator, cands, settings = sweep.evaluator, sweep.candidates, sweep.settings
    chunks = chunked(len(cands), settings.k, 64)
    rows = [evaluator.evaluate(chunk) for chunk in chunks]
    assert sum(len(r["scenario"]) for r in rows) == 820
    return evaluator, chunks, rows


def test_a_sweep_on_the_cluster_gives_the_rows_of_one_in_process_and_the_grid_travels_once_per_worker(
        dask_cluster, case30):
    address, client = dask_cluster
    evaluator, chunks, rows = case30
    before = client.run(loads)
    consumed = []

    def read():  # records how many chunks the cluster has taken when each result is handed on
        for chunk in chunks:
            consumed.append(chunk)
            yield chunk

    got = []
    for columns in cluster.on_cluster(address, Counted(evaluator), read(), in_flight=3):
        got.append(columns)
        assert len(consumed) - len(got) <= 3
    assert got == rows
    after = client.run(loads)
    assert {worker: after[worker] - before.get(worker, 0) for worker in after} == dict.fromkeys(after, 1)
    assert len(chunks) == 13  # 13 chunks on 2 workers, one unpickle each
    assert client.run(blas_threads) == dict.fromkeys(after, "1")
    assert not any(client.run(kept).values())
    assert client.run_on_scheduler(sweep_state) == {"clients": [client.id], "tasks": 0, "plugins": []}


def test_rows_come_in_chunk_order_whatever_finishes_first(dask_cluster):
    address, _ = dask_cluster
    chunks = [(4 * n, [(0,)] * 4) for n in range(8)]
    got = list(cluster.on_cluster(address, Echo(first_delay=0.5), chunks))
    assert [r["scenario"] for r in got] == [list(range(4 * n, 4 * n + 4)) for n in range(8)]
    assert len({r["pid"] for r in got}) == 2  # both workers took chunks
    # The same chunk twice is two tasks, not one merged.
    twice = list(cluster.on_cluster(address, Echo(), [(0, [(1,)]), (0, [(1,)])]))
    assert twice[0]["scenario"] == twice[1]["scenario"] == [0]


def test_closing_the_sweep_early_cancels_its_chunks_and_leaves_nothing_on_the_cluster(dask_cluster):
    address, client = dask_cluster
    sweep = cluster.on_cluster(address, Echo(delay=0.3), [(n, [(0,)]) for n in range(40)])
    assert next(sweep)["scenario"] == [0]
    sweep.close()
    deadline = time.monotonic() + 10
    while client.run_on_scheduler(sweep_state)["tasks"] and time.monotonic() < deadline:
        time.sleep(0.05)  # the scheduler forgets cancelled tasks as its workers report back
    assert client.run_on_scheduler(sweep_state) == {"clients": [client.id], "tasks": 0, "plugins": []}
    assert not any(client.run(kept).values())


@pytest.mark.parametrize(("address", "message"), [
    ("tcp://127.0.0.1:{port}", "no Dask scheduler answers there within 1 s"),  # nothing listens there
    ("tcp://127.0.0.1", "not the address of a Dask scheduler (missing port number"),
])
def test_an_unreachable_scheduler_is_one_line_at_once(monkeypatch, address, message):
    monkeypatch.setattr(cluster, "CONNECT_S", 1.0)
    address = address.format(port=_free_port())
    started = time.monotonic()
    with pytest.raises(InputError) as raised:
        next(cluster.on_cluster(address, Echo(), [(0, [(0,)])]))
    assert time.monotonic() - started < 5
    assert str(raised.value).startswith(f"{address}: {message}")
    assert "\n" not in str(raised.value) and raised.value.__context__ is None


def test_an_error_in_a_chunk_reaches_the_caller_and_nothing_is_left(dask_cluster):
    address, client = dask_cluster
    sweep = cluster.on_cluster(address, Echo(fail_at=3), [(n, [(0,)]) for n in range(10)])
    assert [next(sweep)["scenario"] for _ in range(3)] == [[0], [1], [2]]
    with pytest.raises(ValueError, match="chunk 3 fails"):
        next(sweep)
    assert client.run_on_scheduler(sweep_state)["plugins"] == []
    assert not any(client.run(kept).values())


def test_without_dask_installed_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` now fails
    with pytest.raises(InputError, match=r"pip install 'gridsim\[dask\]'"):
        next(cluster.on_cluster("local", Echo(), [(0, [(0,)])]))


def test_a_worker_with_another_gridsim_refuses_the_sweep_and_nothing_is_left(dask_cluster, monkeypatch):
    address, client = dask_cluster
    monkeypatch.setattr(cluster, "__version__", "0.0.0-other")  # what the client says it runs
    with pytest.raises(InputError, match="every worker needs gridsim 0.0.0-other"):
        next(cluster.on_cluster(address, Echo(), [(0, [(0,)])]))
    assert client.run_on_scheduler(sweep_state) == {"clients": [client.id], "tasks": 0, "plugins": []}


def test_a_worker_killed_mid_sweep_has_its_chunks_run_again_and_the_rows_stay_exact(dask_cluster, case30):
    address, client = dask_cluster
    evaluator, _, _ = case30
    chunks = chunked(len(evaluator.cands), 2, 16)  # 52 chunks of 0.1 s
    rows = [evaluator.evaluate(chunk) for chunk in chunks]
    pids = client.run(os.getpid)  # worker address -> the worker process (its nanny starts another)
    killed = None
    got = []
    for columns in cluster.on_cluster(address, Counted(evaluator, delay=0.1, tag=True), chunks):
        got.append(columns)
        if len(got) == 3:
            killed, keys = next((w, keys) for w, keys in client.processing().items() if keys)
            os.kill(pids[killed], signal.SIGKILL)
    again = [key[1] for key in keys]  # the chunks the killed worker had (a key is the sweep's plugin and a number)
    assert again and all(got[number]["pid"] != pids[killed] for number in again)  # run again, elsewhere
    assert [{k: v for k, v in columns.items() if k != "pid"} for columns in got] == rows  # complete, in order
    client.wait_for_workers(2, timeout=60)  # the nanny's new worker, for the tests after this one
    assert killed not in client.nthreads()
    assert client.run_on_scheduler(sweep_state) == {"clients": [client.id], "tasks": 0, "plugins": []}


def test_a_local_cluster_gives_the_same_rows_and_is_gone_afterwards(case30):
    psutil = pytest.importorskip("psutil")
    evaluator, chunks, rows = case30

    def children() -> set:  # this process's, but multiprocessing's resource tracker (it lives as long as we do)
        found = set()
        for child in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if "resource_tracker" not in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                    found.add(child.pid)
        return found

    before = children()
    assert list(cluster.on_cluster("local", evaluator, chunks)) == rows
    assert children() - before == set()  # the cluster's worker processes have exited


def test_a_worker_of_more_threads_gives_each_its_own_evaluator_and_one_of_one_thread_shares_one():
    import pickle
    import threading

    payload = pickle.dumps(Counted(Echo()))

    def per_thread(kept_) -> list:
        found = [[], []]

        def take(mine):
            mine += [kept_.evaluator(), kept_.evaluator()]

        threads = [threading.Thread(target=take, args=(mine,)) for mine in found]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return found

    before = len(LOADS)
    (a, b), (c, d) = per_thread(cluster._Kept(payload, threads=2))
    assert a is b and c is d and a is not c  # each thread its own, kept for its chunks
    assert len(LOADS) - before == 2
    (a, b), (c, d) = per_thread(cluster._Kept(payload, threads=1))
    assert a is b is c is d  # one thread at a time: one evaluator
    assert len(LOADS) - before == 3


def test_gridsim_sweep_on_the_cluster_writes_the_store_a_sweep_in_process_writes(dask_cluster, tmp_path, in_process,
                                                                                 monkeypatch):
    from gridsim.analysis.sweep import runner

    monkeypatch.setattr(runner, "CHUNK", 64)  # 13 chunks: the first here, the rest on the two workers
    address, _ = dask_cluster
    args = ["sweep", "--system", "pandapower:case30", "--k", "2", "--part-size", "100", "--no-plot"]
    there = in_process(*args, "--scheduler", address, "--out", str(tmp_path / "cluster"))
    assert there.returncode == 0, there.stderr
    assert f"fast-dc engine, Dask cluster {address}, " in there.stdout
    here = in_process(*args, "--workers", "1", "--out", str(tmp_path / "here"))
    assert here.returncode == 0, here.stderr
    name = "sweep_pandapower-case30_branches_k2/parts"
    parts = sorted(p.name for p in (tmp_path / "here" / name).iterdir())
    assert len(parts) == 9
    assert [(tmp_path / "cluster" / name / p).read_bytes() for p in parts] == [
        (tmp_path / "here" / name / p).read_bytes() for p in parts]
