"""The bundled Ukraine-2015 case reproduces the reported figures (references in its README)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import bundled_run

from gridsim.metrics import load_outage_hours, summarize
from gridsim.scenario.schema import load_scenario
from gridsim.sim.simulation import simulate

REPORTED_CUSTOMERS = 225_000  # ICS-CERT IR-ALERT-H-16-056-01
REPORTED_ENS_MWH = 73.0  # widely quoted, uncertain: reported beside, not matched


def run():
    """The bundled scenario on its system, run once per session (conftest's bundled_run), and its summary."""
    _, _, result = bundled_run("ukraine-2015")
    return result, summarize(result)


def test_peak_customers_out_within_ten_percent_of_reported():
    assert load_scenario("ukraine-2015").sha256 == bundled_run("ukraine-2015")[0].sha256  # the bundled name: this file
    _, summary = run()
    assert summary["peak_customers_out"] == pytest.approx(REPORTED_CUSTOMERS, rel=0.10)


def test_every_outage_lasts_between_one_and_six_hours():
    result, summary = run()
    hours = load_outage_hours(result)
    hours = hours[np.isfinite(hours)]
    assert len(hours) == 60  # one load per attacked site
    assert hours.min() >= 1.0
    assert hours.max() <= 6.0 + 1e-9
    # Every customer is back, but the wiped serial-to-Ethernet gateways and control centres stay down (in 2015 they
    # were replaced weeks later), so the system is not fully restored, and the summary says what stays down.
    assert summary["time_to_full_restoration_min"] is not None
    assert not summary["fully_restored"]
    down = {entry["element"].split(":", 1)[0] for entry in summary["still_down"]}
    assert down == {"telecom"} and len(summary["still_down"]) == 63


def test_each_company_restores_in_its_reported_time():
    _, summary = run()
    by_op = summary["by_operator"]
    assert set(by_op) == {"kyivoblenergo", "prykarpattyaoblenergo", "chernivtsioblenergo"}
    assert by_op["kyivoblenergo"]["peak_customers_out"] == 80_000
    assert by_op["kyivoblenergo"]["outage_h"] == pytest.approx(3.0, abs=0.25)  # "~3 h" (E-ISAC/SANS)
    assert by_op["prykarpattyaoblenergo"]["outage_h"] == pytest.approx(6.0, abs=0.25)  # "~6 h"


def test_restoration_is_manual_because_the_firmware_was_destroyed():
    _, summary = run()
    assert summary["restorations_by_cause"] == {"restored-manual": 60}


def test_energy_not_served_is_reported_beside_the_quoted_figure():
    # The model's ENS follows from its assumed demand (0.8 kW per customer); the quoted
    # ~73 MWh is uncertain and not matched (topologies/ukraine-2015/README.md explains).
    _, summary = run()
    ens = summary["energy_not_served_mwh"]
    assert ens > REPORTED_ENS_MWH
    # Hand bound: 180 MW of attacked load, each site out between 1 and 6 hours.
    assert 180.0 * 1.0 <= ens <= 180.0 * 6.0


def test_ac_engine_gives_the_same_outage():
    plan, system, _ = bundled_run("ukraine-2015")  # the system as loaded once, only read
    result = simulate(system, plan, flow="ac")
    summary = summarize(result)
    assert summary["peak_customers_out"] == run()[1]["peak_customers_out"]
    assert summary["cascade_depth"] == 0
