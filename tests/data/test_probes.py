"""Probe transforms on small hand-made images."""

from __future__ import annotations

import pytest
import torch

from robustlens.data.probes import colored_contour, pixel_average, resize, tile_grid
from robustlens.errors import ConfigError


def test_pixel_average_is_the_per_channel_mean():
    x = torch.zeros(1, 3, 2, 2)
    x[0, 0] = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # mean 0.5
    x[0, 2, 0, 0] = 0.8  # mean 0.2
    out = pixel_average(x)
    assert torch.allclose(out[0, 0], torch.full((2, 2), 0.5))
    assert torch.allclose(out[0, 1], torch.zeros(2, 2))
    assert torch.allclose(out[0, 2], torch.full((2, 2), 0.2))
    assert x[0, 0, 0, 1] == 1.0  # input untouched


def test_red_contour_of_thickness_one_on_rgb():
    x = torch.full((1, 3, 4, 4), 0.5)
    out = colored_contour(x, "red", 1)
    border = torch.ones(4, 4, dtype=torch.bool)
    border[1:3, 1:3] = False
    assert torch.all(out[0, 0][border] == 1.0) and torch.all(out[0, 1:, border] == 0.0)
    assert torch.all(out[0, :, 1:3, 1:3] == 0.5)  # the inside is unchanged


def test_contour_on_one_channel_uses_the_grey_level_of_the_colour():
    x = torch.zeros(2, 1, 6, 6)
    out = colored_contour(x, "green", 2)
    assert torch.allclose(out[:, 0, 0, 0], torch.full((2,), 0.587))
    assert torch.all(out[:, :, 2:4, 2:4] == 0.0)
    assert int((out > 0).sum()) == 2 * (36 - 4)


def test_tile_grid_repeats_the_image_at_full_size():
    x = torch.arange(4.0).view(1, 1, 2, 2) / 4
    grid = tile_grid(x, 2)
    assert grid.shape == (1, 1, 4, 4)
    expected = torch.tensor([[0, 1, 0, 1], [2, 3, 2, 3], [0, 1, 0, 1], [2, 3, 2, 3]]) / 4
    assert torch.equal(grid[0, 0], expected.float())


def test_resize_keeps_a_constant_image_constant():
    out = resize(torch.full((1, 1, 8, 8), 0.25), (4, 4))
    assert out.shape == (1, 1, 4, 4) and torch.allclose(out, torch.full_like(out, 0.25))


def test_bad_probe_arguments():
    x = torch.zeros(1, 3, 4, 4)
    with pytest.raises(ConfigError, match="colour"):
        colored_contour(x, "purple", 1)
    with pytest.raises(ConfigError, match="thickness"):
        colored_contour(x, "red", 3)
    with pytest.raises(ConfigError, match="NCHW"):
        pixel_average(torch.zeros(3, 4, 4))
