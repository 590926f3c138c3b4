"""The results bundle: ``results/<run-id>/`` written whole or not at all.

Files go to a hidden ``.<run-id>.<host>-<pid>-<token>.partial`` folder beside
the target, which is renamed into place once everything is written. An error,
Ctrl-C or SIGTERM removes it; only a hard kill (SIGKILL, power loss) can leave
a ``.partial`` folder behind. It is never taken for a bundle, and the next
bundle written to the same folder removes it once the process named in it is
gone (see :func:`remove_stale_stages`). An existing bundle of the same run id
is never overwritten: the new one gets a numbered suffix.

Folders and files get the permissions the user's umask gives, as any file the
user creates would.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import json
import math
import os
import platform
import re
import secrets
import shutil
import socket
import sys
import time
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gridsim.errors import InputError
from gridsim.metrics import summarize, timeline_rows
from gridsim.sim.simulation import SimulationResult
from gridsim.version import __version__

__all__ = ["STALE_AFTER_S", "check_writable", "ratings_note", "remove_stale_stages", "run_id", "run_manifest",
           "run_summary", "Stage", "safe_name", "staged_folder", "versions", "write_bundle"]

#: Longest run id, in UTF-8 bytes: far below the 255-byte file-name limit, with room for the staging suffix.
_MAX_ID = 100
#: A ``.partial`` folder whose owner cannot be checked (another host, an older gridsim) is stale after a week
#: without a change.
STALE_AFTER_S = 7 * 24 * 3600.0


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


def check_writable(out_dir: str | Path) -> None:
    """Fail early, before any simulation, if a bundle could not be written under ``out_dir``.

    An empty name is refused rather than read as the current folder.
    """
    if isinstance(out_dir, str) and not out_dir.strip():
        raise InputError("--out", "an empty folder name; write --out . for the current folder")
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
    from importlib import metadata

    import networkx
    import numpy
    import pandapower
    import pandas
    import scipy

    found = {"gridsim": __version__, "pandapower": pandapower.__version__, "numpy": numpy.__version__,
             "scipy": scipy.__version__, "pandas": pandas.__version__, "networkx": networkx.__version__}
    # Read from the installed distributions, not imported: WNTR alone takes a second to import.
    for dist in ("wntr", "lightsim2grid", "matplotlib"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = "not installed"
    found["python"] = platform.python_version()
    return found


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
        "versions": _versions(),
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
    """``summary.json``: the measures of :func:`gridsim.metrics.summarize`, and a ``ratings`` entry saying how many
    branch ratings were set by gridsim (every loss figure depends on them), and ``grid_notes`` if reading the
    grid changed or noticed anything.
    """
    summary = summarize(result)
    summary.setdefault("ratings", ratings_note(result.system))
    if result.system.load_notes:  # what gridsim changed or noticed reading the grid (impedances, dark loads ...)
        summary.setdefault("grid_notes", list(result.system.load_notes))
    return summary


def write_bundle(result: SimulationResult, out_dir: str | Path, *, command: list[str] | None = None,
                 plot: bool = True, summary: dict[str, Any] | None = None) -> Path:
    """Write ``manifest.json``, ``summary.json``, ``timeline.csv``, ``events.jsonl`` (and ``timeline.png``).

    ``summary`` is :func:`run_summary` of ``result`` if the caller has it already. Returns the bundle's folder.
    """
    with staged_folder(out_dir, run_id(result)) as stage:
        tmp = stage.path
        _write_json(tmp / "manifest.json", run_manifest(result, command))
        _write_json(tmp / "summary.json", summary if summary is not None else run_summary(result))
        rows = timeline_rows(result)
        with (tmp / "timeline.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        with (tmp / "events.jsonl").open("w", encoding="utf-8") as handle:
            for event in result.events:
                handle.write(json.dumps(event.as_dict()) + "\n")
        if plot:
            from gridsim.report.plots import plot_timeline

            plot_timeline(result, tmp / "timeline.png")
    return stage.final


@dataclass
class Stage:
    """A folder being written (``path``), and where it landed once complete (``final``)."""

    path: Path
    final: Path | None = None


@contextlib.contextmanager
def staged_folder(out_dir: str | Path, name: str):
    """Yield a :class:`Stage` for a hidden ``.<name>.<host>-<pid>-<token>.partial`` folder in ``out_dir``; rename
    the folder to ``<name>`` (or ``<name>-2`` ...) when the block ends well, remove it when it does not.

    Stale ``.partial`` folders of killed runs in ``out_dir`` are removed first.
    """
    check_writable(out_dir)
    out_dir = Path(out_dir)
    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_stages(out_dir)
        stage = Stage(_make_stage(out_dir, name))
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


def _host_tag() -> str:
    """Six hex digits naming this machine, so that a pid is only ever checked on the host it belongs to."""
    return hashlib.sha256(socket.gethostname().encode("utf-8", errors="replace")).hexdigest()[:6]


def _make_stage(out_dir: Path, name: str) -> Path:
    """Create the staging folder with ``mkdir``: unlike ``tempfile.mkdtemp`` (always 0700), the umask applies."""
    for _ in range(100):
        path = out_dir / f".{name}.{_host_tag()}-{os.getpid()}-{secrets.token_hex(4)}.partial"
        try:
            path.mkdir(mode=0o777)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(errno.EEXIST, "no free name for a staging folder", str(out_dir))


#: Staging folders gridsim makes: ``.<name>.<host>-<pid>-<token>.partial``, and the
#: ``.<name>.<8 of [a-z0-9_]>.partial`` of ``tempfile.mkdtemp`` that earlier versions made.
_STAGE_NAME = re.compile(r"\..+\.(?:(?P<host>[0-9a-f]{6})-(?P<pid>[0-9]{1,12})-[0-9a-f]{8}|[a-z0-9_]{8})\.partial",
                         re.S)


def remove_stale_stages(out_dir: str | Path, *, stale_after_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove the ``.partial`` staging folders a killed gridsim left in ``out_dir``; return what was removed.

    Only folders named as gridsim names them, owned by this user and not
    symbolic links, are considered. One made on this host is stale when the
    process whose pid it carries is gone (a live pid, even a reused one, keeps
    it); one from another host or an older gridsim, whose owner cannot be
    checked, when nothing in it changed for ``stale_after_s``. Never raises:
    what cannot be checked or removed is left alone.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(out_dir))
    except OSError:
        return removed
    host = _host_tag()
    uid = os.getuid() if hasattr(os, "getuid") else None
    for entry in entries:
        match = _STAGE_NAME.fullmatch(entry.name)
        if match is None:
            continue
        try:
            if not entry.is_dir(follow_symlinks=False):
                continue
            if uid is not None and entry.stat(follow_symlinks=False).st_uid != uid:
                continue
            if match["pid"] is not None and match["host"] == host:
                stale = not _pid_alive(int(match["pid"]))
            else:
                stale = time.time() - _last_change(entry.path) > stale_after_s
            if stale:
                shutil.rmtree(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def _pid_alive(pid: int) -> bool:
    """Whether a process of this id exists (signal 0 checks without sending anything)."""
    if pid <= 0:
        return False  # no gridsim ran as pid 0, and os.kill(0, ...) would mean the process group
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    except (OverflowError, OSError):
        return False  # not a pid this system can have
    return True


def _last_change(folder: str) -> float:
    """Newest modification time of a folder and the entries in it (a bundle is flat)."""
    newest = os.lstat(folder).st_mtime
    with os.scandir(folder) as entries:
        for entry in entries:
            with contextlib.suppress(OSError):
                newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
    return newest


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
