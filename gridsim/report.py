"""Plots of a run: served load and customers out over time (``timeline.png``)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from gridsim.engine.simulation import SimulationResult

__all__ = ["plot_timeline"]


def plot_timeline(result: SimulationResult, path: str | Path) -> Path:
    """Two panels against hours since t = 0: served/demanded MW, customers out.

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

    fig, (ax_mw, ax_c) = plt.subplots(2, 1, sharex=True, figsize=(10, 6.5), constrained_layout=True)
    ax_mw.step(t, demand, where="post", color="0.6", lw=1.2, ls="--", label="demand")
    ax_mw.step(t, served, where="post", color="tab:blue", lw=1.8, label="served")
    ax_mw.fill_between(t, served, demand, step="post", color="tab:red", alpha=0.2, label="not served")
    ax_mw.set_ylabel("load (MW)")
    ax_mw.legend(loc="lower right", fontsize=8)
    ax_c.step(t, customers, where="post", color="tab:red", lw=1.8)
    ax_c.set_ylabel("customers without power")
    ax_c.set_xlabel("hours since t = 0")
    ax_c.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))

    by_time: dict[float, list[str]] = {}
    for t_min, label in result.step_times:
        technique = label.split("(")[-1].rstrip(")")
        by_time.setdefault(t_min, [])
        if technique not in by_time[t_min]:
            by_time[t_min].append(technique)
    for t_min, ids in by_time.items():
        for ax in (ax_mw, ax_c):
            ax.axvline(t_min / 60.0, color="tab:red", ls=":", lw=0.9, alpha=0.8)
        ax_mw.annotate(" ".join(ids), (t_min / 60.0, 0.02), xycoords=("data", "axes fraction"),
                       rotation=90, va="bottom", ha="right", fontsize=7, color="tab:red")
    ax_mw.set_ylim(bottom=0)
    restored = [e.t_min / 60.0 for e in result.events if e.state == "in" and not e.element.startswith("load:")]
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
