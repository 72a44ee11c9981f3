"""Lucid-style activation maximisation (Itazuri et al. Eq. 10) on models with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from robustlens.analysis.featviz import (
    FourierImage,
    TransformSizes,
    color_sqrt,
    spectral_centroid,
    transform,
    visualize_channels,
)
from robustlens.errors import ConfigError
from tests.tolerances import float_tol


class Bright(nn.Module):
    """Channel 0 responds to brightness, channel 1 to darkness."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
            self.conv.bias.zero_()

    def forward(self, x):
        return self.conv(x).mean(dim=(2, 3))


def test_maximising_a_brightness_channel_gives_a_bright_image_and_its_opposite_a_dark_one():
    net = Bright()
    images = visualize_channels(
        net, [(net.conv, 0), (net.conv, 1)], (1, 16, 16), torch.eye(1), steps=60, lr=0.05
    )
    assert images.shape == (2, 1, 16, 16)
    assert images.min() >= 0 and images.max() <= 1
    inner = images[:, :, 3:-3, 3:-3]  # the border is seen less often through the jitter
    assert inner[0].mean() > 0.7 and inner[1].mean() < 0.3
    assert all(p.requires_grad for p in net.parameters())  # left as found


def test_runs_are_seeded():
    net = Bright()
    a = visualize_channels(net, [(net.conv, 0)], (1, 8, 8), torch.eye(1), steps=5, seed=3)
    b = visualize_channels(net, [(net.conv, 0)], (1, 8, 8), torch.eye(1), steps=5, seed=3)
    torch.testing.assert_close(a, b)


def test_a_channel_the_tap_lacks_is_refused():
    net = Bright()
    with pytest.raises(ConfigError, match="at least 3 channels"):
        visualize_channels(net, [(net.conv, 2)], (1, 8, 8), torch.eye(1), steps=1)


def test_fourier_image_scales_frequencies_by_one_over_f():
    image = FourierImage(1, (1, 16, 16), torch.eye(1), torch.Generator().manual_seed(0))
    assert image.scale[0, 0] == pytest.approx(16.0)  # DC capped at 1 / (1/16)
    assert image.scale[0, 8] == pytest.approx(2.0)  # horizontal Nyquist: f = 0.5
    out = image()
    assert out.shape == (1, 1, 16, 16) and out.min() > 0 and out.max() < 1


def test_colour_square_root_reproduces_the_covariance_up_to_scale():
    gen = torch.Generator().manual_seed(0)
    mix = torch.tensor([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [0.5, 0.3, 0.2]])
    pixels = torch.einsum("ij,njhw->nihw", mix, torch.rand(50, 3, 8, 8, generator=gen))
    root = color_sqrt(pixels).double()
    cov = torch.cov(pixels.permute(1, 0, 2, 3).reshape(3, -1).double())
    gram = root @ root.T
    scale = gram.trace() / cov.trace()
    # color_sqrt works in float64 and rounds its result to float32 once: each entry of root is
    # off by ≤ ½ ulp, so each gram entry by ≤ 2·½·eps32 of Σ|r_ik||r_jk| and the trace-based
    # scale (a sum of squares, no cancellation) by as much again; bound = 4 eps32 (2× margin).
    bound = float_tol(torch.float32, ulps=4) * (root.abs() @ root.abs().T)
    assert torch.all((gram - scale * cov).abs() <= bound), (gram - scale * cov).abs() / bound
    assert float(root.norm(dim=0).max()) == pytest.approx(1.0, rel=float_tol(torch.float32, 3))
    torch.testing.assert_close(color_sqrt(torch.rand(4, 1, 8, 8)), torch.eye(1))


def test_transforms_are_sized_to_the_image():
    assert TransformSizes.for_image(224) == TransformSizes(12, 8, 4)
    assert TransformSizes.for_image(28) == TransformSizes(2, 1, 1)
    x = torch.rand(2, 1, 28, 28)
    out = transform(x, TransformSizes.for_image(28), torch.Generator().manual_seed(0))
    assert out.shape == (2, 1, 28, 28)  # cropped back to the input size


def test_spectral_centroid_orders_coarse_before_fine_patterns():
    n = 16
    yy, xx = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    coarse = torch.cos(2 * torch.pi * xx / n).view(1, 1, n, n)
    fine = ((yy + xx) % 2).float().view(1, 1, n, n)
    c = spectral_centroid(torch.cat([coarse, fine]))
    assert c[0] == pytest.approx(1 / 8) and c[1] == pytest.approx(np.sqrt(2))
