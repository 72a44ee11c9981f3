"""What a registered data set is: its facts, its files, its downloads and how to read it.

A :class:`DatasetEntry` holds

* its :class:`DatasetInfo` (or how to work it out, for ``imagefolder``);
* the files each split needs, as groups of accepted names (``x.gz`` or ``x``);
* the files to download, with their checksums, and whether they are archives to unpack;
* how many images each split must have, so that a short file is an error, never a smaller
  data set;
* how to read a split into ``(images, labels)`` numpy arrays (subclasses, one per format).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robustlens.data import formats, sources
from robustlens.data.info import DatasetInfo
from robustlens.data.sources import FileGroup
from robustlens.errors import ConfigError


@dataclass(frozen=True)
class RemoteFile:
    """A file to download: saved as ``filename`` in the data set folder, verified by checksum.

    ``extract`` marks a tar archive that is unpacked into the same folder after download.
    """

    filename: str
    url: str
    sha256: str | None = None
    md5: str | None = None
    extract: bool = False


@dataclass(frozen=True)
class DatasetEntry:
    """One registered data set. Subclasses implement :meth:`read` for their file format."""

    name: str
    info: DatasetInfo | None
    files: Mapping[str, tuple[FileGroup, ...]] = field(default_factory=dict)
    downloads: tuple[RemoteFile, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)
    files_note: str = ""
    """Other accepted names, for error messages (e.g. "each .gz file may be uncompressed")."""

    # ------------------------------------------------------------------ options and facts

    def check_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Validate loader options; fixed data sets take none."""
        if options:
            raise ConfigError(
                f"data set {self.name!r} takes no options, got {', '.join(sorted(options))}",
                fix="Remove them (options such as image_size apply to 'imagefolder' only)",
            )
        return {}

    def describe(self, folder: Path | None, options: Mapping[str, Any]) -> DatasetInfo:
        """The data set's facts; ``folder`` is where its files are, when known."""
        assert self.info is not None
        return self.info

    def split_names(self, folder: Path | None, options: Mapping[str, Any]) -> tuple[str, ...]:
        """The splits that can be loaded."""
        return self.describe(folder, options).splits

    # ------------------------------------------------------------------------------ files

    def required(self) -> tuple[FileGroup, ...]:
        """Every file the data set needs, over all splits."""
        groups: list[FileGroup] = []
        for split_groups in self.files.values():
            groups += [g for g in split_groups if g not in groups]
        return tuple(groups)

    def search_dirs(self, root: Path | str | None) -> list[Path]:
        """The folders to look in, in order (see :mod:`robustlens.data.sources`)."""
        return sources.search_dirs(self.name, root)

    def is_complete(self, folder: Path) -> bool:
        """True when ``folder`` holds every required file."""
        return sources.has_files(folder, self.required())

    def has_archives(self, folder: Path) -> bool:
        """True when ``folder`` holds every archive download (to be unpacked on use)."""
        archives = [r for r in self.downloads if r.extract]
        return bool(archives) and all((folder / r.filename).is_file() for r in archives)

    def usable(self, folder: Path) -> bool:
        """True when the data set can be read from ``folder``, unpacking archives if needed."""
        return self.is_complete(folder) or self.has_archives(folder)

    def expected_files(self) -> list[str]:
        """Human-readable list of the files a folder must hold."""
        names = [g[0] for g in self.required()]
        if self.files_note:
            names.append(f"({self.files_note})")
        archives = [r.filename for r in self.downloads if r.extract]
        if archives:
            names.append(f"(or the archive {' + '.join(archives)}, unpacked on first use)")
        return names

    def path(self, folder: Path, group: FileGroup) -> Path:
        """Where ``group``'s file is in ``folder`` (its canonical name when absent)."""
        return sources.find_file(folder, group) or folder / group[0]

    # ---------------------------------------------------------------------------- reading

    def read(
        self, folder: Path, split: str, options: Mapping[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Images (uint8 NCHW, or float32 in [0, 1]) and int64 labels of one split."""
        raise NotImplementedError

    def check_count(self, split: str, n: int, where: Path | str) -> None:
        expected = self.counts.get(split)
        if expected is not None and n != expected:
            raise formats.corrupt(
                where, f"the {split} split has {n} images, expected {expected} for {self.name}"
            )


def missing_files(entry: DatasetEntry, folder: Path) -> list[str]:
    """The required files (canonical names) that ``folder`` lacks."""
    return [g[0] for g in entry.required() if sources.find_file(folder, g) is None]
