"""Convolution filters of robust and natural models (Gavrikov & Keuper 2022, §3–4).

Per model and convolution layer: sparsity (Eq. 7), variance entropy (Eq. 8) and filterbank
orthogonality (Eq. 9), each with a bootstrap over the layer's filters (filterbanks for
orthogonality) so robust and natural models can be compared with an interval. The scaled,
non-sparse filters of each layer are stored by depth group (the first convolution apart, then
deciles of relative depth); the PCA filter basis (Fig. 2) and the explained-variance-weighted
symmetric KL divergence of coefficient distributions between robust and natural models
(Eq. 10, Fig. 1, 3) are computed from them across models
(:func:`robustlens.analysis.filters.filter_shift`).
The first layer's weights (Fig. 4) and its "thresholding" picture — ReLU(conv1(x)) against
ReLU(conv1(x + δ)) with δ from PGD L∞ (Fig. 6) — come with the per-image relative change of
the first layer's activations.

The paper measures 3×3 kernels only (``kernel_sizes = [3]``); other square sizes can be added
and are analysed in their own basis. Layers of other sizes are left out explicitly: the
table counts the layers measured and left out per model and a note names them (and says
when the first convolution, e.g. a 5×5 stem, is among them, so that the first-layer group
of the shift is empty). Depth groups count every convolution, whatever its kernel, as the
authors' filter database does. Raw weights by default; ``fold_batchnorm`` folds a BatchNorm
that directly follows a convolution into its weights, as the authors' ONNX exports did.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch

from robustlens.analysis.filters import (
    GroupedFilters,
    coefficient_divergence,
    depth_group,
    filter_basis,
    filter_matrix,
    filter_shift,
    orthogonality,
    pooled,
    scaled_filters,
    sparsity,
    variance_entropy,
)
from robustlens.attacks.spec import CIFAR10_DIM, AttackSpec
from robustlens.data.imageset import ImageSet
from robustlens.errors import ConfigError
from robustlens.lenses.base import LensContext, LensResult, LensSpec, StudyModel, register_lens
from robustlens.lenses.common import (
    adversarial,
    attack_refusals,
    resolve_attacks,
    subset,
)
from robustlens.lenses.output import palette, tidy
from robustlens.lenses.parameters import LensParams, Refusal, rule
from robustlens.models.anatomy import capture_activations
from robustlens.models.convs import ConvLayer, conv_layers, following_batchnorm
from robustlens.papers import GAVRIKOV
from robustlens.params import Interval, ListOf
from robustlens.plotting import draw_filter_strip, new_figure

# Names of the quality arrays the claims read (the filters themselves: ``array_name``).


def quality_name(metric: str) -> str:
    """[layers] ``metric`` (a key of ``METRICS``) per layer."""
    return f"quality/{metric}"


def quality_boot_name(metric: str) -> str:
    """[layers, resamples] ``metric`` per layer on resampled filters."""
    return f"quality_boot/{metric}"


PERMUTATIONS = 20
"""Label shuffles per depth group for the KL baseline in the shift figure."""
METRICS = {
    "sparsity": sparsity,
    "variance_entropy": variance_entropy,
    "orthogonality": orthogonality,
}
LAYERS_MEASURED, LAYERS_LEFT_OUT = "layers_measured", "layers_left_out"
"""Table rows (layer ``ALL_LAYERS``): how many convolutions the statistics cover and skip."""
ALL_LAYERS = "all convolutions"


@dataclass(frozen=True)
class FiltersParams(LensParams):
    """As the paper and the authors' code define them: sparsity counts filters with
    ‖F‖∞ ≤ max|W|/100 of the raw layer (Eq. 7); variance entropy (Eq. 8) is fitted to the
    layer's non-sparse filters without normalising them (§3 "without normalization of
    filters", the authors' torchconvquality ``variance_entropy_clean``;
    ``entropy_on_scaled_filters`` divides each by its own ‖F‖∞ first, as their pca.ipynb
    did); the filter basis and the shift use ‖F‖∞-scaled non-sparse filters (Eq. 3); the
    shift is the EVR-weighted symmetric KL of 70-bin density histograms over one global
    range, empty bins at float32 eps, renormalised (Eq. 10, pca.ipynb). Statistics cover the
    convolutions with a kernel in ``kernel_sizes``; the others are counted and named."""

    kernel_sizes: tuple[int, ...] = field(
        default=(3,),
        metadata=rule(
            ListOf(Interval(int, 1, None), min_len=1),
            hint="e.g. kernel_sizes = [3] (the paper) or [3, 5]",
        ),
    )
    fold_batchnorm: bool = False
    entropy_on_scaled_filters: bool = False
    resamples: int = field(default=200, metadata=rule(Interval(int, 0, None)))
    threshold_attack: str = "pgd linf 0.03137 10"
    """Fig. 6: δ for the thresholding picture (8/255 at CIFAR-10 resolution, scaled)."""
    reference_dim: int = CIFAR10_DIM
    threshold_images: int = field(default=100, metadata=rule(Interval(int, 0, None)))

    def refusals(self) -> Iterator[Refusal]:
        example = "pgd linf 0.03137 10"
        yield from attack_refusals(
            "threshold_attack", self.threshold_attack, example=example, gradient=True
        )

    @cached_property
    def threshold_spec(self) -> AttackSpec:
        """``threshold_attack`` parsed (once)."""
        return AttackSpec.parse(self.threshold_attack)


def array_name(layer: ConvLayer) -> str:
    """``filters/<group>/<k1>x<k2>/<layer>``: what claims and figures group filters by."""
    k1, k2 = layer.kernel_size
    return f"filters/{depth_group(layer.index, layer.relative_depth)}/{k1}x{k2}/{layer.name}"


def metrics(params: FiltersParams) -> dict:
    """The statistic of each of ``METRICS`` as the parameters ask for it."""
    scaled = params.entropy_on_scaled_filters
    return {
        **METRICS,
        "variance_entropy": lambda w: variance_entropy(w, scaled=scaled),
    }


def _bootstrap(weight: np.ndarray, metric: str, fn, resamples: int, rng) -> np.ndarray:
    """The metric on layers rebuilt from resampled filters (filterbanks for orthogonality)."""
    out = np.empty(resamples)
    c_out = weight.shape[0]
    for b in range(resamples):
        if metric == "orthogonality":
            sample = weight[rng.integers(0, c_out, c_out)]
        else:
            flat = filter_matrix(weight)
            rows = flat[rng.integers(0, flat.shape[0], flat.shape[0])]
            sample = rows.reshape(rows.shape[0], 1, *weight.shape[2:])
        out[b] = fn(sample)
    return out


def applies(model: StudyModel, params: FiltersParams) -> str | None:
    """Why the lens cannot run on ``model`` (no square convolution of the asked kernel sizes),
    or None."""
    sizes = [m.kernel_size for m in model.model.modules() if isinstance(m, torch.nn.Conv2d)]
    wanted = " or ".join(f"{k}×{k}" for k in params.kernel_sizes)
    if not sizes:
        return f"no {wanted} convolutions: {model.name} has no 2-D convolutions at all"
    if not any(h == w and h in params.kernel_sizes for h, w in sizes):
        found = ", ".join(sorted({f"{h}×{w}" for h, w in sizes}))
        return (
            f"no {wanted} convolutions: the kernels of {model.name} are {found} "
            "(set kernel_sizes to study those)"
        )
    return None


def compute(
    model: StudyModel, data: ImageSet, params: FiltersParams, ctx: LensContext
) -> LensResult:
    layers = conv_layers(model.model, fold_batchnorm=params.fold_batchnorm)
    weights = "BatchNorm-folded" if params.fold_batchnorm else "raw"
    chosen = [
        layer
        for layer in layers
        if layer.kernel_size[0] == layer.kernel_size[1]
        and layer.kernel_size[0] in params.kernel_sizes
    ]
    notes = []
    if not chosen:
        sizes = sorted({f"{a}x{b}" for a, b in (layer.kernel_size for layer in layers)})
        raise ConfigError(
            f"{model.name} has no convolution with kernel size in {list(params.kernel_sizes)}",
            fix=f"its kernels are {', '.join(sizes)}; set the lens's kernel_sizes",
        )
    notes += coverage_notes(model.name, layers, chosen, params)
    rng = np.random.default_rng([ctx.seed, 3_0_0_3])
    rows = [
        {
            "model": model.name,
            "layer": ALL_LAYERS,
            "setting": weights,
            "metric": metric,
            "value": float(count),
            "kernel": ",".join(f"{k}x{k}" for k in params.kernel_sizes),
            "weights": weights,
        }
        for metric, count in (
            (LAYERS_MEASURED, len(chosen)),
            (LAYERS_LEFT_OUT, len(layers) - len(chosen)),
        )
    ]
    arrays = {}
    measures = metrics(params)
    values = {metric: [] for metric in METRICS}
    boots = {metric: [] for metric in METRICS}
    for layer in chosen:
        k1, k2 = layer.kernel_size
        common = {
            "model": model.name,
            "layer": layer.name,
            "group": depth_group(layer.index, layer.relative_depth),
            "relative_depth": layer.relative_depth,
            "kernel": f"{k1}x{k2}",
            "weights": weights,
            "filters": int(layer.weight.shape[0] * layer.weight.shape[1]),
        }
        for metric, fn in measures.items():
            value = fn(layer.weight)
            boot = _bootstrap(layer.weight, metric, fn, params.resamples, rng)
            finite = boot[np.isfinite(boot)]
            low, high = np.quantile(finite, [0.025, 0.975]) if finite.size else (np.nan, np.nan)
            rows.append(
                {
                    **common,
                    "setting": weights,
                    "metric": metric,
                    "value": value,
                    "ci_low": low,
                    "ci_high": high,
                }
            )
            values[metric].append(value)
            boots[metric].append(boot)
        arrays[array_name(layer)] = scaled_filters(layer.weight).astype(np.float32)
    for metric in METRICS:
        arrays[quality_name(metric)] = np.array(values[metric], dtype=np.float64)
        arrays[quality_boot_name(metric)] = np.stack(boots[metric])
    arrays["filters/index"] = np.array([array_name(layer) for layer in chosen])
    first = layers[0]
    arrays["first_layer"] = first.weight.astype(np.float32)
    if params.threshold_images:
        rows += _thresholding(model, data, params, ctx, first, arrays)
    return LensResult(tables={"filters": tidy(rows)}, arrays=arrays, notes=notes)


def coverage_notes(
    model: str, layers: list[ConvLayer], chosen: list[ConvLayer], params: FiltersParams
) -> list[str]:
    """Which convolutions the statistics cover and which they leave out, by name and kernel."""

    def listing(group: list[ConvLayer]) -> str:
        names = [f"{c.name} ({c.kernel_size[0]}×{c.kernel_size[1]})" for c in group[:8]]
        return ", ".join(names) + (f" and {len(group) - 8} more" if len(group) > 8 else "")

    sizes = " and ".join(f"{k}×{k}" for k in params.kernel_sizes)
    left = [layer for layer in layers if layer not in chosen]
    if not left:
        return [f"{model}: {sizes} statistics cover all {len(layers)} convolutions"]
    notes = [
        f"{model}: {sizes} statistics cover {len(chosen)} of {len(layers)} convolutions "
        f"({listing(chosen)}); left out, other kernel sizes: {listing(left)}"
    ]
    if layers[0] not in chosen:
        notes.append(
            f"{model}: the first convolution {layers[0].name} is "
            f"{layers[0].kernel_size[0]}×{layers[0].kernel_size[1]}, so its filters are not in "
            "the statistics and the first-layer group of the coefficient shift (Fig. 1) is "
            "empty; depth deciles still count it"
        )
    return notes


def _thresholding(
    model: StudyModel,
    data: ImageSet,
    params: FiltersParams,
    ctx: LensContext,
    first: ConvLayer,
    arrays: dict,
) -> list[dict]:
    """Fig. 6: how much of a PGD perturbation survives the first convolution (+ its BatchNorm)
    and the ReLU, per image: ‖a(x+δ) − a(x)‖₂ / ‖a(x)‖₂ with a = ReLU(BN(conv1(·)))."""
    data = subset(data, params.threshold_images)
    ((_, spec),) = resolve_attacks((params.threshold_spec,), data, params.reference_dim)
    result = adversarial(ctx, model, data, spec, early_stop=False)
    clean = _first_activation(model, data.images, first, ctx.device)
    attacked = _first_activation(model, result.adversarial, first, ctx.device)
    flat_c, flat_a = clean.flatten(1), attacked.flatten(1)
    change = (flat_a - flat_c).norm(dim=1) / flat_c.norm(dim=1).clamp_min(1e-12)
    arrays["threshold/relative_change"] = change.double().numpy()
    arrays["threshold/clean"] = clean[:4].float().numpy()
    arrays["threshold/attacked"] = attacked[:4].float().numpy()
    return [
        {
            "model": model.name,
            "layer": first.name,
            "setting": spec.label(),
            "metric": "first_layer_relative_change",
            "value": float(change.mean()),
            "n": len(data),
        }
    ]


def _first_activation(
    model: StudyModel, images: torch.Tensor, first: ConvLayer, device
) -> torch.Tensor:
    """ReLU(BN(conv1(normalised x))) with the BN that directly follows conv1, if any."""
    try:
        bn = following_batchnorm(model.model).get(first.name)
    except ConfigError:
        bn = None
    tap = bn or first.name
    was_training = model.model.training
    model.model.eval()
    try:
        with torch.no_grad(), capture_activations(model.model, [tap]) as acts:
            outs = []
            for i in range(0, images.shape[0], 250):
                model.model(images[i : i + 250].to(device))
                outs.append(torch.relu(acts[tap]).cpu())
    finally:
        model.model.train(was_training)
    return torch.cat(outs)


def plot(tables, models: list[StudyModel], params: FiltersParams, arrays=None) -> dict:
    frame = tables["filters"]
    colors = {m.name: c for m, c in zip(models, _colors(models), strict=True)}
    figures = {}
    fig, axes = new_figure(1, 3, figsize=(13, 3.4))
    for ax, metric in zip(axes, METRICS, strict=True):
        part = frame[frame.metric == metric]
        for m in models:
            rows = part[part.model == m.name].sort_values("relative_depth")
            if rows.empty:
                continue
            ax.errorbar(
                rows.relative_depth,
                rows.value,
                yerr=[
                    (rows.value - rows.ci_low).clip(lower=0),
                    (rows.ci_high - rows.value).clip(lower=0),
                ],
                marker="o",
                ms=3,
                capsize=2,
                label=m.label(),
                color=colors[m.name],
            )
        ax.set_xlabel("relative depth of the layer")
        ax.set_title(metric.replace("_", " "))
    axes[0].legend(fontsize="x-small")
    weights = "BatchNorm-folded" if params.fold_batchnorm else "raw"
    figures[f"Filter quality by depth ({weights} weights; Eq. 7–9, Fig. 7)"] = fig
    if arrays is not None:
        figures.update(plot_shift(models, arrays))
        figures.update(plot_basis(models, arrays))
        figures.update(plot_coefficients(models, arrays))
        figures.update(plot_first_layers(models, arrays, frame))
    return figures


def grouped_filters(get) -> GroupedFilters:
    """A model's stored filters by (depth group, kernel); ``get(name)`` reads one array."""
    index = get("filters/index")
    out: GroupedFilters = {}
    for name in [] if index is None else [str(n) for n in index]:
        _, group, kernel, _ = name.split("/", 3)
        part = get(name)
        if part is not None and part.size:
            key = (group, kernel)
            out[key] = np.concatenate([out[key], part]) if key in out else part
    return out


def kernels_of(sets: list[GroupedFilters]) -> list[str]:
    return sorted({k for s in sets for _, k in s})


def plot_shift(models: list[StudyModel], arrays) -> dict:
    """Fig. 1: weighted KL of coefficient distributions, robust vs natural, by depth group."""
    natural = [grouped_filters(lambda n, m=m: arrays(m.name, n)) for m in models if m.is_natural]
    robust = {
        m.label(): grouped_filters(lambda n, m=m: arrays(m.name, n)) for m in models if m.is_robust
    }
    if not natural or not robust:
        return {}
    kernels = kernels_of(natural + list(robust.values()))
    fig, axes = new_figure(1, len(kernels), figsize=(5.0 * len(kernels), 3.4))
    axes = np.atleast_1d(axes)
    robust_colors = [c for m, c in zip(models, _colors(models), strict=True) if m.is_robust]
    for ax, kernel in zip(axes, kernels, strict=True):
        series = {"all robust (pooled)": (list(robust.values()), "black")}
        series.update(
            {
                label: ([f], color)
                for (label, f), color in zip(robust.items(), robust_colors, strict=True)
            }
        )
        for label, (sets, color) in series.items():
            shift = filter_shift(sets, natural, kernel, permutations=PERMUTATIONS)
            if shift is None or not shift.divergence:
                continue
            excess = shift.excess
            groups = list(excess)
            ax.plot(
                range(len(groups)),
                [excess[g] for g in groups],
                marker="o",
                color=color,
                label=label,
                lw=2 if "pooled" in label else 1,
            )
            ax.set_xticks(range(len(groups)), groups)
        ax.set_xlabel("depth group (first layer, then deciles of relative depth)")
        ax.set_ylabel("weighted KL vs natural − shuffled baseline")
        ax.set_title(f"{kernel} filters", fontsize="small")
        ax.legend(fontsize="x-small")
    return {
        "Filter coefficient shift, robust vs natural, by depth: EVR-weighted symmetric KL above "
        "its value for label-shuffled splits of the same filters (Eq. 10, Fig. 1)": fig
    }


def plot_basis(models: list[StudyModel], arrays) -> dict:
    """Fig. 2: the filter basis and explained-variance ratios of all, robust, natural filters."""
    sets = {m.name: grouped_filters(lambda n, m=m: arrays(m.name, n)) for m in models}
    natural = {m.name for m in models if m.is_natural}
    robust = {m.name for m in models if m.is_robust}
    kernels = [k for k in kernels_of(list(sets.values())) if k == "3x3"] or kernels_of(
        list(sets.values())
    )[:1]
    if not kernels:
        return {}
    kernel = kernels[0]
    k1, k2 = (int(v) for v in kernel.split("x"))
    groups = {
        "all": list(sets.values()),
        "robust": [f for name, f in sets.items() if name in robust],
        "natural": [f for name, f in sets.items() if name in natural],
    }
    groups = {name: pooled(s, kernel) for name, s in groups.items() if s}
    groups = {name: f for name, f in groups.items() if f.shape[0] >= 2}
    if not groups:
        return {}
    size = k1 * k2
    fig, axes = new_figure(2 * len(groups), size, figsize=(1.1 * size, 2.6 * len(groups)))
    axes = np.atleast_2d(axes)
    for row, (name, filters) in enumerate(groups.items()):
        basis = filter_basis(filters)
        top = axes[2 * row]
        for i, ax in enumerate(top):
            v = basis.basis[i].reshape(k1, k2)
            lim = np.abs(v).max() or 1.0
            ax.imshow(v, cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{basis.explained_variance_ratio[i]:.2f}", fontsize="x-small")
        top[0].set_ylabel(f"{name}\n({filters.shape[0]})", fontsize="x-small")
        bottom = axes[2 * row + 1]
        for ax in bottom[1:]:
            ax.set_axis_off()
        gs = bottom[0].get_gridspec()
        for ax in bottom:
            ax.remove()
        wide = fig.add_subplot(gs[2 * row + 1, :])
        evr = basis.explained_variance_ratio
        wide.bar(range(len(evr)), evr, color="tab:blue")
        wide.plot(range(len(evr)), np.cumsum(evr), color="tab:orange", marker=".")
        wide.set_ylim(0, 1.05)
        wide.set_ylabel("EVR", fontsize="x-small")
    return {f"{kernel} filter basis and explained variance: all, robust, natural (Fig. 2)": fig}


def plot_coefficients(models: list[StudyModel], arrays) -> dict:
    """Fig. 3: distributions of the filters' coefficients along each basis vector (fitted on
    all filters of the kernel size), robust against natural, with each axis's KL."""
    sets = {m.name: grouped_filters(lambda n, m=m: arrays(m.name, n)) for m in models}
    natural = [sets[m.name] for m in models if m.is_natural]
    robust = [sets[m.name] for m in models if m.is_robust]
    kernels = kernels_of(natural + robust)
    kernel = "3x3" if "3x3" in kernels else (kernels[0] if kernels else None)
    shift = filter_shift(robust, natural, kernel) if kernel and natural and robust else None
    if shift is None:
        return {}
    basis = shift.basis
    a = basis.coefficients(pooled(robust, kernel))
    b = basis.coefficients(pooled(natural, kernel))
    axes_n = min(9, a.shape[1])
    fig, axes = new_figure(1, axes_n, figsize=(1.9 * axes_n, 2.2))
    axes = np.atleast_1d(axes)
    for i, ax in enumerate(axes):
        low, high = min(a[:, i].min(), b[:, i].min()), max(a[:, i].max(), b[:, i].max())
        bins = np.linspace(low, high, 41)
        ax.hist(b[:, i], bins=bins, density=True, alpha=0.5, color="0.3", label="natural")
        ax.hist(a[:, i], bins=bins, density=True, alpha=0.5, color="tab:red", label="robust")
        kl = coefficient_divergence(a[:, [i]], b[:, [i]], np.ones(1), limits=shift.limits)[0]
        ax.set_title(
            f"v{i} EVR {basis.explained_variance_ratio[i]:.2f}\nKL {kl:.2f}", fontsize="xx-small"
        )
        ax.set_yticks([])
        ax.tick_params(labelsize="xx-small")
    axes[0].legend(fontsize="xx-small")
    return {
        f"{kernel} filter coefficients along each basis vector, robust vs natural (Fig. 3)": fig
    }


def plot_first_layers(models: list[StudyModel], arrays, frame) -> dict:
    """Fig. 4 and 6: first-layer filters of a natural and a robust model, and what a PGD
    perturbation changes in their first activations."""
    natural = next((m for m in models if m.is_natural), None)
    # the paper's robust models are L∞-trained: prefer the largest L∞ budget
    robust = sorted(
        (m for m in models if m.is_robust),
        key=lambda m: (m.train_norm != "linf", -m.train_eps),
    )
    pair = [m for m in (natural, robust[0] if robust else None) if m is not None]
    figures = {}
    weights = {m.name: arrays(m.name, "first_layer") for m in pair}
    if pair and all(w is not None for w in weights.values()):
        show = 32
        fig, axes = new_figure(len(pair), 1, figsize=(12, 1.2 * len(pair) + 0.6))
        for ax, m in zip(np.atleast_1d(axes), pair, strict=True):
            w = weights[m.name][:show]
            draw_filter_strip(ax, w)
            ax.set_title(f"{m.label()}: first {len(w)} first-layer filters", fontsize="small")
        figures["First-layer filters, natural and robust (Fig. 4)"] = fig
    clean = {m.name: arrays(m.name, "threshold/clean") for m in pair}
    attacked = {m.name: arrays(m.name, "threshold/attacked") for m in pair}
    if pair and all(v is not None for v in (*clean.values(), *attacked.values())):
        channels = 4
        fig, axes = new_figure(
            len(pair), 3 * channels, figsize=(1.2 * 3 * channels, 1.5 * len(pair))
        )
        axes = np.atleast_2d(axes)
        for row, m in zip(axes, pair, strict=True):
            a, b = clean[m.name][0], attacked[m.name][0]
            order = np.argsort(-a.reshape(a.shape[0], -1).mean(axis=1))[:channels]
            for j, ch in enumerate(order):
                diff = b[ch] - a[ch]
                lim = max(np.abs(diff).max(), 1e-12)
                row[3 * j].imshow(a[ch], cmap="gray")
                row[3 * j + 1].imshow(b[ch], cmap="gray")
                row[3 * j + 2].imshow(diff, cmap="RdBu_r", vmin=-lim, vmax=lim)
                for k, t in enumerate(("clean", "attacked", "difference")):
                    row[3 * j + k].set_title(f"ch {ch} {t}", fontsize="xx-small")
            for ax in row:
                ax.set_xticks([])
                ax.set_yticks([])
            change = frame[
                (frame.model == m.name) & (frame.metric == "first_layer_relative_change")
            ]
            text = (
                f" (mean relative change {float(change.value.iloc[0]):.2f})" if len(change) else ""
            )
            row[0].set_ylabel(f"{m.name}{text}", fontsize="xx-small")
        figures["ReLU(first conv) on clean and PGD-attacked input, and the difference (Fig. 6)"] = (
            fig
        )
    return figures


def _colors(models: list[StudyModel]) -> list[str]:
    colors = palette(models)
    return [colors[m.name] for m in models]


SPEC = register_lens(
    LensSpec(
        name="filters",
        title="Convolution filters: quality, basis, robust–natural shift",
        paper=GAVRIKOV.label,
        section="§3–4, Eq. 7–10, Fig. 1–7",
        description=(
            "Sparsity, variance entropy and filterbank orthogonality of every k×k convolution "
            "(3×3 by default) by relative depth, with bootstrap intervals over filters; the PCA "
            "filter basis of robust, natural and all filters; the explained-variance-weighted "
            "symmetric KL divergence of coefficient distributions between robust and natural "
            "models by depth decile (first layer apart); first-layer filters and how much of a "
            "PGD perturbation survives ReLU(conv1(·))."
        ),
        params=FiltersParams,
        compute=compute,
        plot=plot,
        applies=applies,
        version=2,  # entropy on unscaled filters (§3); layer coverage rows and notes
        anatomy=(
            "Reads every square 2-D convolution whose kernel size is in `kernel_sizes`; not "
            "applicable to a model without one (an MLP, or LeNet's 5 × 5 kernels under the "
            "default 3 × 3: set `kernel_sizes = [5]` there)."
        ),
    )
)
