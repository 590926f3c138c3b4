"""``gridsim run``: one scenario on one system, summary printed, bundle written."""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from pathlib import Path

import click

from gridsim.cli.common import UserError, exits_cleanly_on_sigterm, nonempty_folder, reports_errors, system_option
from gridsim.scenario.schema import MAX_HORIZON_H


@click.command("run")
@click.argument("scenario", metavar="SCENARIO")
@system_option
@click.option("--flow", type=click.Choice(["dc", "ac"]), default="dc", show_default=True,
              help="Power flow of the cascade.")
@click.option("--engine", type=click.Choice(["fast", "reference"]), default="fast", show_default=True,
              help="Cascade engine: compiled arrays, or plain pandapower (slow, for checking).")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Seed of random target selection (default: the scenario's, else 0).")
@click.option("--horizon-h", type=click.FloatRange(min=0, min_open=True, max=MAX_HORIZON_H), default=None,
              callback=lambda ctx, param, value: _finite(value),
              help="Hours to simulate (default: the scenario's horizon_h, else 24).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="results", callback=nonempty_folder,
              show_default=True, help="Folder that receives the results bundle.")
@click.option("--no-bundle", is_flag=True, help="Print the summary only; write nothing.")
@click.option("--no-plot", is_flag=True, help="Skip timeline.png.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@reports_errors
@exits_cleanly_on_sigterm
def run_command(scenario: str, system_spec: str | None, flow: str, engine: str, seed: int | None,
                horizon_h: float | None,
                out_dir: Path, no_bundle: bool, no_plot: bool, as_json: bool) -> None:
    """Run SCENARIO (a file in attacks/ or a bundled name) and measure the blackout."""
    from gridsim.loading import load_system
    from gridsim.results.bundle import run_summary, write_bundle
    from gridsim.results.staging import check_writable
    from gridsim.scenario.schema import load_scenario
    from gridsim.sim.simulation import simulate

    started = time.perf_counter()
    if not no_bundle:
        check_writable(out_dir)
    plan = load_scenario(scenario)
    spec = system_spec or plan.system
    if spec is None:
        raise UserError(f"{plan.path}: names no system; pass --system (e.g. --system pandapower:case118)")
    system = load_system(spec)
    with _progress_bar(horizon_h or plan.horizon_h) as advance:
        result = simulate(system, plan, flow=flow, engine=engine, seed=seed, horizon_h=horizon_h, progress=advance)
    summary = run_summary(result)
    bundle = None if no_bundle else write_bundle(result, out_dir, command=sys.argv, plot=not no_plot,
                                                 summary=summary)
    elapsed = time.perf_counter() - started
    if as_json:
        click.echo(json.dumps({**summary, "bundle": str(bundle) if bundle else None}, indent=2))
    else:
        click.echo(format_summary(summary))
        if bundle:
            click.echo(f"results: {bundle}  ({elapsed:.1f} s)")


def _finite(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number")
    return value


@contextlib.contextmanager
def _progress_bar(horizon_h: float):
    """A bar over simulated time on stderr, shown only when stderr is a terminal."""
    if not sys.stderr.isatty():
        yield None
        return
    total = int(round(horizon_h * 60))
    with click.progressbar(length=total, label="simulating", file=sys.stderr,
                           item_show_func=lambda t: f"t = {t / 60:.1f} h" if t is not None else "") as bar:
        done = 0

        def advance(now_min: float) -> None:
            nonlocal done
            step = min(int(now_min), total) - done
            if step > 0:
                bar.update(step, int(now_min))
                done += step

        yield advance
        bar.update(total - done)


def _duration(minutes: float | None) -> str:
    if minutes is None:
        return "not within the horizon"
    hours, mins = divmod(int(round(minutes)), 60)
    return f"{hours} h {mins:02d} min"


def format_summary(s: dict) -> str:
    """The human summary printed by ``gridsim run``."""
    causes = ", ".join(f"{cause} {n}" for cause, n in s["elements_failed_by_cause"].items()) or "none"
    outage = s["outage_duration_h"]
    lines = [
        f"{s['scenario']} on {s['system']} ({s['engine']}, seed {s['seed']})",
        f"  peak load lost        {s['peak_mw_lost']:,.1f} MW ({s['peak_pct_lost']:.1f} % of "
        f"{s['demand_at_peak_mw']:,.1f} MW) at t = {_duration(s['peak_time_min'])}",
        f"  peak customers out    {s['peak_customers_out']:,} of {s['base_customers']:,} "
        f"({s['peak_people_out']:,} people)",
        f"  energy not served     {s['energy_not_served_mwh']:,.1f} MWh",
        f"  customer-hours lost   {s['customer_hours_lost']:,.0f}",
        f"  full restoration      {_duration(s['time_to_full_restoration_min'])}",
    ]
    if outage["loads_affected"]:
        lines.append(f"  outage per load       {outage['min']:.2f} to {outage['max']:.2f} h "
                     f"(median {outage['median']:.2f} h, {outage['loads_affected']} loads)")
    lines += [
        f"  cascade depth         {s['cascade_depth']}",
        f"  failed, by cause      {causes}",
    ]
    caveat = _ratings_caveat(s.get("ratings"))
    if caveat:
        lines.append(caveat)
    lines += [f"  grid note             {note}" for note in s.get("grid_notes", ())]
    if len(s["by_operator"]) > 1:
        lines.append("  by operator")
        width = max(24, *(len(op) for op in s["by_operator"]))  # a long name widens the column, never shifts it
        for op, row in s["by_operator"].items():
            out_min = row["outage_h"] * 60 if row["outage_h"] is not None else None
            lines.append(f"    {op:<{width}} {row['peak_customers_out']:>9,} customers, out {_duration(out_min)}")
    if s.get("layers"):
        lines += _layer_lines(s["layers"])
    if s.get("frequency"):
        f = s["frequency"]
        threshold = f["blackout_demand_increase_pct"]
        lines.append(f"  frequency             lowest {f['lowest_hz']:.2f} Hz, highest {f['highest_hz']:.2f} Hz; "
                     f"under-frequency shedding up to {100 * f['largest_ufls_share']:.1f} % of load; "
                     f"generator trips {f['generator_trips']}")
        lines.append("  blackout threshold    " + (f"a sudden demand increase of {threshold:.1f} % trips the generators"
                                                    if threshold is not None else "none up to +500 % demand"))
    if s.get("voltage_collapse"):
        lines.append(_collapse_line(s["voltage_collapse"]))
    if s.get("reported"):
        lines.append("  compared with what was reported")
        lines += _comparison_table(s["reported"])
    return "\n".join(lines)


def _collapse_line(collapse: dict) -> str:
    """One line saying how much load the voltage-collapse rule shed, so it is not read as islanding or trips."""
    from gridsim.power.contract import AC_SHED_STEP, UVLS_PU

    events = collapse["events"]
    largest = max(events, key=lambda e: e["shed_mw"])
    where = ("the whole islands" if largest["rings"] is None
             else f"{largest['rings']} branch(es) around the buses below {UVLS_PU:g} p.u.")
    return (f"  voltage collapse      AC flow did not converge at full load {len(events)} time(s); "
            f"the rule shed up to {largest['shed_mw']:,.1f} MW ({largest['stages']} x {AC_SHED_STEP:.0%} at "
            f"{largest['loads']} loads, {where}) at t = {_duration(largest['t_min'])}")


def _ratings_caveat(ratings: dict | None) -> str | None:
    """One line when gridsim set branch ratings itself: every loss figure then depends on its margin."""
    if not ratings or not (ratings.get("derived") or ratings.get("raised")):
        return None
    derived, raised, branches = ratings.get("derived", 0), ratings.get("raised", 0), ratings.get("branches", "?")
    parts = [f"{derived} of {branches} branches derived"] if derived else []
    if raised:
        parts.append(f"{raised} raised" if derived else f"{raised} of {branches} branches raised")
    return (f"  caveat                ratings of {', '.join(parts)} by gridsim as (1 + margin) x base-case flow "
            "(Motter-Lai)")


def _comparison_table(reported: dict) -> list[str]:
    """Reported figures beside the simulated ones, one row each; every column as wide as its longest entry."""
    rows = [(measure, _figure(rep["simulated"]), _reported(rep), _verdict(rep),
             rep["source"] + (f", {rep['note']}" if rep.get("note") else ""))
            for measure, rep in reported.items()]
    header = ("measure", "simulated", "reported", "verdict", "source")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]

    def line(row: tuple[str, ...]) -> str:
        measure, simulated, rep, verdict, source = row
        return (f"    {measure:<{widths[0]}}  {simulated:>{widths[1]}}  {rep:<{widths[2]}}  "
                f"{verdict:<{widths[3]}}  {source}").rstrip()

    return [line(header), *(line(row) for row in rows)]


def _layer_lines(layers: dict) -> list[str]:
    """Blackout extent beyond the grid, for the layers the system has."""
    present = layers["layers"]
    lines = []
    if "water" in present:
        if layers["peak_people_without_water"]:
            lines.append(f"  people without water  {layers['peak_people_without_water']:,} at peak "
                         f"({layers['peak_junctions_without_water']} junctions), first at "
                         f"{_duration(layers['first_people_without_water_min'])}; "
                         f"{layers['people_hours_without_water']:,.0f} people-hours")
        else:
            quiet = layers["peak_junctions_without_water"]
            lines.append("  people without water  none" + (f" (pressure lost at {quiet} junctions that serve nobody)"
                                                           if quiet else ""))
    if "transport" in present:
        lines.append(f"  traffic signals dark  {layers['peak_signals_dark']} at peak, first at "
                     f"{_duration(layers['first_signals_dark_min'])}; {layers['signal_hours_dark']:,.0f} signal-hours"
                     if layers["peak_signals_dark"] else "  traffic signals dark  none")
        lines.append(f"  travel time           +{layers['peak_travel_time_increase_pct']:.1f} % at peak "
                     "(equilibrium assignment of the demand table)")
        lines.append(f"  rail lines stopped    {layers['peak_rail_lines_stopped']} at peak "
                     f"({layers['peak_rail_riders_stranded_per_h']:,} riders/h stranded); "
                     f"{layers['rail_line_hours_stopped']:,.1f} line-hours")
    if "telecom" in present:
        lines.append(f"  telecom sites down    {layers['peak_telecom_sites_down']} at peak; substations without "
                     f"remote control {layers['peak_substations_without_control']}, without view "
                     f"{layers['peak_substations_without_view']}")
    if "facilities" in present or layers["peak_generators_out_by_dependency"]:
        lines.append(f"  facilities down       {layers['peak_facilities_down']} at peak; generators out by "
                     f"dependency {layers['peak_generators_out_by_dependency']}")
    return lines


def _reported(rep: dict) -> str:
    """The reported figure with what counts as agreement: ``225,000 ±5 %``, ``1-6`` (a range)."""
    if rep.get("range") is not None:
        low, high = rep["range"]
        return _figure(low) if low == high else f"{_figure(low)} to {_figure(high)}"
    text = _figure(rep["value"])
    return f"{text} ±{rep['tolerance_pct']:g} %" if rep.get("tolerance_pct") is not None else text


def _verdict(rep: dict) -> str:
    """As ``gridsim case-study`` says it: an input of the topology is shown, never counted as agreement."""
    if rep.get("calibrated"):
        return "calibrated input"
    return {True: "agrees", False: "DISAGREES", None: "shown only"}[rep.get("agrees")]


def _figure(value) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:,.2f}"
