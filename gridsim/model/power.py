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

#: The (module, class) pairs pandapower's own JSON decoder rebuilds without importing
#: anything else. A file naming any other pair is refused before pandapower reads it,
#: because pandapower would import that module (running its code) to rebuild the object.
_SAFE_OBJECTS = {
    ("pandapower.auxiliary", "pandapowerNet"),
    ("pandas.core.frame", "DataFrame"), ("pandas", "DataFrame"),
    ("pandas.core.series", "Series"), ("pandas", "Series"),
    ("networkx", "MultiGraph"),
    ("numpy", "bool"), ("numpy", "array"),
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


def _check_json_safe(node: Any, path: Path) -> None:
    """Refuse a pandapower JSON tree naming any object pandapower would import a module for.

    pandapower nests JSON documents inside strings (DataFrames are stored as JSON
    text), so every string that parses as JSON is checked too.
    """
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "_module" in item or "_class" in item:
                pair = (item.get("_module"), item.get("_class"))
                if pair not in _SAFE_OBJECTS:
                    raise InputError(path, f"refusing to import module {pair[0]!r} (class {pair[1]!r}) "
                                           "named in the file: not a plain pandapower network")
                inner = item.get("_object")
                if pair[1] in ("DataFrame", "Series") and isinstance(inner, str) \
                        and not inner.lstrip().startswith(("{", "[")):
                    raise InputError(path, f"refusing a {pair[1]} that is not inline JSON data")
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and item.lstrip().startswith(("{", "[")):
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
