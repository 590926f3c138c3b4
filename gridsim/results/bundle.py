"""The run bundle: ``results/<run-id>/`` with the manifest, summary, timeline and events of one run.

The folder is written whole or not at all (:mod:`gridsim.results.staging`);
docs/FORMATS.md describes each file.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import sys
import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gridsim.metrics import summarize, timeline_rows
from gridsim.report.plots import plot_timeline
from gridsim.results.files import versions, write_json
from gridsim.results.staging import staged_folder
from gridsim.sim.result import SimulationResult

__all__ = ["ratings_note", "run_id", "run_manifest", "run_summary", "safe_name", "write_bundle"]

#: Longest run id, in UTF-8 bytes: far below the 255-byte file-name limit, with room for the staging suffix.
_MAX_ID = 100


def run_id(result: SimulationResult) -> str:
    """A readable id: scenario, system, engine and seed (same inputs, same id)."""
    engine = result.flow if result.engine == "fast" else f"{result.flow}-{result.engine}"
    return safe_name(f"{result.scenario.name}_{result.system.name}_{engine}_seed{result.seed}")


def safe_name(raw: str, max_bytes: int = _MAX_ID) -> str:
    """``raw`` as a file name that stays readable and distinct: letters, marks and digits of any script are kept
    ("Київ", "東京"), ASCII punctuation and spaces become ``-``.

    When anything else is dropped (an emoji, a control character), a short hash
    of ``raw`` is appended, so names that differ only there still get different
    folders; a name longer than ``max_bytes`` (UTF-8) is cut and hashed too.
    """
    raw = unicodedata.normalize("NFC", raw)
    kept: list[str] = []
    lossy = gap = False
    for ch in raw:
        if ch in "_.-" or unicodedata.category(ch)[0] in "LMN":
            kept.append("-" + ch if gap else ch)
            gap = False
        else:  # a run of replaced characters becomes one dash
            lossy = lossy or not (ch.isascii() and ch.isprintable())
            gap = True
    name = ("".join(kept) + ("-" if gap else "")).lstrip(".-") or "run"
    digest = hashlib.sha256(raw.encode("utf-8", errors="surrogatepass")).hexdigest()
    if lossy:
        name = f"{name}-{digest[:8]}"
    if len(name.encode("utf-8")) > max_bytes:  # the hash keeps cut ids distinct
        head = name.encode("utf-8")[:max_bytes - 11].decode("utf-8", errors="ignore")
        name = f"{head}-{digest[:10]}"
    return name


def run_manifest(result: SimulationResult, command: list[str] | None = None) -> dict[str, Any]:
    """Inputs with hashes, versions, seed and command line of one run (``manifest.json``)."""
    inputs = {"scenario": {"path": result.scenario.path, "sha256": result.scenario.sha256}}
    # Every input the system read, files and stock cases alike (``"pandapower:case118": <hash of its tables>``).
    inputs["system"] = {"name": result.system.name, "power_source": result.system.source,
                        "files": dict(result.system.input_files),
                        "ratings_set_by_gridsim": dict(result.system.rating_notes)}
    return {
        "run_id": run_id(result),
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command if command is not None else sys.argv,
        "seed": result.seed,
        "engine": result.engine_label,
        "horizon_h": result.horizon_min / 60.0,
        "inputs": inputs,
        "versions": versions(),
    }


def ratings_note(system) -> dict[str, Any]:
    """How many branch ratings gridsim set itself rather than read (``System.rating_notes``).

    ``derived``: unrated branches given (1 + margin) x their base-case flow
    (the Motter-Lai capacity rule); ``raised``: rated branches the base case
    already overloads, raised the same way; ``never_trip``: unrated branches
    left without protection.
    """
    notes = system.rating_notes or {}
    ratings = list(system.line_rating_mva) + list(system.trafo_rating_mva)
    return {"branches": len(ratings), "derived": int(notes.get("derived", 0)), "raised": int(notes.get("raised", 0)),
            "never_trip": sum(1 for r in ratings if math.isinf(r)),
            "rule": "(1 + margin) x base-case flow (Motter & Lai, PRE 66:065102, 2002)"}


def run_summary(result: SimulationResult) -> dict[str, Any]:
    """The figures of ``summary.json``: :func:`gridsim.metrics.summarize` and what the loss figures rest on.

    Adds a ``ratings`` entry saying how many branch ratings gridsim set
    itself (every loss figure depends on them), and ``grid_notes`` if reading
    the grid changed or noticed anything.

    Parameters
    ----------
    result : SimulationResult
        A finished run.

    Returns
    -------
    dict
        The summary, JSON-ready.
    """
    summary = summarize(result)
    summary.setdefault("ratings", ratings_note(result.system))
    if result.system.load_notes:  # what gridsim changed or noticed reading the grid (impedances, dark loads ...)
        summary.setdefault("grid_notes", list(result.system.load_notes))
    return summary


def write_bundle(result: SimulationResult, out_dir: str | Path, *, command: list[str] | None = None,
                 plot: bool = True, summary: dict[str, Any] | None = None) -> Path:
    """Write a run's bundle: ``manifest.json``, ``summary.json``, ``timeline.csv``, ``events.jsonl``, ``timeline.png``.

    The folder appears whole or not at all; an existing bundle of the same
    run id is never overwritten (the new one gets a numbered suffix).

    Parameters
    ----------
    result : SimulationResult
        A finished run.
    out_dir : str or Path
        Folder that receives the bundle's folder (``<run-id>``).
    command : list of str, optional
        The command line the manifest records (default ``sys.argv``).
    plot : bool
        Whether to draw ``timeline.png``.
    summary : dict, optional
        :func:`run_summary` of ``result``, if the caller has it already.

    Returns
    -------
    Path
        The bundle's folder.

    Examples
    --------
    >>> import tempfile
    >>> from gridsim import load_scenario, load_system, simulate
    >>> result = simulate(load_system("ukraine-2015"), load_scenario("ukraine-2015"))
    >>> folder = write_bundle(result, tempfile.mkdtemp(), plot=False)
    >>> sorted(p.name for p in folder.iterdir())
    ['events.jsonl', 'manifest.json', 'summary.json', 'timeline.csv']
    """
    with staged_folder(out_dir, run_id(result)) as stage:
        tmp = stage.path
        write_json(tmp / "manifest.json", run_manifest(result, command))
        write_json(tmp / "summary.json", summary if summary is not None else run_summary(result))
        rows = timeline_rows(result)
        with (tmp / "timeline.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        with (tmp / "events.jsonl").open("w", encoding="utf-8") as handle:
            for event in result.events:
                handle.write(json.dumps(event.as_dict()) + "\n")
        if plot:
            plot_timeline(result, tmp / "timeline.png")
    return stage.final


