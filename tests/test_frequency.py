"""The frequency model against hand-solved cases, and through the clock (MadIoT on the WSCC 9-bus system)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from conftest import bundled_run, loaded_system

from gridsim.errors import InputError
from gridsim.loading import load_system
from gridsim.metrics import summarize
from gridsim.model.dynamics import FrequencySettings, Machine
from gridsim.scenario.schema import load_scenario
from gridsim.sim.frequency import blackout_threshold, frequency_response
from gridsim.sim.simulation import simulate

REPO = Path(__file__).resolve().parents[1]
ONE = [Machine(rating_mva=500.0, inertia_s=5.0, p_mw=300.0, max_mw=500.0)]


def test_without_governor_or_damping_the_frequency_falls_at_the_swing_equation_rate():
    # df/dt = -dP f0 / (2 H S): 50 MW on 5 s x 500 MVA at 60 Hz is -0.6 Hz/s.
    settings = FrequencySettings(governor_s=1e9, damping=0.0, ufls=(), trip_below_hz=0.0, duration_s=1.0)
    response = frequency_response(ONE, 300.0, 50.0, settings)
    assert response.final_hz == pytest.approx(60.0 - 0.6, abs=1e-3)


def test_the_steady_state_follows_droop_and_damping():
    # Δf = -ΔP / (S / (R f0) + D PL / f0): 50 MW -> -50 / (500/3 + 300/60) Hz.
    settings = FrequencySettings(ufls=(), duration_s=120.0)
    response = frequency_response(ONE, 300.0, 50.0, settings)
    assert response.final_hz == pytest.approx(60.0 - 50.0 / (500.0 / (0.05 * 60.0) + 300.0 / 60.0), abs=5e-3)
    assert not response.tripped and response.nadir_hz < response.final_hz  # it overshoots first


def test_shedding_stages_cut_their_shares_and_the_generators_trip_below_their_limit():
    settings = FrequencySettings(governor_s=20.0)
    mild = frequency_response(ONE, 300.0, 60.0, settings)
    assert mild.stages >= 1 and mild.shed_share == pytest.approx(sum(s for _, s in settings.ufls[:mild.stages]))
    assert not mild.tripped
    severe = frequency_response(ONE, 300.0, 250.0, settings)
    assert severe.tripped and severe.nadir_hz < settings.trip_below_hz and severe.trip_time_s > 0


def test_blackout_threshold_is_where_the_generators_start_to_trip():
    settings = FrequencySettings(governor_s=10.0)
    threshold = blackout_threshold(ONE, 300.0, settings)
    assert threshold is not None
    assert frequency_response(ONE, 300.0, 300.0 * (threshold + 0.2) / 100, settings).tripped
    assert not frequency_response(ONE, 300.0, 300.0 * (threshold - 0.2) / 100, settings).tripped


@pytest.fixture(scope="module")
def madiot():
    """The MadIoT scenario and its system, loaded once: the tests only read them."""
    plan = load_scenario(REPO / "attacks" / "madiot-2018.yaml")
    return plan, loaded_system(plan.system)


def test_madiot_thirty_percent_sheds_load_without_tripping_the_generators(madiot):
    plan, system = madiot
    summary = summarize(simulate(system, plan))
    event = summary["frequency"]["events"][0]
    assert event["imbalance_mw"] == pytest.approx(94.5) and not event["tripped"]
    assert 58.3 < event["nadir_hz"] < 59.1
    # The shedding is load lost: its share of the raised demand.
    assert summary["peak_mw_lost"] == pytest.approx(event["ufls_share"] * 409.5, rel=1e-3)
    assert summary["frequency"]["blackout_demand_increase_pct"] == pytest.approx(79.8, abs=0.5)


def test_a_larger_step_blacks_the_system_out_and_the_generators_restart(madiot):
    plan, system = madiot
    steps = tuple(dataclasses.replace(s, factor=1.9) if s.action == "scale_loads" else s for s in plan.steps)
    result = simulate(system, dataclasses.replace(plan, steps=steps))
    trips = [e for e in result.events if e.cause == "frequency" and e.state == "out"]
    assert len(trips) == 3 and all(e.t_min == 10.0 for e in trips)
    summary = summarize(result)
    assert summary["peak_pct_lost"] == pytest.approx(100.0)
    restarts = [e.t_min for e in result.events if e.element.startswith("gen:") and e.state == "in"]
    assert restarts and min(restarts) == pytest.approx(10.0 + 4 * 60)  # generator_restart_h = 4


def test_an_external_grid_holds_the_frequency():
    assert loaded_system("ukraine-2015").frequency is None
    _, system, result = bundled_run("ukraine-2015")  # attacks/ukraine-2015.yaml on its system, run once
    assert system.frequency is None and "frequency" not in summarize(result)


@pytest.mark.parametrize("table, message", [
    ("droop = 2.0", r"power.frequency.droop must be a number in \[0.005, 0.5\]"),
    ("ufls = [[58.0, 0.1], [59.0, 0.1]]", r"stages in falling frequency"),
    ("ufls = [[59.0, 0.7], [58.0, 0.7]]", r"adding up to at most 1"),
    ("machines = \"nope.csv\"", r"nope.csv: file not found \(power.frequency.machines\)"),
    ("spin = 3", r"unknown key power.frequency.spin"),
])
def test_bad_frequency_settings_are_refused(stock_nets_built_once, tmp_path, table, message):
    (tmp_path / "system.toml").write_text(f'name = "t"\n[power]\nsource = "pandapower:case9"\n'
                                          f"[power.frequency]\n{table}\n")
    with pytest.raises(InputError, match=message):
        load_system(tmp_path)
