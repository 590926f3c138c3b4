"""Build a stylised fleet of twelve wind and solar plants on a regional grid (the sPower case, 2019).

Writes ``grid.json`` and ``substations.csv`` beside this file. Deterministic;
gridsim never runs it. ``--check`` runs a power flow of the result.

Public facts (E-ISAC / NERC "Lesson Learned: Risks Posed by Firewall Firmware
Vulnerabilities", September 2019; reporting on sPower, 5 March 2019): a
known firewall vulnerability let an outsider reboot the firewalls at the
control centre and at about a dozen generation sites of a renewable
operator, for about 10 to 12 hours, each outage under 5 minutes; the sites
lost communications with the control centre; generation was not affected
(about 500 MW of wind and solar).

Everything else is assumed: twelve plants of 42 MW (504 MW) on 138 kV
collector substations, two 345/138 kV interconnections to the regional
grid (an external grid), 300 MW of local load.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import pandapower as pp

HERE = Path(__file__).resolve().parent
PLANTS = [(f"SP-{i:02d}", "solar" if i <= 8 else "wind") for i in range(1, 13)]
PLANT_MW = 42.0


def build():
    net = pp.create_empty_network(f_hz=60.0)
    grid = pp.create_bus(net, 345, name="REGION-345")
    pp.create_ext_grid(net, grid, name="regional grid")
    hubs = []
    for k in range(2):
        hub = pp.create_bus(net, 138, name=f"HUB-{k + 1} 138kV")
        hv = pp.create_bus(net, 345, name=f"HUB-{k + 1} 345kV")
        pp.create_line_from_parameters(net, grid, hv, length_km=60, r_ohm_per_km=0.03, x_ohm_per_km=0.33,
                                       c_nf_per_km=11, max_i_ka=2.0, name=f"REGION-HUB{k + 1}")
        pp.create_transformer_from_parameters(net, hv, hub, sn_mva=400, vn_hv_kv=345, vn_lv_kv=138, vkr_percent=0.3,
                                              vk_percent=12, pfe_kw=0, i0_percent=0, name=f"HUB-{k + 1} 345/138")
        pp.create_load(net, hub, p_mw=150, q_mvar=30, name=f"HUB-{k + 1} load")
        hubs.append(hub)
    for i, (name, kind) in enumerate(PLANTS):
        bus = pp.create_bus(net, 138, name=f"{name} 138kV")
        pp.create_line_from_parameters(net, hubs[i % 2], bus, length_km=25 + 5 * (i % 4), r_ohm_per_km=0.08,
                                       x_ohm_per_km=0.4, c_nf_per_km=9, max_i_ka=0.6, name=f"{name} tie")
        pp.create_sgen(net, bus, p_mw=PLANT_MW, q_mvar=0, name=f"{name} {kind}", type=kind.upper())
    return net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    net = build()
    pp.to_json(net, str(HERE / "grid.json"))
    with open(HERE / "substations.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["name", "buses", "operator", "kind", "voltage_kv"])
        for name, kind in PLANTS:
            writer.writerow([name, f"{name} 138kV", "spower", kind, 138])
        for k in (1, 2):
            writer.writerow([f"HUB-{k}", f"HUB-{k} 138kV;HUB-{k} 345kV", "utility", "substation", 345])
        writer.writerow(["REGION", "REGION-345", "utility", "interconnection", 345])
    if args.check:
        again = pp.from_json(str(HERE / "grid.json"))
        pp.runpp(again)
        print(f"ok: {len(again.bus)} buses, plants {again.res_sgen.p_mw.sum():.0f} MW, load "
              f"{again.res_load.p_mw.sum():.0f} MW, import {again.res_ext_grid.p_mw.sum():.0f} MW, "
              f"max line loading {again.res_line.loading_percent.max():.0f} %")


if __name__ == "__main__":
    main()
