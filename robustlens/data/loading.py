"""Finding, fetching and loading registered data sets as :class:`ImageSet`\\ s."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from filelock import FileLock, Timeout

from robustlens.data import archives, formats, sources
from robustlens.data.catalog import DATASETS, get_entry
from robustlens.data.download import Progress, download
from robustlens.data.entry import DatasetEntry, RemoteFile, missing_files
from robustlens.data.imageset import ImageSet
from robustlens.data.info import DatasetInfo
from robustlens.errors import ConfigError, DataError

logger = logging.getLogger(__name__)


def list_datasets() -> list[str]:
    """The names of the registered data sets, sorted."""
    return DATASETS.names()


# ---------------------------------------------------------------------------------- finding


def _find(entry: DatasetEntry, dirs: list[Path]) -> Path | None:
    """The first folder with every file, else the first with the archives to unpack."""
    return sources.find_dir(dirs, entry.is_complete) or sources.find_dir(dirs, entry.has_archives)


def locate_dataset(name: str, *, root: Path | str | None = None) -> Path | None:
    """The folder holding data set ``name``'s files, or None; never downloads.

    Looks in ``root`` (or ``root/<name>``), ``$ROBUSTLENS_DATA/<name>``, the cache and
    ``/usr/share/datasets/<name>``, in that order (see :mod:`robustlens.data.sources`). A
    folder holding only the downloaded archive also counts; on first load the archive is
    verified and unpacked into the cache folder, never beside it.
    """
    entry = get_entry(name)
    return _find(entry, entry.search_dirs(root))


def _not_found(entry: DatasetEntry, dirs: list[Path], *, download_allowed: bool) -> DataError:
    searched = ", ".join(str(d) for d in dirs)
    expected = "; ".join(entry.expected_files())
    problem = f"data set {entry.name!r} not found: searched {searched}; expected {expected}"
    if entry.name == "digits":
        return DataError(problem, fix="scikit-learn ships these files; reinstall scikit-learn")
    if not entry.downloads:
        return DataError(problem, fix="Check the path passed as root=")
    how = "" if download_allowed else "Downloading was turned off (download=False): "
    return DataError(
        problem,
        fix=f"{how}call robustlens.data.fetch_dataset({entry.name!r}) or load with "
        f"download=True to download it into {sources.cache_dir(entry.name)}, or put the files "
        f"({_urls(entry)}) into one of the folders searched",
    )


def _urls(entry: DatasetEntry) -> str:
    return ", ".join(r.url for r in entry.downloads)


def _unpack(entry: DatasetEntry, source: Path, target: Path) -> None:
    """Verify and unpack ``entry``'s archives found in ``source`` into ``target`` (ours)."""
    for remote in entry.downloads:
        if remote.extract:
            archive = source / remote.filename
            archives.extract_tar(
                archive,
                target,
                sha256=remote.sha256,
                md5=remote.md5,
                fix=f"Delete {archive} and call robustlens.data.fetch_dataset({entry.name!r}) "
                f"to download it again, or replace it with the official file from {remote.url}",
            )


def _ready(entry: DatasetEntry, folder: Path) -> Path:
    """``folder``, or the cache folder its archives were unpacked into, holding every file.

    Archives are verified against their published checksums and unpacked into the cache
    (``sources.cache_dir``), never beside them: a user's folder is only read. One process
    unpacks at a time (a file lock in the cache); the others then find the result.
    """
    if entry.is_complete(folder):
        return folder
    target = sources.cache_dir(entry.name)
    if entry.is_complete(target):
        return target
    try:
        target.mkdir(parents=True, exist_ok=True)
        lock = FileLock(target / ".unpack.lock")
        lock.acquire(timeout=600)
    except (OSError, Timeout) as err:
        raise DataError(
            f"cannot unpack {entry.name} into {target}: {err}",
            fix="Make the folder writable, or set XDG_CACHE_HOME to a folder you can write to",
        ) from err
    try:
        if not entry.is_complete(target):  # another process may have finished meanwhile
            logger.info("unpacking %s from %s into %s", entry.name, folder, target)
            _unpack(entry, folder, target)
    finally:
        lock.release()
    if not entry.is_complete(target):
        names = ", ".join(r.filename for r in entry.downloads if r.extract)
        raise DataError(
            f"after unpacking {names} from {folder}, {target} still lacks "
            f"{', '.join(missing_files(entry, target))}",
            fix=f"The archive is not the expected one: delete it and call "
            f"robustlens.data.fetch_dataset({entry.name!r})",
        )
    return target


def _needed(entry: DatasetEntry, target: Path) -> list[RemoteFile]:
    """The downloads that ``target`` still lacks."""
    if entry.is_complete(target):
        return []
    needed = []
    for remote in entry.downloads:
        groups = [g for g in entry.required() if remote.filename in g]
        if remote.extract or not groups:
            if not (target / remote.filename).is_file():
                needed.append(remote)
        elif any(sources.find_file(target, g) is None for g in groups):
            needed.append(remote)
    return needed


def fetch_dataset(
    name: str, *, root: Path | str | None = None, progress: Progress | None = None
) -> Path:
    """Make data set ``name`` available and return its folder.

    Uses the files where :func:`locate_dataset` finds them; otherwise downloads them (checked
    against their published checksums) into ``root`` when given, else into the cache folder
    ``$XDG_CACHE_HOME/robustlens/<name>``. Archives are verified and unpacked into the cache
    folder, whose path is returned then.
    """
    entry = get_entry(name)
    dirs = entry.search_dirs(root)
    found = _find(entry, dirs)
    if found is not None:
        return _ready(entry, found)
    if not entry.downloads:
        raise _not_found(entry, dirs, download_allowed=True)
    target = Path(root).expanduser() if root is not None else sources.cache_dir(entry.name)
    others = [str(d) for d in dirs if d != target]
    for remote in _needed(entry, target):
        try:
            download(
                remote.url,
                target / remote.filename,
                sha256=remote.sha256,
                md5=remote.md5,
                progress=progress,
            )
        except DataError as err:
            raise DataError(
                err.problem,
                fix=f"{err.fix}. {entry.name} needs {_urls(entry)}, saved in {target}"
                + (f" (or in any of {', '.join(others)})" if others else ""),
            ) from err
    return _ready(entry, target)


# ---------------------------------------------------------------------------------- loading


def _check_split(entry: DatasetEntry, split: str, splits: tuple[str, ...]) -> None:
    if split not in splits:
        raise ConfigError(
            f"data set {entry.name!r} has no split {split!r}",
            fix=f"Use one of: {', '.join(splits)}",
        )


def _corrupt_fix(entry: DatasetEntry, err: DataError) -> DataError:
    """Make a reader's generic 'corrupt file' fix specific to this data set."""
    if err.fix != formats.CORRUPT_FIX:
        return err
    fix = (
        f"Delete the file and call robustlens.data.fetch_dataset({entry.name!r}) to download "
        f"it again; if it came from {sources.SYSTEM_DATA_DIR}, reinstall the package that "
        f"installed it (e.g. Debian's dataset-{entry.name})"
    )
    if entry.name == "digits":
        fix = "Reinstall scikit-learn, which ships this file"
    return DataError(err.problem, fix=fix)


def _to_tensor(images: np.ndarray, where: Path) -> torch.Tensor:
    if images.dtype == np.uint8:
        x = np.ascontiguousarray(images, dtype=np.float32)
        np.divide(x, 255, out=x)
        return torch.from_numpy(x)
    x = np.ascontiguousarray(images, dtype=np.float32)
    if x.size and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
        raise DataError(f"pixel values from {where} lie outside [0, 1]", fix=formats.CORRUPT_FIX)
    return torch.from_numpy(x)


def dataset_info(name: str, *, root: Path | str | None = None, **options: Any) -> DatasetInfo:
    """The facts of data set ``name``: classes, image shape, mean/std, splits.

    Needs no files for the fixed data sets (CIFAR class names are read from the meta file when
    it is present); ``imagefolder`` needs ``root`` and reads the folder.
    """
    entry = get_entry(name)
    opts = entry.check_options(options)
    dirs = entry.search_dirs(root)
    folder = _find(entry, dirs)
    if folder is None and entry.info is None:
        raise _not_found(entry, dirs, download_allowed=False)
    try:
        return entry.describe(folder, opts)
    except DataError as err:
        raise _corrupt_fix(entry, err) from err


def load_dataset(
    name: str,
    split: str = "test",
    *,
    n: int | None = None,
    seed: int = 0,
    balanced: bool = True,
    root: Path | str | None = None,
    download: bool = True,
    **options: Any,
) -> ImageSet:
    """Load one split of data set ``name`` as float32 NCHW images in [0, 1] and int64 labels.

    ``n``, ``seed`` and ``balanced`` choose a deterministic subset (:meth:`ImageSet.subset`).
    The files are found as :func:`locate_dataset` does; when absent they are downloaded
    (:func:`fetch_dataset`) unless ``download=False``. ``options`` are data-set specific, e.g.
    ``image_size``, ``grayscale``, ``mean``, ``std`` for ``imagefolder``.
    """
    entry = get_entry(name)
    opts = entry.check_options(options)
    if n is not None and (not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 1):
        raise ConfigError(f"n must be a positive integer or None, got {n!r}")
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    if not isinstance(split, str):
        raise ConfigError(f"split must be a string, got {split!r}")
    if entry.info is not None:
        _check_split(entry, split, entry.info.splits)
    dirs = entry.search_dirs(root)
    folder = _find(entry, dirs)
    if folder is None:
        if not (download and entry.downloads):
            raise _not_found(entry, dirs, download_allowed=download)
        folder = fetch_dataset(entry.name, root=root)
    else:
        folder = _ready(entry, folder)
    _check_split(entry, split, entry.split_names(folder, opts))
    try:
        images, labels = entry.read(folder, split, opts)
        info = entry.describe(folder, opts)
        x = _to_tensor(images, folder)
    except DataError as err:
        raise _corrupt_fix(entry, err) from err
    if tuple(x.shape[1:]) != info.shape:
        raise DataError(
            f"{entry.name} images in {folder} have shape {tuple(x.shape[1:])}, expected "
            f"{info.shape}",
            fix=_corrupt_fix(entry, formats.corrupt(folder, "")).fix,
        )
    y = torch.from_numpy(np.array(labels, dtype=np.int64))
    logger.debug("loaded %s/%s from %s: %d images", entry.name, split, folder, len(y))
    full = ImageSet(x, y, info, split, torch.arange(len(y)))
    return full.subset(None if n is None else int(n), seed=int(seed), balanced=bool(balanced))
