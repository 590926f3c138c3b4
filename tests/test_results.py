"""The results bundle: complete or absent, valid JSON, ids that fit on any file system."""

from __future__ import annotations

import json
import signal
from dataclasses import replace

import pytest
from conftest import three_sites

from gridsim.engine.simulation import simulate
from gridsim.errors import InputError
from gridsim.results import run_id, write_bundle
from gridsim.scenario.schema import parse_scenario

STEPS = "  - {at_min: 0, action: open_breakers, technique: T0855, targets: {kind: substation, ids: [S1]}}\n"


def result_named(name: str = "t"):
    return simulate(three_sites(), parse_scenario(f"name: {name}\nsteps:\n{STEPS}"))


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, SystemExit, RuntimeError])
def test_an_interrupted_write_leaves_nothing(tmp_path, monkeypatch, interruption):
    import gridsim.report

    def fail(*_a, **_k):
        raise interruption()

    monkeypatch.setattr(gridsim.report, "plot_timeline", fail)
    with pytest.raises(interruption):
        write_bundle(result_named(), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_sigterm_becomes_a_clean_exit():
    from gridsim.cli.common import exit_on_sigterm

    with pytest.raises(SystemExit) as exc:
        exit_on_sigterm(signal.SIGTERM, None)
    assert exc.value.code == 128 + signal.SIGTERM


def test_long_names_give_short_distinct_ids(tmp_path):
    a, b = result_named("x" * 300), result_named("x" * 299 + "y")
    assert len(run_id(a)) <= 100 and run_id(a) != run_id(b)
    assert write_bundle(a, tmp_path, plot=False).is_dir()


def test_non_finite_figures_are_written_as_null(tmp_path):
    result = result_named()
    result = replace(result, horizon_min=float("inf"))
    bundle = write_bundle(result, tmp_path, plot=False)
    text = (bundle / "summary.json").read_text()
    assert json.loads(text)["horizon_h"] is None and "Infinity" not in text


def test_a_file_in_the_way_is_a_user_error(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InputError, match="is a file, not a folder"):
        write_bundle(result_named(), tmp_path / "afile", plot=False)
