"""Small hand-made data sets, models and contexts for the lens tests (offline, CPU, fast)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from robustlens.data.imageset import ImageSet
from robustlens.data.info import DatasetInfo
from robustlens.lenses.base import LensContext, StudyModel
from robustlens.models import ModelCard, RobustClassifier, build_model


def make_info(
    shape: tuple[int, int, int] = (1, 12, 12), num_classes: int = 3, name: str = "toy"
) -> DatasetInfo:
    c = shape[0]
    return DatasetInfo(
        name=name,
        num_classes=num_classes,
        class_names=tuple(f"c{i}" for i in range(num_classes)),
        shape=shape,
        mean=(0.0,) * c,
        std=(1.0,) * c,
        splits=("train", "test"),
    )


def make_images(
    info: DatasetInfo,
    n: int,
    *,
    seed: int = 0,
    labels: torch.Tensor | None = None,
    split: str = "test",
) -> ImageSet:
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand((n, *info.shape), generator=gen)
    if labels is None:
        labels = torch.randint(0, info.num_classes, (n,), generator=gen)
    return ImageSet(images, labels.long(), info, split, torch.arange(n))


def small_cnn(info: DatasetInfo, seed: int = 0) -> RobustClassifier:
    torch.manual_seed(seed)
    model = build_model("small-cnn", info, widths=(4, 8), kernels=(3, 3), strides=(1, 2))
    return model.eval()


def study_model(
    model: RobustClassifier, name: str = "m", recipe: dict[str, Any] | None = None
) -> StudyModel:
    recipe = {"method": "natural"} if recipe is None else recipe
    # a digest per model object: lenses share attack results between models by digest
    digest = f"{name}-{id(model):x}"
    return StudyModel(name, model.eval(), ModelCard.for_model(model, recipe=recipe), digest=digest)


def make_ctx(
    info: DatasetInfo,
    load_split: Callable[[str, int | None], ImageSet] | None = None,
    seed: int = 0,
) -> LensContext:
    def no_split(split: str, n: int | None) -> ImageSet:
        raise AssertionError(f"this lens should not load another split ({split}, {n})")

    return LensContext(
        info=info, seed=seed, device=torch.device("cpu"), load_split=load_split or no_split
    )


def rows(frame, **match):
    """The rows of a tidy frame whose columns equal ``match``."""
    mask = True
    for key, value in match.items():
        mask = mask & (frame[key] == value)
    return frame[mask]


def value(frame, **match) -> float:
    part = rows(frame, **match)
    assert len(part) == 1, f"expected one row for {match}, got {len(part)}"
    return float(part["value"].iloc[0])


def brightness_images(info: DatasetInfo, n: int, *, seed: int = 0, split: str = "test") -> ImageSet:
    """Noisy images labelled by their brightness band: a task a small CNN learns in seconds."""
    gen = torch.Generator().manual_seed(seed)
    level = torch.rand(n, 1, 1, 1, generator=gen)
    noise = torch.rand((n, *info.shape), generator=gen)
    images = (0.5 * noise + 0.5 * level).clamp(0, 1)
    labels = (level.flatten() * info.num_classes).long().clamp(max=info.num_classes - 1)
    return ImageSet(images, labels, info, split, torch.arange(n))


_TRAINED: dict[tuple, RobustClassifier] = {}


def trained_cnn(info: DatasetInfo, seed: int = 0, epochs: int = 15) -> RobustClassifier:
    """A small CNN trained on :func:`brightness_images` (clean accuracy ≈ 0.9): unlike a random
    network it has decision boundaries inside [0, 1] that attacks can cross."""
    key = (info, seed, epochs)
    if key not in _TRAINED:
        model = small_cnn(info, seed=seed).train()
        train = brightness_images(info, 256, seed=1000 + seed, split="train")
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            for idx in torch.randperm(len(train), generator=gen).split(64):
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(
                    model(train.images[idx]), train.labels[idx]
                )
                loss.backward()
                opt.step()
        _TRAINED[key] = model.eval()
    return _TRAINED[key]
