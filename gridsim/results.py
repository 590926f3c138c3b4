"""The results bundle: ``results/<run-id>/`` written whole or not at all.

Files go to a hidden ``.<run-id>.*.partial`` folder beside the target, which
is renamed into place once everything is written. An error, Ctrl-C or SIGTERM
removes it; only a hard kill (SIGKILL, power loss) can leave a ``.partial``
folder behind, and it is never taken for a bundle. An existing bundle of the
same run id is never overwritten: the new one gets a numbered suffix.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import math
import os
import platform
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gridsim import __version__
from gridsim.engine.simulation import SimulationResult
from gridsim.errors import InputError
from gridsim.metrics import summarize, timeline_rows

__all__ = ["check_writable", "run_id", "run_manifest", "Stage", "staged_folder", "versions", "write_bundle"]

_MAX_ID = 100


def run_id(result: SimulationResult) -> str:
    """A readable id: scenario, system, engine and seed (same inputs, same id)."""
    engine = result.mode if result.engine == "fast" else f"{result.mode}-{result.engine}"
    raw = f"{result.scenario.name}_{result.system.name}_{engine}_seed{result.seed}"
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", raw).lstrip(".-") or "run"
    if len(name) > _MAX_ID:  # stay far below file-name limits; the hash keeps ids distinct
        name = f"{name[:_MAX_ID - 11]}-{hashlib.sha256(raw.encode()).hexdigest()[:10]}"
    return name


def check_writable(out_dir: str | Path) -> None:
    """Fail early, before any simulation, if a bundle could not be written under ``out_dir``."""
    path = Path(out_dir)
    try:
        path.exists()
    except OSError as exc:
        raise InputError(path, f"cannot write results here: {exc.strerror or exc}") from None
    if path.exists() and not path.is_dir():
        raise InputError(path, "cannot write results here: it is a file, not a folder")
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(path, f"cannot write results here: {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(path, f"cannot write results here: no permission to write in {probe}")


def _versions() -> dict[str, str]:
    import networkx
    import numpy
    import pandapower
    import pandas
    import scipy

    return {"gridsim": __version__, "pandapower": pandapower.__version__, "numpy": numpy.__version__,
            "scipy": scipy.__version__, "pandas": pandas.__version__, "networkx": networkx.__version__,
            "python": platform.python_version()}


def run_manifest(result: SimulationResult, command: list[str] | None = None) -> dict[str, Any]:
    """Inputs with hashes, versions, seed and command line of one run (``manifest.json``)."""
    inputs = {"scenario": {"path": result.scenario.path, "sha256": result.scenario.sha256}}
    inputs["system"] = {"name": result.system.name, "power_source": result.system.source,
                        "files": result.system.input_files, "ratings_set_by_gridsim": result.system.rating_notes}
    return {
        "run_id": run_id(result),
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command if command is not None else sys.argv,
        "seed": result.seed,
        "engine": result.engine_label,
        "horizon_h": result.horizon_min / 60.0,
        "inputs": inputs,
        "versions": _versions(),
    }


def write_bundle(result: SimulationResult, out_dir: str | Path, *, command: list[str] | None = None,
                 plot: bool = True) -> Path:
    """Write ``manifest.json``, ``summary.json``, ``timeline.csv``, ``events.jsonl`` (and ``timeline.png``).

    Returns the bundle's folder.
    """
    with staged_folder(out_dir, run_id(result)) as stage:
        tmp = stage.path
        _write_json(tmp / "manifest.json", run_manifest(result, command))
        _write_json(tmp / "summary.json", summarize(result))
        rows = timeline_rows(result)
        with (tmp / "timeline.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        with (tmp / "events.jsonl").open("w", encoding="utf-8") as handle:
            for event in result.events:
                handle.write(json.dumps(event.as_dict()) + "\n")
        if plot:
            from gridsim.report import plot_timeline

            plot_timeline(result, tmp / "timeline.png")
    return stage.final


@dataclass
class Stage:
    """A folder being written (``path``), and where it landed once complete (``final``)."""

    path: Path
    final: Path | None = None


@contextlib.contextmanager
def staged_folder(out_dir: str | Path, name: str):
    """Yield a :class:`Stage` for a hidden ``.<name>.*.partial`` folder in ``out_dir``; rename the folder
    to ``<name>`` (or ``<name>-2`` ...) when the block ends well, remove it when it does not.
    """
    out_dir = Path(out_dir)
    check_writable(out_dir)
    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        stage = Stage(Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=out_dir)))
    except OSError as exc:
        raise InputError(out_dir, f"cannot write results here: {exc.strerror or exc}") from None
    try:
        yield stage
        stage.final = _free_name(out_dir / name)
        os.rename(stage.path, stage.final)
    except BaseException as exc:
        shutil.rmtree(stage.path, ignore_errors=True)
        if created and out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()  # leave no empty folder of ours behind
        if isinstance(exc, OSError):
            raise InputError(out_dir, f"cannot write results here: {exc.strerror or exc}") from None
        raise


def versions() -> dict[str, str]:
    """Versions of gridsim and the libraries whose numbers it reports."""
    return _versions()


def _free_name(path: Path) -> Path:
    if not path.exists():
        return path
    for n in range(2, 10_000):
        candidate = path.with_name(f"{path.name}-{n}")
        if not candidate.exists():
            return candidate
    raise FileExistsError(path)


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: such a figure is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(_finite(data), indent=2, allow_nan=False) + "\n", encoding="utf-8")
