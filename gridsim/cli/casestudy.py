"""``gridsim case-study`` and ``gridsim techniques``: real incidents beside their reported figures."""

from __future__ import annotations

import json
from collections import defaultdict

import click

from gridsim.cli.common import UserError, reports_errors


@click.command("case-study")
@click.argument("name", required=False)
@click.option("--all", "run_all", is_flag=True, help="Run every bundled case study.")
@click.option("--mitigate", "mitigations", multiple=True, metavar="NAME",
              help="Run again with this mitigation and compare (repeatable; see --list-mitigations).")
@click.option("--list-mitigations", is_flag=True, help="List the mitigations and exit.")
@click.option("--flow", type=click.Choice(["dc", "ac"]), default="dc", show_default=True)
@click.option("--engine", type=click.Choice(["fast", "reference"]), default="fast", show_default=True)
@click.option("--check", is_flag=True, help="Exit with status 1 if a judged figure falls outside its tolerance.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@reports_errors
def case_study_command(name: str | None, run_all: bool, mitigations: tuple[str, ...], list_mitigations: bool,
                       flow: str, engine: str, check: bool, as_json: bool) -> None:
    """Run the bundled case study NAME and compare it with what was reported.

    \b
    Examples:
      gridsim case-study ukraine-2015
      gridsim case-study ukraine-2015 --mitigate spare-converters --mitigate manual-control-ready
      gridsim case-study --all

    Prints, for every reported figure: simulated, reported (with its tolerance or range),
    source, and whether they agree. Figures that were inputs of the topology are marked
    "calibrated input" and not counted.
    """
    from gridsim.analysis.casestudy import case_studies, run_case_study
    from gridsim.scenario.mitigations import MITIGATIONS

    if list_mitigations:
        for mitigation in MITIGATIONS.values():
            click.echo(f"{mitigation.name:<28} {mitigation.description}")
        return
    if run_all == (name is not None):
        raise UserError("name one case study, or pass --all (known: " + ", ".join(case_studies()) + ")")
    names = case_studies() if run_all else [name]
    studies = [run_case_study(n, mitigations=mitigations, flow=flow, engine=engine) for n in names]
    if as_json:
        click.echo(json.dumps([{"case_study": s.name, "agrees": s.agrees, "reported": s.rows,
                                "mitigations": {m: run.as_dict() for m, run in s.mitigations.items()}}
                               for s in studies], indent=2))
    else:
        click.echo("\n\n".join(format_case_study(s) for s in studies))
    if check and not all(s.agrees for s in studies):
        raise SystemExit(1)


def format_case_study(study) -> str:
    """The printed comparison of one case study (and its mitigations)."""
    from gridsim.analysis.casestudy import HEADLINE

    lines = [f"{study.name}: {_first(study.description)}",
             f"  {'measure':<46} {'simulated':>12}  {'reported':<22} {'verdict':<17} source"]
    for row in study.rows:
        lines.append(f"  {row['measure']:<46} {_number(row['simulated']):>12}  {_reported(row):<22} "
                     f"{_verdict(row):<17} {row['source']}")
    judged = study.judged
    calibrated = sum(1 for row in study.rows if row["calibrated"])
    agreeing = sum(1 for row in judged if row["agrees"])
    lines.append(f"  {agreeing} of {len(judged)} judged figures within tolerance; "
                 f"{calibrated} calibrated input(s) shown, not counted")
    if study.mitigations:
        header = f"  {'mitigation':<28}" + "".join(f" {_short(m):>14}" for m in HEADLINE)
        lines += ["", "  what would have helped", header]
        lines.append(f"  {'(none)':<28}" + "".join(f" {_number(study.summary.get(m)):>14}" for m in HEADLINE))
        for mitigation, run in study.mitigations.items():
            if run.summary is None:
                lines.append(f"  {mitigation:<28} does not apply to this case")
                continue
            lines.append(f"  {mitigation:<28}" + "".join(f" {_number(run.summary.get(m)):>14}" for m in HEADLINE))
            lines.append(f"    changed: {run.changed}")
            lines.append(f"    moved:   {_moved(run)}")
    return "\n".join(lines)


def _moved(run) -> str:
    """Which headline figures a mitigation moved and by how much, or plainly that none did, and why."""
    if not run.moved:
        return "nothing" + (f": {run.unchanged_because}" if run.unchanged_because else
                            ": what it changed does not reach the headline figures here")
    parts = []
    for measure, figures in run.moved.items():
        before, after, change = figures["without"], figures["with"], figures["change"]
        if change is None:
            parts.append(f"{_short(measure)} {_number(before)} -> {_number(after)}")
            continue
        share = f" ({100.0 * change / before:+.0f} %)" if before else ""
        parts.append(f"{_short(measure)} {'+' if change > 0 else '-'}{_number(abs(change))}{share}")
    return ", ".join(parts)


def _short(measure: str) -> str:
    return {"peak_mw_lost": "peak MW", "peak_customers_out": "customers", "energy_not_served_mwh": "ENS MWh",
            "customer_hours_lost": "cust-hours", "time_to_full_restoration_min": "restored min"}[measure]


def _first(text: str) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= 100 else text[:97] + "..."


def _number(value) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:,.2f}"


def _reported(row: dict) -> str:
    if row["range"] is not None:
        low, high = row["range"]
        return _number(low) if low == high else f"{_number(low)} to {_number(high)}"
    text = _number(row["value"])
    return f"{text} ±{row['tolerance_pct']:g} %" if row["tolerance_pct"] is not None else text


def _verdict(row: dict) -> str:
    if row["calibrated"]:
        return "calibrated input"
    return {True: "agrees", False: "DISAGREES", None: "shown only"}[row["agrees"]]


@click.command("techniques")
@click.option("--all", "show_all", is_flag=True, help="List every ATT&CK for ICS technique, used or not.")
@reports_errors
def techniques_command(show_all: bool) -> None:
    """List the MITRE ATT&CK for ICS techniques the bundled scenarios use, and which scenarios use them."""
    from gridsim.bundled import bundled_dir
    from gridsim.cli.inspect import TEMPLATE
    from gridsim.scenario.schema import NOT_AN_ATTACK, load_scenario
    from gridsim.scenario.techniques import ATTACK_VERSION, techniques

    used: dict[str, set[str]] = defaultdict(set)
    for path in sorted(p for p in bundled_dir("attacks").glob("*.yaml") if p.name != TEMPLATE):
        for step in load_scenario(path).steps:
            if step.technique != NOT_AN_ATTACK:
                used[step.technique].add(path.stem)
    table = techniques()
    click.echo(f"MITRE ATT&CK for ICS v{ATTACK_VERSION}: {len(used)} of {len(table)} techniques used by "
               f"the bundled scenarios")
    for tid, technique in sorted(table.items()):
        if tid in used or show_all:
            scenarios = ", ".join(sorted(used.get(tid, ()))) or "-"
            click.echo(f"  {tid}  {technique.name:<42} {', '.join(technique.tactics):<28} {scenarios}")
