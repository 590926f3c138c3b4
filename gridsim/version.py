"""The version of gridsim, in one place (the package, the CLI and every result read it here)."""

__version__ = "0.1.0"
