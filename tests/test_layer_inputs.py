"""Layers and dependencies in a manifest: every id checked at load, errors name the file and line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gridsim.errors import InputError
from gridsim.loading import load_system

MANIFEST = """\
name = "t"
[power]
source = "pandapower:case9"
[substations]
table = "substations.csv"
[layers.telecom]
sites = "telecom.csv"
[layers.facilities]
table = "facilities.csv"
[dependencies]
table = "dependencies.csv"
"""
FILES = {
    "substations.csv": "name,buses,operator\nA,4;5,op\nB,6;7;8,op\n",
    "telecom.csv": "id,kind,substation,operator\nCC,control_centre,,op\nRTU-A,rtu,A,\nBS-1,base_station,,\n",
    "facilities.csv": "id,kind\ngas,compressor\n",
    "dependencies.csv": ("supplier,dependent,backup_h,restart_min,group,note\n"
                         "bus:4,telecom:RTU-A,4,5,,\n"
                         "telecom:BS-1,telecom:RTU-A,0,0,,backhaul\n"
                         "substation:B,telecom:CC,8,15,,\n"
                         "bus:5,facility:gas,0,0,,\n"
                         "facility:gas,gen:1,6,240,,fuel\n"),
}


def write(tmp_path: Path, manifest: str = MANIFEST, **changes: str) -> Path:
    (tmp_path / "system.toml").write_text(manifest)
    for name, text in {**FILES, **changes}.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_a_system_with_layers_loads_and_counts(tmp_path):
    system = load_system(write(tmp_path))
    layers = system.layers
    assert layers.present == ["telecom", "facilities"]
    assert layers.counts() == {"telecom": 3, "facility": 1, "dependency": 5}
    assert [d.dependent for d in layers.dependencies] == ["telecom:RTU-A", "telecom:RTU-A", "telecom:CC",
                                                          "facility:gas", "gen:1"]
    assert layers.dependencies[0].backup_h == 4.0 and layers.dependencies[0].restart_min == 5.0
    assert layers.telecom["RTU-A"].substation == "A"
    # Every layer file is an input of the run, with its hash.
    assert {Path(p).name for p in system.input_files} >= {"telecom.csv", "facilities.csv", "dependencies.csv"}


@pytest.mark.parametrize("name, text, message", [
    ("dependencies.csv", "supplier,dependent\nbus:99,telecom:CC\n",
     r"dependencies.csv: line 2: supplier 'bus:99': no bus with that index or name"),
    ("dependencies.csv", "supplier,dependent\nbus:4,telecom:NOPE\n",
     r"line 2: dependent 'telecom:NOPE': no telecom with id 'NOPE' in the telecom layer"),
    ("dependencies.csv", "supplier,dependent\nbus:4,bus:5\n",
     r"line 2: dependent 'bus:5': a dependent can be .*, not bus"),
    ("dependencies.csv", "supplier,dependent\n4,telecom:CC\n", r"line 2: supplier '4' must be <kind>:<id>"),
    ("dependencies.csv", "supplier,dependent\nfacility:gas,facility:gas\n",
     r"line 2: facility:gas cannot depend on itself"),
    ("dependencies.csv", "supplier,dependent\nbus:4,telecom:CC\nbus:4,telecom:CC\n",
     r"line 3: telecom:CC on bus:4 is listed twice \(first on line 2\)"),
    ("dependencies.csv", "supplier,dependent,backup_h\nbus:4,telecom:CC,-1\n",
     r"line 2: backup_h must be a number >= 0"),
    ("dependencies.csv", "supplier,dependent,backup_h\nbus:4,telecom:CC,lots\n",
     r"line 2: backup_h must be a number >= 0, got 'lots'"),
    ("dependencies.csv", "supplier,dependent\njunction:J1,telecom:CC\n",
     r"line 2: supplier 'junction:J1': the system has no water layer"),
    ("dependencies.csv", "supplier,dependent\nsubstation:Z,telecom:CC\n",
     r"line 2: supplier 'substation:Z': no substation named 'Z'"),
    ("dependencies.csv", "supplier,dependent\nbus:4,gen:7\n", r"line 2: dependent 'gen:7': no gen"),
    ("dependencies.csv", "supplier\nbus:4\n", r"dependencies.csv: line 1: missing column\(s\) dependent"),
    ("telecom.csv", "id,kind,substation\nRTU-A,rtu,Z\n", r"telecom.csv: line 2: rtu 'RTU-A': no substation named 'Z'"),
    ("telecom.csv", "id,kind,operator\nCC,control_centre,nobody\n",
     r"line 2: control centre 'CC': no substation has operator 'nobody'"),
    ("telecom.csv", "id,kind\nX,base_station\nX,base_station\n", r"line 3: duplicate id 'X'"),
    ("telecom.csv", "id,kind\nX Y,base_station\n", r"line 2: id 'X Y' must not contain spaces"),
    ("facilities.csv", "id,kind\n,compressor\n", r"facilities.csv: line 2: empty id"),
])
def test_bad_layer_tables_name_file_and_line(tmp_path, name, text, message):
    with pytest.raises(InputError, match=message):
        load_system(write(tmp_path, **{name: text}))


@pytest.mark.parametrize("extra, message", [
    ('[layers.water]\nnetwork = "wntr:Net1"\nmode = "guess"\n', r"layers.water.mode must be 'hydraulic' or 'graph'"),
    ('[layers.water]\nnetwork = "wntr:Net1"\npopulation = -3\n', r"layers.water.population must be a number"),
    ('[layers.water]\nnetwork = "wntr:Net1"\nminimum_pressure_m = 30\n',
     r"minimum_pressure_m must be below required_pressure_m"),
    ('[layers.water]\nnetwork = "nowhere.inp"\n', r"nowhere.inp"),
    ('[layers.gas]\ntable = "x.csv"\n', r"unknown key layers.gas"),
    ('[layers.transport]\ndemand = "d.csv"\n', r"file not found \(layers.transport.demand\)"),
])
def test_bad_layer_settings(tmp_path, extra, message):
    manifest = MANIFEST.replace("[dependencies]", extra + "[dependencies]")
    with pytest.raises(InputError, match=message):
        load_system(write(tmp_path, manifest))


def test_missing_layer_file_names_the_key(tmp_path):
    path = write(tmp_path)
    (path / "telecom.csv").unlink()
    with pytest.raises(InputError, match=re.escape("file not found (layers.telecom.sites)")):
        load_system(path)
