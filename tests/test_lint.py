"""The linters the project keeps, run by the test command so that CI enforces them.

- ruff with the project's rules (``pyproject.toml``): style, imports at the
  top (PLC0415) but for the allow-listed deferred heavy imports, no private
  member access (SLF001), complexity at most 12 (C901).
- A copy check: pylint's ``duplicate-code`` at 4 lines over ``gridsim/``.
  The two cascade engines are kept independent on purpose, so a rule both
  carry is written twice; such a deliberate pair names its twin in a comment
  and is not copied line for line.
- numpydoc's validation of the public API (``gridsim.__all__``): every
  function says what each parameter is and what it returns; the main entry
  points carry an example (run by tests/test_api.py as doctests).
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import gridsim

ROOT = Path(__file__).resolve().parents[1]

#: numpydoc checks every public function and class must pass (see numpydoc's validation docs):
#: GL08 no docstring; SS01-SS06 the summary line; PR01/PR02 parameters documented and none unknown;
#: PR04 a parameter without its type; RT01 a function without a Returns section.
FUNCTION_CHECKS = {"GL08", "SS01", "SS02", "SS03", "SS04", "SS05", "SS06", "PR01", "PR02", "PR04", "RT01"}
CLASS_CHECKS = {"GL08", "SS01", "SS02", "SS03", "SS04", "SS05", "SS06"}
#: The entry points a newcomer starts from: each shows itself in an Examples section.
MAIN_ENTRY_POINTS = {"load_system", "load_scenario", "simulate", "summarize", "run_sweep", "write_bundle",
                     "run_cascade", "run_fast_cascade", "system_from_net", "parse_scenario"}


def test_ruff_finds_nothing():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    done = subprocess.run([ruff, "check", "--no-cache", "gridsim", "tests", "benchmarks"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_code_is_copied():
    pylint = pytest.importorskip("pylint.lint")
    done = subprocess.run([sys.executable, "-m", "pylint", "--disable=all", "--enable=duplicate-code",
                           "--min-similarity-lines=4", "--ignore-imports=yes", "--ignore-docstrings=yes",
                           "--ignore-comments=yes", "--ignore-signatures=yes", "--score=no", "gridsim"],
                          cwd=ROOT, capture_output=True, text=True)
    assert pylint and done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("name", sorted(n for n in gridsim.__all__ if n != "__version__"))
def test_the_public_api_is_documented_numpy_style(name):
    validate = pytest.importorskip("numpydoc.validate").validate
    obj = getattr(gridsim, name)
    checks = CLASS_CHECKS if isinstance(obj, type) else FUNCTION_CHECKS
    if name in MAIN_ENTRY_POINTS:
        checks = checks | {"EX01"}
    found = validate(f"{obj.__module__}.{obj.__qualname__}")
    failing = [f"{code} {message}" for code, message in found["errors"] if code in checks]
    assert not failing, f"{name}: " + "; ".join(failing)


def test_the_numpydoc_check_catches_an_undocumented_parameter():
    validate = pytest.importorskip("numpydoc.validate").validate
    module = importlib.import_module("gridsim.analysis.sweep.folder")
    codes = {code for code, _ in validate(f"{module.__name__}.sweep_to_folder")["errors"]}
    assert "PR01" not in codes and "RT01" not in codes  # documented
    codes = {code for code, _ in validate("gridsim.results.staging.remove_stale_stages")["errors"]}
    assert "PR01" in codes  # its parameters are described in prose, not in a Parameters section


#: The libraries whose import may be deferred inside a function (and why: seconds at import, needed by few runs;
#: Dask's distributed, an optional extra, only by sweeps on a cluster).
HEAVY = ("pandapower", "wntr", "lightsim2grid", "matplotlib", "distributed", "numba")


def test_every_deferred_import_outside_the_cli_is_of_a_heavy_library():
    deferred = []
    for path in sorted((ROOT / "gridsim").rglob("*.py")):
        if path.parent.name == "cli":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if "noqa: PLC0415" in line and line.lstrip().startswith(("import ", "from ")):
                module = line.split()[1]
                if not module.startswith(HEAVY):
                    deferred.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not deferred, "\n".join(deferred)
