"""Lucid's random transforms of the feature visualisation, checked against where they must move
a point: scale 0.9–1.1 in steps of 0.02 and rotation by −10° … 10° in whole degrees."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from robustlens.analysis import featviz
from robustlens.analysis.featviz import ANGLES, SCALES, _crop, _fit, _scale_rotate

SIZE = 64


def blob(row: float, col: float, sigma: float = 2.5) -> torch.Tensor:
    yy, xx = torch.meshgrid(
        torch.arange(SIZE, dtype=torch.float64),
        torch.arange(SIZE, dtype=torch.float64),
        indexing="ij",
    )
    g = torch.exp(-((yy - row) ** 2 + (xx - col) ** 2) / (2 * sigma**2))
    return g.view(1, 1, SIZE, SIZE)


def centre_of_mass(x: torch.Tensor) -> tuple[float, float]:
    img = x[0, 0]
    idx = torch.arange(SIZE, dtype=torch.float64)
    total = img.sum()
    return float((img.sum(dim=1) * idx).sum() / total), float((img.sum(dim=0) * idx).sum() / total)


def to_normalised(pixel: float) -> float:
    return (2 * pixel + 1) / SIZE - 1  # align_corners=False


def to_pixel(v: float) -> float:
    return ((v + 1) * SIZE - 1) / 2


def test_the_documented_ranges():
    assert pytest.approx([0.9 + 0.02 * i for i in range(11)]) == SCALES
    assert tuple(range(-10, 11)) == ANGLES


@pytest.mark.parametrize("seed", range(6))
def test_scale_rotate_moves_a_point_by_the_drawn_scale_and_angle(seed):
    """The sampling grid maps output point p to input point R(θ)p / s, so an input point q
    appears at s·R(−θ)q: in image coordinates (x right, y down) x' = s(x cos θ + y sin θ),
    y' = s(−x sin θ + y cos θ). The scale and angle are the generator's next two draws."""
    twin = torch.Generator().manual_seed(seed)
    scale = 1 + (int(torch.randint(11, (1,), generator=twin)) - 5) / 50
    theta = math.radians(int(torch.randint(21, (1,), generator=twin)) - 10)
    row, col = 38.0, 45.0
    out = _scale_rotate(blob(row, col), torch.Generator().manual_seed(seed))
    assert out.shape == (1, 1, SIZE, SIZE) and out.dtype == torch.float64
    x, y = to_normalised(col), to_normalised(row)
    want_col = to_pixel(scale * (x * math.cos(theta) + y * math.sin(theta)))
    want_row = to_pixel(scale * (-x * math.sin(theta) + y * math.cos(theta)))
    got_row, got_col = centre_of_mass(out)
    # bilinear resampling of a smooth blob keeps its centre to a few hundredths of a pixel
    assert got_row == pytest.approx(want_row, abs=0.1)
    assert got_col == pytest.approx(want_col, abs=0.1)


def test_scale_rotate_draws_every_scale_and_angle():
    """Over many draws the moved point visits all 11 × 21 combinations' extremes: both signs of
    rotation and both ends of the scale range."""
    gen = torch.Generator().manual_seed(0)
    x, y = to_normalised(45.0), to_normalised(38.0)
    radii, angles = [], []
    for _ in range(60):
        r, c = centre_of_mass(_scale_rotate(blob(38.0, 45.0), gen))
        u, v = to_normalised(c), to_normalised(r)
        radii.append(math.hypot(u, v) / math.hypot(x, y))
        angles.append(math.degrees(math.atan2(v, u) - math.atan2(y, x)))
    assert min(radii) == pytest.approx(0.9, abs=0.01) and max(radii) == pytest.approx(1.1, abs=0.01)
    assert min(angles) == pytest.approx(-10, abs=0.5) and max(angles) == pytest.approx(10, abs=0.5)


def test_crop_takes_a_window_smaller_by_the_amount():
    x = torch.arange(36.0).view(1, 1, 6, 6)
    gen = torch.Generator().manual_seed(1)
    twin = torch.Generator().manual_seed(1)
    dy, dx = (int(v) for v in torch.randint(0, 3, (2,), generator=twin))
    assert (dy, dx) == (1, 2)  # both offsets non-zero: a wrong sign would show
    out = _crop(x, 2, gen)
    torch.testing.assert_close(out, x[:, :, dy : dy + 4, dx : dx + 4])
    assert _crop(x, 0, gen) is x


def test_fit_crops_larger_images_and_resizes_smaller_ones():
    x = torch.arange(64.0).view(1, 1, 8, 8)
    twin = torch.Generator().manual_seed(1)
    dy = int(torch.randint(0, 3, (1,), generator=twin))
    dx = int(torch.randint(0, 4, (1,), generator=twin))
    out = _fit(x, (6, 5), torch.Generator().manual_seed(1))
    torch.testing.assert_close(out, x[:, :, dy : dy + 6, dx : dx + 5])
    small = torch.ones(1, 1, 4, 4)
    torch.testing.assert_close(_fit(small, (6, 6), torch.Generator()), torch.ones(1, 1, 6, 6))


def test_transform_pads_with_grey():
    """A black image padded by 12 px of grey (0.5), then jittered, scaled, rotated and cropped
    back to its size: grey enters only from the border."""
    sizes = featviz.TransformSizes(pad=12, jitter_first=1, jitter_last=1)
    out = featviz.transform(torch.zeros(1, 1, 48, 48), sizes, torch.Generator().manual_seed(0))
    assert out.shape == (1, 1, 48, 48)
    assert float(out[0, 0, 24, 24]) == 0.0
    assert float(out.max()) == pytest.approx(0.5, abs=1e-6)
    np.testing.assert_array_less(-1e-7, out.numpy())
