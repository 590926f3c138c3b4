"""Build the stylised 330/110 kV grid around Kyiv attacked with Industroyer on 17 December 2016.

Writes, next to this file:

- ``grid.json``: the pandapower net (``pandapower.to_json``);
- ``substations.csv``: which buses form each substation, with its tags;
- ``customers.csv``: customers served by each load.

This is a developer tool. gridsim never runs it; its outputs are committed.
Run it again after changing the tables below, and run it with ``--check`` to
verify the outputs (power flows, loadings, voltages, what each outage darkens,
totals).

What it builds, and why
-----------------------
Five Ukrenergo 330 kV substations on a 330 kV ring round Kyiv. The bulk
system (the 750/330 kV supply and the plants behind it) is modelled as two
stiff ``ext_grid`` sources, at ``UE-330-A`` and ``UE-330-C``. One of the five
is Pivnichna ("Northern"), the substation Industroyer de-energised; the other
four are stylised and carry codes, not real names.

- **Pivnichna** is split into five sites, so that its restoration can be
  staged: the 330 kV switchyard ``PV-330`` and four 110 kV busbar sections
  ``PV-110-1`` ... ``PV-110-4``, each fed from the 330 kV bus by its own
  330/110 kV autotransformer. Sections 1 and 2 feed Kyivenergo (the city
  company) 110/10 kV substations carrying 144.9 MW; sections 3 and 4 feed
  Kyivoblenergo (the regional company) substations carrying 58.0 MW. Those
  substations hang radially from their section: they have no other supply.
  Section 1 also has a 110 kV tie line to the 110 kV bus of ``UE-330-B``. It
  ends on Pivnichna's own busbar, so opening Pivnichna's breakers opens it
  too; it matters only when Pivnichna's 110 kV busbars are closed while its
  autotransformers are not (the what-if in which they are destroyed).
- **The other four 330 kV substations** each have a 330 kV bus and a 110 kV
  hub joined by two 200 MVA autotransformers (one site, as the bulk-supply
  points of ukraine-2015), and feed the rest of Kyiv's load, 797.1 MW, through
  radial 110 kV lines to 110/10 kV substations of the two companies.

Load is ``customers x 1.0 kW`` (average demand per customer at midnight in
winter, an assumption) at power factor 0.95 lagging. Pivnichna's two loads
are the reported 144.9 MW and 58 MW; the whole system is 1,000 MW, so that
Pivnichna carries about one fifth of it, as reported. Every line and
transformer has a finite thermal rating: transformers are sized to at least
1.6 x the apparent power they carry, rounded up to a standard rating.

Tap positions emulate on-load tap changers in the base case: each
transformer's tap is set, top voltage first, to bring its low-voltage bus as
close as the tap step allows to 1.03 pu (110 kV) or 1.02 pu (10 kV). The taps
are then fixed; no controller is stored in the net.
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

KW_PER_CUSTOMER = 1.0  # winter midnight average demand per customer (assumption)
POWER_FACTOR = 0.95  # lagging (assumption)
SIZING_FACTOR = 1.6  # transformer rating >= 1.6 x the apparent power it carries
KYIVENERGO_MW = 144.9  # load lost by Kyivenergo (reported)
KYIVOBLENERGO_MW = 58.0  # load lost by Kyivoblenergo (reported)
SYSTEM_MW = 1000.0  # about 5 x 202.9 MW: Pivnichna carried "about one fifth" (calibrated)

# --------------------------------------------------------------------------
# Equipment
# --------------------------------------------------------------------------

# 330 kV overhead line, twin-bundle steel-reinforced aluminium 2 x 300/39 mm2
# (typical values): 2 x 690 A = 1.38 kA, 789 MVA.
LINE_330 = {"r_ohm_per_km": 0.049, "x_ohm_per_km": 0.33, "c_nf_per_km": 11.0, "max_i_ka": 1.38}

# 110 kV overhead line (pandapower standard type): 645 A, 123 MVA.
LINE_110 = "243-AL1/39-ST1A 110.0"

# 330/110 kV autotransformers by rated power: vk %, vkr %, iron losses kW, i0 %
# (typical catalogue values).
TRAFO_330 = {
    125.0: (10.5, 0.28, 100.0, 0.50),
    200.0: (10.5, 0.28, 155.0, 0.45),
}
# 110/10 kV transformers by rated power (typical catalogue values).
TRAFO_110 = {
    16.0: (10.5, 0.53, 18.0, 0.70),
    25.0: (10.5, 0.48, 25.0, 0.65),
    40.0: (10.5, 0.43, 34.0, 0.55),
    63.0: (10.5, 0.40, 50.0, 0.50),
}

# On-load tap changers: (side, steps either way, step %).
TAPS_330 = ("lv", 6, 2.0)
TAPS_110 = ("hv", 9, 1.78)

# Voltage the tap changers aim for at each transformer's low-voltage bus, pu.
TARGET_VM_PU = {110.0: 1.03, 10.0: 1.02}

# --------------------------------------------------------------------------
# The system
# --------------------------------------------------------------------------

UKRENERGO = "ukrenergo"
KYIVENERGO = "kyivenergo"
KYIVOBLENERGO = "kyivoblenergo"


@dataclass(frozen=True)
class Load110:
    """A 110/10 kV substation of one of the two companies, fed by one radial 110 kV line."""

    name: str
    operator: str
    customers: int
    line_km: float


@dataclass(frozen=True)
class Section:
    """A 110 kV busbar section of Pivnichna, fed by its own 330/110 kV autotransformer."""

    name: str
    feeds: str  # the company whose substations it supplies
    loads: tuple[Load110, ...]


@dataclass(frozen=True)
class Station:
    """A Ukrenergo 330 kV substation other than Pivnichna: 330 kV bus and 110 kV hub."""

    name: str
    bulk_supply: bool  # an ext_grid on its 330 kV bus
    loads: tuple[Load110, ...]


PIVNICHNA = "PV-330"
SECTIONS = (
    Section(
        "PV-110-1",
        KYIVENERGO,
        (Load110("KE-110-01", KYIVENERGO, 38_600, 6.0), Load110("KE-110-02", KYIVENERGO, 36_200, 9.0)),
    ),
    Section(
        "PV-110-2",
        KYIVENERGO,
        (Load110("KE-110-03", KYIVENERGO, 41_500, 7.0), Load110("KE-110-04", KYIVENERGO, 28_600, 11.0)),
    ),
    Section(
        "PV-110-3",
        KYIVOBLENERGO,
        (Load110("KO-110-01", KYIVOBLENERGO, 17_400, 14.0), Load110("KO-110-02", KYIVOBLENERGO, 14_100, 22.0)),
    ),
    Section(
        "PV-110-4",
        KYIVOBLENERGO,
        (Load110("KO-110-03", KYIVOBLENERGO, 15_200, 18.0), Load110("KO-110-04", KYIVOBLENERGO, 11_300, 26.0)),
    ),
)

STATIONS = (
    Station(
        "UE-330-A",
        True,
        (
            Load110("KE-110-05", KYIVENERGO, 52_000, 8.0),
            Load110("KE-110-06", KYIVENERGO, 47_500, 5.0),
            Load110("KE-110-07", KYIVENERGO, 44_000, 10.0),
            Load110("KO-110-05", KYIVOBLENERGO, 55_300, 21.0),
        ),
    ),
    Station(
        "UE-330-B",
        False,
        (
            Load110("KE-110-08", KYIVENERGO, 49_000, 6.0),
            Load110("KE-110-09", KYIVENERGO, 53_500, 9.0),
            Load110("KE-110-10", KYIVENERGO, 45_500, 4.0),
            Load110("KO-110-06", KYIVOBLENERGO, 48_600, 17.0),
        ),
    ),
    Station(
        "UE-330-C",
        True,
        (
            Load110("KE-110-11", KYIVENERGO, 51_500, 7.0),
            Load110("KE-110-12", KYIVENERGO, 46_000, 12.0),
            Load110("KE-110-13", KYIVENERGO, 55_000, 5.0),
            Load110("KO-110-07", KYIVOBLENERGO, 46_900, 24.0),
        ),
    ),
    Station(
        "UE-330-D",
        False,
        (
            Load110("KE-110-14", KYIVENERGO, 48_000, 9.0),
            Load110("KE-110-15", KYIVENERGO, 50_500, 6.0),
            Load110("KE-110-16", KYIVENERGO, 57_500, 8.0),
            Load110("KO-110-08", KYIVOBLENERGO, 46_300, 19.0),
        ),
    ),
)

# 330 kV ring, in order; the last section closes it back to the first station.
RING = ("UE-330-A", "UE-330-B", PIVNICHNA, "UE-330-C", "UE-330-D")
RING_KM = (32.0, 24.0, 28.0, 30.0, 35.0)

# 110 kV tie between Pivnichna's section 1 and the 110 kV hub of UE-330-B.
TIE = ("PV-110-1", "UE-330-B", 12.0)

# --------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------


def s_mva(loads: tuple[Load110, ...]) -> float:
    """Apparent power of ``loads``, MVA."""
    return sum(math.hypot(*_load_mw_of(ld.customers)) for ld in loads)


def rating_for(s: float, sizes: dict[float, tuple]) -> float:
    """Smallest standard rating of at least SIZING_FACTOR x ``s`` MVA."""
    need = SIZING_FACTOR * s
    for sn in sorted(sizes):
        if sn >= need:
            return sn
    raise ValueError(f"no transformer large enough for {s:.1f} MVA")


def add_trafo(net, hv: int, lv: int, name: str, sn: float) -> int:
    """A 330/110 or 110/10 kV transformer of standard rating ``sn`` MVA."""
    vn_hv, vn_lv = net.bus.at[hv, "vn_kv"], net.bus.at[lv, "vn_kv"]
    sizes, taps = (TRAFO_330, TAPS_330) if vn_hv == 330.0 else (TRAFO_110, TAPS_110)
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
        self.net = pp.create_empty_network(name="kyiv-2016", f_hz=50.0)
        self.substations: list[dict] = []
        self.customers: list[dict] = []
        self.bus110: dict[str, int] = {}  # site -> its 110 kV bus
        self.bus330: dict[str, int] = {}  # site -> its 330 kV bus

    def bus(self, site: str, kv: float, operator: str) -> int:
        return pp.create_bus(self.net, vn_kv=kv, name=f"{site} {kv:g}kV", zone=operator)

    def site(self, name: str, buses: list[int], operator: str, kv: int, station: str, attacked: bool) -> None:
        self.substations.append(
            {
                "name": name,
                "buses": ";".join(self.net.bus.at[b, "name"] for b in buses),
                "operator": operator,
                "voltage_kv": kv,
                "station": station,
                "attacked_2016": "yes" if attacked else "no",
                "manual_h": "",
            }
        )

    def line_110(self, a: str, b: str, km: float) -> None:
        pp.create_line(
            self.net, self.bus110[a], self.bus110[b], length_km=km, std_type=LINE_110, name=f"{a} - {b} 110kV"
        )

    def load_site(self, ld: Load110, feeder: str, station: str) -> None:
        """A 110/10 kV substation on a radial line from ``feeder``'s 110 kV bus; two transformers."""
        b110 = self.bus110[ld.name] = self.bus(ld.name, 110.0, ld.operator)
        b10 = self.bus(ld.name, 10.0, ld.operator)
        self.line_110(feeder, ld.name, ld.line_km)
        sn = rating_for(s_mva((ld,)) / 2.0, TRAFO_110)
        for k in (1, 2):
            add_trafo(self.net, b110, b10, f"{ld.name} T{k} 110/10kV", sn)
        p_mw, q_mvar = _load_mw_of(ld.customers)
        name = f"{ld.name} load"
        pp.create_load(self.net, b10, p_mw=p_mw, q_mvar=q_mvar, name=name)
        self.customers.append({"load": name, "customers": ld.customers})
        self.site(ld.name, [b110, b10], ld.operator, 110, station, False)

    def station(self, st: Station) -> None:
        """A 330 kV substation with its 110 kV hub and the 110/10 kV substations it feeds."""
        net = self.net
        b330 = self.bus330[st.name] = self.bus(st.name, 330.0, UKRENERGO)
        hub = self.bus110[st.name] = self.bus(st.name, 110.0, UKRENERGO)
        if st.bulk_supply:
            pp.create_ext_grid(net, b330, vm_pu=1.0, name=f"{st.name} bulk system")
        sn = rating_for(s_mva(st.loads) / 2.0, TRAFO_330)
        for k in (1, 2):
            add_trafo(net, b330, hub, f"{st.name} AT{k} 330/110kV", sn)
        self.site(st.name, [b330, hub], UKRENERGO, 330, st.name, False)
        for ld in st.loads:
            self.load_site(ld, st.name, st.name)

    def pivnichna(self) -> None:
        """Pivnichna: the 330 kV switchyard and four 110 kV sections, one autotransformer each."""
        b330 = self.bus330[PIVNICHNA] = self.bus(PIVNICHNA, 330.0, UKRENERGO)
        self.site(PIVNICHNA, [b330], UKRENERGO, 330, "pivnichna", True)
        for k, sec in enumerate(SECTIONS, start=1):
            b110 = self.bus110[sec.name] = self.bus(sec.name, 110.0, UKRENERGO)
            add_trafo(self.net, b330, b110, f"{PIVNICHNA} AT{k} 330/110kV", rating_for(s_mva(sec.loads), TRAFO_330))
            self.site(sec.name, [b110], UKRENERGO, 110, "pivnichna", True)
        for sec in SECTIONS:
            for ld in sec.loads:
                self.load_site(ld, sec.name, "pivnichna")

    def ring(self) -> None:
        stops = [*RING, RING[0]]
        for a, b, km in zip(stops[:-1], stops[1:], RING_KM, strict=True):
            pp.create_line_from_parameters(
                self.net, self.bus330[a], self.bus330[b], length_km=km, type="ol", name=f"{a} - {b} 330kV", **LINE_330
            )


TAP_LEVELS = (330.0, 110.0)  # voltage levels whose transformers get on-load tap changers, top down


def _load_mw_of(customers: int) -> tuple[float, float]:
    return _load_mw(customers, KW_PER_CUSTOMER, POWER_FACTOR)


def build() -> Builder:
    """Build the grid and set the transformer taps."""
    builder = Builder()
    for st in STATIONS[:2]:
        builder.station(st)
    builder.pivnichna()
    for st in STATIONS[2:]:
        builder.station(st)
    builder.ring()
    builder.line_110(*TIE)
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
    attacked = {n for n, row in sites.items() if row["attacked_2016"] == "yes"}
    children = {sec.name: {ld.name for ld in sec.loads} for sec in SECTIONS}
    children |= {st.name: {ld.name for ld in st.loads} for st in STATIONS}
    pivnichna_loads = set().union(*(children[sec.name] for sec in SECTIONS))

    def dark_sites(n: pp.pandapowerNet) -> set[str]:
        live = energised_buses(n)
        return {site_of_bus[b] for b in n.bus.index if b not in live}

    def lost_mw(dark: set[str]) -> float:
        return sum(mw for ld, mw in load_mw_.items() if load_site[ld] in dark)

    # Names and membership.
    for table in ("bus", "line", "trafo", "load", "ext_grid"):
        names = net[table].name
        report(names.notna().all() and names.is_unique, f"{table} names unique")
    in_sites = sorted(b for buses in site_buses.values() for b in buses)
    report(in_sites == sorted(net.bus.index), "every bus in exactly one site")
    report(set(customers) == set(net.load.name), "every load in customers.csv")
    report(attacked == {PIVNICHNA, *(sec.name for sec in SECTIONS)}, f"attacked sites {sorted(attacked)}")

    # Load and customers: Pivnichna's per company, and the whole system.
    print(f"\n{'company':15} {'Pivnichna MW':>12} {'customers':>10} {'system MW':>10} {'customers':>10}")
    for op, reported in ((KYIVENERGO, KYIVENERGO_MW), (KYIVOBLENERGO, KYIVOBLENERGO_MW)):
        mine = [ld for ld, site in load_site.items() if sites[site]["operator"] == op]
        pv = [ld for ld in mine if load_site[ld] in pivnichna_loads]
        pv_mw = sum(load_mw_[ld] for ld in pv)
        print(
            f"{op:15} {pv_mw:12.1f} {sum(customers[ld] for ld in pv):10,} "
            f"{sum(load_mw_[ld] for ld in mine):10.1f} {sum(customers[ld] for ld in mine):10,}"
        )
        report(abs(pv_mw - reported) < 1e-6, f"{op}: load behind Pivnichna {pv_mw:.1f} MW (reported {reported} MW)")
    total = net.load.p_mw.sum()
    pv_total = sum(load_mw_[ld] for ld in load_site if load_site[ld] in pivnichna_loads)
    print(f"system: {total:.1f} MW, {net.load.q_mvar.sum():.1f} Mvar, {sum(customers.values()):,} customers")
    report(
        abs(total - SYSTEM_MW) < 1e-6, f"system load {total:.1f} MW; Pivnichna's share {100 * pv_total / total:.1f}%"
    )

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
    tie = net.line.index[net.line.name == f"{TIE[0]} - {TIE[1]} 110kV"][0]
    print(
        f"       losses {losses:.2f} MW; tie {TIE[0]} - {TIE[1]} carries {net.res_line.at[tie, 'p_from_mw']:.1f} MW; "
        f"tap positions used {sorted(set(net.trafo.tap_pos.astype(int)))}"
    )

    # One site opened at a time: every branch touching its buses out of service.
    no_tie = {sec.name for sec in SECTIONS if sec.name != TIE[0]}
    wrong, worst, lowest = [], (0.0, ""), (9.0, "")
    for name, buses in site_buses.items():
        n = copy.deepcopy(base)
        open_buses(n, buses)
        if name == PIVNICHNA:  # sections without the tie lose their only source
            expected = {PIVNICHNA} | no_tie | set().union(*(children[s] for s in no_tie))
        else:
            expected = {name} | children.get(name, set())
        if dark_sites(n) != expected:
            wrong.append(name)
            continue
        pp.runpp(n, numba=False)
        worst = max(worst, (max_loading(n), name))
        lowest = min(lowest, (n.res_bus.vm_pu.min(), name))
    report(not wrong, f"one site open darkens only itself and what it alone feeds {wrong}")
    print(
        f"       one site open, AC: worst loading {worst[0]:.1f}% ({worst[1]} open), "
        f"lowest voltage {lowest[0]:.3f} pu ({lowest[1]} open)"
    )

    # The 2016 outage: every Pivnichna site opened.
    n = copy.deepcopy(base)
    open_buses(n, set().union(*(site_buses[s] for s in attacked)))
    dark = dark_sites(n)
    pp.rundcpp(n, numba=False)
    dc = max_loading(n)
    pp.runpp(n, numba=False)
    report(
        dark == attacked | pivnichna_loads and abs(lost_mw(dark) - KYIVENERGO_MW - KYIVOBLENERGO_MW) < 1e-6,
        f"Pivnichna open: darkens exactly its sites and loads, {lost_mw(dark):.1f} MW; "
        f"max loading DC {dc:.1f}%, AC {max_loading(n):.1f}%, voltages {n.res_bus.vm_pu.min():.3f} .. "
        f"{n.res_bus.vm_pu.max():.3f}",
    )

    # The what-if: Pivnichna's autotransformers destroyed, every other breaker closed again.
    n = copy.deepcopy(base)
    n.trafo.loc[n.trafo.name.str.startswith(f"{PIVNICHNA} AT"), "in_service"] = False
    dark = dark_sites(n)
    pp.runpp(n, numba=False)
    tie_loading = n.res_line.at[tie, "loading_percent"]
    report(
        dark == no_tie | set().union(*(children[s] for s in no_tie)) and max_loading(n) < 100,
        f"Pivnichna autotransformers out: {sorted(no_tie)} and their loads dark ({lost_mw(dark):.1f} MW); "
        f"{TIE[0]} fed over the tie at {tie_loading:.1f}% of its rating; AC max loading {max_loading(n):.1f}%",
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
