"""Where data set files are looked for, in order.

1. an explicit ``root`` argument: the folder itself, or ``root/<name>``. When a root is given
   nothing else is searched (a folder the user names is used or the load stops), and a root
   that does not exist is a :class:`DataError`;
2. ``$ROBUSTLENS_DATA/<name>`` (several folders may be given, separated by ``os.pathsep``);
3. the cache, ``$XDG_CACHE_HOME/robustlens/<name>`` (default ``~/.cache/robustlens/<name>``),
   where downloads go;
4. the system folder ``/usr/share/datasets/<name>`` (Debian's ``dataset-*`` packages).

A folder counts only when every required file is there; which files those are is the caller's
business (see :mod:`robustlens.data.catalog`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from robustlens.errors import DataError

ENV_DATA = "ROBUSTLENS_DATA"
SYSTEM_DATA_DIR = Path("/usr/share/datasets")

FileGroup = tuple[str, ...]
"""One required file, as the relative paths it may be found under (first = canonical name)."""


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/robustlens``, or ``~/.cache/robustlens`` when that is unset."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "robustlens"


def cache_dir(name: str) -> Path:
    """The cache folder of data set ``name``, where downloads go when no root is given."""
    return cache_root() / name


def search_dirs(name: str, root: Path | str | None = None) -> list[Path]:
    """The folders searched for data set ``name``, in order, without duplicates.

    With ``root`` only ``root`` and ``root/<name>`` are searched; a ``root`` that is not an
    existing folder is a :class:`DataError`, never a silent fall-back to other folders.
    """
    if root is not None:
        return [check_root(root), Path(root).expanduser() / name]
    dirs: list[Path] = []
    for entry in os.environ.get(ENV_DATA, "").split(os.pathsep):
        if entry.strip():
            dirs.append(Path(entry.strip()).expanduser() / name)
    dirs.append(cache_dir(name))
    dirs.append(SYSTEM_DATA_DIR / name)
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def check_root(root: Path | str) -> Path:
    """``root`` (user-expanded) when it is an existing folder, else a DataError saying so."""
    path = Path(root).expanduser()
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise DataError(
            f"data folder {path} {what}",
            fix="check the path given as --data-root/--root (data_root in a study file); "
            "create the folder first to download a data set into it",
        )
    return path


def find_file(folder: Path, group: FileGroup) -> Path | None:
    """The first of ``group``'s names that is a file in ``folder``, or None."""
    for relative in group:
        path = folder / relative
        if path.is_file():
            return path
    return None


def has_files(folder: Path, groups: Sequence[FileGroup]) -> bool:
    """True when ``folder`` holds a file for every group."""
    return folder.is_dir() and all(find_file(folder, g) is not None for g in groups)


def find_dir(dirs: Sequence[Path], usable: Callable[[Path], bool]) -> Path | None:
    """The first of ``dirs`` for which ``usable`` holds, or None."""
    for d in dirs:
        if usable(d):
            return d
    return None
