"""What every result file shares: JSON that is valid JSON, and the versions a result records.

JSON has no NaN or infinity; Python's ``json`` would write them anyway, and
a reader in another language would refuse the file. Every JSON file gridsim
writes goes through :func:`write_json`, which writes such a figure as null.
"""

from __future__ import annotations

import json
import math
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import networkx
import numpy
import pandas
import scipy

from gridsim.version import __version__

__all__ = ["versions", "write_json"]


def versions() -> dict[str, str]:
    """Versions of gridsim and the libraries whose numbers it reports (every manifest records them)."""
    found = {"gridsim": __version__, "pandapower": "not installed", "numpy": numpy.__version__,
             "scipy": scipy.__version__, "pandas": pandas.__version__, "networkx": networkx.__version__}
    # Read from the installed distributions, not imported: WNTR alone takes a second to import, pandapower three
    # (and a sweep's worker, which writes rows, never imports it).
    for dist in ("pandapower", "wntr", "lightsim2grid", "matplotlib"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = "not installed"
    found["python"] = platform.python_version()
    return found


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: such a figure is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def write_json(path: Path, data: Any) -> None:
    """``data`` as indented JSON with a final newline; NaN and infinities written as null."""
    path.write_text(json.dumps(_finite(data), indent=2, allow_nan=False) + "\n", encoding="utf-8")
