"""Sensitivity maps of robust and natural models on the same images (Itazuri et al. 2019,
§3.4, Fig. 2, App. A, Fig. 8–12).

For every model and method (vanilla gradient, loss gradient, guided backpropagation,
SmoothGrad, integrated gradients; :mod:`robustlens.analysis.saliency`): the maps of the first
few images for the figure grid (images × methods × models), and per image two numbers that
make maps comparable without looking — the share of the map's spectral energy above half the
Nyquist frequency, and the Spearman correlation of its magnitude with the image's edges.
App. A's sanity check re-initialises the layers from the output down and follows how similar
each method's maps stay (Spearman of magnitudes, SSIM); a method whose maps keep a rank
correlation of at least ``unchanged_threshold`` with everything randomised is flagged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from robustlens.analysis.saliency import (
    METHODS,
    attribute,
    cascading_randomization,
    check_guided_backprop,
    edge_alignment,
    high_frequency_fraction,
)
from robustlens.data.imageset import ImageSet
from robustlens.lenses.base import LensContext, LensResult, LensSpec, StudyModel, register_lens
from robustlens.lenses.common import subset
from robustlens.lenses.output import palette, tidy
from robustlens.lenses.parameters import LensParams, rule
from robustlens.papers import ITAZURI
from robustlens.params import Interval, ListOf, Options
from robustlens.plotting import new_figure

# Names of the arrays the claims read.
SANITY_THRESHOLD = "sanity/threshold"
"""[1] the Spearman ρ below which a randomised model's maps count as changed."""


def high_frequency_name(method: str) -> str:
    """[N] share of ``method``'s map energy above the cut-off frequency."""
    return f"high_frequency/{method}"


def high_frequency_methods(names: list[str]) -> list[str]:
    """The methods with a :func:`high_frequency_name` among ``names``, in their order."""
    stem = high_frequency_name("")
    return [n[len(stem) :] for n in names if n.startswith(stem) and "/" not in n[len(stem) :]]


def sanity_name(method: str) -> str:
    """[layers, N] Spearman ρ of ``method``'s maps after randomising each layer in turn."""
    return f"sanity/{method}/spearman"


@dataclass(frozen=True)
class SaliencyParams(LensParams):
    """``integrated`` follows App. A Eq. 17, the path integral of the gradient from the zero
    baseline x′, ∫₀¹ ∇ₓ f_t(x′ + α(x − x′)) dα, without the (x − x′) factor (App. A.1 omits
    the product with the input for every method); ``ig_multiply_by_inputs = true`` gives the
    usual form of Sundararajan et al. (Captum's default), whose map sums to f_t(x) − f_t(x′)
    and which robustlens used before (lens version 1)."""

    methods: tuple[str, ...] = field(
        default=METHODS, metadata=rule(ListOf(Options(METHODS), min_len=1))
    )
    n: int | None = field(default=200, metadata=rule(Interval(int, 1, None)))
    show: int = field(default=4, metadata=rule(Interval(int, 0, None)))
    smoothgrad_noise: float = field(
        default=0.15,
        metadata=rule(Interval(float, 0, 1, closed="right"), hint="a fraction of the input range"),
    )
    smoothgrad_samples: int = field(default=50, metadata=rule(Interval(int, 1, None)))
    ig_steps: int = field(default=50, metadata=rule(Interval(int, 1, None)))
    ig_multiply_by_inputs: bool = False
    high_frequency_cutoff: float = field(
        default=0.5,
        metadata=rule(Interval(float, 0, 1.5, closed="neither"), hint="a fraction of Nyquist"),
    )
    sanity_images: int = field(default=16, metadata=rule(Interval(int, 0, None)))
    unchanged_threshold: float = field(default=0.5, metadata=rule(Interval(float, -1, 1)))


def _maps(net, data: ImageSet, method: str, params: SaliencyParams, seed: int):
    return attribute(
        net,
        data.images,
        data.labels,
        method,
        noise=params.smoothgrad_noise,
        samples=params.smoothgrad_samples,
        steps=params.ig_steps,
        multiply_by_inputs=params.ig_multiply_by_inputs,
        seed=seed,
    )


def compute(
    model: StudyModel, data: ImageSet, params: SaliencyParams, ctx: LensContext
) -> LensResult:
    data = subset(data, params.n)
    if "guided" in params.methods:
        check_guided_backprop(model.model, data.images.to(ctx.device))
    rows, arrays = [], {"images": data.images[: params.show].numpy()}
    for method in params.methods:
        maps = _maps(model.model, data, method, params, ctx.seed)
        hf = high_frequency_fraction(maps, params.high_frequency_cutoff)
        edges = edge_alignment(maps, data.images)
        arrays[f"maps/{method}"] = maps[: params.show].numpy()
        arrays[high_frequency_name(method)] = hf
        arrays[f"edge_alignment/{method}"] = edges
        for metric, values in (("high_frequency_fraction", hf), ("edge_alignment", edges)):
            rows.append(
                {
                    "model": model.name,
                    "setting": method,
                    "metric": metric,
                    "value": float(np.nanmean(values)),
                    "n": len(data),
                }
            )
    sanity_rows = []
    if params.sanity_images:
        few = subset(data, params.sanity_images)
        for method in params.methods:

            def maps_of(net, method: str = method):
                return _maps(net, few, method, params, ctx.seed)

            steps = cascading_randomization(
                model.model, few.images, few.labels, maps_of, seed=ctx.seed
            )
            arrays[sanity_name(method)] = np.stack([rho for _, rho, _ in steps])
            arrays[SANITY_THRESHOLD] = np.array([params.unchanged_threshold])
            for depth, (layer, rho, ssim) in enumerate(steps, start=1):
                last = depth == len(steps)
                for metric, values in (("spearman", rho), ("ssim", ssim)):
                    sanity_rows.append(
                        {
                            "model": model.name,
                            "layer": layer,
                            "setting": method,
                            "metric": metric,
                            "value": float(np.nanmean(values)),
                            "layers_randomized": depth,
                            "n": len(few),
                        }
                    )
                if last:
                    flagged = float(np.nanmean(rho)) >= params.unchanged_threshold
                    sanity_rows.append(
                        {
                            "model": model.name,
                            "layer": "all",
                            "setting": method,
                            "metric": "unchanged_flag",
                            "value": float(flagged),
                        }
                    )
    tables = {"saliency": tidy(rows)}
    if sanity_rows:
        tables["saliency_sanity"] = tidy(sanity_rows)
    notes = [
        f"{model.name}: {r['setting']} maps barely change when every layer is randomised "
        f"(Spearman ≥ {params.unchanged_threshold:g}): it fails the sanity check"
        for r in sanity_rows
        if r["metric"] == "unchanged_flag" and r["value"] == 1.0
    ]
    return LensResult(tables=tables, arrays=arrays, notes=notes)


def plot(tables, models: list[StudyModel], params: SaliencyParams, arrays=None) -> dict:
    figures = {}
    if arrays is not None and params.show:
        images = arrays(models[0].name, "images")
        shown = 0 if images is None else min(len(images), params.show)
        if shown:
            rows = shown * len(models)
            cols = 1 + len(params.methods)
            fig, axes = new_figure(rows, cols, figsize=(1.6 * cols, 1.6 * rows))
            axes = np.atleast_2d(axes).reshape(rows, cols)
            for i in range(shown):
                for j, m in enumerate(models):
                    row = axes[i * len(models) + j]
                    image = images[i]
                    row[0].imshow(
                        image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0),
                        cmap="gray" if image.shape[0] == 1 else None,
                        vmin=0,
                        vmax=1,
                    )
                    row[0].set_ylabel(m.name, fontsize="xx-small")
                    for ax, method in zip(row[1:], params.methods, strict=True):
                        maps = arrays(m.name, f"maps/{method}")
                        if maps is not None:
                            magnitude = np.abs(maps[i]).sum(axis=0)
                            ax.imshow(magnitude, cmap="inferno")
                        if i == 0 and j == 0:
                            ax.set_title(method, fontsize="x-small")
                    for ax in row:
                        ax.set_xticks([])
                        ax.set_yticks([])
            figures["Sensitivity maps (|map| summed over channels), images × models × methods"] = (
                fig
            )
    frame = tables.get("saliency")
    sanity = tables.get("saliency_sanity")
    if frame is not None:
        figures.update(_metric_figure(frame, models))
    if sanity is not None:
        figures.update(_sanity_figure(sanity, models, params))
    return figures


def _metric_figure(frame, models: list[StudyModel]) -> dict:
    colors = palette(models)
    methods = list(dict.fromkeys(frame.setting))
    fig, axes = new_figure(1, 2, figsize=(11, 3.4))
    width = 0.8 / max(len(models), 1)
    for ax, metric, title in (
        (axes[0], "high_frequency_fraction", "energy above ½ Nyquist (share)"),
        (axes[1], "edge_alignment", "Spearman(|map|, image edges)"),
    ):
        for k, m in enumerate(models):
            part = frame[(frame.model == m.name) & (frame.metric == metric)]
            heights = [
                float(part[part.setting == s].value.iloc[0])
                if (part.setting == s).any()
                else np.nan
                for s in methods
            ]
            ax.bar(np.arange(len(methods)) + k * width, heights, width, color=colors[m.name],
                   label=m.label())  # fmt: skip
        ax.set_xticks(np.arange(len(methods)) + 0.4 - width / 2, methods, fontsize="x-small")
        ax.set_title(title, fontsize="small")
    axes[0].legend(fontsize="xx-small")
    return {"How sensitivity maps differ: high-frequency energy and edge alignment": fig}


def _sanity_figure(frame, models: list[StudyModel], params: SaliencyParams) -> dict:
    colors = palette(models)
    methods = list(dict.fromkeys(frame.setting))
    fig, axes = new_figure(1, len(methods), figsize=(3.0 * len(methods), 3.0))
    axes = np.atleast_1d(axes)
    for ax, method in zip(axes, methods, strict=True):
        for m in models:
            part = frame[
                (frame.model == m.name) & (frame.setting == method) & (frame.metric == "spearman")
            ].sort_values("layers_randomized")
            if part.empty:
                continue
            ax.plot(
                [0, *part.layers_randomized], [1.0, *part.value], marker=".",
                color=colors[m.name], label=m.name,
            )  # fmt: skip
        ax.axhline(params.unchanged_threshold, color="grey", ls=":", lw=1)
        ax.set_ylim(-0.2, 1.05)
        ax.set_title(method, fontsize="small")
        ax.set_xlabel("layers randomised (from the output)", fontsize="x-small")
    axes[0].set_ylabel("Spearman with the trained model's maps")
    axes[0].legend(fontsize="xx-small")
    return {"Cascading parameter randomisation (App. A; dotted: the 'unchanged' threshold)": fig}


SPEC = register_lens(
    LensSpec(
        name="saliency",
        title="Sensitivity maps and their sanity check",
        paper=ITAZURI.label,
        section="§3.4, Fig. 2, App. A",
        description=(
            "Vanilla gradient, loss gradient, guided backpropagation, SmoothGrad (σ = 0.15 of "
            "the input range) and integrated gradients (zero baseline, 50 steps, Eq. 17: the "
            "path integral of the gradient, not multiplied by the input) through "
            "Captum on the same images for every model; the share of each map's energy above "
            "half the Nyquist frequency and its rank correlation with the image's edges; the "
            "cascading parameter-randomisation check with Spearman and SSIM per method."
        ),
        params=SaliencyParams,
        compute=compute,
        plot=plot,
        version=2,  # integrated gradients as Eq. 17 (without the (x − x′) factor) by default
    )
)
