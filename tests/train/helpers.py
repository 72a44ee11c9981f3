"""A tiny data set and model for training tests (shared with the killed child processes)."""

from __future__ import annotations

import dataclasses

import torch

from robustlens.data import DatasetInfo, ImageSet
from robustlens.models import build_model
from robustlens.train import Recipe

INFO = DatasetInfo(
    name="stripes",
    num_classes=2,
    class_names=("left", "right"),
    shape=(1, 8, 8),
    mean=(0.3,),
    std=(0.3,),
    splits=("train", "test"),
)


def stripes(n: int, seed: int) -> ImageSet:
    """Class 0: bright left half; class 1: bright right half; plus noise."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    images = torch.rand(n, 1, 8, 8, generator=gen) * 0.3
    images[labels == 0, :, :, :4] += 0.6
    images[labels == 1, :, :, 4:] += 0.6
    return ImageSet(images.clamp(0, 1), labels, INFO, "train", torch.arange(n))


def small_model(seed: int = 0):
    """A small CNN with BatchNorm (so evaluating it in train mode would change it)."""
    torch.manual_seed(seed)
    return build_model("small-cnn", INFO, widths=(8, 16), kernels=(3, 3), strides=(2, 1))


FAST = Recipe(epochs=2, batch_size=32, lr=0.05, eval_n=64, eval_steps=3)

KILLED = dataclasses.replace(FAST, method="fgsm-rs", eps=0.1)
"""The run the kill-and-resume tests interrupt: adversarial, so its final evaluation is PGD."""


def killed_run_inputs():
    """(train set, held-out set) of the run the kill-and-resume tests interrupt."""
    return stripes(128, 0), stripes(64, 1)
