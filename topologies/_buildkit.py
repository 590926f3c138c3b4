"""Helpers shared by the topology builders (``topologies/<name>/build_grid.py``): developer tools only.

gridsim never imports this; a builder imports it by putting ``topologies/`` on its path.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pandapower as pp
import pandapower.toolbox as tb
import pandapower.topology as top


def load_mw(customers: int, kw_per_customer: float, power_factor: float) -> tuple[float, float]:
    """Active and reactive demand of ``customers`` customers."""
    p_mw = customers * kw_per_customer / 1000.0
    q_mvar = p_mw * math.tan(math.acos(power_factor))
    return round(p_mw, 6), round(q_mvar, 6)


def tap_changer(taps: tuple[str, int, float]) -> dict:
    """Keyword arguments describing an on-load tap changer, at its neutral tap."""
    side, steps, step = taps
    return {
        "tap_side": side,
        "tap_neutral": 0,
        "tap_min": -steps,
        "tap_max": steps,
        "tap_step_percent": step,
        "tap_pos": 0,
        "tap_changer_type": "Ratio",
    }


def set_taps(net: pp.pandapowerNet, levels: tuple[float, ...], targets: dict[float, float], rounds: int = 10) -> None:
    """Emulate on-load tap changers: bring each LV bus near its target voltage.

    Transformers are adjusted from the highest voltage ``levels`` down, one
    power flow per level, until no tap moves. Parallel units see the same bus
    and so get the same tap. A higher tap on the HV side lowers the LV
    voltage; on the LV side it raises it.
    """
    trafo = net.trafo
    for _ in range(rounds):
        moved = False
        for vn_hv in levels:
            pp.runpp(net, numba=False)
            for t in trafo.index[trafo.vn_hv_kv == vn_hv]:
                lv = trafo.at[t, "lv_bus"]
                target = targets[net.bus.at[lv, "vn_kv"]]
                error_pct = 100.0 * (net.res_bus.at[lv, "vm_pu"] - target)
                sign = 1 if trafo.at[t, "tap_side"] == "hv" else -1
                steps = round(error_pct / trafo.at[t, "tap_step_percent"])
                pos = trafo.at[t, "tap_pos"] + sign * steps
                pos = int(min(max(pos, trafo.at[t, "tap_min"]), trafo.at[t, "tap_max"]))
                if pos != trafo.at[t, "tap_pos"]:
                    trafo.at[t, "tap_pos"] = pos
                    moved = True
        if not moved:
            break
    tb.clear_result_tables(net)


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def open_buses(net: pp.pandapowerNet, buses: set[int]) -> None:
    """Take every line and transformer touching ``buses`` out of service."""
    line, trafo = net.line, net.trafo
    line.loc[line.from_bus.isin(buses) | line.to_bus.isin(buses), "in_service"] = False
    trafo.loc[trafo.hv_bus.isin(buses) | trafo.lv_bus.isin(buses), "in_service"] = False


def energised_buses(net: pp.pandapowerNet) -> set[int]:
    """Buses connected to an in-service external grid over in-service branches."""
    graph = top.create_nxgraph(net, include_out_of_service=False)
    live: set[int] = set()
    for b in net.ext_grid.bus[net.ext_grid.in_service]:
        live |= set(top.connected_component(graph, b))
    return live


def max_loading(net: pp.pandapowerNet) -> float:
    return max(net.res_line.loading_percent.max(), net.res_trafo.loading_percent.max())


def write_outputs(here: Path, net: pp.pandapowerNet, substations: list[dict], customers: list[dict]) -> None:
    """``grid.json``, ``substations.csv`` and ``customers.csv`` of a topology."""
    pp.to_json(net, str(here / "grid.json"))
    write_csv(here / "substations.csv", substations)
    write_csv(here / "customers.csv", customers)


class Written:
    """The outputs of :func:`write_outputs` read back, with the maps every ``--check`` needs."""

    def __init__(self, here: Path):
        self.net = pp.from_json(str(here / "grid.json"))
        with open(here / "substations.csv", newline="") as f:
            self.sites = {row["name"]: row for row in csv.DictReader(f)}
        with open(here / "customers.csv", newline="") as f:
            self.customers = {row["load"]: int(row["customers"]) for row in csv.DictReader(f)}
        net = self.net
        bus_index = dict(zip(net.bus.name, net.bus.index, strict=True))
        self.site_buses = {name: {bus_index[b] for b in row["buses"].split(";")} for name, row in self.sites.items()}
        self.site_of_bus = {b: name for name, buses in self.site_buses.items() for b in buses}
        self.load_site = dict(zip(net.load.name, net.load.bus.map(self.site_of_bus), strict=True))
        self.load_mw = dict(zip(net.load.name, net.load.p_mw, strict=True))


class Checks:
    """Counts failed checks and prints each one's verdict."""

    def __init__(self):
        self.failures = 0

    def report(self, passed: bool, what: str) -> None:
        self.failures += not passed
        print(f"[{'ok' if passed else 'FAIL'}] {what}")

    def done(self) -> bool:
        print(f"{self.failures} check(s) failed" if self.failures else "all checks passed")
        return self.failures == 0
