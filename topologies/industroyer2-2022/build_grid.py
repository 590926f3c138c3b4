"""Build the stylised high-voltage grid of the regional company targeted by Industroyer2 in April 2022.

Writes, next to this file:

- ``grid.json``: the pandapower net (``pandapower.to_json``);
- ``substations.csv``: which buses form each substation, with its tags;
- ``customers.csv``: customers served by each load.

This is a developer tool. gridsim never runs it; its outputs are committed.
Run it again after changing the tables below, and run it with ``--check`` to
verify the outputs (power flows, loadings, voltages, site outages, totals).

What it builds, and why
-----------------------
The company was not named publicly. This is one regional distribution
company (operator tag ``oblenergo``) supplied by the transmission system
(Ukrenergo) at four 330 kV bulk-supply points, each an ``ext_grid`` stepping
down through two 200 MVA 330/110 kV autotransformers to a 110 kV hub. The
330 kV bus and the hub form one Ukrenergo site (``UE-330-1`` ...).

- 110 kV substations sit on 110 kV rings that leave a hub and return to it,
  so opening one never cuts supply to another. Each has a 110/10 kV
  transformer to a 10 kV bus carrying its own area's load (40 % of its
  customers) and a 110/35 kV transformer to a 35 kV bus carrying the 35 kV
  network it feeds, aggregated into one load (the other 60 %).
- The twelve substations in Industroyer2's (assumed) station list carry the
  tag ``targeted_2022 = yes`` and serve 1,750,000 customers: the middle of the
  reported intended impact of 1.5-2 million. Eight more serve 500,000
  customers and were not targeted; on every ring they sit next to the hub, so
  opening every targeted site at once leaves them supplied.

The grid is stylised: site names, customer numbers, line lengths and
transformer sizes are plausible, not the real network. See README.md.

Load is ``customers x 0.4 kW`` (an April late-afternoon average per
customer, an assumption) at power factor 0.95 lagging. Transformers are sized
to at least 1.6 x the apparent power they carry, rounded up to a standard
rating. Every line and transformer has a finite thermal rating.

Tap positions emulate on-load tap changers in the base case: each
transformer's tap is set, top voltage first, to bring its low-voltage bus as
close as the tap step allows to 1.03 pu (110 and 35 kV) or 1.02 pu (10 kV).
The taps are then fixed; no controller is stored in the net.
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import pandapower as pp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # topologies/: the shared build kit
from _buildkit import (  # noqa: E402
    Checks,
    Written,
    energised_buses,
    max_loading,
    open_buses,
    set_taps,
    tap_changer,
    write_outputs,
)
from _buildkit import load_mw as _load_mw  # noqa: E402

HERE = Path(__file__).resolve().parent

KW_PER_CUSTOMER = 0.4  # April late-afternoon average demand per customer (assumption)
POWER_FACTOR = 0.95  # lagging (assumption)
SIZING_FACTOR = 1.6  # transformer rating >= 1.6 x the apparent power it carries
SHARE_10KV = 0.4  # share of a substation's customers on its own 10 kV bus; the rest behind its 35 kV bus
TARGETED_CUSTOMERS = 1_750_000  # intended impact "1.5-2 million" (CERT-UA, ESET); the middle, an input

COMPANY = "oblenergo"
UKRENERGO = "ukrenergo"

# --------------------------------------------------------------------------
# Equipment
# --------------------------------------------------------------------------

# 110 kV overhead lines (pandapower standard types). Ring sections leaving a
# hub carry the most and use the heavier conductor.
LINE_110_HUB = "490-AL1/64-ST1A 110.0"  # 960 A, 183 MVA
LINE_110_RING = "243-AL1/39-ST1A 110.0"  # 645 A, 123 MVA

# Two-winding 110/35 and 110/10 kV transformers by rated power: vk %, vkr %,
# iron losses kW, i0 % (typical catalogue values).
TRAFO_110 = {
    16.0: (10.5, 0.53, 18.0, 0.70),
    25.0: (10.5, 0.48, 25.0, 0.65),
    40.0: (10.5, 0.43, 34.0, 0.55),
    63.0: (10.5, 0.40, 50.0, 0.50),
    80.0: (10.5, 0.38, 58.0, 0.45),
}
# 330/110 kV autotransformer, 200 MVA, regulated on its 110 kV side.
TRAFO_330 = {"sn_mva": 200.0, "vk_percent": 10.5, "vkr_percent": 0.28, "pfe_kw": 155.0, "i0_percent": 0.45}

# On-load tap changers: (side, steps either way, step %).
TAPS_330 = ("lv", 6, 2.0)
TAPS_110 = ("hv", 9, 1.78)

# Voltage the tap changers aim for at each transformer's low-voltage bus, pu.
TARGET_VM_PU = {110.0: 1.03, 35.0: 1.03, 10.0: 1.02}

# --------------------------------------------------------------------------
# The company
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """A 110/35/10 kV substation of the company."""

    name: str
    customers: int
    targeted: bool


@dataclass(frozen=True)
class Ring:
    """110 kV sites in order round a ring that leaves a hub and returns to it.

    ``lengths_km`` has one entry per section: hub to first site, between
    neighbours, last site back to the hub.
    """

    sites: tuple[str, ...]
    lengths_km: tuple[float, ...]


@dataclass(frozen=True)
class Hub:
    """A Ukrenergo 330 kV bulk-supply point and the rings it feeds."""

    name: str
    rings: tuple[Ring, ...]


SITES = (
    # Targeted: the twelve stations of the assumed list, 1,750,000 customers.
    Site("OB-110-01", 182_000, True),
    Site("OB-110-02", 164_000, True),
    Site("OB-110-03", 102_000, True),
    Site("OB-110-04", 139_000, True),
    Site("OB-110-05", 176_000, True),
    Site("OB-110-06", 128_000, True),
    Site("OB-110-07", 143_000, True),
    Site("OB-110-08", 158_000, True),
    Site("OB-110-09", 121_000, True),
    Site("OB-110-10", 169_000, True),
    Site("OB-110-11", 117_000, True),
    Site("OB-110-12", 151_000, True),
    # Not targeted: 500,000 customers.
    Site("OB-110-13", 64_000, False),
    Site("OB-110-14", 58_000, False),
    Site("OB-110-15", 71_000, False),
    Site("OB-110-16", 49_000, False),
    Site("OB-110-17", 66_000, False),
    Site("OB-110-18", 53_000, False),
    Site("OB-110-19", 77_000, False),
    Site("OB-110-20", 62_000, False),
)

HUBS = (
    Hub(
        "UE-330-1",
        (
            Ring(("OB-110-13", "OB-110-01", "OB-110-02"), (9.0, 14.0, 12.0, 11.0)),
            Ring(("OB-110-14", "OB-110-03"), (13.0, 16.0, 10.0)),
        ),
    ),
    Hub(
        "UE-330-2",
        (
            Ring(("OB-110-15", "OB-110-04", "OB-110-05"), (11.0, 18.0, 15.0, 8.0)),
            Ring(("OB-110-16", "OB-110-06"), (17.0, 21.0, 14.0)),
        ),
    ),
    Hub(
        "UE-330-3",
        (
            Ring(("OB-110-17", "OB-110-07", "OB-110-08"), (10.0, 12.0, 16.0, 9.0)),
            Ring(("OB-110-18", "OB-110-09"), (19.0, 15.0, 12.0)),
        ),
    ),
    Hub(
        "UE-330-4",
        (
            Ring(("OB-110-19", "OB-110-10", "OB-110-11"), (8.0, 13.0, 17.0, 12.0)),
            Ring(("OB-110-20", "OB-110-12"), (15.0, 22.0, 18.0)),
        ),
    ),
)

# --------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------


def split(customers: int) -> tuple[int, int]:
    """Customers on a site's own 10 kV bus and behind its 35 kV bus."""
    on_10 = round(customers * SHARE_10KV)
    return on_10, customers - on_10


def rating_for(s_mva: float) -> float:
    """Smallest standard 110 kV transformer rating of at least SIZING_FACTOR x ``s_mva``."""
    need = SIZING_FACTOR * s_mva
    for sn in sorted(TRAFO_110):
        if sn >= need:
            return sn
    raise ValueError(f"no transformer large enough for {s_mva:.1f} MVA")


class Builder:
    """Accumulates the net and the rows of substations.csv and customers.csv."""

    def __init__(self) -> None:
        self.net = pp.create_empty_network(name="industroyer2-2022", f_hz=50.0)
        self.substations: list[dict] = []
        self.customers: list[dict] = []
        self.bus110: dict[str, int] = {}

    def bus(self, site: str, kv: float, operator: str) -> int:
        return pp.create_bus(self.net, vn_kv=kv, name=f"{site} {kv:g}kV", zone=operator)

    def load(self, name: str, bus: int, customers: int) -> None:
        p_mw, q_mvar = _load_mw_of(customers)
        pp.create_load(self.net, bus, p_mw=p_mw, q_mvar=q_mvar, name=name)
        self.customers.append({"load": name, "customers": customers})

    def site(self, name: str, buses: list[int], operator: str, kv: int, hub: str, targeted: bool) -> None:
        self.substations.append(
            {
                "name": name,
                "buses": ";".join(self.net.bus.at[b, "name"] for b in buses),
                "operator": operator,
                "voltage_kv": kv,
                "hub": hub,
                "targeted_2022": "yes" if targeted else "no",
                "manual_h": "",
            }
        )

    def trafo(self, hv: int, lv: int, name: str, customers: int) -> None:
        """A 110/35 or 110/10 kV transformer sized for the load of ``customers``."""
        net = self.net
        sn = rating_for(math.hypot(*_load_mw_of(customers)))
        vk, vkr, pfe, i0 = TRAFO_110[sn]
        pp.create_transformer_from_parameters(
            net,
            hv,
            lv,
            sn_mva=sn,
            vn_hv_kv=110.0,
            vn_lv_kv=net.bus.at[lv, "vn_kv"],
            vk_percent=vk,
            vkr_percent=vkr,
            pfe_kw=pfe,
            i0_percent=i0,
            name=name,
            **tap_changer(TAPS_110),
        )

    def add_hub(self, hub: Hub, sites: dict[str, Site]) -> None:
        net = self.net
        b330 = self.bus(hub.name, 330.0, UKRENERGO)
        b110 = self.bus110[hub.name] = self.bus(hub.name, 110.0, UKRENERGO)
        pp.create_ext_grid(net, b330, vm_pu=1.0, name=f"{hub.name} Ukrenergo")
        for k in (1, 2):
            pp.create_transformer_from_parameters(
                net,
                b330,
                b110,
                vn_hv_kv=330.0,
                vn_lv_kv=110.0,
                name=f"{hub.name} AT{k} 330/110kV",
                **TRAFO_330,
                **tap_changer(TAPS_330),
            )
        self.site(hub.name, [b330, b110], UKRENERGO, 330, hub.name, False)

        for ring in hub.rings:
            for name in ring.sites:
                s = sites[name]
                b110 = self.bus110[name] = self.bus(name, 110.0, COMPANY)
                b35 = self.bus(name, 35.0, COMPANY)
                b10 = self.bus(name, 10.0, COMPANY)
                on_10, on_35 = split(s.customers)
                self.trafo(b110, b35, f"{name} T2 110/35kV", on_35)
                self.trafo(b110, b10, f"{name} T1 110/10kV", on_10)
                self.load(f"{name} load 35kV", b35, on_35)
                self.load(f"{name} load 10kV", b10, on_10)
                self.site(name, [b110, b35, b10], COMPANY, 110, hub.name, s.targeted)
            stops = [hub.name, *ring.sites, hub.name]
            for a, b, km in zip(stops[:-1], stops[1:], ring.lengths_km, strict=True):
                std_type = LINE_110_HUB if hub.name in (a, b) else LINE_110_RING
                pp.create_line(
                    net, self.bus110[a], self.bus110[b], length_km=km, std_type=std_type, name=f"{a} - {b} 110kV"
                )


TAP_LEVELS = (330.0, 110.0)  # voltage levels whose transformers get on-load tap changers, top down


def _load_mw_of(customers: int) -> tuple[float, float]:
    return _load_mw(customers, KW_PER_CUSTOMER, POWER_FACTOR)


def build() -> Builder:
    """Build the company's grid and set the transformer taps."""
    builder = Builder()
    sites = {s.name: s for s in SITES}
    for hub in HUBS:
        builder.add_hub(hub, sites)
    set_taps(builder.net, TAP_LEVELS, TARGET_VM_PU)
    return builder


def write(builder: Builder) -> None:
    write_outputs(HERE, builder.net, builder.substations, builder.customers)


# --------------------------------------------------------------------------
# Checks (python build_grid.py --check) on the files as written.
# --------------------------------------------------------------------------


def check() -> bool:
    """Verify the written outputs; print what was checked. True if all pass."""
    written = Written(HERE)
    net, sites, customers = written.net, written.sites, written.customers
    site_buses, site_of_bus = written.site_buses, written.site_of_bus
    load_site, load_mw_ = written.load_site, written.load_mw
    base = copy.deepcopy(net)
    checks = Checks()
    report = checks.report
    targeted = {n for n, row in sites.items() if row["targeted_2022"] == "yes"}

    def dark_sites(n: pp.pandapowerNet) -> set[str]:
        live = energised_buses(n)
        return {site_of_bus[b] for b in n.bus.index if b not in live}

    # Names and membership.
    for table in ("bus", "line", "trafo", "load", "ext_grid"):
        names = net[table].name
        report(names.notna().all() and names.is_unique, f"{table} names unique")
    in_sites = sorted(b for buses in site_buses.values() for b in buses)
    report(in_sites == sorted(net.bus.index), "every bus in exactly one site")
    report(set(customers) == set(net.load.name), "every load in customers.csv")

    # Customers and load.
    c_t = sum(c for ld, c in customers.items() if load_site[ld] in targeted)
    mw_t = sum(mw for ld, mw in load_mw_.items() if load_site[ld] in targeted)
    print(
        f"targeted: {len(targeted)} sites, {c_t:,} customers, {mw_t:.1f} MW; "
        f"system: {len(sites) - len(HUBS)} company sites, {sum(customers.values()):,} customers, "
        f"{net.load.p_mw.sum():.1f} MW, {net.load.q_mvar.sum():.1f} Mvar"
    )
    report(c_t == TARGETED_CUSTOMERS, f"targeted customers {c_t:,}")
    report(len(targeted) == 12, f"targeted sites {len(targeted)}")

    # Ratings: every branch has a real, finite rating.
    report(bool(net.line.max_i_ka.between(0.01, 5.0).all()), "every line rated (0.01 .. 5 kA)")
    report(bool(net.trafo.sn_mva.between(1.0, 500.0).all()), "every transformer rated (1 .. 500 MVA)")

    # Base case.
    pp.rundcpp(net, numba=False)
    report(max_loading(net) < 70, f"rundcpp: max loading {max_loading(net):.1f}%")
    pp.runpp(net, numba=False)
    report(max_loading(net) < 70, f"runpp: max loading {max_loading(net):.1f}%")
    vmin, vmax = net.res_bus.vm_pu.min(), net.res_bus.vm_pu.max()
    report(vmin >= 0.95 and vmax <= 1.05, f"runpp: voltages {vmin:.3f} .. {vmax:.3f}")
    losses = net.res_line.pl_mw.sum() + net.res_trafo.pl_mw.sum()
    taps = sorted(set(net.trafo.tap_pos.astype(int)))
    print(f"       losses {losses:.2f} MW; tap positions used {taps}")

    # One site opened at a time: every branch touching its buses out of service.
    hub_sites = {hub.name: {s for ring in hub.rings for s in ring.sites} for hub in HUBS}
    wrong, worst, lowest = [], (0.0, ""), (9.0, "")
    for name, buses in site_buses.items():
        n = copy.deepcopy(base)
        open_buses(n, buses)
        expected = {name} | hub_sites.get(name, set())
        if dark_sites(n) != expected:
            wrong.append(name)
            continue
        pp.runpp(n, numba=False)
        worst = max(worst, (max_loading(n), name))
        lowest = min(lowest, (n.res_bus.vm_pu.min(), name))
    report(not wrong, f"one site open darkens only itself (a bulk-supply site: its hub's sites) {wrong}")
    print(
        f"       one site open, AC: worst loading {worst[0]:.1f}% ({worst[1]} open), "
        f"lowest voltage {lowest[0]:.3f} pu ({lowest[1]} open)"
    )

    # Every targeted site open at once.
    n = copy.deepcopy(base)
    open_buses(n, set().union(*(site_buses[s] for s in targeted)))
    dark = dark_sites(n)
    pp.runpp(n, numba=False)
    report(
        dark == targeted,
        f"all targeted sites open darkens exactly those; AC max loading {max_loading(n):.1f}%, "
        f"voltages {n.res_bus.vm_pu.min():.3f} .. {n.res_bus.vm_pu.max():.3f}",
    )
    return checks.done()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify the outputs")
    args = parser.parse_args()
    builder = build()
    write(builder)
    net = builder.net
    print(
        f"wrote grid.json ({len(net.bus)} buses, {len(net.line)} lines, "
        f"{len(net.trafo)} transformers, {len(net.load)} loads), "
        f"substations.csv ({len(builder.substations)} sites), customers.csv"
    )
    if args.check:
        return 0 if check() else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
