"""Shared pieces of the gpu tests: a small trained model, its data, and a copy on the device."""

from __future__ import annotations

import copy

import torch
from torch import nn

from tests.lenses.helpers import brightness_images, make_info, trained_cnn

INFO = make_info((3, 16, 16), num_classes=3, name="toy-rgb")
N = 64


def model_pair(device: torch.device) -> tuple[nn.Module, nn.Module]:
    """The same trained small CNN on the CPU and (a deep copy) on ``device``, in eval mode."""
    cpu = trained_cnn(INFO)
    return cpu, copy.deepcopy(cpu).to(device).eval()


def brightness_test_set(n: int = N):
    return brightness_images(INFO, n, seed=7)


def agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    """Share of entries equal in ``a`` and ``b`` (compared on the CPU)."""
    return float((a.cpu() == b.cpu()).float().mean())
