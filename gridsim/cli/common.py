"""Options and error handling shared by the commands."""

from __future__ import annotations

import functools
import signal
from collections.abc import Callable
from pathlib import Path

import click

from gridsim.errors import GridsimError

__all__ = ["UserError", "exit_on_sigterm", "exits_cleanly_on_sigterm", "nonempty_folder", "reports_errors",
           "system_option"]


class UserError(click.ClickException):
    """A user's mistake: one line on stderr, exit status 2."""

    exit_code = 2


def reports_errors(func: Callable) -> Callable:
    """Turn gridsim's own errors into :class:`UserError` (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except GridsimError as exc:
            raise UserError(str(exc)) from None
        except BrokenPipeError:
            raise  # the reader went away (`| head`): not the user's error; the group exits quietly
        except OSError as exc:  # a path too long, a permission refused, a disk full
            where = f"{exc.filename}: " if exc.filename else ""
            raise UserError(f"{where}{exc.strerror or exc}") from None

    return wrapper


system_option = click.option(
    "--system", "system_spec", metavar="SYSTEM",
    help="Topology folder, system.toml, bundled name or pandapower:<case>; overrides the scenario's own.")


def nonempty_folder(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    """Callback of an output-folder option: refuse an empty name, which ``Path`` would read as the current folder
    (``--out ''`` from a script with an unset variable would write into wherever it runs).
    """
    if value is None:
        return None
    if not str(value).strip():
        raise click.BadParameter("an empty folder name; write --out . for the current folder")
    return Path(value)


def exit_on_sigterm(signum, frame) -> None:
    """SIGTERM handler: exit as Ctrl-C would, so half-written results are cleaned up."""
    raise SystemExit(128 + signum)


def exits_cleanly_on_sigterm(func: Callable) -> Callable:
    """Run a command with SIGTERM raising :class:`SystemExit` (so its staged results are removed), then put back
    the handler there was: a command run in-process (click's ``CliRunner``, a notebook) leaves its caller's
    handling of SIGTERM as it found it."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            previous = signal.signal(signal.SIGTERM, exit_on_sigterm)
        except ValueError:  # not the main thread: signals cannot be handled here, run as is
            return func(*args, **kwargs)
        try:
            return func(*args, **kwargs)
        finally:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)

    return wrapper
