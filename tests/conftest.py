"""Shared by the tests: tiny hand-built grids whose answers are known by hand, systems and runs loaded once per
session for tests that only read them, and the command line run in-process."""

from __future__ import annotations

import copy
import functools
import logging
import signal
import subprocess
import sys
import traceback
import warnings
from pathlib import Path

import pandapower as pp
import pandapower.networks as pn
import pytest
from click.testing import CliRunner

from gridsim.cli.main import cli
from gridsim.loading import load_system, system_from_net
from gridsim.model.grid import quiet_pandapower, stock_cases
from gridsim.model.system import RestorationParams
from gridsim.scenario.schema import load_scenario
from gridsim.sim.simulation import simulate

quiet_pandapower()

REPO = Path(__file__).resolve().parents[1]

#: Signals whose handlers a command may change: ``gridsim run`` and ``gridsim sweep`` install one for SIGTERM.
_HANDLED = (signal.SIGTERM, signal.SIGINT)

#: pandapower takes 0.1 to 0.3 s to build an empty net (its many empty tables); a deep copy takes a few ms.
_EMPTY_NET = pp.create_empty_network()


def empty_net():
    """A new, empty pandapower net, as ``pp.create_empty_network()`` makes it."""
    return copy.deepcopy(_EMPTY_NET)


def _line(net, a, b, max_i_ka=1.0, length_km=10.0):
    """A 110 kV line with round numbers: rating sqrt(3)*110*max_i_ka MVA."""
    return pp.create_line_from_parameters(net, a, b, length_km=length_km, r_ohm_per_km=0.05, x_ohm_per_km=0.4,
                                          c_nf_per_km=0.0, max_i_ka=max_i_ka)


def radial_feeder():
    """ext_grid - b0 - b1 - b2, 10 MW at b1 and 20 MW at b2."""
    net = empty_net()
    b = [pp.create_bus(net, 110, name=f"b{i}") for i in range(3)]
    pp.create_ext_grid(net, b[0])
    _line(net, b[0], b[1])
    _line(net, b[1], b[2])
    pp.create_load(net, b[1], p_mw=10, name="L1")
    pp.create_load(net, b[2], p_mw=20, name="L2")
    return net


def parallel_pair(load_mw=80.0, rating_mva=50.0):
    """ext_grid - b0 =two identical lines= b1 with one load: each line carries half."""
    net = empty_net()
    b0, b1 = pp.create_bus(net, 110), pp.create_bus(net, 110)
    pp.create_ext_grid(net, b0)
    i_ka = rating_mva / (3 ** 0.5 * 110)
    _line(net, b0, b1, max_i_ka=i_ka)
    _line(net, b0, b1, max_i_ka=i_ka)
    pp.create_load(net, b1, p_mw=load_mw)
    return net


def island_with_generator(load_mw=50.0, gen_max_mw=30.0):
    """ext_grid - b0 - b1, with a generator (max gen_max_mw) and a load at b1."""
    net = empty_net()
    b0, b1 = pp.create_bus(net, 110), pp.create_bus(net, 110)
    pp.create_ext_grid(net, b0)
    _line(net, b0, b1)
    pp.create_gen(net, b1, p_mw=10.0, max_p_mw=gen_max_mw, min_p_mw=0.0)
    pp.create_load(net, b1, p_mw=load_mw)
    return net


def three_sites(crews=1, manual_h=1.0):
    """ext_grid hub with three radial feeders, each its own site S1..S3 (10, 20, 30 MW)."""
    net = empty_net()
    hub = pp.create_bus(net, 110, name="hub")
    pp.create_ext_grid(net, hub)
    sites = {}
    for i, mw in enumerate((10, 20, 30), start=1):
        bus = pp.create_bus(net, 110, name=f"S{i}")
        _line(net, hub, bus)
        pp.create_load(net, bus, p_mw=mw, name=f"L{i}")
        sites[f"S{i}"] = {"buses": [bus], "tags": {"operator": "op", "voltage_kv": 110}}
    restoration = RestorationParams(remote_min=5, manual_h=manual_h, crews=crews, detect_blind_min=30,
                                    max_reclose=2, generator_restart_h=4)
    return system_from_net(net, name="three-sites", substations=sites, restoration=restoration,
                           kw_per_customer=1.0)


@pytest.fixture
def make_system():
    """Wrap a net into a System with ratings taken as given and no tolerance."""

    def make(net, **kw):
        kw.setdefault("overload_tolerance", 0.0)
        return system_from_net(net, **kw)

    return make


@functools.cache
def stock_system(name: str):
    """A bare stock case as a System, loaded once per test session."""
    return load_system(f"pandapower:{name}")


@functools.cache
def loaded_system(spec: str):
    """``load_system(spec)`` once per test session, for tests that only read the system (never change it)."""
    return load_system(spec)


@functools.cache
def bundled_run(scenario: str, flow: str = "dc"):
    """The bundled scenario ``attacks/<scenario>.yaml`` simulated on its own system (loaded once), once per
    session: ``(plan, system, result)``, for tests that only read them."""
    plan = load_scenario(REPO / "attacks" / f"{scenario}.yaml")
    system = loaded_system(plan.system)
    return plan, system, simulate(system, plan, flow=flow)


#: Stock pandapower nets built once per session (pandapower rebuilds one from JSON in 1 to 3 s), by name.
_BUILT_NETS: dict = {}


def _built_once(name: str, build):
    def copy_of_the_one_built():
        if name not in _BUILT_NETS:
            _BUILT_NETS[name] = build()
        return copy.deepcopy(_BUILT_NETS[name])

    return copy_of_the_one_built


def stock_net(name: str):
    """A fresh copy of ``pandapower.networks.<name>()``, which pandapower builds once per session."""
    return _built_once(name, getattr(pn, name))()


@pytest.fixture
def stock_nets_built_once(monkeypatch):
    """``pandapower:<case>`` sources read from a net pandapower built once per session, as a fresh deep copy.

    gridsim's reader gets the same net pandapower would build (and may change its copy); for tests of what
    gridsim does with a stock net, not of pandapower's JSON reader, which takes 1 to 3 s a case.
    """
    cases = stock_cases()
    for name, build in list(cases.items()):
        monkeypatch.setitem(cases, name, _built_once(name, build))


@pytest.fixture(autouse=True)
def _signal_handlers_restored():
    """Every test hands the process's SIGTERM and SIGINT handlers back as it found them.

    ``gridsim run`` and ``gridsim sweep`` install a SIGTERM handler (so a killed run cleans up) and, as a
    process runs one command, never put the previous one back: run in-process through ``CliRunner`` (here or
    in any test file), they would leave it on the test process, where a SIGTERM would then raise
    ``SystemExit`` inside whatever test happens to be running.
    """
    saved = {sig: signal.getsignal(sig) for sig in _HANDLED}
    yield
    for sig, handler in saved.items():
        if handler is not None and signal.getsignal(sig) is not handler:
            signal.signal(sig, handler)


def _as_a_process_would(invoke):
    """Run ``invoke()`` with what a fresh ``python -m gridsim`` would print on stderr besides the command's output.

    A real process shows warnings under Python's default filters (not pytest's) and, having no logging handler,
    logs warnings to stderr through :data:`logging.lastResort`: both are sent to the ``CliRunner``'s stderr here,
    so that "one line on stderr" still means one line.
    """
    root = logging.getLogger()
    handlers, root.handlers = root.handlers, []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.resetwarnings()
            for category in (ResourceWarning, ImportWarning, PendingDeprecationWarning, DeprecationWarning):
                warnings.simplefilter("ignore", category)
            warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")
            result = invoke(caught)
    finally:
        root.handlers = handlers
    return result


@pytest.fixture
def in_process(monkeypatch, stock_nets_built_once):
    """``gridsim *args`` run in this process through click's ``CliRunner``, answered as a finished process.

    Returns a ``subprocess.CompletedProcess`` (``returncode``, ``stdout``, ``stderr``) like
    ``subprocess.run([sys.executable, "-m", "gridsim", *args], cwd=cwd, capture_output=True, text=True)`` would:
    run from ``cwd`` (default: the repository), ``sys.argv`` as the command line (the manifest records it), an
    exception that is not ``SystemExit`` as exit status 1 with its traceback on stderr, warnings and logged
    warnings on stderr. SIGTERM's and SIGINT's handlers are put back after each call (the commands leave theirs).
    It saves the 2 to 3 s of imports a new process pays; tests of exit statuses on signals and of the real entry
    point keep a subprocess.

    A stock net (``pandapower:case14``) is built once per session (``stock_nets_built_once``).
    """

    def run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
        saved = {sig: signal.getsignal(sig) for sig in _HANDLED}
        monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "argv", [str(REPO / "gridsim" / "__main__.py"), *args])

        def invoke(caught):
            result = CliRunner().invoke(cli, list(args), prog_name="gridsim")
            stderr = "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line)
                             for w in caught)
            return result, stderr

        try:
            result, warned = _as_a_process_would(invoke)
        finally:
            for sig, handler in saved.items():
                if handler is not None:
                    signal.signal(sig, handler)
        stderr = warned + result.stderr
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            stderr += "".join(traceback.format_exception(*result.exc_info))
        return subprocess.CompletedProcess(["gridsim", *args], result.exit_code, result.stdout, stderr)

    return run
