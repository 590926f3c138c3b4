"""gridsim: cyberattack cascades on a power grid and the infrastructure that depends on it.

The library in four calls: a system, a scenario, a run, its figures.

Examples
--------
>>> import gridsim
>>> system = gridsim.load_system("ukraine-2015")      # a bundled topology, a folder, or pandapower:<case>
>>> plan = gridsim.load_scenario("ukraine-2015")      # a bundled scenario or a YAML file
>>> result = gridsim.simulate(system, plan)           # DC cascades on the fast engine, seed 0
>>> summary = gridsim.summarize(result)
>>> summary["peak_mw_lost"], summary["time_to_full_restoration_min"]
(180.0, 390.0)

Every single-branch outage of a grid, with its cascade:

>>> sweep = gridsim.run_sweep(gridsim.load_system("pandapower:case9"), gridsim.SweepSettings(targets="branches"))
>>> sweep.summary()["scenarios"]
9

The names below are imported on first use, so ``import gridsim`` stays quick
(the command line needs none of pandapower to print its help).
"""

from __future__ import annotations

import importlib
from typing import Any

from gridsim.version import __version__

#: Public name -> the module that defines it.
_EXPORTS = {
    "load_system": "gridsim.loading",
    "system_from_net": "gridsim.loading",
    "System": "gridsim.model.system",
    "load_scenario": "gridsim.scenario.schema",
    "parse_scenario": "gridsim.scenario.schema",
    "Scenario": "gridsim.scenario.schema",
    "simulate": "gridsim.sim.simulation",
    "SimulationResult": "gridsim.sim.result",
    "summarize": "gridsim.metrics",
    "write_bundle": "gridsim.results.bundle",
    "run_summary": "gridsim.results.bundle",
    "Outages": "gridsim.power.contract",
    "CascadeResult": "gridsim.power.contract",
    "run_cascade": "gridsim.power.cascade",
    "run_fast_cascade": "gridsim.power.fast",
    "fast_engine": "gridsim.power.fast",
    "CascadeEngine": "gridsim.power.contract",
    "SweepSettings": "gridsim.analysis.sweep",
    "run_sweep": "gridsim.analysis.sweep",
    "InputError": "gridsim.errors",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    """Import a public name from its module the first time it is asked for (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gridsim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
