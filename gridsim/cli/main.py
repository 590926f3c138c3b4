"""The ``gridsim`` command group."""

from __future__ import annotations

import click

from gridsim import __version__
from gridsim.cli.inspect import list_command, show_command
from gridsim.cli.run import run_command
from gridsim.cli.validate import validate_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gridsim")
def cli() -> None:
    """gridsim: smart-grid cyberattack cascade simulator.

    Run an attack scenario on a power system and measure the blackout:
    MW and customers lost, energy not served, time to restoration.

    \b
    Start with:
      gridsim list
      gridsim run attacks/ukraine-2015.yaml
    """


cli.add_command(run_command)
cli.add_command(list_command)
cli.add_command(show_command)
cli.add_command(validate_command)
