"""Colour bias (Carletti et al. 2022, §3.4, §4.4, Tables 3–5, Fig. 4, 8; App. B, Fig. 12).

Accuracy on pixel-averaged images (each image replaced by its mean colour) against chance;
the accuracy drop under coloured contours (white, red, green, blue; their grey levels on
one-channel data) by thickness, as mean ± std over colours; and the drop on the tiled grid
(the image repeated 2 × 2 at full size). Models that only accept their own input size see the
grid resized to it, and the lens notes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from robustlens.data.imageset import ImageSet
from robustlens.data.info import DatasetInfo
from robustlens.data.probes import CONTOUR_COLORS, colored_contour, pixel_average, resize, tile_grid
from robustlens.errors import ConfigError
from robustlens.lenses.base import LensContext, LensResult, LensSpec, StudyModel, register_lens
from robustlens.lenses.output import interval_columns, palette, tidy
from robustlens.lenses.parameters import LensParams, rule
from robustlens.papers import CARLETTI
from robustlens.params import Interval, ListOf, Options
from robustlens.plotting import new_figure

# Names of the per-image correctness arrays the claims read.
CLEAN, PIXEL_AVERAGE, GRID = "clean", "pixel_average", "grid"
"""[N] correct on the clean, the pixel-averaged and the grid-tiled images."""
CONTOUR = "contour"
"""[colours, thicknesses, N] correct with a coloured contour."""

PAPER_THICKNESS_224 = (1, 5, 10, 15, 20)
PAPER_THICKNESS_32 = (1, 2, 3, 4)


@dataclass(frozen=True)
class ColorParams(LensParams):
    thicknesses: tuple[int, ...] = field(
        default=PAPER_THICKNESS_32, metadata=rule(ListOf(Interval(int, 1, None), min_len=1))
    )
    colors: tuple[str, ...] = field(
        default=tuple(CONTOUR_COLORS),
        metadata=rule(ListOf(Options(tuple(CONTOUR_COLORS)), min_len=1)),
    )
    grid_copies: int = field(default=2, metadata=rule(Interval(int, 2, None)))
    batch_size: int = field(default=250, metadata=rule(Interval(int, 1, None)))


def default_thicknesses(side: int) -> tuple[int, ...]:
    """The paper's thicknesses for images whose shorter side is ``side`` pixels: 1–4 px at
    28–32 px, 1/5/10/15/20 px at 224 px; in between, the 224-px values scaled (at least 1 px,
    distinct); always only those that fit (2·t ≤ side)."""
    if side <= 64:
        candidates = PAPER_THICKNESS_32
    else:
        candidates = tuple(sorted({max(1, round(t * side / 224)) for t in PAPER_THICKNESS_224}))
    return tuple(t for t in candidates if 2 * t <= side) or (1,)


def defaults(info: DatasetInfo) -> dict:
    return {"thicknesses": default_thicknesses(min(info.shape[1:]))}


def _correct(net, images: ImageSet, transform, params: ColorParams, device) -> np.ndarray:
    out = []
    with torch.no_grad():
        for x, y in images.batches(params.batch_size, device=device):
            out.append((net(transform(x)).argmax(1) == y).cpu())
    return torch.cat(out).numpy()


def compute(model: StudyModel, data: ImageSet, params: ColorParams, ctx: LensContext) -> LensResult:
    net = model.model
    h, w = data.images.shape[2:]
    if max(params.thicknesses) * 2 > min(h, w):
        raise ConfigError(
            f"contour thickness {max(params.thicknesses)} does not fit {h}×{w} images"
        )
    arrays: dict[str, np.ndarray] = {}
    rows = []

    def add(setting: str, metric: str, value: float, **extra) -> None:
        rows.append(
            {
                "model": model.name,
                "layer": "input",
                "setting": setting,
                "metric": metric,
                "value": float(value),
                "n": len(data),
                **extra,
            }
        )

    clean = _correct(net, data, lambda x: x, params, ctx.device)
    arrays[CLEAN] = clean
    add("clean", "accuracy", clean.mean(), **interval_columns(clean))
    add("chance", "accuracy", 1.0 / data.info.num_classes)

    averaged = _correct(net, data, pixel_average, params, ctx.device)
    arrays[PIXEL_AVERAGE] = averaged
    add("pixel-average", "accuracy", averaged.mean(), **interval_columns(averaged))

    contour = np.zeros((len(params.colors), len(params.thicknesses), len(data)), dtype=bool)
    for i, color in enumerate(params.colors):
        for j, t in enumerate(params.thicknesses):
            contour[i, j] = _correct(
                net, data, lambda x, c=color, t=t: colored_contour(x, c, t), params, ctx.device
            )
            acc = contour[i, j].mean()
            add(
                f"contour {color} {t}px",
                "accuracy",
                acc,
                color=color,
                thickness=t,
                **interval_columns(contour[i, j]),
            )
            add(f"contour {color} {t}px", "drop", clean.mean() - acc, color=color, thickness=t)
    arrays[CONTOUR] = contour
    drops = clean.mean() - contour.mean(axis=2)  # [colors, thicknesses]
    for j, t in enumerate(params.thicknesses):
        add(f"contour {t}px", "drop_mean", drops[:, j].mean(), thickness=t)
        add(f"contour {t}px", "drop_std", drops[:, j].std(ddof=0), thickness=t)

    notes = []
    k = params.grid_copies
    if getattr(net, "accepts_any_size", True):
        grid_transform = lambda x: tile_grid(x, k)  # noqa: E731
    else:
        notes.append(
            f"{model.name} only accepts {h}×{w} inputs: the {k}×{k} grid was resized to it"
        )
        grid_transform = lambda x: resize(tile_grid(x, k), (h, w))  # noqa: E731
    grid = _correct(net, data, grid_transform, params, ctx.device)
    arrays[GRID] = grid
    add(f"grid {k}x{k}", "accuracy", grid.mean(), **interval_columns(grid))
    add(f"grid {k}x{k}", "drop", clean.mean() - grid.mean())
    return LensResult(tables={"color": tidy(rows)}, arrays=arrays, notes=notes)


def plot(tables, models: list[StudyModel], params: ColorParams, arrays=None) -> dict:
    frame = tables["color"]
    colors = palette(models)
    figures = {}

    fig, ax = new_figure()
    names = [m.name for m in models]
    values = [_value(frame, n, "pixel-average", "accuracy") for n in names]
    ax.bar(range(len(names)), values, color=[colors[n] for n in names])
    chance = _value(frame, names[0], "chance", "accuracy") if names else np.nan
    ax.axhline(chance, color="black", linestyle="--", linewidth=1, label=f"chance ({chance:.2f})")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize="small")
    figures["Accuracy on pixel-averaged images (Tables 3–5)"] = fig

    fig, ax = new_figure()
    offsets = np.linspace(-0.15, 0.15, max(len(models), 1))
    for off, m in zip(offsets, models, strict=False):
        part = frame[(frame.model == m.name) & (frame.metric == "drop_mean")].sort_values(
            "thickness"
        )
        std = frame[(frame.model == m.name) & (frame.metric == "drop_std")].sort_values("thickness")
        ax.errorbar(
            part.thickness + off,
            part.value,
            yerr=std.value.values,
            marker="o",
            capsize=3,
            color=colors[m.name],
            label=m.label(),
        )
    ax.set_xlabel("contour thickness (px)")
    ax.set_ylabel("accuracy drop (mean ± std over colours)")
    ax.legend(fontsize="small")
    figures["Accuracy drop under coloured contours (Fig. 4, 8)"] = fig

    fig, ax = new_figure()
    setting = f"grid {params.grid_copies}x{params.grid_copies}"
    drops = [_value(frame, n, setting, "drop") for n in names]
    ax.bar(range(len(names)), drops, color=[colors[n] for n in names])
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylabel("accuracy drop")
    k = params.grid_copies
    figures[f"Accuracy drop on the image tiled {k}×{k} (App. B, Fig. 12)"] = fig
    return figures


def _value(frame, model: str, setting: str, metric: str) -> float:
    part = frame[(frame.model == model) & (frame.setting == setting) & (frame.metric == metric)]
    return float(part.value.iloc[0]) if len(part) else float("nan")


SPEC = register_lens(
    LensSpec(
        name="color",
        title="Colour bias: pixel-averaged images, coloured contours, tiled grid",
        paper=CARLETTI.label,
        section="§3.4, §4.4, Tables 3–5, Fig. 4, 8; App. B",
        description=(
            "Accuracy on images replaced by their mean colour (against chance), the accuracy "
            "drop under white/red/green/blue frames of growing thickness (grey levels of those "
            "colours on one-channel data), and the drop on the image tiled 2×2 at full size."
        ),
        params=ColorParams,
        compute=compute,
        plot=plot,
        defaults=defaults,
        version=2,  # accuracies carry their 95 % Wilson interval (ci_low, ci_high)
    )
)
