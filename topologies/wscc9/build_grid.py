"""Build the WSCC 9-bus system as an isolated grid with the machine data of its dynamic model.

Writes ``grid.json`` (pandapower net) and ``machines.csv`` beside this file.
Deterministic; gridsim never runs it. Run it with ``--check`` to verify.

pandapower's ``case9`` is the WSCC 3-machine 9-bus system (Anderson and
Fouad, *Power System Control and Stability*, 1977, ch. 2) with machine 1 as
an external grid. A frequency study needs machine 1 to be a machine: here it
is a generator (the slack of the static balance), so the three machines hold
the frequency together and none is an infinite bus. Machine data, on a
100 MVA base in Anderson and Fouad (and in Sauer and Pai, *Power System
Dynamics and Stability*, 1998, example 7.1): H = 23.64 s, 6.40 s and 3.01 s;
ratings 247.5, 192 and 128 MVA. ``machines.csv`` gives H on each machine's
own rating (H_100 x 100 / S).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import pandapower as pp
import pandapower.networks as pn

HERE = Path(__file__).resolve().parent
#: machine -> (rating MVA, H on 100 MVA, generator name)
MACHINES = {1: (247.5, 23.64, "G1 hydro"), 2: (192.0, 6.40, "G2 steam"), 3: (128.0, 3.01, "G3 steam")}


def build():
    net = pn.case9()
    ext = net.ext_grid.iloc[0]
    pp.create_gen(net, int(ext.bus), p_mw=71.6, vm_pu=float(ext.vm_pu), max_p_mw=float(ext.max_p_mw),
                  min_p_mw=float(ext.min_p_mw), max_q_mvar=float(ext.max_q_mvar), min_q_mvar=float(ext.min_q_mvar),
                  slack=True, name=MACHINES[1][2], index=2)
    net.ext_grid.drop(net.ext_grid.index, inplace=True)
    net.gen.loc[0, "name"], net.gen.loc[1, "name"] = MACHINES[2][2], MACHINES[3][2]
    for index, machine in ((2, 1), (0, 2), (1, 3)):
        net.gen.loc[index, "sn_mva"] = MACHINES[machine][0]
    net.gen = net.gen.sort_index()
    return net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify the written files")
    args = parser.parse_args()
    net = build()
    pp.to_json(net, str(HERE / "grid.json"))
    with open(HERE / "machines.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["gen", "rating_mva", "inertia_s", "note"])
        for rating, h100, name in MACHINES.values():
            writer.writerow([name, rating, round(h100 * 100.0 / rating, 4), f"H = {h100} s on 100 MVA"])
    if args.check:
        again = pp.from_json(str(HERE / "grid.json"))
        pp.runpp(again)
        assert not len(again.ext_grid) and len(again.gen) == 3 and again.gen.slack.sum() == 1
        assert abs(again.res_gen.p_mw.sum() - again.res_load.p_mw.sum()) < 10  # losses only
        print(f"ok: {len(again.bus)} buses, generation {again.res_gen.p_mw.sum():.1f} MW, "
              f"load {again.res_load.p_mw.sum():.1f} MW")


if __name__ == "__main__":
    main()
