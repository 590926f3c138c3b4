"""``gridsim list`` and ``gridsim show``: what is bundled, what a system holds."""

from __future__ import annotations

import tomllib
from collections import Counter

import click
import numpy as np
import yaml

from gridsim.bundled import bundled_dir
from gridsim.cli.common import reports_errors


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
    click.echo("  pandapower:<case>          any stock pandapower case, e.g. pandapower:case118")
    click.echo("scenarios (gridsim run NAME):")
    for path in sorted(bundled_dir("attacks").glob("*.yaml")):
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError:
            doc = {}
        system = doc.get("system") or "needs --system"
        system = system.rsplit("/", 1)[-1]
        click.echo(f"  {path.stem:<26} [{system}] {_first_line(doc.get('description', ''))}")


@click.command("show")
@click.argument("system_spec", metavar="SYSTEM")
@reports_errors
def show_command(system_spec: str) -> None:
    """Describe SYSTEM: grid size, substations by tag, customers, restoration, layers and dependencies."""
    from gridsim.model.system import load_system

    system = load_system(system_spec)
    net = system.net
    click.echo(f"{system.name}: {_first_line(system.description)}" if system.description else system.name)
    click.echo(f"  power source     {system.source}")
    click.echo(f"  grid             {len(net.bus)} buses, {len(net.line)} lines, {len(net.trafo)} transformers, "
               f"{len(net.gen)} generators, {len(net.ext_grid)} external grids, {len(net.load)} loads")
    click.echo(f"  demand           {system.base_demand_mw:,.1f} MW")
    click.echo(f"  customers        {int(system.customers.sum()):,} ({system.people_per_customer:g} people each)")
    click.echo(f"  substations      {len(system.substations)}")
    tags = Counter((k, str(v)) for s in system.substations.values() for k, v in s.tags.items())
    for key in sorted({k for k, _ in tags}):
        values = ", ".join(f"{v} ({n})" for (k, v), n in sorted(tags.items()) if k == key)
        click.echo(f"    {key:<14} {_first_line(values)}")
    unrated = int(np.isinf(system.line_rating_mva).sum() + np.isinf(system.trafo_rating_mva).sum())
    click.echo(f"  protection       trips above rating x {1 + system.overload_tolerance:g}; "
               f"{unrated} branches never trip")
    notes = system.rating_notes
    if notes.get("derived"):
        click.echo(f"    {notes['derived']} unrated branches rated at (1 + margin) x base-case flow")
    if notes.get("raised"):
        click.echo(f"    {notes['raised']} branches over their rating in the base case: raised to (1 + margin) x "
                   "base-case flow")
    r = system.restoration
    click.echo(f"  restoration      remote {r.remote_min:g} min; manual {r.manual_h:g} h/site, {r.crews} crews")
    for op, p in sorted(system.operator_restoration.items()):
        click.echo(f"    {op:<22} manual {p.manual_h:g} h/site, {p.crews} crews")
    layers = system.layers
    if not layers.present and not layers.dependencies:
        click.echo("  layers           none (power only)")
        return
    counts = layers.counts()
    click.echo(f"  layers           {', '.join(layers.present) or 'none'}")
    if layers.water is not None:
        w = layers.water
        click.echo(f"    water          {w.spec}: {counts.get('junction', 0)} junctions, "
                   f"{counts.get('pump', 0)} pumps, {counts.get('reservoir', 0)} reservoirs, "
                   f"{len(w.model.tank_name_list)} tanks; "
                   f"{w.population:,.0f} people; {w.settings.mode}, served at >= {w.settings.service_pressure_m:g} m")
    if layers.transport is not None:
        t = layers.transport
        click.echo(f"    transport      {len(t.network.node_ids)} road nodes, {counts['road_link']} links, "
                   f"{counts.get('signal', 0)} signals, {counts.get('rail', 0)} rail lines, "
                   f"{counts['demand_pair']} demand pairs ({float(t.demand.trips_per_h.sum()):,.0f} trips/h)")
    if layers.telecom:
        kinds = Counter(site.kind for site in layers.telecom.values())
        click.echo(f"    telecom        {', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}")
    if counts.get("facility"):
        click.echo(f"    facilities     {counts['facility']}")
    by_pair = Counter((d.supplier.split(":", 1)[0], d.dependent.split(":", 1)[0]) for d in layers.dependencies)
    click.echo(f"  dependencies     {len(layers.dependencies)}")
    for (supplier, dependent), n in sorted(by_pair.items()):
        click.echo(f"    {supplier:>10} -> {dependent:<12} {n}")
