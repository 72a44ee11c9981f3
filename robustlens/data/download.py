"""Checked downloads: stream to a temporary file, verify the checksum, then rename into place.

The temporary file lives beside the destination (same file system, so the final
:func:`os.replace` is atomic) and is removed on every failure: a destination path either does
not exist or holds a complete, verified file. Nothing is retried silently. ``http(s)://`` and
``file://`` URLs are supported (through :mod:`urllib`, which honours the usual proxy
variables).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from robustlens.errors import DataError

logger = logging.getLogger(__name__)

Progress = Callable[[int, int | None], None]
"""Called as ``progress(bytes_done, bytes_total_or_None)`` after every chunk."""

CHUNK_SIZE = 1 << 20


def file_digest(path: Path | str, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes."""
    h = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            h.update(chunk)
    return h.hexdigest()


def expected_checksum(sha256: str | None, md5: str | None, what: str) -> tuple[str, str]:
    """The algorithm and lower-case digest to verify against: ``sha256``, or ``md5`` where a
    source publishes only that. ``what`` names the check in the error when neither is given."""
    if sha256:
        return "sha256", sha256.lower()
    if md5:
        return "md5", md5.lower()
    raise ValueError(f"{what} needs a sha256 or md5 checksum")


def download(
    url: str,
    dest: Path | str,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    progress: Progress | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest`` and verify it; return ``dest``.

    One checksum is required: ``sha256``, or ``md5`` where a source publishes only that. A
    failed connection or a checksum mismatch raises :class:`DataError` saying where to put the
    file by hand; no partial or temporary file is left behind.
    """
    algorithm, expected = expected_checksum(sha256, md5, f"download of {url}")
    dest = Path(dest)
    manual = (
        f"Check the network connection and try again, or download {url} yourself and save it "
        f"as {dest}"
    )
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as err:
        raise DataError(f"cannot write into {dest.parent}: {err}", fix=manual) from err
    tmp = Path(tmp_name)
    try:
        h = hashlib.new(algorithm, usedforsecurity=False)
        logger.info("downloading %s to %s", url, dest)
        done = 0
        with os.fdopen(fd, "wb") as out:
            try:
                # A fresh opener reads the proxy variables at each call.
                opener = urllib.request.build_opener()
                with opener.open(url, timeout=timeout) as response:
                    length = response.headers.get("Content-Length")
                    total = int(length) if length and length.isdigit() else None
                    while chunk := response.read(CHUNK_SIZE):
                        h.update(chunk)
                        out.write(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done, total)
            except urllib.error.HTTPError as err:
                raise DataError(
                    f"could not download {url}: HTTP {err.code} {err.reason}", fix=manual
                ) from err
            except urllib.error.URLError as err:
                raise DataError(f"could not download {url}: {err.reason}", fix=manual) from err
            except (OSError, http.client.HTTPException, ValueError) as err:
                raise DataError(
                    f"could not download {url}: {type(err).__name__}: {err}", fix=manual
                ) from err
        if total is not None and done != total:
            raise DataError(
                f"download of {url} is incomplete ({done} of {total} bytes)", fix=manual
            )
        actual = h.hexdigest()
        if actual != expected:
            raise DataError(
                f"download of {url} failed verification: {algorithm} is {actual}, expected "
                f"{expected}; the file was discarded",
                fix="The transfer was damaged or the file changed upstream. Try again later, or "
                f"download it yourself, check its {algorithm}, and save it as {dest}",
            )
        os.replace(tmp, dest)
        logger.info("downloaded %s (%d bytes, %s verified)", dest, done, algorithm)
        return dest
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
