"""Build the texas-2021 stress case: an islanded grid whose gas supply and water depend on it.

Writes, beside this file: ``grid.json`` (pandapower net), ``generators.csv``
(fuel of each generator), ``facilities.csv`` and ``dependencies.csv``.
Deterministic; gridsim never runs it. ``--check`` runs a power flow of the result.

The grid is IEEE 118 (pandapower ``case118``) made an island, as ERCOT is
one: its external grid becomes a gas-fired slack generator, and the units
``case118`` dispatches at zero (synchronous condensers in the original
data) get no active-power capacity. Fuels are assigned by size (an
assumption; README.md): the slack unit is gas, the two largest others are
nuclear, the next two coal, the five smallest dispatched units wind, the
rest gas.

The loops of February 2021 (FERC-NERC, *The February 2021 Cold Weather
Outages in Texas and the South Central United States*, November 2021):

- gas processing plants and compressor stations run on electricity from
  feeders that rolling outages cut; a gas-fired unit runs on line pack and
  on-site fuel for a few hours after its gas supply stops, then trips;
- water pumping stations on feeders in the rotation lose pressure.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import pandapower as pp
import pandapower.networks as pn

HERE = Path(__file__).resolve().parent
#: gas facility -> (feeder load index, generator buses it supplies: pandapower bus index ranges)
GAS = {"gas-west": (52, range(0, 40)), "gas-central": (58, range(40, 80)), "gas-south": (95, range(80, 118))}
LINE_PACK_H = 4.0  # hours a gas unit runs after its supply stops (line pack and on-site fuel; assumed)
GAS_RESTART_MIN = 180
WATER_PUMP_FEEDERS = {"10": 28, "335": 33}  # Net3 pump -> load index of its feeder
PLANT_FEEDERS = {"Lake": (30, 24.0), "River": (32, 24.0)}  # treatment plant -> (load index, diesel hours)


def build():
    net = pn.case118()
    ext = net.ext_grid.iloc[0]
    slack = pp.create_gen(net, int(ext.bus), p_mw=0.0, vm_pu=float(ext.vm_pu), max_p_mw=float(ext.max_p_mw),
                          min_p_mw=0.0, slack=True, name="slack gas unit")
    net.ext_grid.drop(net.ext_grid.index, inplace=True)
    condensers = (net.gen.p_mw == 0) & (net.gen.index != slack)
    net.gen.loc[condensers, ["max_p_mw", "min_p_mw"]] = 0.0
    net.gen.loc[condensers, "name"] = "synchronous condenser"
    return net


def fuels(net) -> dict[int, str]:
    units = net.gen.index[(net.gen.max_p_mw > 0) & ~net.gen.slack.astype(bool)]
    by_size = sorted(units, key=lambda i: (-float(net.gen.at[i, "max_p_mw"]), int(i)))
    fuel = {int(i): "gas" for i in net.gen.index[net.gen.max_p_mw > 0]}
    for i in by_size[:2]:
        fuel[int(i)] = "nuclear"
    for i in by_size[2:4]:
        fuel[int(i)] = "coal"
    for i in by_size[-5:]:
        fuel[int(i)] = "wind"
    return fuel


def write(net) -> None:
    fuel = fuels(net)
    pp.to_json(net, str(HERE / "grid.json"))
    _csv("generators.csv", ["gen", "fuel", "bus", "max_p_mw"],
         [(i, f, int(net.gen.at[i, "bus"]), float(net.gen.at[i, "max_p_mw"])) for i, f in sorted(fuel.items())])
    _csv("facilities.csv", ["id", "kind", "description"],
         [(g, "gas", "gas processing plant and compressor stations on an electric feeder") for g in GAS])
    deps = []
    for facility, (feeder, buses) in GAS.items():
        deps.append((f"load:{feeder}", f"facility:{facility}", 0, 60, "", "electric compressors, no backup"))
        for i, f in sorted(fuel.items()):
            if f == "gas" and int(net.gen.at[i, "bus"]) in buses:
                deps.append((f"facility:{facility}", f"gen:{i}", LINE_PACK_H, GAS_RESTART_MIN, "",
                             f"gas supply; {LINE_PACK_H:g} h of line pack and on-site fuel"))
    for pump, feeder in WATER_PUMP_FEEDERS.items():
        deps.append((f"load:{feeder}", f"pump:{pump}", 0, 30, "", "pumping station on a feeder in the rotation"))
    for plant, (feeder, hours) in PLANT_FEEDERS.items():
        deps.append((f"load:{feeder}", f"reservoir:{plant}", hours, 60, "", f"treatment plant, {hours:g} h diesel"))
    _csv("dependencies.csv", ["supplier", "dependent", "backup_h", "restart_min", "group", "note"], deps)


def _csv(name: str, header: list[str], rows) -> None:
    with open(HERE / name, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    net = build()
    write(net)
    if args.check:
        again = pp.from_json(str(HERE / "grid.json"))
        pp.rundcpp(again)
        capacity = again.gen.max_p_mw.sum()
        print(f"ok: {len(again.bus)} buses, no external grid: {not len(again.ext_grid)}, capacity {capacity:.0f} MW, "
              f"load {again.load.p_mw.sum():.0f} MW")


if __name__ == "__main__":
    main()
