"""One writer per study folder: an OS-level file lock, with who holds it written beside it.

``with study_lock(folder):`` takes ``folder/.robustlens.lock`` (a :mod:`filelock` lock, i.e.
``flock`` on POSIX). The operating system releases it when the holding process ends, however it
ends (even by SIGKILL), so a lock left by a killed run is taken over by the next run without
any clean-up. While the lock is held, ``folder/.robustlens.lock.json`` says which process holds
it (pid, host, start time), so that a second run can tell the user; a stale info file is only
ever read as a hint, never trusted as the lock itself.

Every command that writes a study folder takes the lock (``Study.run``); commands that only
read it (``study status``, ``report``) do not, and open the results read-only.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from filelock import FileLock, Timeout

from robustlens.errors import StoreError

LOCK_NAME = ".robustlens.lock"
INFO_NAME = ".robustlens.lock.json"

_held: dict[Path, int] = {}
"""The folders this process holds, with their nesting depth (the lock is re-entrant)."""

P = ParamSpec("P")
R = TypeVar("R")


def _unwritable(folder: Path, err: OSError) -> StoreError:
    if err.errno == errno.ENOSPC:
        return StoreError(
            f"cannot write into study folder {folder}: no space left on device",
            fix="Free some space, or choose another --out folder",
        )
    return StoreError(
        f"cannot write into study folder {folder}: {err.strerror or err}",
        fix="Choose an --out folder you can write to, or make this one writable",
    )


def holder(folder: str | Path) -> dict[str, Any] | None:
    """What the info file says about the process holding ``folder``'s lock, or None."""
    try:
        info = json.loads((Path(folder) / INFO_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but is not ours (EPERM)
        return True
    return True


def _describe(info: dict[str, Any] | None) -> str:
    if not info or not isinstance(info.get("pid"), int) or isinstance(info["pid"], bool):
        return "another process"
    where = info.get("host")
    if where == socket.gethostname() and not _alive(info["pid"]):
        return "another process"  # a killed run's stale note; the new holder has not written yet
    text = f"process {info['pid']}"
    if where and where != socket.gethostname():
        text += f" on {where}"
    started = info.get("started")
    if isinstance(started, int | float):
        text += (
            f" (started {datetime.fromtimestamp(started).isoformat(sep=' ', timespec='seconds')})"
        )
    return text


@contextmanager
def study_lock(folder: str | Path, *, command: str = "study run") -> Iterator[Path]:
    """Hold ``folder``'s writer lock for the block (creating the folder); yield the folder.

    Raises :class:`StoreError` at once, without waiting, when another process holds it
    ("study folder X is in use by process N (started …)"), or when the folder cannot be
    written.
    """
    folder = Path(folder)
    key = folder.resolve()
    if key in _held:  # this process holds it already (a writer calling another)
        _held[key] += 1
        try:
            yield folder
        finally:
            _held[key] -= 1
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StoreError(
            f"study folder {folder} is a file, not a folder",
            fix="Choose another --out folder",
        ) from None
    except OSError as err:
        raise _unwritable(folder, err) from err
    lock = FileLock(folder / LOCK_NAME)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise StoreError(
            f"study folder {folder} is in use by {_describe(holder(folder))}",
            fix="Wait for that run to finish (or stop it), or choose another --out folder",
        ) from None
    except OSError as err:
        raise _unwritable(folder, err) from err
    info = folder / INFO_NAME
    _held[key] = 1
    try:
        try:
            _write_info(info, command)
        except OSError as err:
            raise _unwritable(folder, err) from err
        yield folder
    finally:
        del _held[key]
        with contextlib.suppress(OSError):
            info.unlink()
        lock.release()


def writes_study_folder(method: Callable[P, R]) -> Callable[P, R]:
    """Decorate a method of an object with a ``dir`` (its study folder) so that it runs
    holding that folder's lock (see :func:`study_lock`)."""

    @functools.wraps(method)
    def locked(*args: P.args, **kwargs: P.kwargs) -> R:
        with study_lock(args[0].dir, command=method.__qualname__):  # type: ignore[attr-defined]
            return method(*args, **kwargs)

    return locked


def _write_info(path: Path, command: str) -> None:
    text = json.dumps(
        {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.time(),
            "command": command,
        }
    )
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
