"""Every branch of a grid as a line or a transformer, the two kinds gridsim's cascade rates, trips and sweeps.

pandapower's MATPOWER converter imports a branch whose ends are at different
voltages with TAP = 1 (or 0) and no phase shift as an ``impedance`` element,
not a transformer: on the Texas A&M synthetic grid ACTIVSg2000 that is every
one of its 847 transformers. Left there, they would never be rated, tripped,
opened by a substation attack or swept. They are converted on load, exactly:

- between buses of different voltage, to a transformer with a nominal ratio
  equal to the two bus voltages (tap neutral), ``vk_percent`` and
  ``vkr_percent`` from the series impedance and the magnetising branch from
  the shunt, as pandapower converts every other MATPOWER transformer;
- between buses of the same voltage, to a line with the same series impedance
  and charging.

The power flows of the converted net equal those of the original (tested
against pandapower on both). An asymmetric impedance (``rft_pu != rtf_pu``)
has no line or transformer equivalent and is refused, as are in-service
branch-like elements gridsim does not model (HVDC lines, TCSCs, DC grids).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gridsim.errors import InputError

__all__ = ["impedances_as_branches", "refuse_unmodelled_branches"]

#: Branch-like tables gridsim does not model; an in-service row in one of them is refused rather than ignored.
_UNMODELLED = {"dcline": "HVDC line", "tcsc": "thyristor-controlled series capacitor", "line_dc": "DC line",
               "vsc": "voltage-source converter"}


def impedances_as_branches(net: Any, source: Any) -> tuple[int, int]:
    """Convert every ``impedance`` element of ``net`` in place; return (transformers made, lines made).

    Raises
    ------
    InputError
        An asymmetric impedance, which neither a line nor a transformer represents.
    """
    imp = net.get("impedance")
    if imp is None or imp.empty:
        return 0, 0
    import pandapower as pp  # noqa: PLC0415  (loads with gridsim.model.grid: see the note there)

    for pair in (("rft_pu", "rtf_pu"), ("xft_pu", "xtf_pu"), ("gf_pu", "gt_pu"), ("bf_pu", "bt_pu")):
        if not all(column in imp for column in pair):
            continue
        ft, tf = (imp[c].fillna(0.0).to_numpy(dtype=float) for c in pair)
        asym = ~np.isclose(ft, tf, rtol=1e-9, atol=1e-12)
        if asym.any():
            idx = imp.index[asym][0]
            raise InputError(source, f"impedance {idx} is asymmetric ({pair[0]} {ft[asym][0]:g} != {pair[1]} "
                                     f"{tf[asym][0]:g}): gridsim models branches as lines and transformers only")
    vn = net.bus.vn_kv
    omega = 2.0 * math.pi * float(net.get("f_hz", 50.0) or 50.0)
    trafos = lines = 0
    for idx, row in imp.iterrows():
        r, x = float(row.rft_pu), float(row.xft_pu)
        g, b = float(row.get("gf_pu", 0.0) or 0.0), float(row.get("bf_pu", 0.0) or 0.0)
        sn = float(row.sn_mva)
        fb, tb = int(row.from_bus), int(row.to_bus)
        vf, vt = float(vn.at[fb]), float(vn.at[tb])
        name = row.get("name")
        name = f"impedance {idx}" if name is None or (isinstance(name, float) and math.isnan(name)) else name
        in_service = bool(row.in_service)
        if math.isclose(vf, vt, rel_tol=1e-9):
            z_base = vf ** 2 / sn  # ohm: the impedance's per-unit base
            pp.create_line_from_parameters(
                net, fb, tb, length_km=1.0, r_ohm_per_km=r * z_base, x_ohm_per_km=x * z_base,
                c_nf_per_km=2.0 * b / z_base / omega * 1e9, g_us_per_km=2.0 * g / z_base * 1e6,
                max_i_ka=sn / (math.sqrt(3.0) * vf), name=name, in_service=in_service)
            lines += 1
        else:
            hv, lv, vn_hv, vn_lv = (fb, tb, vf, vt) if vf > vt else (tb, fb, vt, vf)
            pp.create_transformer_from_parameters(
                net, hv, lv, sn_mva=sn, vn_hv_kv=vn_hv, vn_lv_kv=vn_lv,
                vk_percent=math.copysign(math.hypot(r, x), x) * 100.0, vkr_percent=r * 100.0,
                pfe_kw=2.0 * g * sn * 1e3, i0_percent=math.hypot(2.0 * g, 2.0 * b) * 100.0,
                shift_degree=0.0, tap_pos=0, tap_neutral=0, tap_step_percent=0.0, name=name, in_service=in_service)
            trafos += 1
    net.impedance = imp.iloc[0:0]
    return trafos, lines


def refuse_unmodelled_branches(net: Any, source: Any) -> None:
    """Refuse a net with an in-service branch-like element the cascade would otherwise silently ignore."""
    for table, what in _UNMODELLED.items():
        frame = net.get(table)
        if frame is None or frame.empty or "in_service" not in frame:
            continue
        on = frame.index[frame.in_service.astype(bool).to_numpy()]
        if len(on):
            raise InputError(source, f"{table} {on[0]} ({what}; {len(on)} in service): gridsim does not model "
                                     f"{what}s; take them out of service or convert them first")
