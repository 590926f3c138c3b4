"""``gridsim validate``: check a scenario without running it."""

from __future__ import annotations

import click

from gridsim.cli.common import reports_errors, system_option


@click.command("validate")
@click.argument("scenario", metavar="SCENARIO")
@system_option
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed used to resolve random targets.")
@reports_errors
def validate_command(scenario: str, system_spec: str | None, seed: int | None) -> None:
    """Check SCENARIO's schema and ATT&CK ids; resolve its targets if it has a system."""
    from gridsim.loading import load_system
    from gridsim.scenario.schema import load_scenario
    from gridsim.scenario.selectors import resolve_targets, step_rng

    plan = load_scenario(scenario)
    spec = system_spec or plan.system
    click.echo(f"{plan.path}: schema OK ({len(plan.steps)} steps, ATT&CK ids known)")
    if spec is None:
        click.echo("no system named: targets not resolved (pass --system to check them)")
        return
    system = load_system(spec)
    run_seed = seed if seed is not None else (plan.seed or 0)
    for step in plan.steps:
        if step.targets is None:
            continue
        refs = resolve_targets(step.targets, system, step_rng(run_seed, step.index), plan.path)
        click.echo(f"  {step.label}: {len(refs)} target(s)")
    click.echo(f"targets resolve on {system.name}")
