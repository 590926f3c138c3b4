"""One exception family for everything gridsim reports to a user.

Every error a user can cause (a wrong id, a malformed file, a power flow that
will not converge) is a :class:`GridsimError`. The CLI turns these into one
line on stderr and exit status 2; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["GridsimError", "InputError", "SimulationError"]


class GridsimError(Exception):
    """Root of all errors gridsim raises on purpose."""


class InputError(GridsimError):
    """An input file or argument is wrong.

    Parameters
    ----------
    source : str or Path
        The file (or argument) at fault.
    message : str
        What is wrong, with the offending value.
    place : str, optional
        Where in the source: ``"line 12"``, ``"steps[2].targets (line 14)"``.
    """

    def __init__(self, source: str | Path, message: str, place: str | None = None):
        self.source = str(source)
        self.place = place
        self.message = message
        where = f"{self.source}: {place}" if place else self.source
        super().__init__(f"{where}: {message}")


class SimulationError(GridsimError):
    """The simulation cannot go on (for example a power flow that never converges)."""
