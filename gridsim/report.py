"""Plots of a run: served load, customers out and the layers' curves over time (``timeline.png``)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from gridsim.engine.simulation import SimulationResult

__all__ = ["plot_ccdf", "plot_timeline"]

_GRID_ELEMENTS = ("substation", "line", "trafo", "trafo3w", "switch", "gen")


def plot_timeline(result: SimulationResult, path: str | Path) -> Path:
    """Panels against hours since t = 0: served/demanded MW, customers out, and for a system
    with layers people without power and water, travel time, signals dark and rail stopped.

    Attack steps are marked with dashed red lines (labelled with their ATT&CK
    id); restorations with green ticks on the time axis.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    end = max(result.end_min, float(result.times_min[-1]))
    t = np.append(result.times_min, end) / 60.0
    served = np.append(result.served_mw, result.served_mw[-1])
    demand = np.append(result.demand_mw, result.demand_mw[-1])
    customers = np.append(result.customers_out, result.customers_out[-1])

    layers = result.layer_series
    water = layers and result.system.layers.water is not None
    transport = layers and result.system.layers.transport is not None
    rows = 2 + int(bool(water)) + int(bool(transport))
    fig, axes = plt.subplots(rows, 1, sharex=True, figsize=(10, 3.2 * rows + 0.1), constrained_layout=True)
    ax_mw, ax_c = axes[0], axes[1]
    ax_mw.step(t, demand, where="post", color="0.6", lw=1.2, ls="--", label="demand")
    ax_mw.step(t, served, where="post", color="tab:blue", lw=1.8, label="served")
    ax_mw.fill_between(t, served, demand, step="post", color="tab:red", alpha=0.2, label="not served")
    ax_mw.set_ylabel("load (MW)")
    ax_mw.legend(loc="lower right", fontsize=8)
    ax_c.step(t, customers, where="post", color="tab:red", lw=1.8)
    ax_c.set_ylabel("customers without power")
    ax_c.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))

    extra = list(axes[2:])
    if water:
        ax_w = extra.pop(0)
        ax_w.step(t, np.append(result.people_out, result.people_out[-1]), where="post", color="tab:red", lw=1.2,
                  label="people without power")
        people_w = layers["people_without_water"]
        ax_w.step(t, np.append(people_w, people_w[-1]), where="post", color="tab:cyan", lw=1.8,
                  label="people without water")
        ax_w.set_ylabel("people")
        ax_w.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax_w.legend(loc="upper right", fontsize=8)
    if transport:
        ax_t = extra.pop(0)
        increase = layers["travel_time_increase_pct"]
        ax_t.step(t, np.append(increase, increase[-1]), where="post", color="tab:purple", lw=1.8,
                  label="travel time increase (%)")
        ax_t.set_ylabel("travel time +%")
        ax_s = ax_t.twinx()
        dark = layers["signals_dark"]
        ax_s.step(t, np.append(dark, dark[-1]), where="post", color="tab:orange", lw=1.2, label="signals dark")
        stopped = layers["rail_lines_stopped"]
        ax_s.step(t, np.append(stopped, stopped[-1]), where="post", color="0.3", lw=1.2, ls="--",
                  label="rail lines stopped")
        ax_s.set_ylabel("signals dark / rail lines stopped")
        handles = ax_t.get_legend_handles_labels()[0] + ax_s.get_legend_handles_labels()[0]
        ax_t.legend(handles=handles, loc="upper right", fontsize=8)
    axes[-1].set_xlabel("hours since t = 0")

    by_time: dict[float, list[str]] = {}
    for t_min, label in result.step_times:
        technique = label.split("(")[-1].rstrip(")")
        by_time.setdefault(t_min, [])
        if technique not in by_time[t_min]:
            by_time[t_min].append(technique)
    for t_min, ids in by_time.items():
        for ax in axes:
            ax.axvline(t_min / 60.0, color="tab:red", ls=":", lw=0.9, alpha=0.8)
        ax_mw.annotate(" ".join(ids), (t_min / 60.0, 0.02), xycoords=("data", "axes fraction"),
                       rotation=90, va="bottom", ha="right", fontsize=7, color="tab:red")
    ax_mw.set_ylim(bottom=0)
    restored = [e.t_min / 60.0 for e in result.events
                if e.state == "in" and e.element.split(":", 1)[0] in _GRID_ELEMENTS]
    if restored:
        ax_c.plot(restored, np.zeros(len(restored)), "|", color="tab:green", ms=12, mew=1.5,
                  label="restoration", clip_on=False)
        ax_c.legend(loc="upper right", fontsize=8)
    summary_mwh = float(np.sum(result.lost_mw * np.diff(t)))
    fig.suptitle(f"{result.scenario.name} on {result.system.name}: "
                 f"peak {result.lost_mw.max():,.0f} MW lost, {result.customers_out.max():,.0f} customers out, "
                 f"{summary_mwh:,.0f} MWh not served", fontsize=10)
    path = Path(path)
    with warnings.catch_warnings():  # e.g. glyphs missing from the font for a scenario's name
        warnings.simplefilter("ignore")
        fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_ccdf(accumulator, path: str | Path) -> Path:
    """The blackout-size distribution of a sweep: P(MW lost >= x) against x, both axes logarithmic.

    Heavy tails (a straight line on these axes) are the signature of
    cascading failure in power grids (Dobson et al., Chaos 17, 026103, 2007).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = accumulator.summary()
    x, p = accumulator.ccdf_curve()
    fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    if len(x):
        ax.step(x, p, where="post", color="tab:red")
        ax.set_xscale("log")
        ax.set_yscale("log")
    else:
        ax.text(0.5, 0.5, "no scenario lost any load", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("MW lost (x)")
    ax.set_ylabel("P(MW lost >= x)")
    ax.grid(True, which="both", alpha=0.3)
    how = f"{summary['scenarios']:,} scenarios, {summary['targets']} k = {summary['k']}"
    ax.set_title(f"{summary['system']}: blackout sizes ({how})")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
