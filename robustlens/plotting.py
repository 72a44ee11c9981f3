"""Matplotlib helpers for report figures: PNG export through Agg and one shared model palette.

Nothing here selects a GUI backend. :func:`new_figure` builds figures without pyplot at all;
figures made with pyplot elsewhere are still rendered with Agg by :func:`figure_to_png` and then
closed, so a long study does not accumulate open figures.
"""

from __future__ import annotations

import io
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from robustlens.errors import ConfigError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Natural models: black first, then greys, so they read as the neutral baseline.
NATURAL_COLORS: tuple[str, ...] = ("#222222", "#7f7f7f", "#4d4d4d", "#a6a6a6")
# Robust models: a sequential colormap, increasing training ε = further along it. The ends are
# trimmed so no robust colour is confused with the natural black or vanishes on white.
ROBUST_CMAP = "plasma"
ROBUST_RANGE = (0.12, 0.78)


def new_figure(
    nrows: int = 1,
    ncols: int = 1,
    *,
    figsize: tuple[float, float] | None = None,
    **subplot_kw: Any,
) -> tuple[Figure, Any]:
    """A figure and its axes (as ``plt.subplots`` returns them) on an Agg canvas, without pyplot."""
    # heavy: matplotlib loads only when a figure is drawn (this module is imported by every lens)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if figsize is None:
        figsize = (4.8 * ncols, 3.4 * nrows)
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=True, **subplot_kw)
    return fig, axes


def figure_to_png(fig: Figure, dpi: int = 110) -> bytes:
    """Render ``fig`` to PNG bytes with the Agg backend, then close it.

    The image is cropped to what the figure draws (``bbox_inches="tight"``), so axis labels
    outside a figure made without a layout engine are not cut off. The PNG carries no
    software-version metadata: the same figure gives the same bytes whatever the matplotlib.
    """
    # heavy: matplotlib, as in new_figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        raise TypeError(f"figure_to_png needs a matplotlib Figure, got {type(fig).__name__}")
    if not (isinstance(dpi, int | float) and math.isfinite(dpi) and dpi > 0):
        raise ConfigError(f"figure dpi must be a positive number, got {dpi!r}")
    try:
        if not isinstance(fig.canvas, FigureCanvasAgg):
            FigureCanvasAgg(fig)
        buf = io.BytesIO()
        fig.savefig(
            buf,
            format="png",
            dpi=dpi,
            facecolor="white",
            bbox_inches="tight",
            pad_inches=0.05,
            metadata={"Software": None},
        )
        return buf.getvalue()
    finally:
        close_figure(fig)


def close_figure(fig: Figure) -> None:
    """Release ``fig``: unregister it from pyplot (when pyplot made it) and clear it."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(fig)
    fig.clear()


def model_colors(
    names: Sequence[str],
    natural_names: Iterable[str],
    *,
    eps: Mapping[str, float] | None = None,
) -> dict[str, str]:
    """One colour per model name, the same in every figure of a study.

    Natural models get black and greys (in the order given); robust models (every name not in
    ``natural_names``) get colours along a sequential colormap, ordered by their training ε
    from ``eps`` when given (ties and missing ε keep the order of ``names``), else in the order
    of ``names``. Returns hex colours keyed by name.
    """
    # heavy: matplotlib, as in new_figure
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    natural = set(natural_names)
    unique = list(dict.fromkeys(names))
    nat = [n for n in unique if n in natural]
    rob = [n for n in unique if n not in natural]
    if eps is not None:
        order = {n: i for i, n in enumerate(rob)}
        rob.sort(key=lambda n: (_eps_key(eps.get(n)), order[n]))

    colors: dict[str, str] = {}
    for i, name in enumerate(nat):
        colors[name] = NATURAL_COLORS[i % len(NATURAL_COLORS)]
    cmap = colormaps[ROBUST_CMAP]
    lo, hi = ROBUST_RANGE
    for i, name in enumerate(rob):
        t = (lo + hi) / 2 if len(rob) == 1 else lo + (hi - lo) * i / (len(rob) - 1)
        colors[name] = to_hex(cmap(t))
    return colors


def model_linestyles(names: Sequence[str], natural_names: Iterable[str]) -> dict[str, str]:
    """Dashed lines for natural models, solid for robust ones (readable in greyscale prints)."""
    natural = set(natural_names)
    return {n: ("--" if n in natural else "-") for n in names}


def draw_filter_strip(ax: Axes, weights: Any) -> None:
    """Convolution filters [C_out, C_in, k, k] side by side with a one-pixel gap: RGB filters
    (C_in = 3) as colours scaled by the largest |w|, others as the mean over input channels
    on a diverging map centred on 0."""
    w = np.asarray(weights, dtype=np.float64)
    colour = w.shape[1] == 3
    tiles = w.transpose(0, 2, 3, 1) if colour else w.mean(axis=1)
    lim = float(np.abs(tiles).max()) or 1.0
    pad = [(0, 0), (0, 1)] + [(0, 0)] * (tiles.ndim - 3)
    strip = np.concatenate([np.pad(t, pad, constant_values=np.nan) for t in tiles], axis=1)
    if colour:
        ax.imshow(np.nan_to_num((strip / lim + 1) / 2, nan=1.0).clip(0, 1))
    else:
        ax.imshow(strip, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_axis_off()


def style_axes(ax: Axes, *, title: str = "", xlabel: str = "", ylabel: str = "") -> None:
    """The house style of report axes: light grid behind the data, no top/right spines."""
    if title:
        ax.set_title(title, fontsize=10)
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.grid(True, color="#e3e3e3", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _eps_key(value: float | None) -> float:
    if value is None:
        return math.inf
    try:
        v = float(value)
    except (TypeError, ValueError):
        return math.inf
    return v if math.isfinite(v) else math.inf


def draw_annotated_grid(
    ax: Axes,
    grid: Any,
    rows: Sequence[str],
    cols: Sequence[str],
    *,
    marks: Any = None,
    mark: str = "",
    cmap: str = "viridis",
) -> Any:
    """A heatmap of fractions in [0, 1] with each cell written as a percentage (``mark``
    appended where ``marks`` is true); NaN cells stay blank. Returns the image."""
    image = ax.imshow(grid, cmap=cmap, vmin=0, vmax=1, aspect="auto")
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            if np.isfinite(grid[i, j]):
                extra = mark if marks is not None and marks[i, j] else ""
                colour = "black" if grid[i, j] > 0.6 else "white"
                ax.text(j, i, f"{100 * grid[i, j]:.0f}{extra}", ha="center", va="center",
                        color=colour, fontsize="small")  # fmt: skip
    ax.set_yticks(range(len(rows)), list(rows), fontsize="small")
    ax.set_xticks(range(len(cols)), list(cols), rotation=30, ha="right", fontsize="small")
    return image
