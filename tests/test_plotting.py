"""The plotting service (robustlens.plotting) shared by the lenses and the report: SVG / PNG
export with alt text, flat-figure detection, the model palette, filter strips."""

from __future__ import annotations

import io
import re

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from PIL import Image

from robustlens.errors import RobustlensError
from robustlens.plotting import (
    BASE_DPI,
    PNG_SIGNATURE,
    SVG_MAX_BYTES,
    close_figure,
    describe_figure,
    draw_filter_strip,
    figure_to_image,
    figure_to_png,
    flat_series,
    model_colors,
    new_figure,
    read_image,
    shared_colors,
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


def _lines(values: dict[str, list[float]], **labels: str) -> Figure:
    fig, ax = new_figure(figsize=(3, 2))
    for name, ys in values.items():
        ax.plot(range(len(ys)), ys, marker="o", label=name)
    ax.set_xlabel(labels.get("x", "block k"))
    ax.set_ylabel(labels.get("y", "maps per image"))
    ax.set_title(labels.get("title", "C_k"))
    ax.legend()
    return fig


def test_small_figures_are_deterministic_svg_with_their_alt_text() -> None:
    first = figure_to_image(_lines({"natural": [1, 2, 3], "pgd ε=0.1": [2, 3, 5]}))
    second = figure_to_image(_lines({"natural": [1, 2, 3], "pgd ε=0.1": [2, 3, 5]}))
    assert first == second  # no date, ids from a fixed salt
    assert first.startswith(b"<?xml") and len(first) <= SVG_MAX_BYTES
    assert b"<dc:date>" not in first
    image = read_image(first)
    assert image is not None and image.mime == "image/svg+xml"
    assert image.alt == "C_k: maps per image against block k for natural, pgd ε=0.1."
    # 3 × 2 inches, cropped to the drawing: about that at BASE_DPI CSS pixels
    assert 0.8 * 3 * BASE_DPI <= image.width <= 3 * BASE_DPI + 2
    assert 0.8 * 2 * BASE_DPI <= image.height <= 2 * BASE_DPI + 2


def test_large_figures_are_png_at_twice_the_resolution_shown_at_half() -> None:
    rng = np.random.default_rng(0)

    def busy() -> Figure:
        fig, ax = new_figure(figsize=(3, 2))
        ax.scatter(rng.random(3000), rng.random(3000), s=2)
        ax.set_xlabel("x (px)")
        return fig

    svg = figure_to_image(busy(), max_svg_bytes=10**8)
    assert len(svg) > SVG_MAX_BYTES and svg.startswith(b"<?xml")  # every point a path
    assert figure_to_image(busy()).startswith(PNG_SIGNATURE)
    png = figure_to_image(busy(), alt="scatter of 3 000 points", max_svg_bytes=40_000)
    assert png.startswith(PNG_SIGNATURE)
    image = read_image(png)
    assert image is not None and image.mime == "image/png"
    assert image.alt == "scatter of 3 000 points"
    with Image.open(io.BytesIO(png)) as im:
        assert abs(im.width - 2 * image.width) <= 1 and abs(im.height - 2 * image.height) <= 1
    one_x = read_image(figure_to_png(busy(), dpi=BASE_DPI))
    assert one_x is not None and abs(one_x.width - image.width) <= 2  # the same size on screen
    assert read_image(b"GIF89a") is None


def test_describe_figure_counts_images_with_their_rows() -> None:
    fig, axes = new_figure(2, 2)
    for row, name in zip(axes, ("natural", "pgd"), strict=True):
        row[0].set_ylabel(name)
        for j, ax in enumerate(row):
            ax.imshow(np.zeros((4, 4)))
            ax.set_title(f"class {j}")
    assert describe_figure(fig, "Sensitivity maps") == (
        "Sensitivity maps. 4 images in rows natural, pgd; panels class 0, class 1."
    )
    close_figure(fig)


@pytest.mark.parametrize(
    ("values", "flat"),
    [
        ({"a": [0, 0, 0], "b": [0, 0, 0]}, "every plotted value is 0"),
        ({"a": [np.nan, np.nan], "b": [np.nan, np.nan]}, "every plotted value is undefined (NaN)"),
        ({"a": [0.5, 0.5, np.nan], "b": [0.5, np.nan, 0.5]}, "every plotted value is 0.5"),
        ({"a": [0, 0, 0], "b": [0, 0, 1e-9]}, None),
        ({"a": [1, 1], "b": [2, 2]}, None),  # flat, but the models differ
    ],
)
def test_flat_series(values: dict[str, list[float]], flat: str | None) -> None:
    fig = _lines(values)
    assert flat_series(fig) == flat
    close_figure(fig)


def test_flat_series_ignores_reference_lines_and_spares_other_charts() -> None:
    fig = _lines({"a": [0.2, 0.4], "b": [0.1, 0.3]})
    fig.axes[0].axhline(0.1, color="grey")  # chance: a reference, not data
    assert flat_series(fig) is None
    close_figure(fig)
    fig = _lines({"a": [0, 0], "b": [0, 0]})
    fig.axes[0].axhline(0.1)
    assert flat_series(fig) == "every plotted value is 0"
    close_figure(fig)
    fig, ax = new_figure()
    ax.axhline(0.1)
    ax.scatter([0, 1], [0.3, 0.7])  # the data are points
    assert flat_series(fig) is None
    close_figure(fig)
    fig, ax = new_figure()
    ax.bar(["a", "b"], [2.0, 2.0])
    assert flat_series(fig) == "every plotted value is 2"
    close_figure(fig)


def test_shared_colors_give_one_colour_per_model_in_every_figure() -> None:
    names = ["natural", "pgd-0.05", "pgd-0.1", "pgd-0.2", "natural-2", "data"]
    study = model_colors(names, ["natural", "natural-2"], eps={"pgd-0.05": 0.05, "pgd-0.1": 0.1})
    alone = model_colors(["natural", "pgd-0.2"], ["natural"])
    with shared_colors(study):
        subset = model_colors(["pgd-0.2", "natural"], ["natural"])
        assert subset == {"pgd-0.2": study["pgd-0.2"], "natural": study["natural"]}
        assert subset != alone  # outside the study's palette pgd-0.2 would be mid-map
        other = model_colors(["elsewhere"], [])  # a name the study lacks: its own palette
        assert other == model_colors(["elsewhere"], [])
    assert model_colors(["natural", "pgd-0.2"], ["natural"]) == alone
    assert len(set(study.values())) == len(names)


# The quickstart's models: natural ones (greys), robust ones along ε, and the models trained on
# constructed sets (not natural, ε 0). Figures show the first five together, and paper 001's
# lenses natural-2 with the slightly robust L2 sources.
QUICKSTART_NATURAL = ["natural", "natural-2", "victim-mlp", "victim-lenet"]
QUICKSTART_EPS = {
    "linf-0.05": 0.05, "linf-0.1": 0.1, "linf-0.2": 0.2, "l2-1.5": 1.5,
    "l2-slight-0.0158": 0.0158, "l2-slight-0.0632": 0.0632, "l2-slight-0.253": 0.253,
    "zero-robust": 0.0, "negative-robust": 0.0, "robust-data": 0.0,
}  # fmt: skip
SHOWN_TOGETHER = [
    ["natural", "linf-0.05", "linf-0.1", "linf-0.2", "l2-1.5"],
    ["natural-2", "l2-slight-0.0158", "l2-slight-0.0632", "l2-slight-0.253"],
]
# Machado, Oliveira & Fernandes (2009): full deuteranopia, on linear RGB.
DEUTERANOPIA = np.array(
    [
        [0.367322, 0.860646, -0.227968],
        [0.280085, 0.672501, 0.047413],
        [-0.011820, 0.042940, 0.968881],
    ]
)


def _linear(rgb: np.ndarray) -> np.ndarray:
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def _lab(linear: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of linear sRGB."""
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    t = xyz @ linear / np.array([0.95047, 1.0, 1.08883])
    f = np.where(t > 216 / 24389, np.cbrt(t), (24389 / 27 * t + 16) / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _min_delta_e(colors: list[str], vision: np.ndarray | None = None) -> float:
    from matplotlib.colors import to_rgb

    labs = []
    for c in colors:
        lin = _linear(np.array(to_rgb(c)))
        labs.append(_lab(np.clip(vision @ lin, 0, 1) if vision is not None else lin))
    return min(np.linalg.norm(a - b) for i, a in enumerate(labs) for b in labs[i + 1 :])


def test_the_study_palette_stays_apart_also_for_a_deuteranope() -> None:
    """ΔE ≥ 15 between any two models a figure shows together, and ≥ 8 over all fourteen
    (about where two line colours are told apart at a glance, and still can be side by side),
    in normal vision and with a simulated deuteranopia, the commonest colour-vision deficiency."""
    names = QUICKSTART_NATURAL + list(QUICKSTART_EPS)
    colors = model_colors(names, QUICKSTART_NATURAL, eps=QUICKSTART_EPS)
    for group in SHOWN_TOGETHER:
        shown = [colors[n] for n in group]
        assert _min_delta_e(shown) >= 15 and _min_delta_e(shown, DEUTERANOPIA) >= 15, group
    every = list(colors.values())
    assert _min_delta_e(every) >= 8 and _min_delta_e(every, DEUTERANOPIA) >= 8
    white = _lab(np.ones(3))
    for c in every:  # none vanishes on the white page
        assert np.linalg.norm(_lab(_linear(np.array(matplotlib.colors.to_rgb(c)))) - white) >= 20


def test_describe_figure_sums_up_small_multiples() -> None:
    fig, axes = new_figure(2, 2)
    for i, ax in enumerate(axes.flat):
        ax.scatter([0, 1], [1, 0])
        ax.set_title(f"model {i}")
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
    assert describe_figure(fig, "Features") == (
        "Features. 4 panels (model 0; model 1; model 2; model 3): PC 2 against PC 1."
    )
    close_figure(fig)
