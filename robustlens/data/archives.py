"""Safe extraction of downloaded tar archives.

Members are checked before anything is written: absolute paths, ``..`` components, links and
device files are refused. The archive is extracted into a temporary folder beside the
destination and its top-level entries are moved into place only when the whole archive was
read, so a truncated archive never leaves a half-extracted data set behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path, PurePosixPath, PureWindowsPath

from robustlens.errors import DataError

logger = logging.getLogger(__name__)

_ARCHIVE_FIX = "Delete the archive and fetch the data set again (robustlens.data.fetch_dataset)"


def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    name = member.name
    parts = PurePosixPath(name).parts
    if (
        name.startswith(("/", "\\"))
        or PureWindowsPath(name).drive
        or ".." in parts
        or ".." in PureWindowsPath(name).parts
    ):
        raise DataError(
            f"archive {archive} is unsafe: member {name!r} would be written outside the "
            "destination folder; nothing was extracted",
            fix=_ARCHIVE_FIX,
        )
    if not (member.isfile() or member.isdir()):
        raise DataError(
            f"archive {archive} is unsafe: member {name!r} is a link or special file, which "
            "a data archive never needs; nothing was extracted",
            fix=_ARCHIVE_FIX,
        )


def extract_tar(archive: Path | str, dest: Path | str) -> list[Path]:
    """Extract a (possibly compressed) tar ``archive`` into ``dest``; return the new top entries.

    Raises :class:`DataError` naming the archive when it is unreadable, truncated or unsafe;
    ``dest`` is then left as it was. Entries of the same name already in ``dest`` are replaced.
    An unwritable ``dest`` raises the underlying :class:`PermissionError`.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{archive.name}.", suffix=".extract", dir=dest))
    try:
        try:
            with tarfile.open(archive, mode="r|*") as tar:
                for member in tar:
                    _check_member(member, archive)
                    if hasattr(tarfile, "data_filter"):
                        tar.extract(member, tmp, filter="data")
                    else:  # Python < 3.11.4; members were checked above
                        tar.extract(member, tmp)
        except FileNotFoundError:
            raise DataError(f"archive {archive} does not exist", fix=_ARCHIVE_FIX) from None
        except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
            raise DataError(
                f"archive {archive} is corrupt or truncated ({type(err).__name__}: {err}); "
                "nothing was extracted",
                fix=_ARCHIVE_FIX,
            ) from err
        entries = []
        for entry in sorted(tmp.iterdir()):
            target = dest / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            os.replace(entry, target)
            entries.append(target)
        logger.info("extracted %s into %s", archive, dest)
        return entries
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
