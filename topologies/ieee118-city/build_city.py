"""Write the ieee118-city system: a city around buses 1-17 and 117 of IEEE 118, with its water,
roads, rail and telecom, and the dependency edges that tie them to the grid.

Deterministic (no random numbers): the same files every time. Run from anywhere:

    python topologies/ieee118-city/build_city.py

What is assumed, and why, is in README.md beside this file. In short:

- the city is the 15 buses within two hops of bus 12 (about 530 MW of load),
  one utility (``city-utility``) with its own crews; the rest of IEEE 118 is
  the bulk grid around it;
- water: WNTR's Net3 (two pumping stations, two sources, three tanks), its
  pumps fed by city buses with no generator (as in Cleveland, 2003), the
  two treatment plants with diesel generators;
- roads: an 8 x 8 grid of streets 800 m apart laid over the city's buses,
  arterials on three rows and three columns, a traffic signal wherever an
  arterial meets another street, each fed by the nearest city bus;
  evening-peak demand between 16 zones by a gravity model;
- rail: a metro line and a tram line, each stopping when any of its traction
  substations loses power (no backup);
- telecom/SCADA: a control centre, an RTU per city substation reaching it over
  one of four cell sites, cell sites with 8 h batteries (FCC 2007 figure);
- feedback: the plant at bus 10 takes cooling water from a Net3 junction.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pandapower.networks as pn

HERE = Path(__file__).resolve().parent

#: The city: buses within two hops of bus 12 (pandapower indices; the bus *names* are index + 1).
CITY_BUSES = (0, 1, 2, 3, 4, 5, 6, 10, 11, 12, 13, 14, 15, 16, 116)
OPERATOR = "city-utility"
DISTRICT = {0: "north", 1: "north", 2: "centre", 3: "east", 4: "east", 5: "east", 6: "centre", 10: "centre",
            11: "centre", 12: "south", 13: "west", 14: "south", 15: "south", 16: "south", 116: "west"}

# Roads -----------------------------------------------------------------------------------------
GRID = 8  # nodes per side
BLOCK_KM = 0.8
ARTERIAL_LINES = (1, 4, 6)  # rows and columns that are arterials
ARTERIAL = {"capacity_veh_h": 1800.0, "speed_kmh": 50.0}  # two lanes at ~900 veh/h of green per lane
LOCAL = {"capacity_veh_h": 700.0, "speed_kmh": 30.0}
ZONE_STEP = 2  # a demand zone every other node in both directions: 16 zones
PEAK_TRIPS_PER_H = 22000.0  # car trips in the evening peak hour between zones (calibration: README)
GRAVITY_EXPONENT = 2.0
#: Battery hours of the signals, cycled over the signals in order: a third have no battery at all.
SIGNAL_BATTERY_H = (0.0, 2.0, 4.0, 0.0, 6.0, 3.0)

# Rail --------------------------------------------------------------------------------------------
RAIL = {  # id -> (name, riders per peak hour, traction substations as bus indices)
    "metro-1": ("Metro line 1 (north-south)", 14000, (0, 11, 14)),
    "tram-2": ("Tram line 2 (east-west)", 4000, (13, 10, 5)),
}

# Water -------------------------------------------------------------------------------------------
WATER_POPULATION = 150_000
PUMP_FEED = {"10": (12, 0.0, 30), "335": (116, 0.0, 30)}  # pump -> (bus, backup_h, restart_min)
PLANT_FEED = {"Lake": (13, 24.0, 60), "River": (15, 24.0, 60)}  # reservoir -> (bus, diesel hours, restart)
COOLING = ("gen:4", "junction:15", 1.0, 120)  # plant at bus 10 (pandapower gen 4), cooling water, 1 h pond

# Telecom -----------------------------------------------------------------------------------------
CONTROL_CENTRE_BUS, CONTROL_CENTRE_UPS_H = 4, 4.0
CELL_SITES = {"BS-N": 1, "BS-C": 6, "BS-S": 14, "BS-W": 116}  # cell site -> bus
CELL_BATTERY_H = 8.0
RTU_BATTERY_H = 8.0


def main() -> None:
    net = pn.case118()
    coords = {b: tuple(json.loads(net.bus.geo.at[b])["coordinates"]) for b in CITY_BUSES}
    # Ids are pandapower's bus indices (IEEE bus number - 1), as gridsim reads them; a site is named
    # bus<index> like every other bus of a bare case118, so selectors read the same on both.
    name = {b: str(b) for b in CITY_BUSES}
    dependencies: list[tuple] = []

    _write("substations.csv", ["name", "buses", "operator", "voltage_kv", "district", "ieee_bus"],
           [(f"bus{b}", b, OPERATOR, int(net.bus.vn_kv.at[b]), DISTRICT[b], int(net.bus.name.at[b]))
            for b in CITY_BUSES])

    # Roads: a square grid of streets over the bounding box of the city's buses.
    xs, ys = np.array([c[0] for c in coords.values()]), np.array([c[1] for c in coords.values()])
    nodes = {}
    for r in range(GRID):
        for c in range(GRID):
            x = xs.min() + (xs.max() - xs.min()) * c / (GRID - 1)
            y = ys.min() + (ys.max() - ys.min()) * r / (GRID - 1)
            nodes[f"N{r}{c}"] = (r, c, x, y)
    _write("roads_nodes.csv", ["id", "x_km", "y_km"],
           [(n, round(c * BLOCK_KM, 3), round(r * BLOCK_KM, 3)) for n, (r, c, _, _) in nodes.items()])
    links = []
    for n, (r, c, _, _) in nodes.items():
        for dr, dc in ((0, 1), (1, 0), (0, -1), (-1, 0)):
            rr, cc = r + dr, c + dc
            if 0 <= rr < GRID and 0 <= cc < GRID:
                kind = ARTERIAL if (dr == 0 and r in ARTERIAL_LINES) or (dc == 0 and c in ARTERIAL_LINES) else LOCAL
                links.append((f"{n}-N{rr}{cc}", n, f"N{rr}{cc}", kind["capacity_veh_h"],
                              round(60.0 * BLOCK_KM / kind["speed_kmh"], 3)))
    _write("roads_links.csv", ["id", "from", "to", "capacity_veh_h", "free_flow_min"], links)

    signals = []
    for n, (r, c, x, y) in nodes.items():
        if r in ARTERIAL_LINES or c in ARTERIAL_LINES:
            bus = min(CITY_BUSES, key=lambda b: (coords[b][0] - x) ** 2 + (coords[b][1] - y) ** 2)
            sid = f"S-{n[1:]}"
            battery = SIGNAL_BATTERY_H[len(signals) % len(SIGNAL_BATTERY_H)]
            signals.append((sid, n, bus, battery))
            note = "LED signal, no battery" if battery == 0 else f"LED signal, {battery:g} h battery"
            dependencies.append((f"bus:{name[bus]}", f"signal:{sid}", battery, 0, "", note))
    _write("signals.csv", ["id", "node", "district"],
           [(sid, n, DISTRICT[bus]) for sid, n, bus, _ in signals])

    zones = [n for n, (r, c, _, _) in nodes.items() if r % ZONE_STEP == 0 and c % ZONE_STEP == 0]
    weight = {z: 1.0 + (1.0 if nodes[z][0] in (2, 4) and nodes[z][1] in (2, 4) else 0.0) for z in zones}
    pairs = []
    for o in zones:
        for d in zones:
            if o == d:
                continue
            dist = abs(nodes[o][0] - nodes[d][0]) + abs(nodes[o][1] - nodes[d][1])
            pairs.append((o, d, weight[o] * weight[d] / dist ** GRAVITY_EXPONENT))
    total = sum(w for _, _, w in pairs)
    _write("demand.csv", ["origin", "destination", "trips_per_h"],
           [(o, d, round(PEAK_TRIPS_PER_H * w / total, 2)) for o, d, w in pairs])

    _write("rail.csv", ["id", "name", "riders_per_h"], [(rid, nm, riders) for rid, (nm, riders, _) in RAIL.items()])
    for rid, (_, _, feeds) in RAIL.items():
        for bus in feeds:
            dependencies.append((f"bus:{name[bus]}", f"rail:{rid}", 0, 10, "", "traction substation, no backup"))

    for pump, (bus, backup, restart) in PUMP_FEED.items():
        dependencies.append((f"bus:{name[bus]}", f"pump:{pump}", backup, restart, "",
                             "pumping station without generator"))
    for plant, (bus, backup, restart) in PLANT_FEED.items():
        dependencies.append((f"bus:{name[bus]}", f"reservoir:{plant}", backup, restart, "",
                             f"treatment plant with {backup:g} h of diesel"))
    gen, junction, backup, restart = COOLING
    dependencies.append((junction, gen, backup, restart, "", "cooling water from the city network, 1 h pond"))

    telecom = [("CC-CITY", "control_centre", "", OPERATOR)]
    telecom += [(bs, "base_station", "", "") for bs in CELL_SITES]
    dependencies.append((f"bus:{name[CONTROL_CENTRE_BUS]}", "telecom:CC-CITY", CONTROL_CENTRE_UPS_H, 15, "",
                         f"control centre, {CONTROL_CENTRE_UPS_H:g} h UPS"))
    for bs, bus in CELL_SITES.items():
        dependencies.append((f"bus:{name[bus]}", f"telecom:{bs}", CELL_BATTERY_H, 10, "",
                             f"cell site, {CELL_BATTERY_H:g} h battery"))
    for b in CITY_BUSES:
        rtu = f"RTU-{b}"
        telecom.append((rtu, "rtu", f"bus{b}", OPERATOR))
        dependencies.append((f"substation:bus{b}", f"telecom:{rtu}", RTU_BATTERY_H, 5, "",
                             f"station battery {RTU_BATTERY_H:g} h"))
        cell = min(CELL_SITES, key=lambda s: math.dist(coords[CELL_SITES[s]], coords[b]))
        dependencies.append((f"telecom:{cell}", f"telecom:{rtu}", 0, 0, "", "cellular backhaul"))
    _write("telecom.csv", ["id", "kind", "substation", "operator"], telecom)
    _write("dependencies.csv", ["supplier", "dependent", "backup_h", "restart_min", "group", "note"], dependencies)


def _write(name: str, header: list[str], rows: list[tuple]) -> None:
    with open(HERE / name, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


if __name__ == "__main__":
    main()
