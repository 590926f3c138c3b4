"""The public API: what ``import gridsim`` offers, that it loads lazily, and that its examples run."""

from __future__ import annotations

import doctest
import importlib
import subprocess
import sys

import pytest

import gridsim


@pytest.mark.parametrize("name", [n for n in gridsim.__all__ if n != "__version__"])
def test_every_public_name_resolves_to_its_definition(name):
    value = getattr(gridsim, name)
    assert getattr(value, "__name__", name) == name
    assert value.__doc__, f"{name} has no docstring"


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'simulat'"):
        gridsim.simulat  # noqa: B018


def test_importing_gridsim_imports_no_power_flow_library():
    probe = "import sys, gridsim; print(sorted(m for m in ('pandapower', 'numpy', 'wntr') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("module", ["gridsim", "gridsim.loading", "gridsim.scenario.schema",
                                    "gridsim.sim.simulation", "gridsim.metrics", "gridsim.analysis.sweep.runner"])
def test_the_examples_of_the_main_entry_points_run(stock_nets_built_once, module):
    failures, tried = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert tried >= 2 and failures == 0
