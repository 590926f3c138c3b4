"""Load a power grid: stock pandapower cases by name, pandapower JSON, MATPOWER.

A grid file is untrusted input: pandapower JSON is read by gridsim's own
data-only reader (:mod:`gridsim.model.ppjson`), never by pandapower's decoder,
which imports the modules a file names. Nothing from an input file is ever
executed.
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gridsim.errors import InputError

__all__ = ["load_power_net", "quiet_pandapower", "stock_cases"]

def quiet_pandapower() -> None:
    """Silence pandapower's advice about numba and its info-level chatter."""
    logging.getLogger("pandapower").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="pandapower")
    warnings.filterwarnings("ignore", message=".*numba.*")
    warnings.filterwarnings("ignore", category=FutureWarning)


@functools.cache
def stock_cases() -> dict[str, Callable[[], Any]]:
    """Stock networks by name, as used in ``pandapower:<name>``."""
    import pandapower.networks as pn

    cases: dict[str, Callable[[], Any]] = {
        name: getattr(pn, name)
        for name in dir(pn)
        if name.startswith("case") and callable(getattr(pn, name))
    }
    cases.update(
        {
            "mv_oberrhein": pn.mv_oberrhein,
            "cigre_mv": lambda: pn.create_cigre_network_mv(with_der=False),
            "cigre_mv_der": lambda: pn.create_cigre_network_mv(with_der="pv_wind"),
            "cigre_hv": pn.create_cigre_network_hv,
            "cigre_lv": pn.create_cigre_network_lv,
            "example_simple": pn.example_simple,
            "example_multivoltage": pn.example_multivoltage,
            "simple_mv_open_ring_net": pn.simple_mv_open_ring_net,
            "iceland": pn.iceland,
            "GBnetwork": pn.GBnetwork,
        }
    )
    return cases


def load_power_net(source: str, base_dir: Path | None = None, *, frequency_hz: float = 50.0):
    """Return a pandapower net from a stock name, a JSON file or a MATPOWER file.

    Parameters
    ----------
    source : str
        ``pandapower:<case>`` (see :func:`stock_cases`), or a path ending in
        ``.json``, ``.m`` or ``.mat``.
    base_dir : Path, optional
        Folder relative paths are resolved against.
    frequency_hz : float
        Grid frequency given to the MATPOWER converter.

    Raises
    ------
    InputError
        Unknown stock case, missing file, unsupported suffix, malformed or
        unsafe file.
    """
    quiet_pandapower()
    if source.startswith("pandapower:"):
        name = source.split(":", 1)[1]
        cases = stock_cases()
        if name not in cases:
            close = ", ".join(sorted(n for n in cases if n[:4] == name[:4])[:8])
            hint = f" (similar: {close})" if close else ""
            raise InputError(source, f"no stock pandapower case named {name!r}{hint}")
        return cases[name]()

    path = Path(source)
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    if not path.is_file():
        raise InputError(path, "power grid file not found")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _read_pandapower_json(path)
    if suffix in (".m", ".mat"):
        return _read_matpower(path, frequency_hz)
    raise InputError(path, f"unsupported grid file type {suffix!r} (use .json, .m or .mat)")


def _read_pandapower_json(path: Path):
    from gridsim.model.ppjson import read_pandapower_json

    return read_pandapower_json(path)


def _read_matpower(path: Path, frequency_hz: float):
    from pandapower.converter.matpower import from_mpc

    try:
        return from_mpc(str(path), f_hz=frequency_hz)
    except ImportError as exc:
        raise InputError(path, f"reading MATPOWER needs an extra package: {exc}") from None
    except Exception as exc:
        raise InputError(path, f"could not read MATPOWER case: {exc}") from None
