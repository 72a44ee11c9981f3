"""Feature visualisation's image parameterisation and optimisation against numpy references
and hand-made models (Lucid's recipe, Itazuri et al. 2019 Eq. 10)."""

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
    visualize_channels,
)
from tests.tolerances import close, float_tol


def reference_scale(h: int, w: int) -> np.ndarray:
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    return 1.0 / np.maximum(np.sqrt(fy**2 + fx**2), 1.0 / max(h, w))


@pytest.mark.parametrize(("h", "w"), [(6, 10), (9, 4), (8, 8)])
def test_fourier_image_matches_a_numpy_reference(h, w):
    """spectrum · (1/f) → inverse real FFT (orthonormal) / 4 → colour mix → sigmoid."""
    colors = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    image = FourierImage(2, (3, h, w), colors, torch.Generator().manual_seed(7))
    np.testing.assert_allclose(image.scale.numpy(), reference_scale(h, w), rtol=1e-6)
    spec = 0.01 * torch.randn((2, 3, h, w // 2 + 1, 2), generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(image.spectrum.detach(), spec, rtol=0, atol=0)
    torch.testing.assert_close(image.colors, colors, rtol=0, atol=0)
    assert image.size == (h, w)
    with torch.no_grad():
        image.spectrum.normal_(generator=torch.Generator().manual_seed(1))  # a visible image
    s = image.spectrum.detach().double().numpy()
    coeffs = (s[..., 0] + 1j * s[..., 1]) * reference_scale(h, w)
    spatial = np.fft.irfft2(coeffs, s=(h, w), norm="ortho") / 4.0
    mixed = np.einsum("ij,njhw->nihw", colors.double().numpy(), spatial)
    expected = 1.0 / (1.0 + np.exp(-mixed))
    got = image().detach().double().numpy()
    np.testing.assert_allclose(got, expected, **close(torch.float32, h * w, ulps=16))


@pytest.mark.parametrize(
    ("size", "sizes"),
    [(224, (12, 8, 4)), (112, (6, 4, 2)), (32, (2, 1, 1)), (8, (1, 1, 1)), (448, (24, 16, 8))],
)
def test_transform_sizes_scale_lucids_224_pixel_ones(size, sizes):
    assert TransformSizes.for_image(size) == TransformSizes(*sizes)


def test_colour_square_root_of_uncorrelated_channels_is_diagonal():
    """Channels with variances 4, 1, 0.25 and no correlation: √cov = diag(2, 1, 0.5) up to the
    order of its columns, each column divided by the largest norm, 2."""
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(4000, 3, 2, 2, generator=gen, dtype=torch.float64)
    base = base - base.mean(dim=(0, 2, 3), keepdim=True)
    # whiten exactly, then scale: the sample covariance is then exactly diag(4, 1, 0.25)
    flat = base.permute(1, 0, 2, 3).reshape(3, -1)
    white = torch.linalg.cholesky(torch.cov(flat)).inverse() @ flat
    images = torch.tensor([2.0, 1.0, 0.5], dtype=torch.float64)[:, None] * white
    images = images.reshape(3, 4000, 2, 2).permute(1, 0, 2, 3)
    root = color_sqrt(images)
    assert root.dtype == torch.float32
    np.testing.assert_allclose(
        np.sort(np.abs(root.numpy()).ravel())[-3:], [0.25, 0.5, 1.0], rtol=1e-5
    )
    np.testing.assert_allclose(np.abs(root.numpy()) @ np.abs(root.numpy()).T,
                               np.diag([1.0, 0.25, 0.0625]), atol=1e-5)  # fmt: skip


def test_spectral_centroid_matches_a_numpy_reference():
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.random((3, 2, 6, 10)))
    grey = images.numpy().mean(axis=1)
    grey = grey - grey.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(grey)) ** 2
    radius = np.sqrt(np.fft.fftfreq(6)[:, None] ** 2 + np.fft.fftfreq(10)[None, :] ** 2) / 0.5
    expected = (power * radius).sum(axis=(1, 2)) / power.sum(axis=(1, 2))
    # float64 throughout: an FFT over 6 × 10 pixels and two sums
    np.testing.assert_allclose(
        spectral_centroid(images), expected, rtol=float_tol(np.float64, 60, ulps=16)
    )
    flat = spectral_centroid(torch.full((2, 1, 4, 4), 0.3))
    assert flat.shape == (2,) and np.isnan(flat).all()


class TwoTaps(nn.Module):
    """conv: channel 0 bright, channel 1 dark; head: unit 0 dark, unit 1 bright."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1)
        self.head = nn.Linear(1, 2)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
            self.conv.bias.zero_()
            self.head.weight.copy_(torch.tensor([[-1.0], [1.0]]))
            self.head.bias.zero_()

    def forward(self, x):
        return self.head(self.conv(x)[:, :1].mean(dim=(2, 3)))


def test_each_image_maximises_its_own_target():
    net = TwoTaps()
    targets = [(net.conv, 1), (net.head, 1), (net.conv, 0), (net.head, 0)]
    images = visualize_channels(net, targets, (1, 12, 12), torch.eye(1), steps=40)
    inner = images[:, 0, 3:-3, 3:-3].mean(dim=(1, 2))
    assert inner[0] < 0.35 and inner[1] > 0.65 and inner[2] > 0.65 and inner[3] < 0.35
    assert not net.conv._forward_hooks and not net.head._forward_hooks


def test_steps_learning_rate_and_seed():
    net = TwoTaps()
    args = (net, [(net.conv, 0)], (1, 8, 8), torch.eye(1))
    start = FourierImage(1, (1, 8, 8), torch.eye(1), torch.Generator().manual_seed(4))()
    torch.testing.assert_close(visualize_channels(*args, steps=0, seed=4), start.detach())
    torch.testing.assert_close(visualize_channels(*args, steps=3, lr=0.0, seed=4), start.detach())
    moved = visualize_channels(*args, steps=3, seed=4)
    assert (moved - start).abs().max() > 1e-3
    torch.testing.assert_close(visualize_channels(*args, steps=3, lr=0.05, seed=4), moved)
    assert not torch.equal(visualize_channels(*args, steps=3, lr=0.2, seed=4), moved)
    seeded = visualize_channels(*args, steps=2, seed=0)
    torch.testing.assert_close(visualize_channels(*args, steps=2), seeded)  # default seed 0
    assert not torch.equal(visualize_channels(*args, steps=2, seed=1), seeded)


def test_the_objective_is_the_mean_activation_of_the_channel():
    from robustlens.analysis.featviz import _activation

    maps = torch.arange(24.0).view(2, 3, 2, 2)
    assert float(_activation(maps, 1, 2)) == (20 + 21 + 22 + 23) / 4
    assert float(_activation(maps, 0, 0)) == (0 + 1 + 2 + 3) / 4
    units = torch.arange(6.0).view(2, 3)
    assert float(_activation(units, 1, 0)) == 3.0


def test_transforms_are_sized_to_the_shorter_side(monkeypatch):
    from robustlens.analysis import featviz

    seen = []
    original = featviz.transform

    def spy(x, sizes, generator):
        seen.append(sizes)
        return original(x, sizes, generator)

    monkeypatch.setattr(featviz, "transform", spy)
    net = TwoTaps()
    out = visualize_channels(net, [(net.conv, 0)], (1, 20, 120), torch.eye(1), steps=2)
    assert out.shape == (1, 1, 20, 120)
    assert seen == [TransformSizes.for_image(20)] * 2 != [TransformSizes.for_image(120)] * 2


def test_the_model_is_left_as_found():
    """Parameters are frozen while the image is optimised (no gradients accumulate in them) and
    get their own requires_grad back afterwards, frozen ones included."""
    net = TwoTaps()
    net.head.bias.requires_grad_(False)
    visualize_channels(net, [(net.conv, 0), (net.head, 1)], (1, 8, 8), torch.eye(1), steps=3)
    assert [p.requires_grad for p in net.parameters()] == [True, True, True, False]
    assert all(p.grad is None for p in net.parameters())
    assert not net.conv._forward_hooks and not net.head._forward_hooks


def test_spectral_centroid_does_not_depend_on_the_contrast():
    """A faint pattern (total power far below 1) has the centroid of its strong copy."""
    images = torch.from_numpy(np.random.default_rng(2).random((2, 1, 8, 8)))
    strong = spectral_centroid(images)
    faint = spectral_centroid(0.5 + 1e-4 * (images - 0.5))
    # the 1e-4 contrast leaves 1e4 × fewer significant bits in the pattern than in the pixels
    np.testing.assert_allclose(faint, strong, rtol=float_tol(np.float64, 64, ulps=16) / 1e-4)
