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


# ----------------------------------------------------------------------------- Itazuri et al.


def test_gaussian_blur_matches_a_hand_built_separable_kernel():
    from robustlens.data.probes import gaussian_blur

    torch.manual_seed(0)
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    sigma, k = 1.5, 7
    t = torch.arange(k, dtype=torch.float64) - k // 2
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    kernel = (g[:, None] * g[None, :]).expand(3, 1, k, k)
    padded = torch.nn.functional.pad(x, (3, 3, 3, 3), mode="reflect")
    expected = torch.nn.functional.conv2d(padded, kernel, groups=3)
    torch.testing.assert_close(gaussian_blur(x, sigma, k), expected.clamp(0, 1))
    torch.testing.assert_close(gaussian_blur(x, 0.0, k), x)


def test_median_filter_removes_an_isolated_spike_and_keeps_a_strong_edge():
    from robustlens.data.probes import median_filter

    x = torch.zeros(1, 1, 12, 12)
    x[..., :, 6:] = 1.0  # a strong vertical edge
    x[..., 3, 2] = 1.0  # an isolated bright pixel on the dark side
    once = median_filter(x, 1)
    assert once[0, 0, 3, 2] == 0.0
    torch.testing.assert_close(once[0, 0, 2:10, 4:8], x[0, 0, 2:10, 4:8])
    torch.testing.assert_close(median_filter(x, 0), x)
    # repeated application is the filter applied again
    torch.testing.assert_close(median_filter(x, 2), median_filter(median_filter(x, 1), 1))


def test_colour_reversal_reflects_around_the_mean_and_reports_clipping():
    from robustlens.data.probes import clipped_fraction, reverse_colors

    x = torch.tensor([0.0, 0.2, 0.5, 0.9]).view(1, 1, 2, 2)
    out = reverse_colors(x, [0.3])
    torch.testing.assert_close(out.flatten(), torch.tensor([0.6, 0.4, 0.1, 0.0]))
    assert clipped_fraction(x, [0.3]) == 0.25
    with pytest.raises(ConfigError, match="mean values"):
        reverse_colors(torch.zeros(1, 3, 2, 2), [0.5])


def test_amplitude_swap_keeps_phase_and_takes_the_donors_amplitude():
    from robustlens.data.probes import amplitude_swap

    torch.manual_seed(1)
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64)
    donor = torch.rand(2, 1, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(amplitude_swap(x, x), x)  # its own amplitude: unchanged
    raw = torch.fft.ifft2(
        torch.polar(torch.fft.fft2(donor).abs(), torch.angle(torch.fft.fft2(x)))
    ).real
    torch.testing.assert_close(amplitude_swap(x, donor), raw.clamp(0, 1))
    with pytest.raises(ConfigError, match="must match"):
        amplitude_swap(x, donor[:1])


def test_edge_map_marks_edges_only():
    from robustlens.data.probes import edge_map

    x = torch.zeros(1, 3, 10, 10)
    x[..., 5:] = 1.0
    e = edge_map(x)
    assert e.shape == x.shape and float(e.max()) == 1.0
    assert float(e[0, 0, :, 1].abs().max()) == 0.0  # flat region
    assert float(e[0, 0, 5, 4]) > 0.5  # next to the edge
    torch.testing.assert_close(e[:, 0], e[:, 2])


def test_sizes_written_for_224_px_move_with_the_side():
    from robustlens.data.probes import relative_kernel, relative_sigma

    assert relative_sigma(5.0, 28) == 0.625 and relative_sigma(5.0, 224) == 5.0
    assert relative_sigma(5.0, 28, reference=0) == 5.0  # 0: as written
    # the odd size nearest to k·side/224, at least 3 (a 1-px kernel changes nothing)
    assert [relative_kernel(7, side) for side in (28, 32, 64, 96, 224, 448)] == [3, 3, 3, 3, 7, 15]
    assert [relative_kernel(5, side) for side in (28, 224, 320)] == [3, 5, 7]
    assert relative_kernel(5, 28, reference=0) == 5


def test_blur_and_median_take_a_size_per_axis():
    from robustlens.data.probes import gaussian_blur, median_filter

    x = torch.rand(2, 1, 9, 11, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(gaussian_blur(x, (1.5, 1.5), (5, 5)), gaussian_blur(x, 1.5, 5))
    torch.testing.assert_close(median_filter(x, 2, (3, 3)), median_filter(x, 2, 3))
    # along the rows only: every column blurred by a 1-D Gaussian, rows left alone
    t = torch.arange(5, dtype=torch.float64) - 2
    g = torch.exp(-(t**2) / (2 * 0.8**2))
    g = g / g.sum()
    padded = torch.nn.functional.pad(x, (0, 0, 2, 2), mode="reflect")
    expected = torch.nn.functional.conv2d(padded, g.view(1, 1, 5, 1))
    torch.testing.assert_close(gaussian_blur(x, (0.8, 1e-3), (5, 1)), expected.clamp(0, 1))
