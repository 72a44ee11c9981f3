"""Shared helpers for the model tests: data set facts for the three input shapes, images."""

from __future__ import annotations

import torch

from robustlens.data.info import DatasetInfo
from robustlens.models import RobustClassifier

FMNIST = DatasetInfo(
    name="fashion-mnist",
    num_classes=10,
    class_names=tuple(str(i) for i in range(10)),
    shape=(1, 28, 28),
    mean=(0.286,),
    std=(0.353,),
    splits=("train", "test"),
)
CIFAR = DatasetInfo(
    name="cifar10",
    num_classes=10,
    class_names=tuple(str(i) for i in range(10)),
    shape=(3, 32, 32),
    mean=(0.4914, 0.4822, 0.4465),
    std=(0.247, 0.2435, 0.2616),
    splits=("train", "test"),
)
DIGITS = DatasetInfo(
    name="digits",
    num_classes=10,
    class_names=tuple(str(i) for i in range(10)),
    shape=(1, 8, 8),
    mean=(0.3051,),
    std=(0.3762,),
    splits=("train", "test"),
)
DATASETS = {"fmnist": FMNIST, "cifar": CIFAR, "digits": DIGITS}

# Generic registry names are tested at small sizes; the named presets at their real size.
SMALL_KWARGS = {
    "wrn": {"depth": 10, "widen_factor": 2},
    "cifar-resnet": {"depth": 14},
    "resnet50": {"width": 8},
    "resnet50-imagenet": {"width": 8},
}


def images(model: RobustClassifier, n: int = 2, *, scale: int = 1, seed: int = 0) -> torch.Tensor:
    """``n`` random images in [0, 1] of the model's input shape (sides times ``scale``)."""
    c, h, w = model.input_shape
    generator = torch.Generator().manual_seed(seed)
    return torch.rand((n, c, h * scale, w * scale), generator=generator)
