"""Where the bundled topologies and scenarios live.

In an installed wheel they are package data (``gridsim/bundled/topologies``,
``gridsim/bundled/attacks``, mapped from the repo's top-level folders by
pyproject.toml); in a source checkout they are the repo's own folders.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["bundled_dir"]


def bundled_dir(kind: str) -> Path:
    """Folder of bundled ``topologies`` or ``attacks``."""
    installed = Path(__file__).resolve().parent / kind
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parents[2] / kind
