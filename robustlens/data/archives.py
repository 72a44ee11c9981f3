"""Safe extraction of data-set tar archives into a folder robustlens owns.

In order:

1. the archive's checksum is verified against the published one, before a byte is unpacked;
2. every member is checked before anything is written: absolute paths, ``..`` components,
   links and device files are refused;
3. the archive is unpacked into a private temporary folder *inside the destination* (so on the
   same file system), and each top-level entry is then renamed into place with one
   :func:`os.replace`. A destination entry therefore either is absent or holds a complete
   extraction; an interruption (an exception, or even SIGKILL) never leaves a half folder in
   place. Temporary folders of killed processes are removed by the next extraction.

The destination must be a folder robustlens owns (the cache, see
:mod:`robustlens.data.sources`): its same-named entries are replaced. Nothing is ever written
beside the archive itself (see :func:`robustlens.data.loading.fetch_dataset`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import tarfile
import tempfile
import zlib
from pathlib import Path, PurePosixPath, PureWindowsPath

from robustlens.data.download import expected_checksum, file_digest
from robustlens.errors import DataError

logger = logging.getLogger(__name__)

_ARCHIVE_FIX = "Delete the archive and fetch the data set again (robustlens.data.fetch_dataset)"
_TMP_PREFIX = ".extract-"


def verify_archive(
    archive: Path | str, *, sha256: str | None = None, md5: str | None = None, fix: str = ""
) -> None:
    """Raise :class:`DataError` unless ``archive``'s bytes have the expected checksum.

    One checksum is required: ``sha256``, or ``md5`` where a source publishes only that.
    """
    archive = Path(archive)
    algorithm, expected = expected_checksum(sha256, md5, f"verifying {archive}")
    try:
        actual = file_digest(archive, algorithm)
    except FileNotFoundError:
        raise DataError(f"archive {archive} does not exist", fix=fix or _ARCHIVE_FIX) from None
    except OSError as err:
        raise DataError(
            f"cannot read archive {archive}: {err.strerror or err}", fix=fix or _ARCHIVE_FIX
        ) from err
    if actual != expected:
        raise DataError(
            f"archive {archive} failed verification: its {algorithm} is {actual}, expected "
            f"{expected} (the published checksum); it is damaged, incomplete or a different "
            "file, and nothing was extracted",
            fix=fix or _ARCHIVE_FIX,
        )


def _check_member(member: tarfile.TarInfo, archive: Path, fix: str) -> None:
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
            fix=fix,
        )
    if not (member.isfile() or member.isdir()):
        raise DataError(
            f"archive {archive} is unsafe: member {name!r} is a link or special file, which "
            "a data archive never needs; nothing was extracted",
            fix=fix,
        )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _remove_stale(dest: Path) -> None:
    """Remove the temporary folders that killed extractions on this host left in ``dest``."""
    host = socket.gethostname()
    for tmp in dest.glob(f"{_TMP_PREFIX}*"):
        fields = tmp.name[len(_TMP_PREFIX) :].split(".")
        # .extract-<host>.<pid>.<random>; a host name may itself contain dots
        if len(fields) < 3 or ".".join(fields[:-2]) != host or not fields[-2].isdigit():
            continue
        if not _pid_alive(int(fields[-2])):
            logger.info("removing %s, left by an interrupted extraction", tmp)
            shutil.rmtree(tmp, ignore_errors=True)


def _unpack(archive: Path, tmp: Path, fix: str) -> None:
    try:
        with tarfile.open(archive, mode="r|*") as tar:
            for member in tar:
                _check_member(member, archive, fix)
                if hasattr(tarfile, "data_filter"):
                    tar.extract(member, tmp, filter="data")
                else:  # Python < 3.11.4; members were checked above
                    tar.extract(member, tmp)
    except FileNotFoundError:
        raise DataError(f"archive {archive} does not exist", fix=fix) from None
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        if isinstance(err, OSError) and err.errno is not None:
            raise  # a write error (disk full, permissions): the caller says so
        raise DataError(
            f"archive {archive} is corrupt or truncated ({type(err).__name__}: {err}); "
            "nothing was extracted",
            fix=fix,
        ) from err


def extract_tar(
    archive: Path | str,
    dest: Path | str,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    fix: str | None = None,
) -> list[Path]:
    """Verify and extract a (possibly compressed) tar ``archive`` into ``dest``, a folder
    robustlens owns; return the new top-level entries.

    The checksum (``sha256``, or ``md5``; one is required) is verified first. Raises
    :class:`DataError` naming the archive when it does not match, or is unreadable, truncated
    or unsafe (``fix`` says what to do; a generic advice by default); ``dest`` is then left as
    it was. Entries of the same name already in ``dest`` are replaced, each by one rename. An
    unwritable ``dest`` raises :class:`DataError` too.
    """
    archive, dest = Path(archive), Path(dest)
    fix = fix or _ARCHIVE_FIX
    verify_archive(archive, sha256=sha256, md5=md5, fix=fix)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        _remove_stale(dest)
        tmp = Path(
            tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{socket.gethostname()}.{os.getpid()}.", dir=dest)
        )
    except OSError as err:
        raise DataError(
            f"cannot unpack {archive}: cannot write into {dest} ({err.strerror or err})",
            fix=f"Make {dest} writable, or set XDG_CACHE_HOME to a folder with free space you "
            "can write to",
        ) from err
    try:
        _unpack(archive, tmp, fix)
        entries = []
        for entry in sorted(p for p in tmp.iterdir()):
            target = dest / entry.name
            if target.exists() or target.is_symlink():
                # Move the old entry out of the way (into tmp, deleted below), then put the
                # new one in place: no moment shows a half-written entry.
                os.replace(target, tmp / f"{_TMP_PREFIX}old-{entry.name}")
            os.replace(entry, target)
            entries.append(target)
        logger.info("extracted %s into %s", archive, dest)
        return entries
    except OSError as err:
        raise DataError(
            f"cannot unpack {archive} into {dest}: {err.strerror or err}; nothing was extracted",
            fix=f"Free space or make {dest} writable, or set XDG_CACHE_HOME to another folder",
        ) from err
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
