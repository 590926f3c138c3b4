"""``python -m gridsim`` runs the command-line tool."""

from gridsim.cli.main import cli

if __name__ == "__main__":
    cli(prog_name="gridsim")
