"""Images and labels in memory: the one data type that models, attacks and lenses consume."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from robustlens.data.info import DatasetInfo
from robustlens.data.subsets import choose_subset
from robustlens.errors import ConfigError


@dataclass
class ImageSet:
    """A labelled image set: ``images`` float32 in [0, 1], NCHW; ``labels`` int64.

    ``indices`` are the positions of these images in the full split they came from, so a subset
    can always be traced back to the files.
    """

    images: torch.Tensor
    labels: torch.Tensor
    info: DatasetInfo
    split: str
    indices: torch.Tensor
    _fingerprint: str | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise ValueError(f"images must be NCHW, got shape {tuple(self.images.shape)}")
        if self.images.shape[0] != self.labels.shape[0] or self.labels.ndim != 1:
            raise ValueError(
                f"{self.images.shape[0]} images but labels of shape {tuple(self.labels.shape)}"
            )
        if self.indices.shape != self.labels.shape:
            raise ValueError("indices must have one entry per image")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(images, labels)`` batches, optionally shuffled and moved to ``device``."""
        if batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {batch_size}")
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else None
        for start in range(0, n, batch_size):
            if order is None:
                x = self.images[start : start + batch_size]
                y = self.labels[start : start + batch_size]
            else:
                idx = order[start : start + batch_size]
                x, y = self.images[idx], self.labels[idx]
            if device is not None:
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            yield x, y

    def take(self, positions: torch.Tensor) -> ImageSet:
        """The images at ``positions`` (indices into this set), keeping provenance."""
        positions = torch.as_tensor(positions, dtype=torch.long)
        return ImageSet(
            self.images[positions],
            self.labels[positions],
            self.info,
            self.split,
            self.indices[positions],
        )

    def subset(self, n: int | None, *, seed: int = 0, balanced: bool = True) -> ImageSet:
        """A deterministic subset of ``n`` images (all when ``n`` is None or ≥ the size).

        With ``balanced`` the classes are represented as equally as the data allows; the
        choice depends only on (labels, n, seed), and the result keeps the original order.
        """
        if n is None or n >= len(self):
            return self
        return self.take(choose_subset(self.labels, n, seed=seed, balanced=balanced))

    def fingerprint(self) -> str:
        """sha256 over the dataset name, split, image bytes and labels (cached)."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            h.update(f"{self.info.name}|{self.split}|{tuple(self.images.shape)}".encode())
            h.update(self.images.detach().cpu().contiguous().numpy().tobytes())
            h.update(self.labels.detach().cpu().contiguous().numpy().tobytes())
            self._fingerprint = h.hexdigest()
        return self._fingerprint
