"""Folders written whole or not at all: a hidden ``.partial`` folder, renamed into place when complete.

Files go to a hidden ``.<name>.<host>-<pid>-<token>.partial`` folder beside
the target, which is renamed into place once everything is written. An error,
Ctrl-C or SIGTERM removes it; only a hard kill (SIGKILL, power loss) can leave
a ``.partial`` folder behind. It is never taken for a result, and the next
folder written to the same place removes it once the process named in it is
gone (see :func:`remove_stale_stages`). An existing folder of the same name
is never overwritten: the new one gets a numbered suffix. The run bundle and
the sweep folder are both written this way.

Folders and files get the permissions the user's umask gives, as any file the
user creates would.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gridsim.errors import InputError

__all__ = ["STALE_AFTER_S", "Stage", "check_writable", "remove_stale_stages", "staged_folder"]

#: A ``.partial`` folder whose owner cannot be checked (another host, an older gridsim) is stale after a week
#: without a change.
STALE_AFTER_S = 7 * 24 * 3600.0


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


@dataclass
class Stage:
    """A folder being written (``path``), and where it landed once complete (``final``)."""

    path: Path
    final: Path | None = None


@contextlib.contextmanager
def staged_folder(out_dir: str | Path, name: str) -> Iterator[Stage]:
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


def _free_name(path: Path) -> Path:
    if not path.exists():
        return path
    for n in range(2, 10_000):
        candidate = path.with_name(f"{path.name}-{n}")
        if not candidate.exists():
            return candidate
    raise FileExistsError(path)
