"""Models built to trigger each flag of the gradient-masking audit, with the images they are
built for (12 × 12 grey, pixel values chosen for the model). Each class says which flags it
raises and why."""

from __future__ import annotations

import math

import torch
from torch import nn

from robustlens.data.imageset import ImageSet
from robustlens.data.info import DatasetInfo

CENTRES = (1 / 6, 1 / 2, 5 / 6)
"""Brightness-band classes: class c is nearest to CENTRES[c] (boundaries at 1/3 and 2/3)."""
DARK, BRIGHT = 0.42, 0.58
SHARES = (0.15, 0.45, 0.85)
"""The share of bright pixels of each class in :func:`threshold_images` (off the centres:
at a centre two other classes tie, and the margin's gradient cancels)."""


def band_logits(u: torch.Tensor) -> torch.Tensor:
    """Logits of the brightness bands for per-image scores ``u`` [N]: −100 (u − centre)²."""
    centres = torch.tensor(CENTRES, dtype=u.dtype, device=u.device)
    return -100 * (u[:, None] - centres[None, :]) ** 2


class BandNet(nn.Module):
    """A smooth natural model of :func:`threshold_images` (the share of bright pixels read
    linearly from the mean pixel): the natural surrogate the transfer check attacks."""

    num_classes = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return band_logits((x.flatten(1).mean(dim=1) - DARK) / (BRIGHT - DARK))


class ThresholdNet(nn.Module):
    """The bands read after a hard threshold at 0.5 (``(sign(x − 0.5) + 1) / 2``, whose gradient
    is zero everywhere): input gradients vanish (``gradients``), FGSM and PGD cannot move an
    image except by PGD's random start, while a score-based search and examples transferred
    from :class:`BandNet` flip pixels near the threshold (``black-box``, ``transfer``)."""

    num_classes = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bits = (torch.sign(x - 0.5) + 1) / 2
        return band_logits(bits.flatten(1).mean(dim=1))


def threshold_images(info: DatasetInfo, n: int, seed: int = 0) -> ImageSet:
    """Images whose pixels sit 0.08 from the threshold (dark 0.42, bright 0.58), class c with a
    share 0.15, 0.45 or 0.85 of bright pixels: L∞ ε = 0.1 can flip any pixel, PGD's random
    start flips each with probability 0.1 only (not enough to cross a band)."""
    gen = torch.Generator().manual_seed(seed)
    d = math.prod(info.shape)
    labels = torch.arange(n) % 3
    images = torch.empty(n, d)
    for i, c in enumerate(labels.tolist()):
        bright = torch.randperm(d, generator=gen)[: round(SHARES[c] * d)]
        row = torch.full((d,), DARK)
        row[bright] = BRIGHT
        images[i] = row
    return ImageSet(images.reshape(n, *info.shape), labels, info, "test", torch.arange(n))


class ShatteredNet(nn.Module):
    """The bands of ``u = mean(x + c/(2πK) · sin(2πK x))``: on the lattice of step 1/K (where
    the images and FGSM's step ε = 0.1 land) the gradient is (1 + c) / d per pixel, pointing the
    right way; between lattice points it is (1 + c·cos φ) / d, of random sign for c ≫ 1. FGSM
    from the clean image crosses a band; PGD from a random start walks at random
    (``single-step``). The sine adds at most c / (2πK) = 0.008 to u."""

    num_classes = 3
    K, C = 1013.0, 50.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        wave = self.C / (2 * math.pi * self.K) * torch.sin(2 * math.pi * self.K * flat)
        return band_logits((flat + wave).mean(dim=1))


def lattice_images(info: DatasetInfo, n: int) -> ImageSet:
    """Uniform images on the lattice of step 1/K, 0.06–0.07 from a band boundary (u ≈ 0.26,
    0.40, 0.60, 0.74): an L∞ step of 0.1 in the right direction crosses it. K·0.1 is not a
    whole number, so the corners of the ε-ball are off the lattice (PGD's projection onto them
    does not realign its gradient)."""
    d = math.prod(info.shape)
    levels = ((0.26, 0), (0.40, 1), (0.60, 1), (0.74, 2))
    grid = ShatteredNet.K
    images = torch.stack(
        [torch.full((d,), round(levels[i % 4][0] * grid) / grid) for i in range(n)]
    )
    labels = torch.tensor([levels[i % 4][1] for i in range(n)])
    return ImageSet(images.reshape(n, *info.shape), labels, info, "test", torch.arange(n))


class SaturatingNet(nn.Module):
    """Two classes read from the top 4 rows after a hard threshold (left half bright: class 0)
    and pushed by ``h = Σ v_i clamp(10 (x_i − 0.5), −1, 1)`` over the other 96 pixels (grey
    0.5 in every image; v_i = ±1 fixed): logits (12 e₀ − h/10, 12 e₁ + h/10), so |h| > 60
    fools (a margin of 12 at the clean image: larger ones saturate the cross-entropy to an exact
    zero gradient in float32).
    At ε = 0.1 PGD saturates every pixel the right way (|h| = 96); at larger ε the random start
    saturates most pixels at random, where the gradient is zero, so accuracy rises with ε
    and stays far above chance at ε = 0.5 (``eps-trend``); at ε = 0.2 about half the pixels
    start saturated and only some restarts get |h| past 60 (``unconverged`` with restarts)."""

    num_classes = 2

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.register_buffer("v", torch.randint(0, 2, (96,), generator=gen).float() * 2 - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        bits = (torch.sign(flat[:, :48] - 0.5) + 1) / 2
        rows = bits.reshape(-1, 4, 12)
        e0, e1 = rows[:, :, :6].mean(dim=(1, 2)), rows[:, :, 6:].mean(dim=(1, 2))
        h = (torch.clamp(10 * (flat[:, 48:] - 0.5), -1, 1) * self.v).sum(dim=1)
        return torch.stack([12 * e0 - h / 10, 12 * e1 + h / 10], dim=1)


def saturating_images(info: DatasetInfo, n: int) -> ImageSet:
    """Class 0: the top 4 rows bright on the left, class 1 on the right; grey elsewhere."""
    images = torch.full((n, 1, 12, 12), 0.5)
    labels = torch.arange(n) % 2
    for i, c in enumerate(labels.tolist()):
        images[i, 0, :4] = 0.0
        images[i, 0, :4, 6 * c : 6 * c + 6] = 1.0
    return ImageSet(images, labels, info, "test", torch.arange(n))


class SoftmaxOutput(nn.Module):
    """A model whose last layer is a softmax: it outputs probabilities (``probabilities``)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x), dim=1)


class AlwaysDropout(nn.Module):
    """A model with dropout applied whatever its mode (``F.dropout(training=True)``): two
    forward passes in eval mode differ (``randomness``)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(nn.functional.dropout(x, 0.5, training=True))


class ScaledLogits(nn.Module):
    """A model whose logits are multiplied by ``scale`` (10⁴): on a confident image the
    softmax rounds to one-hot in float32, so the cross-entropy and its gradient are exactly 0
    and PGD-CE cannot move, while the DLR loss, invariant to the scale, still can
    (``unconverged`` through APGD-T)."""

    def __init__(self, net: nn.Module, scale: float = 1e4) -> None:
        super().__init__()
        self.net, self.scale = net, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) * self.scale
