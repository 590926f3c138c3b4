"""The bundled ieee118-city system and scenario: water and traffic suffer hours after the grid attack."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import bundled_run, loaded_system

from gridsim.metrics import summarize

REPO = Path(__file__).resolve().parents[1]
SCENARIO = REPO / "attacks" / "ieee118-city.yaml"


def city_run():
    """The scenario on its system, DC, seed 0 (the scenario names none), once per session."""
    return bundled_run("ieee118-city")[2]


def first(result, element: str, state: str = "out"):
    return next(e for e in result.events if e.element == element and e.state == state)


def test_the_system_loads_with_every_layer():
    system = loaded_system(str(REPO / "topologies" / "ieee118-city"))
    counts = system.layers.counts()
    assert system.layers.present == ["water", "transport", "telecom"]
    assert counts["pump"] == 2 and counts["junction"] == 92 and counts["signal"] == 39 and counts["rail"] == 2
    assert counts["dependency"] == 85
    assert system.layers.water.population == pytest.approx(150_000)


def test_water_fails_hours_after_the_pumps_lose_power():
    result = city_run()
    pump = first(result, "pump:10")
    assert pump.t_min == 5.0 and pump.cause == "dependency" and pump.caused_by == "bus:12"
    layers = summarize(result)["layers"]
    # Net3's tanks carry the city for hours: the first people lose water well after the attack.
    assert 3 * 60 < layers["first_people_without_water_min"] < 8 * 60
    assert layers["peak_people_without_water"] == pytest.approx(150_000)
    # Everyone has water again by the end of the horizon.
    assert result.layer_series["people_without_water"][-1] == 0


def test_signals_go_dark_as_their_batteries_run_out():
    result = city_run()
    dark = [e for e in result.events if e.element.startswith("signal:") and e.state == "out"]
    at_once = {e.element for e in dark if e.cause == "dependency"}
    later = {e.t_min - 5.0 for e in dark if e.cause == "backup-exhausted"}
    assert at_once and later <= {120.0, 180.0, 240.0, 360.0} and len(later) >= 3
    assert summarize(result)["layers"]["peak_travel_time_increase_pct"] > 1.0


def test_the_cooling_water_loop_trips_a_plant_with_its_cause_chain():
    result = city_run()
    gen = first(result, "gen:4")
    junction = first(result, "junction:15")
    assert gen.cause == "backup-exhausted" and gen.caused_by == "junction:15"
    assert gen.t_min == pytest.approx(junction.t_min + 60.0)  # 1 h cooling pond
    # Follow the chain up the log: the junction names the pumps, the pumps their buses.
    assert "pump:10" in junction.detail and "bus:12 down since 0 h 05 min" in junction.detail


def test_the_timeline_carries_the_layer_curves(in_process, tmp_path):
    out = tmp_path / "results"
    done = in_process("run", str(SCENARIO), "--out", str(out), "--no-plot")
    assert done.returncode == 0, done.stderr
    assert "people without water  150,000 at peak" in done.stdout
    bundle = next(out.iterdir())
    header = (bundle / "timeline.csv").read_text().splitlines()[0].split(",")
    assert {"people_without_water", "signals_dark", "travel_time_increase_pct", "rail_lines_stopped"} <= set(header)
    summary = json.loads((bundle / "summary.json").read_text())
    assert summary["layers"]["hydraulic_runs"] >= 2
    served = np.array(city_run().served_mw)
    assert served.min() < served[0]
