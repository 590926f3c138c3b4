"""Build the stylised grid of the three oblenergos attacked on 23 December 2015.

Writes, next to this file:

- ``grid.json``: the pandapower net (``pandapower.to_json``);
- ``substations.csv``: which buses form each substation, with its tags;
- ``customers.csv``: customers served by each load.

This is a developer tool. gridsim never runs it; its outputs are committed.
Run it again after changing the tables below, and run it with ``--check`` to
verify the outputs (power flows, loadings, voltages, site outages, totals).

What it builds, and why
-----------------------
Three separate distribution grids, one per oblenergo (Kyivoblenergo,
Prykarpattyaoblenergo, Chernivtsioblenergo). Each is supplied by the
transmission system (Ukrenergo) at one 330 kV bulk-supply bus, modelled as an
``ext_grid``, which steps down through two parallel 330/110 kV
autotransformers to a 110 kV hub. The hub and the 330 kV bus form a Ukrenergo
site (``UE-KY-330`` ...), not one of the oblenergo's substations.

- 110 kV substations sit on 110 kV rings that leave the hub and return to it,
  so opening one 110 kV site never cuts supply to another 110 kV site. Each
  has a 110/10 kV transformer to a 10 kV bus carrying the site's load, and,
  where it feeds 35 kV substations, a 110/35 kV transformer to a 35 kV bus.
- 35 kV substations are fed radially by one 35 kV line each from a 110 kV
  site's 35 kV bus, and have a 35/10 kV transformer to a 10 kV bus with load.
- Sites attacked in 2015 carry the tag ``attacked_2015 = yes`` (others
  ``no``). Counts follow the E-ISAC/SANS report for Kyivoblenergo
  (7 x 110 kV + 23 x 35 kV, about 80,000 customers); how the rest of the
  225,000 customers (ICS-CERT IR-ALERT-H-16-056-01) split between the other
  two companies is an assumption. Each company also has a few sites that were
  not attacked; on every ring they sit next to the hub, so opening all of a
  company's attacked sites leaves them supplied.

The grid is stylised: site names, customer numbers, line lengths and
transformer sizes are plausible, not the real network. See README.md.

Load is ``customers x 0.8 kW`` (winter late-afternoon average demand per
customer, an assumption) at power factor 0.95 lagging. Transformers are sized
to at least 1.6 x the apparent power they carry, rounded up to a standard
rating. Every line and transformer has a finite thermal rating.

Tap positions emulate the on-load tap changers of the base case: with loads
in place, each transformer's tap is set, top voltage level first, to bring its
low-voltage bus as close as the tap step allows to a target voltage (1.03 pu
at 110 kV and 35 kV buses, 1.02 pu at 10 kV buses). The taps are then fixed;
no controller is stored in the net.
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

KW_PER_CUSTOMER = 0.8  # winter late-afternoon average demand (assumption)
POWER_FACTOR = 0.95  # lagging (assumption)
SIZING_FACTOR = 1.6  # transformer rating >= 1.6 x the apparent power it carries
TOTAL_ATTACKED_CUSTOMERS = 225_000  # ICS-CERT IR-ALERT-H-16-056-01

# --------------------------------------------------------------------------
# Equipment
# --------------------------------------------------------------------------

# 110 kV overhead lines (pandapower standard types). Ring sections leaving the
# hub carry the most and use the heavier conductor.
LINE_110_HUB = "243-AL1/39-ST1A 110.0"
LINE_110_RING = "149-AL1/24-ST1A 110.0"

# 35 kV overhead line, steel-reinforced aluminium 95/16 mm2 (typical values).
LINE_35 = {"r_ohm_per_km": 0.306, "x_ohm_per_km": 0.40, "c_nf_per_km": 9.5, "max_i_ka": 0.33}

# Two-winding transformers by rated power: vk %, vkr %, iron losses kW, i0 %.
# Typical catalogue values for 110 kV and 35 kV oil-immersed units.
TRAFO_110 = {  # 110/35 kV and 110/10 kV
    6.3: (10.5, 0.70, 10.0, 1.00),
    10.0: (10.5, 0.60, 14.0, 0.70),
    16.0: (10.5, 0.53, 18.0, 0.70),
    25.0: (10.5, 0.48, 25.0, 0.65),
    40.0: (10.5, 0.43, 34.0, 0.55),
}
TRAFO_35 = {  # 35/10 kV
    2.5: (6.5, 0.94, 4.1, 1.00),
    4.0: (7.5, 0.84, 5.3, 0.90),
    6.3: (7.5, 0.74, 7.6, 0.80),
    10.0: (7.5, 0.65, 12.0, 0.80),
}
# 330/110 kV autotransformer, 200 MVA, regulated on its 110 kV side.
TRAFO_330 = {"sn_mva": 200.0, "vk_percent": 10.5, "vkr_percent": 0.28, "pfe_kw": 155.0, "i0_percent": 0.45}

# On-load tap changers: (side, steps either way, step %).
TAPS_330 = ("lv", 6, 2.0)
TAPS_110 = ("hv", 9, 1.78)
TAPS_35 = ("hv", 6, 1.5)

# Voltage the tap changers aim for at each transformer's low-voltage bus, pu.
TARGET_VM_PU = {110.0: 1.03, 35.0: 1.03, 10.0: 1.02}

# --------------------------------------------------------------------------
# The three companies
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Site110:
    """A 110 kV substation; it has a 35 kV bus if it feeds 35 kV substations."""

    name: str
    customers: int
    attacked: bool


@dataclass(frozen=True)
class Site35:
    """A 35 kV substation fed radially from the 35 kV bus of ``parent``."""

    name: str
    parent: str
    line_km: float
    customers: int


@dataclass(frozen=True)
class Ring:
    """110 kV sites in order round a ring that leaves the hub and returns to it.

    ``lengths_km`` has one entry per section: hub to first site, between
    neighbours, last site back to the hub.
    """

    sites: tuple[str, ...]
    lengths_km: tuple[float, ...]


@dataclass(frozen=True)
class Operator:
    """One oblenergo and the Ukrenergo bulk-supply point that feeds it."""

    tag: str
    code: str
    region: str
    attacked_customers: int
    sites_110: tuple[Site110, ...]
    sites_35: tuple[Site35, ...]
    rings: tuple[Ring, ...]

    @property
    def bulk_site(self) -> str:
        return f"UE-{self.code}-330"


KYIV = Operator(
    tag="kyivoblenergo",
    code="KY",
    region="kyiv-oblast",
    attacked_customers=80_000,  # E-ISAC/SANS, 18 March 2016
    sites_110=(
        Site110("KY-110-01", 6_200, True),
        Site110("KY-110-02", 5_400, True),
        Site110("KY-110-03", 7_100, True),
        Site110("KY-110-04", 4_800, True),
        Site110("KY-110-05", 5_900, True),
        Site110("KY-110-06", 6_600, True),
        Site110("KY-110-07", 5_000, True),
        Site110("KY-110-08", 14_000, False),
        Site110("KY-110-09", 9_500, False),
        Site110("KY-110-10", 17_500, False),
        Site110("KY-110-11", 11_000, False),
        Site110("KY-110-12", 8_500, False),
    ),
    sites_35=(
        Site35("KY-35-01", "KY-110-01", 14.0, 1_800),
        Site35("KY-35-02", "KY-110-01", 22.0, 1_450),
        Site35("KY-35-03", "KY-110-01", 11.0, 2_100),
        Site35("KY-35-04", "KY-110-02", 18.0, 1_250),
        Site35("KY-35-05", "KY-110-02", 12.0, 1_900),
        Site35("KY-35-06", "KY-110-02", 25.0, 1_600),
        Site35("KY-35-07", "KY-110-03", 10.0, 2_300),
        Site35("KY-35-08", "KY-110-03", 27.0, 1_350),
        Site35("KY-35-09", "KY-110-03", 16.0, 1_750),
        Site35("KY-35-10", "KY-110-03", 13.0, 2_050),
        Site35("KY-35-11", "KY-110-04", 19.0, 1_500),
        Site35("KY-35-12", "KY-110-04", 30.0, 1_150),
        Site35("KY-35-13", "KY-110-04", 12.0, 1_950),
        Site35("KY-35-14", "KY-110-05", 17.0, 1_700),
        Site35("KY-35-15", "KY-110-05", 10.0, 2_200),
        Site35("KY-35-16", "KY-110-06", 24.0, 1_400),
        Site35("KY-35-17", "KY-110-06", 15.0, 1_850),
        Site35("KY-35-18", "KY-110-06", 20.0, 1_550),
        Site35("KY-35-19", "KY-110-07", 26.0, 1_300),
        Site35("KY-35-20", "KY-110-07", 11.0, 2_000),
        Site35("KY-35-21", "KY-110-08", 16.0, 1_650),
        Site35("KY-35-22", "KY-110-10", 21.0, 1_450),
        Site35("KY-35-23", "KY-110-12", 14.0, 1_750),
    ),
    rings=(
        Ring(("KY-110-08", "KY-110-01", "KY-110-02", "KY-110-09"), (18.0, 24.0, 16.0, 21.0, 19.0)),
        Ring(("KY-110-10", "KY-110-03", "KY-110-04", "KY-110-05", "KY-110-11"), (12.0, 22.0, 27.0, 18.0, 25.0, 14.0)),
        Ring(("KY-110-06", "KY-110-07", "KY-110-12"), (28.0, 20.0, 33.0, 17.0)),
    ),
)

PRYKARPATTYA = Operator(
    tag="prykarpattyaoblenergo",
    code="PK",
    region="ivano-frankivsk-oblast",
    attacked_customers=100_000,  # assumption: only the 225,000 total is reported
    sites_110=(
        Site110("PK-110-01", 28_000, True),  # central Ivano-Frankivsk
        Site110("PK-110-02", 7_800, True),  # PK-110-02 ... 08: the seven districts
        Site110("PK-110-03", 6_900, True),
        Site110("PK-110-04", 8_400, True),
        Site110("PK-110-05", 6_100, True),
        Site110("PK-110-06", 7_300, True),
        Site110("PK-110-07", 5_600, True),
        Site110("PK-110-08", 6_500, True),
        Site110("PK-110-09", 12_000, False),
        Site110("PK-110-10", 9_000, False),
        Site110("PK-110-11", 15_500, False),
    ),
    sites_35=(
        Site35("PK-35-01", "PK-110-01", 10.0, 2_100),
        Site35("PK-35-02", "PK-110-02", 18.0, 1_800),
        Site35("PK-35-03", "PK-110-02", 23.0, 2_400),
        Site35("PK-35-04", "PK-110-03", 15.0, 1_650),
        Site35("PK-35-05", "PK-110-03", 26.0, 2_250),
        Site35("PK-35-06", "PK-110-04", 12.0, 1_950),
        Site35("PK-35-07", "PK-110-04", 20.0, 2_050),
        Site35("PK-35-08", "PK-110-05", 28.0, 1_700),
        Site35("PK-35-09", "PK-110-06", 17.0, 2_300),
        Site35("PK-35-10", "PK-110-07", 22.0, 1_850),
        Site35("PK-35-11", "PK-110-08", 13.0, 1_600),
        Site35("PK-35-12", "PK-110-09", 19.0, 1_750),
    ),
    rings=(
        Ring(("PK-110-09", "PK-110-01", "PK-110-10"), (10.0, 11.0, 12.0, 14.0)),  # city ring
        Ring(("PK-110-02", "PK-110-03", "PK-110-04", "PK-110-11"), (22.0, 26.0, 19.0, 27.0, 13.0)),
        Ring(("PK-110-05", "PK-110-06", "PK-110-07", "PK-110-08"), (24.0, 31.0, 21.0, 28.0, 35.0)),
    ),
)

CHERNIVTSI = Operator(
    tag="chernivtsioblenergo",
    code="CH",
    region="chernivtsi-oblast",
    attacked_customers=45_000,  # assumption: 225,000 - 80,000 - 100,000
    sites_110=(
        Site110("CH-110-01", 11_200, True),
        Site110("CH-110-02", 9_600, True),
        Site110("CH-110-03", 8_900, True),
        Site110("CH-110-04", 16_000, False),
        Site110("CH-110-05", 10_500, False),
    ),
    sites_35=(
        Site35("CH-35-01", "CH-110-01", 16.0, 2_300),
        Site35("CH-35-02", "CH-110-01", 24.0, 1_900),
        Site35("CH-35-03", "CH-110-02", 12.0, 2_450),
        Site35("CH-35-04", "CH-110-02", 21.0, 2_050),
        Site35("CH-35-05", "CH-110-03", 18.0, 2_150),
        Site35("CH-35-06", "CH-110-03", 27.0, 2_250),
        Site35("CH-35-07", "CH-110-04", 14.0, 2_200),
    ),
    rings=(
        Ring(("CH-110-04", "CH-110-01", "CH-110-02"), (13.0, 25.0, 20.0, 29.0)),
        Ring(("CH-110-05", "CH-110-03"), (16.0, 23.0, 34.0)),
    ),
)

OPERATORS = (KYIV, PRYKARPATTYA, CHERNIVTSI)

# --------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------


def rating_for(s_mva: float, sizes: dict[float, tuple]) -> float:
    """Smallest standard rating of at least SIZING_FACTOR x ``s_mva``."""
    need = SIZING_FACTOR * s_mva
    for sn in sorted(sizes):
        if sn >= need:
            return sn
    raise ValueError(f"no transformer large enough for {s_mva:.1f} MVA")


def add_trafo(net, hv, lv, name: str, vn_hv: float, vn_lv: float, s_mva: float):
    """A distribution transformer sized for the apparent power ``s_mva`` it carries."""
    sizes, taps = (TRAFO_110, TAPS_110) if vn_hv == 110.0 else (TRAFO_35, TAPS_35)
    sn = rating_for(s_mva, sizes)
    vk, vkr, pfe, i0 = sizes[sn]
    return pp.create_transformer_from_parameters(
        net,
        hv,
        lv,
        sn_mva=sn,
        vn_hv_kv=vn_hv,
        vn_lv_kv=vn_lv,
        vk_percent=vk,
        vkr_percent=vkr,
        pfe_kw=pfe,
        i0_percent=i0,
        name=name,
        **tap_changer(taps),
    )


class Builder:
    """Accumulates the net and the rows of substations.csv and customers.csv."""

    def __init__(self) -> None:
        self.net = pp.create_empty_network(name="ukraine-2015", f_hz=50.0)
        self.substations: list[dict] = []
        self.customers: list[dict] = []

    def bus(self, site: str, kv: float, operator: str) -> int:
        name = f"{site} {kv:g}kV"
        return pp.create_bus(self.net, vn_kv=kv, name=name, zone=operator)

    def load(self, site: str, bus: int, customers: int) -> None:
        p_mw, q_mvar = _load_mw_of(customers)
        name = f"{site} load"
        pp.create_load(self.net, bus, p_mw=p_mw, q_mvar=q_mvar, name=name)
        self.customers.append({"load": name, "customers": customers})

    def site(self, name, buses, operator, kv, region, attacked) -> None:
        self.substations.append(
            {
                "name": name,
                "buses": ";".join(self.net.bus.at[b, "name"] for b in buses),
                "operator": operator,
                "voltage_kv": kv,
                "region": region,
                "attacked_2015": "yes" if attacked else "no",
                "manual_h": "",
            }
        )

    def add_operator(self, op: Operator) -> None:
        net = self.net
        bulk = op.bulk_site

        # Bulk-supply point: 330 kV bus (the transmission grid) and 110 kV hub.
        b330 = self.bus(bulk, 330.0, op.tag)
        hub = self.bus(bulk, 110.0, op.tag)
        pp.create_ext_grid(net, b330, vm_pu=1.0, name=f"{bulk} Ukrenergo")
        for k in (1, 2):
            pp.create_transformer_from_parameters(
                net,
                b330,
                hub,
                vn_hv_kv=330.0,
                vn_lv_kv=110.0,
                name=f"{bulk} AT{k} 330/110kV",
                **TRAFO_330,
                **tap_changer(TAPS_330),
            )
        self.site(bulk, [b330, hub], "ukrenergo", 330, op.region, False)

        children: dict[str, list[Site35]] = {s.name: [] for s in op.sites_110}
        for child in op.sites_35:
            children[child.parent].append(child)

        # 110 kV substations: 110 kV bus, 35 kV bus if needed, 10 kV bus with load.
        bus110: dict[str, int] = {bulk: hub}
        bus35: dict[str, int] = {}
        for s in op.sites_110:
            b110 = bus110[s.name] = self.bus(s.name, 110.0, op.tag)
            b10 = self.bus(s.name, 10.0, op.tag)
            s_mva = math.hypot(*_load_mw_of(s.customers))
            add_trafo(net, b110, b10, f"{s.name} T1 110/10kV", 110.0, 10.0, s_mva)
            self.load(s.name, b10, s.customers)
            buses = [b110, b10]
            if children[s.name]:
                b35 = bus35[s.name] = self.bus(s.name, 35.0, op.tag)
                s_mva = sum(math.hypot(*_load_mw_of(c.customers)) for c in children[s.name])
                add_trafo(net, b110, b35, f"{s.name} T2 110/35kV", 110.0, 35.0, s_mva)
                buses.insert(1, b35)
            self.site(s.name, buses, op.tag, 110, op.region, s.attacked)

        # 110 kV rings leaving the hub and returning to it.
        for ring in op.rings:
            stops = [bulk, *ring.sites, bulk]
            sections = zip(stops[:-1], stops[1:], ring.lengths_km, strict=True)
            for a, b, km in sections:
                std_type = LINE_110_HUB if bulk in (a, b) else LINE_110_RING
                pp.create_line(net, bus110[a], bus110[b], length_km=km, std_type=std_type, name=f"{a} - {b} 110kV")

        # 35 kV substations, each on its own radial line from its parent.
        for s in op.sites_35:
            b35 = self.bus(s.name, 35.0, op.tag)
            b10 = self.bus(s.name, 10.0, op.tag)
            pp.create_line_from_parameters(
                net, bus35[s.parent], b35, length_km=s.line_km, type="ol", name=f"{s.parent} - {s.name} 35kV", **LINE_35
            )
            s_mva = math.hypot(*_load_mw_of(s.customers))
            add_trafo(net, b35, b10, f"{s.name} T1 35/10kV", 35.0, 10.0, s_mva)
            self.load(s.name, b10, s.customers)
            self.site(s.name, [b35, b10], op.tag, 35, op.region, True)


TAP_LEVELS = (330.0, 110.0, 35.0)  # voltage levels whose transformers get on-load tap changers, top down


def _load_mw_of(customers: int) -> tuple[float, float]:
    return _load_mw(customers, KW_PER_CUSTOMER, POWER_FACTOR)


def build() -> Builder:
    """Build the three companies' grids and set the transformer taps."""
    builder = Builder()
    for op in OPERATORS:
        builder.add_operator(op)
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
    attacked = {n for n, row in sites.items() if row["attacked_2015"] == "yes"}

    # Names and membership.
    for table in ("bus", "line", "trafo", "load", "ext_grid"):
        names = net[table].name
        report(names.notna().all() and names.is_unique, f"{table} names unique")
    in_sites = sorted(b for buses in site_buses.values() for b in buses)
    report(in_sites == sorted(net.bus.index), "every bus in exactly one site")
    report(set(customers) == set(net.load.name), "every load in customers.csv")

    # Counts, customers and load per company.
    print(f"\n{'operator':22} sites(110/35) attacked(110/35) attacked-cust  MW    all-cust  MW")
    for op in OPERATORS:
        mine = [n for n, row in sites.items() if row["operator"] == op.tag]
        mine_att = [n for n in mine if n in attacked]
        loads = [ld for ld, site in load_site.items() if site in mine]
        loads_att = [ld for ld in loads if load_site[ld] in attacked]
        c_att = sum(customers[ld] for ld in loads_att)

        def by_kv(names):
            return "/".join(str(sum(int(sites[n]["voltage_kv"]) == kv for n in names)) for kv in (110, 35))

        print(
            f"{op.tag:22} {by_kv(mine):>13} {by_kv(mine_att):>16} "
            f"{c_att:13,} {sum(load_mw_[ld] for ld in loads_att):5.1f} "
            f"{sum(customers[ld] for ld in loads):9,} "
            f"{sum(load_mw_[ld] for ld in loads):5.1f}"
        )
        report(c_att == op.attacked_customers, f"{op.tag}: attacked customers")
    total = sum(customers[ld] for ld in load_site if load_site[ld] in attacked)
    print(
        f"system: {net.load.p_mw.sum():.1f} MW, {net.load.q_mvar.sum():.1f} Mvar, {sum(customers.values()):,} customers"
    )
    report(total == TOTAL_ATTACKED_CUSTOMERS, f"attacked customers total {total:,}")
    report(len(attacked) == 60, f"attacked sites {len(attacked)}")

    # Ratings: every branch has a real, finite rating.
    lines_rated = net.line.max_i_ka.between(0.01, 5.0).all()
    report(bool(lines_rated), "every line rated (0.01 .. 5 kA)")
    trafos_rated = net.trafo.sn_mva.between(1.0, 500.0).all()
    report(bool(trafos_rated), "every transformer rated (1 .. 500 MVA)")

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
    children = {s.name: {c.name for c in op.sites_35 if c.parent == s.name} for op in OPERATORS for s in op.sites_110}
    wrong, worst, lowest = [], (0.0, ""), (9.0, "")
    for name, buses in site_buses.items():
        n = copy.deepcopy(base)
        open_buses(n, buses)
        live = energised_buses(n)
        dark = {site_of_bus[b] for b in n.bus.index if b not in live}
        if sites[name]["operator"] == "ukrenergo":  # its whole company
            region = sites[name]["region"]
            expected = {s for s, row in sites.items() if row["region"] == region}
        else:
            expected = {name} | children.get(name, set())
        if dark != expected:
            wrong.append(name)
            continue
        if sites[name]["operator"] != "ukrenergo":
            pp.runpp(n, numba=False)
            worst = max(worst, (max_loading(n), name))
            lowest = min(lowest, (n.res_bus.vm_pu.min(), name))
    report(not wrong, f"one site open darkens only itself and its 35 kV children {wrong}")
    print(
        f"       one site open, AC: worst loading {worst[0]:.1f}% ({worst[1]} open), "
        f"lowest voltage {lowest[0]:.3f} pu ({lowest[1]} open)"
    )

    # All attacked sites of one company open at once.
    for op in OPERATORS:
        n = copy.deepcopy(base)
        mine_att = {s for s in attacked if sites[s]["operator"] == op.tag}
        open_buses(n, set().union(*(site_buses[s] for s in mine_att)))
        live = energised_buses(n)
        dark = {site_of_bus[b] for b in n.bus.index if b not in live}
        pp.runpp(n, numba=False)
        report(
            dark == mine_att,
            f"{op.tag}: all attacked sites open darkens exactly those; "
            f"AC max loading {max_loading(n):.1f}%, "
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
