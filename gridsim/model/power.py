"""Load a power grid: stock pandapower cases by name, pandapower JSON, MATPOWER.

pandapower's JSON reader imports whatever module a file names (``"_module"``
keys) to rebuild objects. A system file is untrusted input, so the file is
scanned first and refused if it names anything outside the modules pandapower
itself writes; nothing from an input file is ever executed.
"""

from __future__ import annotations

import functools
import json
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gridsim.errors import InputError

__all__ = ["load_power_net", "quiet_pandapower", "stock_cases"]

#: Top-level packages a pandapower JSON file may name in ``"_module"`` keys.
_SAFE_MODULE_PREFIXES = ("pandapower", "pandas", "numpy", "networkx", "geojson", "shapely")
#: Classes a pandapower JSON file may ask to be rebuilt.
_SAFE_CLASSES = {
    "pandapowerNet", "DataFrame", "Series", "Index", "RangeIndex", "MultiIndex",
    "dtype", "ndarray", "int64", "float64", "bool_", "MultiGraph", "Graph",
    "DiGraph", "MultiDiGraph", "Feature", "FeatureCollection", "Point",
    "LineString", "Polygon", "MultiLineString", "MultiPoint", "MultiPolygon",
    "GeometryCollection", "Timestamp", "Timedelta",
}


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


def _is_safe_module(module: Any) -> bool:
    """True for a whole allowed package or one of its submodules (``pandas.core``, not ``pandas_x``)."""
    if not isinstance(module, str):
        return False
    root = module.split(".", 1)[0]
    return root in _SAFE_MODULE_PREFIXES


def _check_json_safe(node: Any, path: Path) -> None:
    """Refuse a pandapower JSON tree naming modules or classes outside the allowlist."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            module = item.get("_module")
            if module is not None:
                if not _is_safe_module(module):
                    raise InputError(path, f"refusing to import module {module!r} named in the file")
                cls = item.get("_class")
                if cls is not None and cls not in _SAFE_CLASSES:
                    raise InputError(path, f"refusing to rebuild class {cls!r} named in the file")
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and item.lstrip().startswith("{"):
            # pandapower nests JSON documents inside strings (the "_object" field).
            try:
                stack.append(json.loads(item))
            except ValueError:
                pass


def _read_pandapower_json(path: Path):
    import pandapower as pp

    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        tree = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(path, f"malformed JSON: {exc.msg}", f"line {exc.lineno}, column {exc.colno}") from None
    if not isinstance(tree, dict) or tree.get("_class") != "pandapowerNet":
        raise InputError(path, "not a pandapower network (no top-level pandapowerNet object)")
    _check_json_safe(tree, path)
    try:
        return pp.from_json_string(text)
    except Exception as exc:  # pandapower raises many types on bad content
        raise InputError(path, f"pandapower could not read the network: {exc}") from None


def _read_matpower(path: Path, frequency_hz: float):
    from pandapower.converter.matpower import from_mpc

    try:
        return from_mpc(str(path), f_hz=frequency_hz)
    except ImportError as exc:
        raise InputError(path, f"reading MATPOWER needs an extra package: {exc}") from None
    except Exception as exc:
        raise InputError(path, f"could not read MATPOWER case: {exc}") from None
