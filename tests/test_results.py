"""The results bundle: complete or absent, valid JSON, ids that fit on any file system, the umask's permissions,
stale staging folders cleaned; and its plot."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from importlib import metadata

import pytest
from conftest import three_sites

from gridsim.errors import InputError
from gridsim.results.bundle import run_id, run_manifest, safe_name, write_bundle
from gridsim.results.staging import remove_stale_stages, staged_folder
from gridsim.scenario.schema import parse_scenario
from gridsim.sim.simulation import simulate

STEPS = "  - {at_min: 0, action: open_breakers, technique: T0855, targets: {kind: substation, ids: [S1]}}\n"


@functools.cache
def result_named(name: str = "t"):
    """S1 opened on three_sites, the scenario named ``name``: simulated once per name, only read (or copied with
    ``dataclasses.replace``) by the tests."""
    return simulate(three_sites(), parse_scenario(f"name: {name}\nsteps:\n{STEPS}"))


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, SystemExit, RuntimeError])
def test_an_interrupted_write_leaves_nothing(tmp_path, monkeypatch, interruption):
    import gridsim.results.bundle

    def fail(*_a, **_k):
        raise interruption()

    monkeypatch.setattr(gridsim.results.bundle, "plot_timeline", fail)
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


@pytest.mark.parametrize("umask, folder_mode, file_mode", [(0o027, 0o750, 0o640), (0o002, 0o775, 0o664)],
                         ids=["umask-027", "umask-002"])
def test_bundle_folders_and_files_get_the_permissions_of_the_umask(tmp_path, umask, folder_mode, file_mode):
    import stat

    old = os.umask(umask)
    try:
        bundle = write_bundle(result_named(), tmp_path / "out")
    finally:
        os.umask(old)
    assert stat.S_IMODE(bundle.stat().st_mode) == folder_mode  # tempfile.mkdtemp would give 0700
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == folder_mode
    for path in bundle.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == file_mode, path.name


def test_names_in_other_scripts_stay_readable_and_distinct(tmp_path):
    kyiv, lviv = result_named("Київ"), result_named("Львів")
    assert run_id(kyiv).startswith("Київ_three-sites_") and run_id(lviv).startswith("Львів_three-sites_")
    assert write_bundle(kyiv, tmp_path, plot=False).name != write_bundle(lviv, tmp_path, plot=False).name
    # What cannot be kept (emoji, control characters) leaves a hash, so such names still differ.
    fire, water = run_id(result_named("🔥")), run_id(result_named("💧"))
    assert fire != water and "🔥" not in fire
    assert safe_name("a\tb") != safe_name("a\nb")
    # Spaces and ASCII punctuation read as a dash, as before: ids of plain names do not change.
    assert safe_name("top-load-lines_pandapower:case9_dc_seed0") == "top-load-lines_pandapower-case9_dc_seed0"
    long_a, long_b = safe_name("Ж" * 300), safe_name("Ж" * 299 + "Щ")
    assert long_a != long_b and len(long_a.encode()) <= 100 and long_a.startswith("Ж" * 40)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_partial_folders_of_killed_runs_are_removed_and_no_others(tmp_path):
    from gridsim.results.staging import STALE_AFTER_S, _host_tag

    host = _host_tag()
    dead = tmp_path / f".t_three-sites_dc_seed0.{host}-{_dead_pid()}-0123abcd.partial"
    alive = tmp_path / f".t_three-sites_dc_seed0.{host}-{os.getpid()}-0123abcd.partial"
    other_host = tmp_path / f".t_three-sites_dc_seed0.{'0' * 6 if host != '0' * 6 else '1' * 6}-{_dead_pid()}-" \
                            "0123abcd.partial"
    old_style = tmp_path / ".t_three-sites_dc_seed0.k3j_9x0a.partial"  # tempfile.mkdtemp's, from earlier versions
    old_style_recent = tmp_path / ".u_three-sites_dc_seed0.abcdefgh.partial"
    not_ours = tmp_path / ".my-notes.partial"
    for folder in (dead, alive, other_host, old_style, old_style_recent, not_ours):
        folder.mkdir()
        (folder / "summary.json").write_text("{}")
    a_file = tmp_path / f".x.{host}-{_dead_pid()}-0123abcd.partial"
    a_file.write_text("mine")
    week_ago = time.time() - STALE_AFTER_S - 3600
    for folder in (old_style, other_host):
        for path in (folder / "summary.json", folder):
            os.utime(path, (week_ago, week_ago))

    bundle = write_bundle(result_named(), tmp_path, plot=False)

    left = {p.name for p in tmp_path.iterdir()}
    assert left == {bundle.name, alive.name, old_style_recent.name, not_ours.name, a_file.name}


def test_remove_stale_stages_spares_a_symlink_and_a_running_write(tmp_path):
    from gridsim.results.staging import _host_tag

    target = tmp_path / "precious"
    target.mkdir()
    (target / "data").write_text("keep")
    out = tmp_path / "out"
    out.mkdir()
    (out / f".x.{_host_tag()}-{_dead_pid()}-0123abcd.partial").symlink_to(target)
    with staged_folder(out, "y") as stage:
        (stage.path / "f").write_text("being written")
        assert remove_stale_stages(out) == []  # our own pid is alive
        assert stage.path.is_dir()
    assert (target / "data").read_text() == "keep"
    assert (out / "y" / "f").is_file()


def test_manifest_records_wntr_lightsim2grid_and_every_input():
    result = result_named()
    system = replace(result.system, input_files={"pandapower:case118": "ab" * 32, "/x/system.toml": "cd" * 32})
    manifest = run_manifest(replace(result, system=system), command=["gridsim", "run"])
    assert manifest["inputs"]["system"]["files"] == {"pandapower:case118": "ab" * 32, "/x/system.toml": "cd" * 32}
    versions = manifest["versions"]
    assert {"gridsim", "pandapower", "numpy", "scipy", "pandas", "networkx", "python"} <= set(versions)
    assert versions["wntr"] == metadata.version("wntr")
    assert versions["lightsim2grid"] == metadata.version("lightsim2grid")


def test_summary_json_says_how_many_ratings_gridsim_set(tmp_path):
    result = result_named()
    as_given = json.loads((write_bundle(result, tmp_path / "a", plot=False) / "summary.json").read_text())
    assert as_given["ratings"] | {"rule": None} == \
        {"branches": 3, "derived": 0, "raised": 0, "never_trip": 0, "rule": None}
    system = replace(result.system, rating_notes={"derived": 2, "raised": 1})
    derived = json.loads((write_bundle(replace(result, system=system), tmp_path / "b", plot=False)
                          / "summary.json").read_text())
    assert derived["ratings"]["derived"] == 2 and derived["ratings"]["raised"] == 1
    assert "Motter" in derived["ratings"]["rule"]


def test_an_empty_out_name_is_refused():
    with pytest.raises(InputError, match="empty folder name"):
        write_bundle(result_named(), "", plot=False)


def test_step_labels_that_would_meet_are_stacked(monkeypatch):
    from gridsim.report.plots import _stack_labels, _step_labels

    labels = _step_labels([(0, "step 0 access (T0865)"), (0, "step 1 access (T0859)"), (5, "step 2 x (T0814)"),
                           (12, "step 3 y (T0857)"), (360, "step 4 z (T0855)"), (30, "step 5 trip (none)")])
    assert labels[0] == (0.0, "0:00 T0865 T0859") and labels[3] == (0.5, "0:30 trip")
    placed = _stack_labels(labels, 8.0, (0.0, 12.0))
    rows = {text.split()[0]: row for _x, text, _ha, row in placed}
    assert rows["0:00"] == 0 and rows["0:05"] == 1 and rows["0:12"] == 2
    assert rows["6:00"] == 0  # far from the others: back on the first row
    near_end = _stack_labels([(11.99, "11:59 T0855")], 8.0, (0.0, 12.0))
    assert near_end[0][2] == "right"  # would leave the plot: runs left of its line


def test_timeline_plots_the_load_lost_on_its_own_scale(tmp_path, monkeypatch):
    import matplotlib.figure

    seen = {}
    original = matplotlib.figure.Figure.savefig

    def record(fig, *args, **kwargs):
        seen.update({ax.get_ylabel(): ax.get_ylim() for ax in fig.axes})
        return original(fig, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", record)
    write_bundle(result_named(), tmp_path)  # S1 out: 10 MW lost of 60 MW
    assert seen["load lost (MW)"][1] == pytest.approx(11.0)
    assert seen["load (MW)"][1] > 60
