"""The facts about a data set that models and lenses need: classes, shape, statistics."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetInfo:
    """Facts about one data set.

    ``shape`` is (channels, height, width) of one image as loaded; ``mean`` and ``std`` are the
    per-channel statistics of the training split in [0, 1] pixel units, used by the
    normalisation layer inside every model.
    """

    name: str
    num_classes: int
    class_names: tuple[str, ...]
    shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    splits: tuple[str, ...]
    homepage: str = ""
    citation: str = ""

    def __post_init__(self) -> None:
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"{self.name}: {self.num_classes} classes but class_names differ")
        if len(self.mean) != self.shape[0] or len(self.std) != self.shape[0]:
            raise ValueError(f"{self.name}: mean/std must have one value per channel")

    @property
    def channels(self) -> int:
        return self.shape[0]

    @property
    def resolution(self) -> int:
        """The larger side of an image, in pixels."""
        return max(self.shape[1], self.shape[2])

    @property
    def dimension(self) -> int:
        """Number of input values d = C·H·W (the √d of norm-ratio bounds)."""
        c, h, w = self.shape
        return c * h * w
