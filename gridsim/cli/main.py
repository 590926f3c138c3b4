"""The ``gridsim`` command group."""

from __future__ import annotations

import sys

import click

from gridsim.cli.casestudy import case_study_command, techniques_command
from gridsim.cli.inspect import list_command, new_scenario_command, show_command
from gridsim.cli.run import run_command
from gridsim.cli.sweep import sweep_command, sweep_summary_command
from gridsim.cli.validate import validate_command
from gridsim.version import __version__


class _OneLineErrors(click.Group):
    """A command group whose usage errors are one line on stderr (exit status 2), like gridsim's own."""

    def main(self, args=None, *rest, **kwargs):
        kwargs["standalone_mode"] = False
        if args is None:
            args = sys.argv[1:]
        if not args:  # bare `gridsim`: the help, as asked for, on stdout
            args = ["--help"]
        try:
            code = super().main(args, *rest, **kwargs)
        except click.ClickException as exc:
            where = ""
            if isinstance(exc, click.UsageError) and exc.ctx is not None:
                where = f"{exc.ctx.command_path}: "
                hint = f" (see '{exc.ctx.command_path} --help')"
            else:
                hint = ""
            click.echo(_one_line(f"Error: {where}{exc.format_message()}{hint}"), err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(1)
        except BrokenPipeError:  # `gridsim ... | head`: stop quietly, as Unix tools do
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(141)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=_OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gridsim")
def cli() -> None:
    """gridsim: smart-grid cyberattack cascade simulator.

    Run an attack scenario on a power system and measure the blackout:
    MW and customers lost, energy not served, time to restoration.

    \b
    Start with:
      gridsim list
      gridsim run attacks/ukraine-2015.yaml
      gridsim sweep --system pandapower:case118 --targets branches --k 1
    """


cli.add_command(run_command)
cli.add_command(sweep_command)
cli.add_command(sweep_summary_command)
cli.add_command(list_command)
cli.add_command(show_command)
cli.add_command(validate_command)
cli.add_command(new_scenario_command)
cli.add_command(case_study_command)
cli.add_command(techniques_command)


def _one_line(text: str) -> str:
    """An error as one line: line breaks and control characters from input files are escaped, never printed raw."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
