"""System frequency after a sudden imbalance: aggregate inertia, governor droop, under-frequency load shedding.

The DC and AC cascades are static: they balance each island and move on. A
sudden change of demand or generation also moves the frequency, and that
can trip generators before any static rule sees a problem: the MadIoT attack
(Soltan, Mittal and Poor, USENIX Security 2018) raises demand through a
botnet of high-wattage appliances, and the frequency dip trips the
generators. This module integrates the single-area frequency model of an
island after such a step (Kundur, *Power System Stability and Control*,
1994, ch. 11; Anderson and Fouad, *Power System Control and Stability*):

    2 H S / f0 · dΔf/dt = Σ Pm_i - PL (1 + D Δf/f0) (1 - shed)
    T_g · dPm_i/dt = clip(P0_i - (Δf/f0) S_i / R, Pmin_i, Pmax_i) - Pm_i

with the generators' inertia ``H`` on their rating ``S``, governor droop
``R`` and time constant ``T_g``, load damping ``D``, under-frequency load
shedding stages (frequency, share of the pre-event load) and the frequency
outside which generators trip. Euler steps of 10 ms over 60 s. The
parameters come from the system manifest (``[power.frequency]``, see
docs/FORMATS.md), with defaults from the literature cited there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridsim.model.dynamics import FrequencySettings, Machine
from gridsim.model.grid import dispatch_range
from gridsim.power.cascade import dispatch as static_dispatch
from gridsim.power.fast import run_fast_cascade

__all__ = ["FrequencyResponse", "FrequencySettings", "Machine", "base_blackout_threshold", "blackout_threshold",
           "frequency_response", "island_machines"]


@dataclass
class FrequencyResponse:
    """What the frequency did after the event."""

    nadir_hz: float
    zenith_hz: float
    final_hz: float
    shed_share: float  # of the pre-event load, by under-frequency load shedding
    stages: int
    tripped: bool  # generators tripped on under- or over-frequency: the island goes dark
    trip_time_s: float | None
    times_s: np.ndarray  # the curve, every 0.1 s
    frequency_hz: np.ndarray


def frequency_response(machines: list[Machine], load_mw: float, imbalance_mw: float,
                       settings: FrequencySettings) -> FrequencyResponse:
    """Integrate the island's frequency after a sudden ``imbalance_mw`` (demand above generation, > 0).

    ``load_mw`` is the demand before the event; the generators' outputs before
    it balance it. Returns the nadir, the final frequency, what the shedding
    stages took and whether the generators tripped.
    """
    f0 = settings.nominal_hz
    s = np.array([m.rating_mva for m in machines], dtype=float)
    h = np.array([m.inertia_s for m in machines], dtype=float)
    p0 = np.array([m.p_mw for m in machines], dtype=float)
    p_max = np.array([m.max_mw for m in machines], dtype=float)
    p_min = np.array([m.min_mw for m in machines], dtype=float)
    inertia = 2.0 * float(np.sum(h * s)) / f0  # MW·s/Hz
    demand = load_mw + imbalance_mw
    pm = p0.copy()
    df = 0.0
    shed, stages = 0.0, 0
    nadir = zenith = f0
    steps = int(round(settings.duration_s / settings.step_s))
    record = max(1, int(round(0.1 / settings.step_s)))
    times, curve = [0.0], [f0]
    tripped, trip_time = False, None
    if inertia <= 0:
        return FrequencyResponse(f0, f0, f0, 0.0, 0, bool(machines) or imbalance_mw > 0, 0.0,
                                 np.array(times), np.array(curve))
    for k in range(1, steps + 1):
        load = demand * (1.0 + settings.damping * df / f0) * (1.0 - shed)
        df += settings.step_s * (float(pm.sum()) - load) / inertia
        target = np.clip(p0 - (df / f0) * s / settings.droop, p_min, p_max)
        pm += settings.step_s * (target - pm) / settings.governor_s
        f = f0 + df
        nadir, zenith = min(nadir, f), max(zenith, f)
        while stages < len(settings.ufls) and f < settings.ufls[stages][0]:
            shed += settings.ufls[stages][1] * load_mw / demand  # a share of the pre-event load
            stages += 1
        if k % record == 0:
            times.append(k * settings.step_s)
            curve.append(f)
        if f < settings.trip_below_hz or f > settings.trip_above_hz:
            tripped, trip_time = True, k * settings.step_s
            times.append(trip_time)
            curve.append(f)
            break
    return FrequencyResponse(nadir, zenith, f0 + df, shed * demand / load_mw if load_mw else 0.0, stages,
                             tripped, trip_time, np.array(times), np.array(curve))


def blackout_threshold(machines: list[Machine], load_mw: float, settings: FrequencySettings,
                       *, tolerance_pct: float = 0.1, limit_pct: float = 500.0) -> float | None:
    """The smallest sudden demand increase (per cent of ``load_mw``) that trips the generators; None if
    none up to ``limit_pct`` does. Bisection on :func:`frequency_response`: the response worsens as the
    step grows."""
    def trips(pct: float) -> bool:
        return frequency_response(machines, load_mw, load_mw * pct / 100.0, settings).tripped

    if not trips(limit_pct):
        return None
    low, high = 0.0, limit_pct
    while high - low > tolerance_pct:
        middle = (low + high) / 2.0
        low, high = (low, middle) if trips(middle) else (middle, high)
    return round(high, 3)


def island_machines(system, result, running: list[int], lost: list[int] = ()):
    """The synchronous machines of the energised grid before an event, as the static balance dispatched them.

    Returns ``(machines, generator indices, load_mw, lost_mw)`` for the
    generators in ``running`` on energised buses, less those ``lost`` (whose
    output before the event is ``lost_mw``). Empty when an external grid is
    energised: an infinite bus holds the frequency.
    """

    net, settings = system.net, system.frequency
    energised = result.energised_buses or frozenset()
    ext = net.ext_grid
    if any(int(b) in energised for b in ext.bus[ext.in_service.to_numpy(dtype=bool)]):
        return [], [], 0.0, 0.0
    low, cap = dispatch_range(net)
    positions = {int(i): p for p, i in enumerate(net.gen.index)}
    on = [i for i in dict.fromkeys(running) if int(net.gen.at[i, "bus"]) in energised
          and bool(net.gen.at[i, "in_service"])]
    if not on:
        return [], [], 0.0, 0.0
    load_bus = net.load.bus.to_numpy()
    load_mw = float(sum(result.served_mw[p] for p in range(len(load_bus)) if int(load_bus[p]) in energised))
    sgen = net.sgen
    sgen_mw = float(sum((sgen.p_mw * sgen.scaling * sgen.in_service).to_numpy(dtype=float)[
        [int(b) in energised for b in sgen.bus]])) if len(sgen) else 0.0
    g_low = np.array([low[positions[i]] for i in on])
    g_cap = np.array([cap[positions[i]] for i in on])
    outputs = static_dispatch(load_mw - sgen_mw, g_low, g_cap)  # the static balance that ran before the event
    machines, kept, lost_mw = [], [], 0.0
    for i, p0, lo, hi in zip(on, outputs, g_low, g_cap):
        if i in lost:
            lost_mw += float(p0)
            continue
        sn = net.gen.at[i, "sn_mva"] if "sn_mva" in net.gen else float("nan")
        rating = settings.rating_mva.get(i) or (float(sn) if np.isfinite(sn) and sn > 0 else float(hi))
        machines.append(Machine(rating, settings.inertia_s.get(i, settings.default_inertia_s), float(p0),
                                float(hi), float(lo)))
        kept.append(i)
    return machines, kept, load_mw, lost_mw


def base_blackout_threshold(system) -> float | None:
    """:func:`blackout_threshold` of the untouched system (every generator running, the base dispatch)."""
    base = run_fast_cascade(system)
    machines, _, load_mw, _ = island_machines(system, base, [int(i) for i in system.net.gen.index])
    if not machines:
        return None
    return blackout_threshold(machines, load_mw, system.frequency)
