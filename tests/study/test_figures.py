"""Figure helpers shared by lenses."""

from __future__ import annotations

import numpy as np

from robustlens.study.figures import close_figure, draw_filter_strip, new_figure


def test_filter_strip_grey_and_colour():
    rng = np.random.default_rng(0)
    grey = rng.normal(size=(4, 2, 3, 3))
    fig, ax = new_figure(1, 1)
    draw_filter_strip(ax, grey)
    shown = ax.get_images()[0]
    data = np.ma.getdata(shown.get_array())
    assert data.shape == (3, 4 * 4)  # four 3-wide tiles, each followed by a 1-pixel gap
    np.testing.assert_allclose(data[:, :3], grey[0].mean(axis=0))
    assert np.isnan(data[:, 3]).all()
    lim = np.abs(grey.mean(axis=1)).max()
    assert shown.get_clim() == (-lim, lim)  # centred on 0
    close_figure(fig)

    colour = rng.normal(size=(2, 3, 3, 3))
    fig, ax = new_figure(1, 1)
    draw_filter_strip(ax, colour)
    data = np.asarray(ax.get_images()[0].get_array())
    assert data.shape == (3, 8, 3) and data.min() >= 0 and data.max() <= 1
    lim = np.abs(colour).max()
    np.testing.assert_allclose(data[:, :3], (colour[0].transpose(1, 2, 0) / lim + 1) / 2)
    np.testing.assert_allclose(data[:, 3], 1.0)  # the gap is white
    close_figure(fig)
