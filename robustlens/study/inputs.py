"""What a study's steps read besides the study file: its evaluation subset, other splits of its
data set (each loaded once), and the context lenses run in."""

from __future__ import annotations

from pathlib import Path

import torch

from robustlens.data import ImageSet, dataset_info, load_dataset
from robustlens.lenses import LensContext
from robustlens.study.spec import StudySpec


def evaluation_split(splits: tuple[str, ...]) -> str:
    """The held-out split lenses look at: test, else val, else the only one."""
    for name in ("test", "val", "valid", "all"):
        if name in splits:
            return name
    return splits[-1]


class StudyInputs:
    """A study's data, loaded on first use: the evaluation subset and seeded training splits."""

    def __init__(self, spec: StudySpec, folder: Path, device: torch.device) -> None:
        self.spec = spec
        self.dir = folder
        self.device = device
        self._data: ImageSet | None = None
        self._splits: dict[tuple[str, int | None], ImageSet] = {}

    def data(self) -> ImageSet:
        """The evaluation subset every lens looks at (class-balanced, seeded)."""
        if self._data is None:
            spec = self.spec
            info = dataset_info(spec.dataset, root=spec.data_root)
            self._data = load_dataset(
                spec.dataset,
                evaluation_split(info.splits),
                n=spec.eval_n,
                seed=spec.eval_seed,
                root=spec.data_root,
            )
        return self._data

    def split(self, name: str, n: int | None = None) -> ImageSet:
        """Another split of the study's data set (a seeded subset of ``n``), loaded once."""
        key = (name, n)
        if key not in self._splits:
            spec = self.spec
            self._splits[key] = load_dataset(
                spec.dataset, name, n=n, seed=spec.seed, root=spec.data_root
            )
        return self._splits[key]

    def context(self) -> LensContext:
        """The context every lens of the study runs in."""
        return LensContext(
            info=self.data().info,
            seed=self.spec.seed,
            device=self.device,
            load_split=self.split,
            sets=self.dir / "constructed",
        )
