"""Matplotlib helpers for report figures: export through Agg (SVG when small, else PNG at 2×),
text alternatives read from a figure, flat-figure detection and one shared model palette.

Nothing here selects a GUI backend. :func:`new_figure` builds figures without pyplot at all;
figures made with pyplot elsewhere are still rendered with Agg by :func:`figure_to_png` and then
closed, so a long study does not accumulate open figures.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import math
import re
import sys
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from robustlens.errors import ConfigError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BASE_DPI = 110
"""Pixels per inch a figure is shown at in the report (CSS pixels): a 4.8-inch figure is 528 px
wide on screen, whether it is an SVG or a PNG drawn at 2 × BASE_DPI and shown at half size."""
SVG_MAX_BYTES = 120_000
"""A figure is embedded as SVG when its SVG is at most this many bytes, else as a PNG at 2×.
Line and bar charts of a study come to 10–60 kB as SVG; figures of thousands of points or of
many large images come to several hundred kB (every point a path, every image a PNG inside),
where a PNG of the whole figure is smaller."""

# Natural models: black first, then greys, so they read as the neutral baseline.
NATURAL_COLORS: tuple[str, ...] = ("#222222", "#7f7f7f", "#4d4d4d", "#a6a6a6")
# Robust models: a sequential colormap, increasing training ε = further along it. The ends are
# trimmed so no robust colour is confused with the natural black or vanishes on white. Inferno
# rather than plasma: its lightness climbs further, so robust colours stay apart from each
# other and from the greys also for a deuteranope (tests/test_plotting.py measures CIELAB ΔE
# with and without a simulated deuteranopia on the quickstart's fourteen models).
ROBUST_CMAP = "inferno"
ROBUST_RANGE = (0.10, 0.85)


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
    _check_figure(fig)
    if not (isinstance(dpi, int | float) and math.isfinite(dpi) and dpi > 0):
        raise ConfigError(f"figure dpi must be a positive number, got {dpi!r}")
    try:
        return _png_bytes(fig, dpi, {"Software": None})
    finally:
        close_figure(fig)


def _check_figure(fig: Any) -> None:
    # heavy: matplotlib, as in new_figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        raise TypeError(f"a report figure must be a matplotlib Figure, got {type(fig).__name__}")
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)


def _png_bytes(fig: Figure, dpi: float, metadata: dict[str, str | None]) -> bytes:
    buf = io.BytesIO()
    fig.savefig(
        buf,
        format="png",
        dpi=dpi,
        facecolor="white",
        bbox_inches="tight",
        pad_inches=0.05,
        metadata=metadata,
    )
    return buf.getvalue()


def _png_chunks(data: bytes) -> dict[bytes, Any]:
    """The PNG's pHYs chunk and its tEXt chunks (a list), read by their lengths."""
    out: dict[bytes, Any] = {b"tEXt": []}
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"tEXt":
            out[b"tEXt"].append(body)
        elif kind == b"zTXt":
            key, _, rest = body.partition(b"\0")
            with contextlib.suppress(zlib.error, IndexError):
                out[b"tEXt"].append(key + b"\0" + zlib.decompress(rest[1:]))
        elif kind == b"iTXt":  # keyword, 0, compressed?, method, language, 0, keyword, 0, text
            key, _, rest = body.partition(b"\0")
            text = rest[2:].split(b"\0", 2)[-1]
            with contextlib.suppress(zlib.error):
                text = zlib.decompress(text) if rest[:1] == b"\1" else text
                out[b"tEXt"].append(key + b"\0" + text)
        elif kind == b"pHYs":
            out[b"pHYs"] = body
        elif kind == b"IEND":
            break
        pos += 12 + length
    return out


def _png_text(chunks: list[bytes], key: bytes) -> str:
    for body in chunks:
        name, _, value = body.partition(b"\0")
        if name == key:
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                return value.decode("latin-1")
    return ""


_SVG_UNITS = {"pt": 1.0, "px": 72 / 96, "in": 72.0, "": 72 / 96}


def _svg_length(tag: str, attribute: str) -> int | None:
    """An ``<svg>`` width or height as CSS pixels at :data:`BASE_DPI` (points × BASE_DPI / 72)."""
    found = re.search(rf'\s{attribute}="([0-9.]+)(pt|px|in|)"', tag)
    if not found:
        return None
    points = float(found.group(1)) * _SVG_UNITS[found.group(2)]
    return max(1, round(points * BASE_DPI / 72))


def _xml_unescape(text: str) -> str:
    for entity, char in (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'")):
        text = text.replace(entity, char)
    return text.replace("&amp;", "&")


@dataclass(frozen=True)
class FigureImage:
    """A figure as the report embeds it: its bytes, their MIME type, the size it is shown at
    (CSS pixels) and its text alternative."""

    data: bytes
    mime: str
    width: int
    height: int
    alt: str


def figure_to_image(fig: Figure, *, alt: str = "", max_svg_bytes: int = SVG_MAX_BYTES) -> bytes:
    """Render ``fig`` for the report, then close it: SVG when that is at most ``max_svg_bytes``
    (vector, sharp at any zoom and in print), else PNG at 2 × :data:`BASE_DPI` (sharp on
    high-density screens; the report shows it at half its pixel size).

    ``alt`` (default: :func:`describe_figure`) is stored in the image's own metadata (SVG
    ``dc:description``, PNG ``Description``) so that it travels with the bytes, and the SVG
    carries no date and the same element ids on every run: the same figure gives the same bytes.
    The SVG's text is text (``svg.fonttype = "none"``): searchable, copied and printed as words,
    and the file under half the size of one drawing every glyph as a path; a reader without
    DejaVu Sans sees the next sans-serif font of matplotlib's list.
    """
    from matplotlib import rc_context

    _check_figure(fig)
    text = alt or describe_figure(fig)
    try:
        buf = io.BytesIO()
        with rc_context({"svg.hashsalt": "robustlens", "svg.fonttype": "none"}):
            fig.savefig(
                buf,
                format="svg",
                facecolor="white",
                bbox_inches="tight",
                pad_inches=0.05,
                metadata={"Date": None, "Creator": None, "Description": text},
            )
        svg = buf.getvalue()
        if len(svg) <= max_svg_bytes:
            return svg
        png = _png_bytes(fig, 2 * BASE_DPI, {"Software": None, "Description": text})
        return _palette_png(png, text)
    finally:
        close_figure(fig)


def _palette_png(png: bytes, alt: str) -> bytes:
    """``png`` with at most 256 colours (median cut, no dithering), about a third of the bytes:
    lossless for a figure of fewer colours, and close for the rest (matplotlib's colormaps
    have 256 levels; what is lost is mostly anti-aliasing shades). Keeps the resolution and
    the alt text."""
    from PIL import Image, PngImagePlugin

    with Image.open(io.BytesIO(png)) as im:
        dpi = im.info.get("dpi")
        rgb = im.convert("RGB")
    small = rgb.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    info = PngImagePlugin.PngInfo()
    info.add_itxt("Description", alt)
    buf = io.BytesIO()
    small.save(buf, format="png", optimize=True, pnginfo=info, dpi=dpi or (2 * BASE_DPI,) * 2)
    return buf.getvalue() if buf.tell() < len(png) else png


def read_image(data: bytes) -> FigureImage | None:
    """The MIME type, display size and text alternative of bytes made by
    :func:`figure_to_image` or :func:`figure_to_png`; None when they are neither PNG nor SVG."""
    data = bytes(data)
    if data.startswith(PNG_SIGNATURE) and len(data) >= 24:
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        chunks = _png_chunks(data)
        scale = 1.0
        phys = chunks.get(b"pHYs")
        if phys is not None and len(phys) >= 9 and phys[8] == 1:  # unit: pixels per metre
            dpi = int.from_bytes(phys[:4], "big") * 0.0254
            scale = BASE_DPI / dpi if dpi > 1.5 * BASE_DPI else 1.0
        alt = _png_text(chunks.get(b"tEXt", []), b"Description")
        return FigureImage(
            data, "image/png", max(1, round(width * scale)), max(1, round(height * scale)), alt
        )
    head = data[:4096].lstrip()
    if head.startswith((b"<?xml", b"<svg", b"<!DOCTYPE svg")) and b"<svg" in head:
        text = data.decode("utf-8", errors="replace")
        svg = re.search(r"<svg\b[^>]*>", text)
        width = _svg_length(svg.group(0), "width") if svg else None
        height = _svg_length(svg.group(0), "height") if svg else None
        if width is None or height is None:
            return None
        desc = re.search(r"<dc:description>(.*?)</dc:description>", text, re.S)
        alt = _xml_unescape(desc.group(1)) if desc else ""
        return FigureImage(data, "image/svg+xml", width, height, alt)
    return None


def describe_figure(fig: Figure, title: str = "") -> str:
    """A text alternative for ``fig`` from what it shows: ``title``, then per chart panel its
    title, what is plotted against what (axis labels) and for which series (legend entries);
    image panels counted, with their titles and row labels (e.g. the models)."""
    parts = [title.rstrip(".") + "."] if title else []
    suptitle = fig.get_suptitle()
    if suptitle:
        parts.append(suptitle.rstrip(".") + ".")
    panels = [ax for ax in fig.get_axes() if ax.get_visible() and ax.get_label() != "<colorbar>"]
    image_panels = [ax for ax in panels if ax.get_images() and not ax.get_lines()]
    charts: list[tuple[str, str]] = []  # (panel title, what it plots)
    for ax in panels:
        if ax in image_panels or not (ax.lines or ax.patches or ax.collections):
            continue
        bits = []
        y, x = ax.get_ylabel(), ax.get_xlabel()
        if y or x:
            bits.append(f"{y} against {x}" if y and x else y or x)
        legend = ax.get_legend()
        labels = [t.get_text() for t in legend.get_texts()] if legend is not None else []
        if any(labels):
            bits.append("for " + ", ".join(t for t in labels if t))
        name = ax.get_title().replace("\n", " ")
        charts.append(("" if name.strip() == title.strip() else name, " ".join(bits)))
    if len(charts) > 2 and len({what for _, what in charts}) == 1:  # small multiples
        names = [name for name, _ in charts if name]
        shown = "; ".join(names[:6]) + ("; …" if len(names) > 6 else "")
        listed = f" ({shown})" if names else ""
        parts.append(f"{len(charts)} panels{listed}: {charts[0][1]}.")
    else:
        for name, what in charts:
            if what:
                parts.append((f"{name}: " if name else "") + what + ".")
            elif name:
                parts.append(name.rstrip(".") + ".")
    if image_panels:
        n = sum(len(ax.get_images()) for ax in image_panels)
        text = f"{n} image{'s' if n != 1 else ''}"
        rows = list(dict.fromkeys(ax.get_ylabel() for ax in image_panels if ax.get_ylabel()))
        names = list(dict.fromkeys(ax.get_title() for ax in image_panels if ax.get_title()))
        if rows:
            text += " in rows " + ", ".join(r.replace("\n", " ") for r in rows)
        if names:
            text += "; panels " + ", ".join(names[:8]) + (", …" if len(names) > 8 else "")
        parts.append(text + ".")
    return " ".join(" ".join(parts).split()) or "A figure of the study's results."


def flat_series(fig: Figure) -> str | None:
    """Why ``fig`` shows nothing when every value it plots (the lines' and bars' y values over
    all panels) is one and the same number or undefined, e.g. "every plotted value is 0";
    None for a figure that shows a difference, or that draws no lines or bars at all."""
    from matplotlib.collections import PolyCollection
    from matplotlib.container import BarContainer

    values: list[np.ndarray] = []
    for ax in fig.get_axes():
        if ax.get_images() or any(not isinstance(c, PolyCollection) for c in ax.collections):
            return None  # images or points (scatter): not a chart of lines and bars alone
        for line in ax.get_lines():
            if line.get_transform() == ax.transData:  # not a reference line (axhline …)
                values.append(np.asarray(line.get_ydata(), dtype=np.float64).ravel())
        for container in ax.containers:
            if isinstance(container, BarContainer):
                values.append(np.array([p.get_height() for p in container.patches], float))
    if not values:
        return None
    every = np.concatenate(values)
    finite = every[np.isfinite(every)]
    if finite.size == 0:
        return "every plotted value is undefined (NaN)"
    if np.all(finite == finite[0]):
        return f"every plotted value is {finite[0]:g}"
    return None


def close_figure(fig: Figure) -> None:
    """Release ``fig``: unregister it from pyplot (when pyplot made it) and clear it."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(fig)
    fig.clear()


_SHARED_COLORS: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "robustlens_shared_colors", default=None
)


@contextlib.contextmanager
def shared_colors(colors: Mapping[str, str]) -> Iterator[None]:
    """Within the block, :func:`model_colors` gives every model named in ``colors`` that
    colour, whatever subset of models a figure shows: one colour per model across every figure
    of a report (the report builder wraps all lenses' figures in the study's palette)."""
    token = _SHARED_COLORS.set(dict(colors))
    try:
        yield
    finally:
        _SHARED_COLORS.reset(token)


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
    of ``names``. Returns hex colours keyed by name. Inside :func:`shared_colors`, the shared
    colours of the names given.
    """
    shared = _SHARED_COLORS.get()
    if shared is not None and all(n in shared for n in names):
        return {n: shared[n] for n in names}
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
