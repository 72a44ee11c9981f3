"""What channels respond to, and the first-layer filters (Itazuri et al. 2019, Eq. 10,
Fig. 3–4).

For each model and tap, chosen channels are visualised by activation maximisation with
Lucid's recipe (:mod:`robustlens.analysis.featviz`), seeded, on the data set's image size and
colour statistics. Because pictures alone do not compare, each visualisation also gets the
centroid of its radial power spectrum (a fraction of Nyquist: smaller means larger-scale
patterns), so robust and natural models can be set side by side per tap. The first-layer
filters of every model are drawn as a grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from robustlens.analysis.featviz import color_sqrt, spectral_centroid, visualize_channels
from robustlens.data.imageset import ImageSet
from robustlens.lenses.base import LensContext, LensResult, LensSpec, StudyModel, register_lens
from robustlens.lenses.common import convolutional_taps, tap_shapes
from robustlens.lenses.output import palette, tidy
from robustlens.lenses.parameters import LensParams, rule
from robustlens.models.anatomy import _resolve
from robustlens.models.convs import conv_layers
from robustlens.papers import ITAZURI
from robustlens.params import Interval
from robustlens.plotting import draw_filter_strip, new_figure


@dataclass(frozen=True)
class FeatvizParams(LensParams):
    taps: tuple[str, ...] | None = None
    """Taps to visualise (the model's convolutional taps when None)."""
    channels: int = field(default=8, metadata=rule(Interval(int, 1, None)))
    """The first ``channels`` channels of each tap."""
    steps: int = field(default=512, metadata=rule(Interval(int, 1, None)))
    lr: float = field(default=0.05, metadata=rule(Interval(float, 0, None, closed="right")))


def chosen_taps(model: StudyModel, params: FeatvizParams) -> tuple[dict[str, tuple], list[str]]:
    """(tap → output shape for the taps to visualise, the model's taps left out). By default
    the convolutional taps among the model's own (Itazuri et al. visualise channels of
    convolutional layers); taps the user names may also be fully connected (a unit each)."""
    net = model.model
    if params.taps is not None:
        _named(net, params.taps)  # unknown names: one ConfigError listing the model's taps
        return tap_shapes(net, params.taps), []
    shapes = tap_shapes(net)
    maps, vectors = convolutional_taps(net)
    return {t: shapes[t] for t in maps}, vectors


def applies(model: StudyModel, params: FeatvizParams) -> str | None:
    """Why the lens cannot run on ``model`` (no convolutional taps by default), or None."""
    if params.taps is not None:
        return None
    maps, vectors = convolutional_taps(model.model)
    if not maps:
        return (
            f"no convolutional taps: the taps of {model.name} ({', '.join(vectors) or 'none'}) "
            "output vectors; name fully connected taps (taps = [...]) to visualise their units"
        )
    return None


def compute(
    model: StudyModel, data: ImageSet, params: FeatvizParams, ctx: LensContext
) -> LensResult:
    net = model.model
    shapes, left_out = chosen_taps(model, params)
    modules = _named(net, tuple(shapes))
    colors = color_sqrt(data.images)
    rows, arrays = [], {}
    counts = {tap: min(params.channels, shape[0]) for tap, shape in shapes.items()}
    targets = [(modules[tap], c) for tap in shapes for c in range(counts[tap])]
    images = visualize_channels(
        net,
        targets,
        tuple(data.images.shape[1:]),
        colors,
        steps=params.steps,
        lr=params.lr,
        seed=ctx.seed,
    )
    start = 0
    for i, tap in enumerate(shapes):
        part = images[start : start + counts[tap]]
        start += counts[tap]
        centroid = spectral_centroid(part)
        arrays[f"images/{tap}"] = part.numpy()
        arrays[f"centroid/{tap}"] = centroid
        rows.append(
            {
                "model": model.name,
                "layer": tap,
                "setting": f"{params.channels} channels, {params.steps} steps",
                "metric": "spectral_centroid",
                "value": float(np.nanmean(centroid)),
                "depth": i,
            }
        )
    notes = [f"{model.name}: channels of {', '.join(shapes)}"]
    if left_out:
        notes.append(
            f"{model.name}: left out {', '.join(left_out)}: fully connected (no feature maps)"
        )
    short = [tap for tap in shapes if counts[tap] < params.channels]
    if short:
        notes.append(
            f"{model.name}: {', '.join(short)} {'has' if len(short) == 1 else 'have'} fewer "
            f"than {params.channels} channels; all of them are shown"
        )
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    if convs:
        arrays["first_layer"] = conv_layers(net)[0].weight.astype(np.float32)
    else:
        notes.append(f"{model.name}: no convolutions, so no first-layer filters to draw")
    return LensResult(tables={"featviz": tidy(rows)}, arrays=arrays, notes=notes)


def _named(net, names: tuple[str, ...]) -> dict:
    return _resolve(net, names)


def plot(tables, models: list[StudyModel], params: FeatvizParams, arrays=None) -> dict:
    frame = tables["featviz"]
    figures = {}
    colors = palette(models)
    taps = list(dict.fromkeys(frame.layer))
    fig, ax = new_figure(1, 1, figsize=(5.5, 3.4))
    for m in models:
        part = frame[frame.model == m.name].sort_values("depth")
        ax.plot(part.layer, part.value, marker="o", color=colors[m.name], label=m.label())
    ax.set_ylabel("spectral centroid (fraction of Nyquist)")
    ax.set_xlabel("tap")
    ax.legend(fontsize="x-small")
    figures["Spatial scale of channel visualisations: lower = larger patterns"] = fig
    if arrays is None:
        return figures
    for tap in taps:
        fig, axes = new_figure(
            len(models), params.channels, figsize=(1.2 * params.channels, 1.3 * len(models))
        )
        axes = np.atleast_2d(axes).reshape(len(models), params.channels)
        for row, m in zip(axes, models, strict=True):
            images = arrays(m.name, f"images/{tap}")
            for j, ax in enumerate(row):
                if images is not None and j < len(images):
                    im = images[j]
                    grey = im.shape[0] == 1
                    shown = im[0] if grey else im.transpose(1, 2, 0)
                    ax.imshow(shown, cmap="gray" if grey else None, vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
            row[0].set_ylabel(m.name, fontsize="xx-small")
        figures[f"Channel visualisations at {tap} (Eq. 10, Fig. 3)"] = fig
    fig, axes = new_figure(len(models), 1, figsize=(12, 1.1 * len(models) + 0.5))
    for ax, m in zip(np.atleast_1d(axes), models, strict=True):
        w = arrays(m.name, "first_layer")
        ax.set_axis_off()
        if w is None:
            continue
        draw_filter_strip(ax, w)
        ax.set_title(f"{m.label()}: {len(w)} first-layer filters", fontsize="x-small")
    figures["First-layer filters of every model (Fig. 4)"] = fig
    return figures


SPEC = register_lens(
    LensSpec(
        name="featviz",
        title="Channel visualisations and first-layer filters",
        paper=ITAZURI.label,
        section="Eq. 10, Fig. 3–4",
        description=(
            "Activation maximisation of the first channels of every tap with Lucid's recipe "
            "(1/f Fourier parameterisation, the data set's colour decorrelation, sigmoid, "
            "jitter/scale/rotate sized to the image, Adam 0.05, 512 steps), seeded; the "
            "spectral centroid of each visualisation as a number for its spatial scale; the "
            "first-layer filters of every model."
        ),
        params=FeatvizParams,
        compute=compute,
        plot=plot,
        applies=applies,
        anatomy=(
            "Visualises the first channels of the model's convolutional taps (fewer where a tap "
            "has fewer); fully connected taps are used only when named in `taps` (a unit each). "
            "The transformed image is cropped back to the model's input size, so models without "
            "global pooling (LeNet, MLP, VGG) work. Not applicable to a model without "
            "convolutional taps unless `taps` names some."
        ),
    )
)
