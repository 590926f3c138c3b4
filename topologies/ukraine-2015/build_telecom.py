"""Write the telecom/SCADA layer of the ukraine-2015 system: telecom.csv and dependencies.csv.

Deterministic: the files follow substations.csv. Run from anywhere:

    python topologies/ukraine-2015/build_telecom.py

What is modelled and why (README.md, "Telecom/SCADA"):

- one serial-to-Ethernet gateway per distribution substation (kind
  ``gateway``): the devices whose firmware Sandworm overwrote in 2015, so
  that the substation cannot be switched remotely;
- one control centre per company (kind ``control_centre``): when it is down
  the company loses view and remote control of all its substations;
- power: every gateway runs on its substation's supply with an 8 h station
  battery; every control centre on one substation with a 2 h UPS.
  Prykarpattyaoblenergo's control centre is fed from PK-110-01, the
  Ivano-Frankivsk city substation the attack darkened: with its UPS
  disconnected by the attackers it goes dark with the city.
"""

from __future__ import annotations

import csv
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: company -> (control centre id, substation feeding it)
CONTROL_CENTRES = {
    "kyivoblenergo": ("CC-KY", "KY-110-08"),
    "prykarpattyaoblenergo": ("CC-PK", "PK-110-01"),
    "chernivtsioblenergo": ("CC-CH", "CH-110-04"),
}
STATION_BATTERY_H = 8.0
CONTROL_CENTRE_UPS_H = 2.0
GATEWAY_RESTART_MIN = 5
CONTROL_CENTRE_RESTART_MIN = 15


def main() -> None:
    with open(HERE / "substations.csv", newline="", encoding="utf-8") as f:
        sites = list(csv.DictReader(f))
    names = {s["name"] for s in sites}
    telecom = [["id", "kind", "substation", "operator", "attacked_2015"]]
    deps = [["supplier", "dependent", "backup_h", "restart_min", "group", "note"]]
    for operator, (cc, feed) in CONTROL_CENTRES.items():
        assert feed in names, feed
        telecom.append([cc, "control_centre", feed, operator, "no"])
        deps.append([f"substation:{feed}", f"telecom:{cc}", CONTROL_CENTRE_UPS_H, CONTROL_CENTRE_RESTART_MIN, "",
                     "control centre building on the grid, UPS for 2 h (assumed)"])
    for site in sites:
        if site["operator"] == "ukrenergo":
            continue  # the transmission operator's SCADA was not attacked in 2015
        gateway = f"GW-{site['name']}"
        telecom.append([gateway, "gateway", site["name"], site["operator"], site["attacked_2015"]])
        deps.append([f"substation:{site['name']}", f"telecom:{gateway}", STATION_BATTERY_H, GATEWAY_RESTART_MIN, "",
                     "substation DC battery (assumed 8 h)"])
    for name, rows in (("telecom.csv", telecom), ("dependencies.csv", deps)):
        with open(HERE / name, "w", newline="", encoding="utf-8") as f:
            csv.writer(f, lineterminator="\n").writerows(rows)
    print(f"wrote {len(telecom) - 1} telecom sites and {len(deps) - 1} dependencies")


if __name__ == "__main__":
    main()
