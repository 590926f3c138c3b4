"""Measures of blackout extent, computed from a simulation's timeline.

Pure functions: a :class:`~gridsim.sim.result.SimulationResult` in,
numbers out. The timeline is a step function: each recorded state holds
until the next instant, and the last one until ``end_min``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np

from gridsim.model.grid import dispatch_range
from gridsim.sim.result import SimulationResult

__all__ = ["compare_reported", "durations_h", "figure_at", "layer_summary", "load_outage_hours", "summarize",
           "timeline_rows"]

#: Grid elements restoration switches back (loads and buses follow them; layers restart by themselves).
_SWITCHED = ("substation", "line", "trafo", "trafo3w", "switch", "gen")

#: Curves whose time integral is reported (name in the summary -> series).
_INTEGRALS = {
    "people_hours_without_water": "people_without_water",
    "signal_hours_dark": "signals_dark",
    "rail_line_hours_stopped": "rail_lines_stopped",
    "telecom_site_hours_down": "telecom_sites_down",
}


def durations_h(result: SimulationResult) -> np.ndarray:
    """Hours each recorded state lasts (the last lasts until ``end_min``)."""
    times = result.times_min
    ends = np.append(times[1:], max(result.end_min, times[-1]))
    return (ends - times) / 60.0


def load_outage_hours(result: SimulationResult) -> np.ndarray:
    """For each load that lost supply: hours from its first loss to its last restoration.

    A load still out at the end counts until ``end_min``. Loads never out are NaN.
    """
    out = result.load_out_fraction > 0
    hours = np.full(out.shape[1], np.nan)
    times = np.append(result.times_min, max(result.end_min, result.times_min[-1]))
    for pos in np.flatnonzero(out.any(axis=0)):
        rows = np.flatnonzero(out[:, pos])
        hours[pos] = (times[rows[-1] + 1] - times[rows[0]]) / 60.0
    return hours


def summarize(result: SimulationResult) -> dict[str, Any]:
    """The headline figures of one run, as a JSON-ready dict (``summary.json``).

    Load lost (MW, customers, people), energy not served, durations, cascade
    depth and causes, per operator, and the layers' figures (water, traffic,
    telecom), each as docs/FORMATS.md describes it.

    Parameters
    ----------
    result : SimulationResult
        A finished run (:func:`gridsim.simulate`).

    Returns
    -------
    dict
        Figures by name; nested dicts for per-operator and per-layer figures.

    Examples
    --------
    >>> from gridsim import load_scenario, load_system, simulate
    >>> summary = summarize(simulate(load_system("ukraine-2015"), load_scenario("ukraine-2015")))
    >>> summary["peak_mw_lost"], round(summary["energy_not_served_mwh"], 1), summary["cascade_depth"]
    (180.0, 414.0, 0)
    """
    system = result.system
    lost = result.lost_mw
    customers = result.customers_out
    people = result.people_out
    dt_h = durations_h(result)
    base_demand = float(result.demand_mw[0]) if len(result.demand_mw) else 0.0
    peak = int(np.argmax(lost)) if len(lost) else 0
    peak_c = int(np.argmax(customers)) if len(customers) else 0
    restored_at = _full_restoration_min(result)
    outage_h = load_outage_hours(result)
    outage_h = outage_h[np.isfinite(outage_h)]

    failed: dict[str, set[str]] = defaultdict(set)
    restored: Counter[str] = Counter()
    for event in result.events:
        if event.state == "out":
            failed[event.cause].add(event.element)
        elif event.state == "in" and event.element.split(":", 1)[0] in _SWITCHED:
            restored[event.cause] += 1

    summary = {
        "scenario": result.scenario.name,
        "system": system.name,
        "engine": result.engine_label,
        "seed": result.seed,
        "horizon_h": result.horizon_min / 60.0,
        "base_demand_mw": round(base_demand, 3),
        "base_customers": int(system.customers.sum()),
        "peak_mw_lost": round(float(lost[peak]), 3),
        "peak_pct_lost": _percent(float(lost[peak]), float(result.demand_mw[peak])),
        "demand_at_peak_mw": round(float(result.demand_mw[peak]), 3),
        "peak_time_min": float(result.times_min[peak]),
        "peak_customers_out": int(round(float(customers[peak_c]))),
        "peak_people_out": int(round(float(people[peak_c]))),
        "energy_not_served_mwh": round(float(np.sum(lost * dt_h)), 3),
        "customer_hours_lost": round(float(np.sum(customers * dt_h)), 1),
        "time_to_full_restoration_min": restored_at,
        # Every customer back is not enough: nothing may stay down (a branch locked out, a telecom site, a pump,
        # a dependency cycle that cannot restart ...); ``still_down`` lists what does.
        "fully_restored": restored_at is not None and not result.still_down,
        "still_down": result.still_down,
        "outage_duration_h": {
            "loads_affected": int(outage_h.size),
            "min": round(float(outage_h.min()), 3) if outage_h.size else None,
            "median": round(float(np.median(outage_h)), 3) if outage_h.size else None,
            "max": round(float(outage_h.max()), 3) if outage_h.size else None,
        },
        "cascade_depth": int(result.cascade_depth),
        "elements_failed_by_cause": {cause: len(els) for cause, els in sorted(failed.items())},
        "restorations_by_cause": dict(sorted(restored.items())),
        "by_operator": _by_operator(result, dt_h),
        "reported": {},  # filled below: needs the figures above
        "targets": result.targets,
        **({"layers": layer_summary(result)} if result.layer_series else {}),
        **({"frequency": frequency_summary(result)} if system.frequency is not None else {}),
        **({"voltage_collapse": collapse_summary(result)} if result.voltage_collapses else {}),
        "control": control_summary(result, dt_h),
        "generation": generation_summary(result),
    }
    summary["reported"] = {row["measure"]: row for row in compare_reported(summary, result.scenario.reported)}
    return summary


def generation_summary(result: SimulationResult) -> dict[str, Any]:
    """Generators out at once (MW of capacity) and the longest a generator stayed out (h, to the run's end)."""
    net = result.system.net
    capacity = {f"gen:{int(i)}": float(c) for i, c in zip(net.gen.index, _capacity_mw(net))}
    out_since: dict[str, float] = {}
    longest, peak_mw, now_mw = 0.0, 0.0, 0.0
    for event in result.events:
        if event.element not in capacity:
            continue
        if event.state == "out" and event.element not in out_since:
            out_since[event.element] = event.t_min
            now_mw += capacity[event.element]
            peak_mw = max(peak_mw, now_mw)
        elif event.state == "in" and event.element in out_since:
            longest = max(longest, event.t_min - out_since.pop(event.element))
            now_mw -= capacity[event.element]
    for start in out_since.values():
        longest = max(longest, result.end_min - start)
    return {"peak_mw_capacity_out": round(peak_mw, 3), "longest_outage_h": round(longest / 60.0, 3)}


def _capacity_mw(net) -> np.ndarray:

    return dispatch_range(net)[1]


def control_summary(result: SimulationResult, dt_h: np.ndarray) -> dict[str, Any]:
    """Sites whose operator cannot switch them remotely, or cannot see them: peaks and site-hours.

    ``without_remote_control_at_end`` counts, per reason (a step, a telecom
    kind down, destroyed firmware), the sites still without remote control
    when the run ends: why restoration there stays manual.
    """
    out: dict[str, Any] = {}
    for name, series in (("control", result.sites_without_control), ("view", result.sites_without_view)):
        if not len(series):
            series = np.zeros(len(result.times_min))
        out[f"peak_sites_without_{name}"] = int(series.max()) if len(series) else 0
        out[f"site_hours_without_{name}"] = round(float(np.sum(series * dt_h)), 3)
        blind = np.flatnonzero(series > 0)
        out[f"hours_with_sites_without_{name}"] = round(float(np.sum(dt_h[blind])), 3)
    out["without_remote_control_at_end"] = {reason: len(sites) for reason, sites in result.control_lost.items()}
    return out


def collapse_summary(result: SimulationResult) -> dict[str, Any]:
    """When the AC power flow did not converge at full load and the voltage-collapse rule shed load.

    Every such cascade (``events``), and the largest cut: load the rule shed
    is part of every loss figure, so a user can tell how much of a blackout is
    this rule (physics beyond the grid's loadability, or a solver that gave
    up) rather than islanding or protection.
    """
    events = result.voltage_collapses
    largest = max(events, key=lambda e: e["shed_mw"])
    return {"events": events, "largest_shed_mw": largest["shed_mw"], "largest_at_min": largest["t_min"],
            "whole_islands": sum(1 for e in events if e["rings"] is None)}


def frequency_summary(result: SimulationResult) -> dict[str, Any]:
    """The frequency model's findings: every event, the extremes, and the system's blackout threshold.

    ``blackout_demand_increase_pct`` is the smallest sudden demand increase,
    in per cent of the untouched demand, that trips the generators of the
    untouched system (None if no increase up to 500 % does).
    """
    events = result.frequency_events
    nominal = result.system.frequency.nominal_hz
    return {
        "events": events,
        "lowest_hz": min((e["nadir_hz"] for e in events), default=nominal),
        "highest_hz": max((e["zenith_hz"] for e in events), default=nominal),
        "largest_ufls_share": max((e["ufls_share"] for e in events), default=0.0),
        "generator_trips": sum(1 for e in events if e["tripped"]),
        "blackout_demand_increase_pct": result.blackout_demand_increase_pct,
    }


def figure_at(summary: dict[str, Any], measure: str) -> float | None:
    """A figure of a summary by dotted path (``by_operator.kyivoblenergo.outage_h``); None if absent."""
    value: Any = summary
    for part in measure.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def compare_reported(summary: dict[str, Any], reported) -> list[dict[str, Any]]:
    """Each reported figure beside the simulated one, and whether they agree (None: shown, not judged).

    A figure marked ``calibrated`` was an input of the topology: it is shown,
    never counted as agreement.
    """
    rows = []
    for r in reported:
        simulated = figure_at(summary, r.measure)
        rows.append({"measure": r.measure, "simulated": simulated, "value": r.value, "source": r.source,
                     "note": r.note, "tolerance_pct": r.tolerance_pct,
                     "range": list(r.range) if r.range is not None else None, "calibrated": r.calibrated,
                     "agrees": None if r.calibrated else r.agrees(simulated)})
    return rows


def layer_summary(result: SimulationResult) -> dict[str, Any]:
    """Blackout extent beyond the grid: peaks and time integrals of the layers' curves.

    ``first_<series>_min`` is when a curve first rises above zero (None if it
    never does): e.g. how long after the attack the first taps run dry.
    """
    series = result.layer_series
    dt_h = durations_h(result)
    out: dict[str, Any] = {"layers": result.system.layers.present, "hydraulic_runs": result.hydraulic_runs}
    for name, values in series.items():
        out[f"peak_{name}"] = _rounded(float(values.max()) if len(values) else 0.0)
    for label, name in _INTEGRALS.items():
        out[label] = round(float(np.sum(series[name] * dt_h)), 1)
    for name in ("people_without_water", "signals_dark", "rail_lines_stopped", "telecom_sites_down"):
        rising = np.flatnonzero(series[name] > 0)
        out[f"first_{name}_min"] = float(result.times_min[rising[0]]) if len(rising) else None
    return out


def _rounded(value: float) -> float | int:
    return int(round(value)) if float(value).is_integer() or abs(value) >= 100 else round(value, 3)


def _percent(part: float, whole: float) -> float:
    """Share of the demand at that instant (demand scaled up by an attack included)."""
    return round(100.0 * part / whole, 3) if whole > 0 else 0.0


def _full_restoration_min(result: SimulationResult) -> float | None:
    """First instant after the last loss from which nobody is off supply, or None.

    Customers only: ``fully_restored`` also asks that nothing stays down.
    """
    off = result.load_out_fraction.sum(axis=1) > 0
    if not off.any():
        return 0.0
    if off[-1]:
        return None
    last_off = int(np.flatnonzero(off)[-1])
    return float(result.times_min[last_off + 1])


def _by_operator(result: SimulationResult, dt_h: np.ndarray) -> dict[str, dict[str, Any]]:
    system = result.system
    operators = np.array([system.substations[s].operator for s in system.load_site])
    report = {}
    for op in sorted(set(operators)):
        mask = operators == op
        customers = result.load_out_fraction[:, mask] @ system.customers[mask]
        if not customers.any():
            continue
        off = customers > 0
        first = float(result.times_min[np.flatnonzero(off)[0]])
        last = int(np.flatnonzero(off)[-1])
        back = float(result.times_min[last + 1]) if last + 1 < len(result.times_min) else None
        report[op] = {
            "peak_customers_out": int(round(float(customers.max()))),
            "first_out_min": first,
            "restored_min": back,
            "outage_h": round((back - first) / 60.0, 3) if back is not None else None,
            "customer_hours_lost": round(float(np.sum(customers * dt_h)), 1),
        }
    return report


def timeline_rows(result: SimulationResult) -> list[dict[str, Any]]:
    """Rows of ``timeline.csv``: the state after every instant where something happened.

    A system with layers adds one column per layer curve, before ``what_happened``.
    """
    rows = _power_rows(result)
    for i, row in enumerate(rows):
        label = row.pop("what_happened")
        for name, values in result.layer_series.items():
            row[name] = _rounded(float(values[i]))
        row["what_happened"] = label
    return rows


def _power_rows(result: SimulationResult) -> list[dict[str, Any]]:
    customers, people = result.customers_out, result.people_out
    return [
        {
            "t_min": round(float(t), 6),
            "t_h": round(float(t) / 60.0, 6),
            "demand_mw": round(float(d), 6),
            "served_mw": round(float(s), 6),
            "lost_mw": round(float(d - s), 6),
            "customers_out": int(round(float(c))),
            "people_out": int(round(float(p))),
            "what_happened": label,
        }
        for t, d, s, c, p, label in zip(result.times_min, result.demand_mw, result.served_mw, customers, people,
                                        result.labels)
    ]
