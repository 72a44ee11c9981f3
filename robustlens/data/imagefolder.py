"""``imagefolder``: any class-per-folder tree of image files (ImageNet subsets, CINIC-10, ...).

Layout: ``root/<class>/<image>`` (images may sit deeper inside a class folder). When ``root``
has subfolders named ``train``, ``val``, ``valid`` or ``test``, each is a split with that name
and holds the class folders; otherwise the whole tree is the single split ``all``.

* Classes are the sorted names of the class folders that hold at least one image, over all
  splits together, so a label means the same class in every split.
* Only files with image extensions count (:data:`formats.IMAGE_EXTENSIONS`); hidden files and
  folders are skipped. An image that cannot be decoded is a :class:`DataError` naming it.
* Symbolic links are followed only while they stay inside ``root``: a link that leads out of
  it, or a folder reached twice (a symlink loop), is a :class:`DataError` naming the link.
* Before any image is decoded, the memory the split needs at ``image_size`` is estimated and
  a split that would not fit is a :class:`ConfigError` (``ROBUSTLENS_ALLOW_LARGE=1`` skips it).
* Images are converted to RGB (``L`` with ``grayscale=True``) and resized to ``image_size``
  (default 224; an int or ``(height, width)``) with PIL's bilinear filter, which antialiases
  when shrinking. The aspect ratio is not kept and nothing is cropped.
* ``mean``/``std`` may be given as options (one value, or one per channel). Otherwise they are
  computed, per channel over all pixels (population std), from the ``train`` split, or the
  ``all`` split, or else the first of ``val``/``valid``/``test`` present, after resizing; the
  result is cached in memory for as long as the files are unchanged. Pass them explicitly to
  avoid reading the training images when loading another split.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robustlens.data import formats
from robustlens.data.entry import DatasetEntry
from robustlens.data.info import DatasetInfo
from robustlens.errors import ConfigError, DataError
from robustlens.runtime import check_memory

logger = logging.getLogger(__name__)

SPLIT_DIRS = ("train", "val", "valid", "test")
DEFAULT_IMAGE_SIZE = 224
OPTIONS = ("image_size", "grayscale", "mean", "std")

_STATS_CACHE: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {}


@dataclass(frozen=True)
class FolderIndex:
    """The images of a class-per-folder tree: per split, (path, label) pairs in sorted order."""

    root: Path
    classes: tuple[str, ...]
    splits: dict[str, list[tuple[Path, int]]]


def _visible_dirs(folder: Path) -> list[Path]:
    try:
        return sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    except OSError as err:
        raise DataError(f"cannot list folder {folder}: {err}", fix="Check the path") from err


def _inside(path: Path, top: Path) -> Path:
    """The real path of ``path``, which must lie inside ``top`` (a real path), else a
    DataError: a symbolic link must not lead out of the image folder."""
    real = Path(os.path.realpath(path))
    if real != top and top not in real.parents:
        raise DataError(
            f"{path} is a link to {real}, outside the image folder {top}",
            fix="copy or move the files into the image folder, or pass as root the folder "
            "that holds them all",
        )
    return real


def _images_under(folder: Path, top: Path | None = None) -> list[Path]:
    """The image files under ``folder`` in sorted depth-first order, following symbolic
    links only inside ``top`` (default: ``folder``) and refusing a folder reached twice."""
    top = Path(os.path.realpath(top if top is not None else folder))
    found: list[Path] = []
    seen: set[Path] = set()
    pending = [folder]
    while pending:
        current = pending.pop()
        real = _inside(current, top)
        if real in seen:
            raise DataError(
                f"folder {current} is reached twice while scanning {top}: a symbolic link "
                "loop, or two links to one folder",
                fix="remove the link so that every folder is reached once",
            )
        seen.add(real)
        try:
            entries = sorted(os.scandir(current), key=lambda e: e.name)
        except OSError as err:
            raise DataError(f"cannot list folder {current}: {err}", fix="Check the path") from err
        subdirs = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            if entry.is_dir():
                subdirs.append(path)
            elif formats.is_image_file(path):
                if entry.is_symlink():
                    _inside(path, top)
                found.append(path)
        pending.extend(reversed(subdirs))
    return found


def split_folders(root: Path) -> dict[str, Path]:
    """Split name → folder: the split subfolders of ``root``, or ``{"all": root}``."""
    subdirs = {d.name: d for d in _visible_dirs(root)}
    present = {s: subdirs[s] for s in SPLIT_DIRS if s in subdirs}
    return present or {"all": root}


def index_folder(root: Path | str) -> FolderIndex:
    """Scan ``root`` (see the module docstring for the layout)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(
            f"image folder {root} does not exist or is not a folder",
            fix="Pass root= the folder that holds one subfolder per class",
        )
    top = Path(os.path.realpath(root))
    per_split: dict[str, dict[str, list[Path]]] = {}
    for split, folder in split_folders(root).items():
        per_split[split] = {d.name: _images_under(d, top) for d in _visible_dirs(folder)}
    classes = tuple(
        sorted({c for by_class in per_split.values() for c, f in by_class.items() if f})
    )
    if not classes:
        raise DataError(
            f"no images found in {root}",
            fix="Arrange it as root/<class>/<image> (or root/train/<class>/<image>, ...) with "
            f"files ending in {', '.join(sorted(formats.IMAGE_EXTENSIONS))}",
        )
    label = {c: i for i, c in enumerate(classes)}
    splits = {
        split: [(p, label[c]) for c in sorted(by_class) if by_class[c] for p in by_class[c]]
        for split, by_class in per_split.items()
    }
    return FolderIndex(root, classes, splits)


def stats_split(splits: Iterable[str]) -> str:
    """The split whose pixels give mean/std: train, else all, else the first other one."""
    splits = list(splits)
    for name in ("train", "all", *SPLIT_DIRS):
        if name in splits:
            return name
    return splits[0]


def channel_stats(chunks: Iterable[np.ndarray]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and population std, in [0, 1] units, over uint8 NCHW chunks."""
    total = sq = None
    count = 0
    for chunk in chunks:
        x = chunk.astype(np.float64) / 255.0
        s, q = x.sum(axis=(0, 2, 3)), (x * x).sum(axis=(0, 2, 3))
        total, sq = (s, q) if total is None else (total + s, sq + q)
        count += x.shape[0] * x.shape[2] * x.shape[3]
    if total is None or count == 0:
        raise ValueError("no pixels to compute statistics from")
    mean = total / count
    std = np.sqrt(np.maximum(sq / count - mean * mean, 0.0))
    if np.any(std < 1e-6):
        logger.warning("a channel of the image folder is constant; using std 1 for it")
        std = np.where(std < 1e-6, 1.0, std)
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def _chunks(array: np.ndarray, size: int = 256) -> Iterable[np.ndarray]:
    for start in range(0, array.shape[0], size):
        yield array[start : start + size]


def _image_size(value: Any) -> tuple[int, int]:
    if isinstance(value, bool):
        raise ConfigError(f"image_size must be an int or (height, width), got {value!r}")
    if isinstance(value, int | np.integer):
        value = (int(value), int(value))
    if (
        not isinstance(value, Sequence)
        or len(value) != 2
        or not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in value)
        or min(value) < 1
    ):
        raise ConfigError(
            f"image_size must be a positive int or (height, width), got {value!r}",
            fix="For example image_size=224 or image_size=(128, 160)",
        )
    return int(value[0]), int(value[1])


def check_image_memory(count: int, options: Mapping[str, Any], per_byte: int, where: Path) -> None:
    """Refuse ``count`` images at ``options``' size when they would not fit in memory.

    ``per_byte``: bytes held per uint8 pixel value while reading (e.g. the uint8 array plus
    its float32 copy = 5).
    """
    h, w = options["image_size"]
    channels = 1 if options["grayscale"] else 3
    check_memory(
        count * channels * h * w * per_byte,
        f"{count} image(s) from {where} at image_size=({h}, {w})",
        fix="choose a smaller image_size",
    )


def _per_channel(name: str, value: Any, channels: int, *, positive: bool) -> tuple[float, ...]:
    values = [value] if isinstance(value, int | float) else value
    try:
        values = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        values = ()
    if len(values) == 1:
        values = values * channels
    if len(values) != channels or (positive and min(values) <= 0):
        raise ConfigError(
            f"{name} must be one {'positive ' if positive else ''}number or {channels} numbers "
            f"(one per channel), got {value!r}",
            fix=f"For example {name}=(0.5, 0.5, 0.5), or leave it out to compute it",
        )
    return values


@dataclass(frozen=True)
class ImageFolderDataset(DatasetEntry):
    """A class-per-folder tree; its facts come from the folder and the options."""

    def check_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ConfigError(
                f"unknown option(s) for imagefolder: {', '.join(unknown)}",
                fix=f"imagefolder takes {', '.join(OPTIONS)}",
            )
        grayscale = options.get("grayscale", False)
        if not isinstance(grayscale, bool):
            raise ConfigError(f"grayscale must be True or False, got {grayscale!r}")
        channels = 1 if grayscale else 3
        checked: dict[str, Any] = {
            "image_size": _image_size(options.get("image_size", DEFAULT_IMAGE_SIZE)),
            "grayscale": grayscale,
            "mean": None,
            "std": None,
        }
        if options.get("mean") is not None:
            checked["mean"] = _per_channel("mean", options["mean"], channels, positive=False)
        if options.get("std") is not None:
            checked["std"] = _per_channel("std", options["std"], channels, positive=True)
        return checked

    def search_dirs(self, root: Path | str | None) -> list[Path]:
        if root is None:
            raise ConfigError(
                "data set 'imagefolder' needs root=, the folder that holds one subfolder per class",
                fix="For example load_dataset('imagefolder', 'val', root='~/data/imagenette')",
            )
        return [Path(root).expanduser()]

    def is_complete(self, folder: Path) -> bool:
        return folder.is_dir()

    def expected_files(self) -> list[str]:
        return [
            "one subfolder per class holding image files (optionally under train/, val/, test/)"
        ]

    def split_names(self, folder: Path | None, options: Mapping[str, Any]) -> tuple[str, ...]:
        if folder is None:
            raise ConfigError("data set 'imagefolder' needs root=")
        return tuple(split_folders(Path(folder)))

    def _read_index(
        self, index: FolderIndex, split: str, options: Mapping[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        size = options["image_size"]
        shape = (1 if options["grayscale"] else 3, *size)
        entries = index.splits[split]
        arrays = [formats.read_image(p, size, grayscale=options["grayscale"]) for p, _ in entries]
        images = formats.stack_images(arrays, shape)
        labels = np.array([label for _, label in entries], dtype=np.int64)
        return images, labels

    def _image_chunks(
        self, entries: Sequence[tuple[Path, int]], options: Mapping[str, Any], size: int = 256
    ) -> Iterable[np.ndarray]:
        """The images of ``entries`` as NCHW uint8 chunks, read lazily."""
        for start in range(0, len(entries), size):
            part = entries[start : start + size]
            yield np.stack(
                [
                    formats.read_image(p, options["image_size"], grayscale=options["grayscale"])
                    for p, _ in part
                ]
            )

    def _stats_key(self, index: FolderIndex, split: str, options: Mapping[str, Any]) -> str:
        """A digest of everything the statistics depend on: files, sizes, times, options."""
        h = hashlib.sha256()
        h.update(repr((str(index.root.resolve()), split, options["image_size"])).encode())
        h.update(repr(options["grayscale"]).encode())
        for path, label in index.splits[split]:
            st = path.stat()
            h.update(f"\0{path}\0{label}\0{st.st_mtime_ns}\0{st.st_size}".encode())
        return h.hexdigest()

    def read(
        self, folder: Path, split: str, options: Mapping[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        index = index_folder(folder)
        check_image_memory(len(index.splits.get(split, [])), options, 5, folder)
        images, labels = self._read_index(index, split, options)
        if len(labels) == 0:
            where = folder if split == "all" else folder / split
            raise DataError(
                f"split {split!r} of image folder {folder} holds no images",
                fix=f"Put images in {where}/<class>/ or load another split",
            )
        needs_stats = options["mean"] is None or options["std"] is None
        if needs_stats and split == stats_split(index.splits):
            key = self._stats_key(index, split, options)
            if key not in _STATS_CACHE:
                _STATS_CACHE[key] = channel_stats(_chunks(images))
        return images, labels

    def describe(self, folder: Path | None, options: Mapping[str, Any]) -> DatasetInfo:
        if folder is None:
            raise ConfigError("data set 'imagefolder' needs root=")
        index = index_folder(folder)
        mean, std = options["mean"], options["std"]
        if mean is None or std is None:
            split = stats_split(index.splits)
            key = self._stats_key(index, split, options)
            if key not in _STATS_CACHE:
                if not index.splits[split]:
                    raise DataError(
                        f"split {split!r} of image folder {folder} holds no images to compute "
                        "mean and std from",
                        fix="Pass mean= and std= options",
                    )
                chunk = min(256, len(index.splits[split]))
                check_image_memory(chunk, options, 1 + 2 * 8, folder)
                logger.info("computing mean/std of %s (split %s)", folder, split)
                _STATS_CACHE[key] = channel_stats(self._image_chunks(index.splits[split], options))
            computed = _STATS_CACHE[key]
            mean = mean if mean is not None else computed[0]
            std = std if std is not None else computed[1]
        size = options["image_size"]
        return DatasetInfo(
            name="imagefolder",
            num_classes=len(index.classes),
            class_names=index.classes,
            shape=(1 if options["grayscale"] else 3, *size),
            mean=tuple(mean),
            std=tuple(std),
            splits=tuple(index.splits),
        )
