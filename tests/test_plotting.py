"""The plotting service (robustlens.plotting) shared by the lenses and the report: PNG export,
the model palette, filter strips."""

from __future__ import annotations

import io
import re

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib import pyplot as plt
from PIL import Image

from robustlens.errors import RobustlensError
from robustlens.plotting import (
    PNG_SIGNATURE,
    close_figure,
    draw_filter_strip,
    figure_to_png,
    model_colors,
    new_figure,
)


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


def test_figure_to_png_closes_pyplot_figures() -> None:
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    number = fig.number
    png = figure_to_png(fig, dpi=50)
    assert png.startswith(PNG_SIGNATURE)
    assert number not in plt.get_fignums()
    assert b"matplotlib version" not in png  # no software metadata: stable bytes


def test_figure_to_png_is_deterministic_and_respects_dpi() -> None:
    def make(dpi: int) -> bytes:
        fig, ax = new_figure(figsize=(2, 1))
        ax.plot([0, 1, 2], [0, 1, 4])
        return figure_to_png(fig, dpi=dpi)

    first, second = make(100), make(100)
    assert first == second
    with Image.open(io.BytesIO(first)) as small, Image.open(io.BytesIO(make(200))) as large:
        # cropped to the drawing ("tight"), so about, not exactly, figsize × dpi
        assert 180 <= small.width <= 205 and 85 <= small.height <= 105
        assert abs(large.width - 2 * small.width) <= 4
    with pytest.raises(TypeError):
        figure_to_png("not a figure")  # type: ignore[arg-type]
    fig, _ = new_figure()
    with pytest.raises(RobustlensError):
        figure_to_png(fig, dpi=0)


def test_model_colors() -> None:
    names = ["pgd-0.3", "natural", "pgd-0.1", "natural-2", "pgd-0.2"]
    eps = {"pgd-0.1": 0.1, "pgd-0.2": 0.2, "pgd-0.3": 0.3}
    colors = model_colors(names, ["natural", "natural-2"], eps=eps)
    assert set(colors) == set(names)
    assert colors["natural"] == "#222222"
    greys = {colors["natural"], colors["natural-2"]}
    assert all(re.fullmatch(r"#([0-9a-f]{2})\1\1", c) for c in greys)
    robust = [colors[n] for n in ("pgd-0.1", "pgd-0.2", "pgd-0.3")]
    assert len(set(robust)) == 3 and not greys & set(robust)
    # ordered by ε, not by position: the same ε order gives the same colours in any order
    again = model_colors(list(reversed(names)), ["natural", "natural-2"], eps=eps)
    assert [again[n] for n in ("pgd-0.1", "pgd-0.2", "pgd-0.3")] == robust
    # one robust model: the middle of the colormap; no ε: the order of names
    assert model_colors(["r"], [])["r"] not in greys
    plain = model_colors(["b", "a"], [])
    assert plain == {
        "b": model_colors(["b", "a"], [], eps={"b": 0.1, "a": 0.2})["b"],
        "a": plain["a"],
    }
