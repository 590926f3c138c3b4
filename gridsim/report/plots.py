"""Plots of a run: served load, customers out and the layers' curves over time (``timeline.png``)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from gridsim.sim.result import SimulationResult

__all__ = ["plot_ccdf", "plot_timeline"]

_GRID_ELEMENTS = ("substation", "line", "trafo", "trafo3w", "switch", "gen")


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend, imported at the first plot.

    matplotlib takes about 0.6 s to import, which ``--no-plot`` runs and
    library users who never plot do not pay; the backend must be chosen
    before pyplot is imported.
    """
    import matplotlib  # noqa: PLC0415  (see the docstring)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def plot_timeline(result: SimulationResult, path: str | Path) -> Path:
    """Panels against hours since t = 0: the attack steps, served/demanded MW, MW lost on its own scale (a
    small loss on a large grid stays visible), customers out, and for a system with layers people without
    power and water, travel time, signals dark and rail stopped.

    Attack steps are marked with dotted red lines through every panel and
    labelled in a strip on top ("0:05 T0823 T0855": time, ATT&CK ids), the
    labels stacked where they would collide; restorations with green ticks.
    """
    plt = _pyplot()
    matplotlib = plt.matplotlib

    end = max(result.end_min, float(result.times_min[-1]))
    t = np.append(result.times_min, end) / 60.0
    served = np.append(result.served_mw, result.served_mw[-1])
    demand = np.append(result.demand_mw, result.demand_mw[-1])
    lost = np.append(result.lost_mw, result.lost_mw[-1])
    customers = np.append(result.customers_out, result.customers_out[-1])

    layers = result.layer_series
    water = layers and result.system.layers.water is not None
    transport = layers and result.system.layers.transport is not None
    heights = [2.2, 2.4, 2.4] + [2.4] * (int(bool(water)) + int(bool(transport)))
    span_h = max(float(t[-1]), 1e-3)
    xlim = (-0.02 * span_h, 1.02 * span_h)
    labels = _step_labels(result.step_times)
    width_in = 10.0
    plot_width_in = width_in - (2.5 if transport else 1.7)  # less the axis labels: generous, so labels never meet
    placed = _stack_labels(labels, plot_width_in, xlim)
    levels = max((level for *_, level in placed), default=-1) + 1
    strip_in = 0.2 + 0.17 * max(levels, 1)
    fig, axes = plt.subplots(len(heights) + 1, 1, sharex=True, figsize=(width_in, strip_in + sum(heights) + 0.4),
                             constrained_layout=True, gridspec_kw={"height_ratios": [strip_in, *heights]})
    ax_steps, ax_mw, ax_lost, ax_c = axes[0], axes[1], axes[2], axes[3]
    ax_mw.set_xlim(*xlim)

    ax_mw.step(t, demand, where="post", color="0.6", lw=1.2, ls="--", label="demand")
    ax_mw.step(t, served, where="post", color="tab:blue", lw=1.8, label="served")
    ax_mw.fill_between(t, served, demand, step="post", color="tab:red", alpha=0.2, label="not served")
    ax_mw.set_ylabel("load (MW)")
    ax_mw.set_ylim(bottom=0)
    ax_mw.legend(loc="lower right", fontsize=8)
    ax_lost.step(t, lost, where="post", color="tab:red", lw=1.8)
    ax_lost.fill_between(t, 0, lost, step="post", color="tab:red", alpha=0.2)
    ax_lost.set_ylabel("load lost (MW)")
    top = float(lost.max()) * 1.1
    ax_lost.set_ylim(0, top if top > 0 else 1.0)
    ax_lost.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(
        (lambda v, _: f"{v:,.0f}") if top >= 10 else (lambda v, _: f"{v:g}")))
    if top <= 0:
        ax_lost.text(0.5, 0.5, "no load lost", ha="center", va="center", transform=ax_lost.transAxes, color="0.4",
                     bbox={"fc": "white", "ec": "none"}, zorder=3)
    ax_c.step(t, customers, where="post", color="tab:red", lw=1.8)
    ax_c.set_ylabel("customers without power")
    _count_axis(matplotlib, ax_c, float(customers.max()))

    extra = list(axes[4:])
    if water:
        ax_w = extra.pop(0)
        ax_w.step(t, np.append(result.people_out, result.people_out[-1]), where="post", color="tab:red", lw=1.2,
                  label="people without power")
        people_w = layers["people_without_water"]
        ax_w.step(t, np.append(people_w, people_w[-1]), where="post", color="tab:cyan", lw=1.8,
                  label="people without water")
        ax_w.set_ylabel("people")
        _count_axis(matplotlib, ax_w, max(float(np.max(people_w)), float(np.max(result.people_out))))
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

    _draw_steps(ax_steps, axes[1:], placed, levels)
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


def _count_axis(matplotlib, ax, largest: float) -> None:
    """A y axis of whole counts (customers, people): integer ticks with thousands separators, 0 to 1 if empty."""
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10], integer=True))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    if largest <= 0:
        ax.set_ylim(-0.05, 1.0)


_LABEL_PT = 7.0  # font size of the step labels
_MAX_LEVELS = 8  # rows of labels at most; beyond, labels share the emptiest row


def _step_labels(step_times: list[tuple[float, str]]) -> list[tuple[float, str]]:
    """One label per step time: ``"0:05 T0814 T0823"`` (the action's name for a step that is not an attack)."""
    by_time: dict[float, list[str]] = {}
    for t_min, label in step_times:
        technique = label.split("(")[-1].rstrip(")")
        if technique == "none":
            parts = label.split()
            technique = parts[2] if len(parts) > 2 else technique
        ids = by_time.setdefault(t_min, [])
        if technique not in ids:
            ids.append(technique)
    labels = []
    for t_min, ids in sorted(by_time.items()):
        hours, minutes = divmod(int(round(t_min)), 60)
        labels.append((t_min / 60.0, f"{hours}:{minutes:02d} {' '.join(ids)}"))
    return labels


def _text_width_in(text: str) -> float:
    """Width of ``text`` at the labels' font size, in inches (measured on the glyph outlines)."""
    from matplotlib.font_manager import FontProperties  # noqa: PLC0415  (matplotlib: see _pyplot)
    from matplotlib.textpath import TextPath  # noqa: PLC0415

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        extent = TextPath((0, 0), text, size=_LABEL_PT, prop=FontProperties(size=_LABEL_PT)).get_extents()
    return float(extent.width) / 72.0


def _stack_labels(labels: list[tuple[float, str]], plot_width_in: float,
                  xlim: tuple[float, float]) -> list[tuple[float, str, str, int]]:
    """Greedy rows for the labels, in time order: each goes to the lowest row where it meets no earlier label.

    A label starts at its step's line and runs right (left, if it would leave
    the plot). Returns ``(x, text, ha, row)`` for each.
    """
    per_in = (xlim[1] - xlim[0]) / plot_width_in  # hours per inch
    pad = 0.08 * per_in
    rows: list[float] = []  # right edge of the last label in each row
    placed = []
    for x, text in labels:
        width = (_text_width_in(text) + 0.06) * per_in
        ha, left, right = "left", x, x + width
        if right > xlim[1]:
            ha, left, right = "right", x - width, x
        free = [i for i, edge in enumerate(rows) if edge + pad <= left]
        if free:
            row = free[0]
        elif len(rows) < _MAX_LEVELS:
            rows.append(-np.inf)
            row = len(rows) - 1
        else:
            row = int(np.argmin(rows))
        rows[row] = max(rows[row], right)
        placed.append((x, text, ha, row))
    return placed


def _draw_steps(ax_steps, panels, placed: list[tuple[float, str, str, int]], levels: int) -> None:
    """The label strip (a leader from each label down to its step's line) and the dotted lines in the panels."""
    ax_steps.set_ylim(0, max(levels, 1))
    ax_steps.set_yticks([])
    for spine in ax_steps.spines.values():
        spine.set_visible(False)
    ax_steps.tick_params(axis="x", bottom=False)
    ax_steps.set_ylabel("attack\nsteps", fontsize=8, rotation=0, ha="right", va="center")
    for x, text, ha, row in placed:
        ax_steps.plot([x, x], [0, row + 0.5], color="tab:red", ls=":", lw=0.9, alpha=0.8, zorder=1)
        ax_steps.annotate(text, (x, row + 0.5), xytext=(2 if ha == "left" else -2, 0), textcoords="offset points",
                          ha=ha, va="center", fontsize=_LABEL_PT, color="tab:red", zorder=3,
                          bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none"})
        for ax in panels:
            ax.axvline(x, color="tab:red", ls=":", lw=0.9, alpha=0.8)


def plot_ccdf(accumulator, path: str | Path, summary: dict | None = None) -> Path:
    """The blackout-size distribution of a sweep: P(MW lost >= x) against x, both axes logarithmic.

    ``summary`` is ``accumulator.summary()`` when the caller has it already
    (a pass over every row's figures less).

    Heavy tails (a straight line on these axes) are the signature of
    cascading failure in power grids (Dobson et al., Chaos 17, 026103, 2007).
    """
    plt = _pyplot()

    summary = summary if summary is not None else accumulator.summary()
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
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
    return Path(path)
