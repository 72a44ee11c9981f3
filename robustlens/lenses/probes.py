"""Accuracy under transforms that remove detail, colour or texture (Itazuri et al. 2019, §4.1,
Fig. 5–6, Table 2).

Gaussian blur (kernel 7, σ from 0 to 5 by 0.25) blurs every edge alike; the median filter
(kernel 5, applied 0 to 5 times) removes weak edges and fine texture but keeps strong edges.
Those sizes are the paper's for ImageNet at 224 px; by default they are moved to the data's
resolution (σ × side/224, kernels to the nearest odd size ≥ 3), so that a blur removes the
same share of the image whatever its size; ``reference_side = 0`` applies them as written.
Colour reversal reflects pixel values around the data set's mean. Texture is replaced while
shape stays by images the user provides (e.g. Stylized-ImageNet, or the model-vs-human
cue-conflict set, whose file names give each image's texture class: the shape bias is then
shape decisions / (shape + texture decisions)), and offline by two stand-ins: each image's
Fourier phase with another image's amplitude spectrum, and its Sobel edge map. One accuracy
per model, probe and level, with per-image correctness for the claims' paired bootstrap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from robustlens.constructed.inversion import derangement
from robustlens.data import load_dataset
from robustlens.data import probes as P
from robustlens.data.imagefolder import index_folder
from robustlens.data.imageset import ImageSet
from robustlens.errors import ConfigError
from robustlens.lenses.base import LensContext, LensResult, LensSpec, StudyModel, register_lens
from robustlens.lenses.common import predictions, subset
from robustlens.lenses.output import interval_columns, palette, tidy
from robustlens.lenses.parameters import LensParams, rule
from robustlens.papers import ITAZURI
from robustlens.params import Interval, ListOf, Options, Satisfies
from robustlens.plotting import new_figure

# Names of the per-image arrays the claims read.
GAUSSIAN_BLUR, MEDIAN_FILTER = "gaussian_blur", "median_filter"
"""The blur and median-filter probes (levels σ and times applied; level 0: clean images)."""
AMPLITUDE_SWAP, EDGE_MAP = "amplitude_swap", "edge_map"
"""The texture-replacing probes (one level, 1)."""
STYLIZED = "stylized"
"""The probe of the user's stylised images (one level, 1)."""


def correct_name(probe: str, level: float) -> str:
    """[N] whether the model is correct under ``probe`` at ``level``."""
    return f"correct/{probe}/{level:g}"


def parse_correct(name: str) -> tuple[str, float] | None:
    """(probe, level) of a :func:`correct_name`, or None for any other array."""
    kind, _, rest = name.partition("/")
    probe, _, level = rest.partition("/")
    if kind != "correct" or not probe or not level:
        return None
    return probe, float(level)


Transform = Callable[[torch.Tensor], torch.Tensor]

BLUR_SIGMAS = tuple(round(0.25 * i, 2) for i in range(21))
"""§4.1: σ from 0 to 5 in steps of 0.25."""
MEDIAN_TIMES = tuple(range(6))
"""§4.1: the median filter applied 0 to 5 times."""
TEXTURE_PROBES = (AMPLITUDE_SWAP, EDGE_MAP)


ODD_KERNEL = Satisfies(
    lambda k: isinstance(k, int) and not isinstance(k, bool) and k >= 1 and k % 2 == 1,
    "an odd whole number ≥ 1",
)
FOLDER = Satisfies(
    lambda d: isinstance(d, str) and Path(d).expanduser().is_dir(),
    "a folder with one subfolder of images per class",
)


@dataclass(frozen=True)
class ProbesParams(LensParams):
    """``blur_sigmas``, ``blur_kernel`` and ``median_kernel`` are §4.1's sizes for images of
    ``reference_side`` px (the paper's ImageNet 224 px); each is moved to the data's side:
    σ × side/224 and kernels to the nearest odd size ≥ 3 (a 1-px kernel would leave the
    images unchanged), e.g. on 28 px σ 0–5 becomes 0–0.625, kernels 7 and 5 become 3, and on
    224 px everything is as written. ``reference_side = 0`` applies them as written, in pixels
    (the fixed sizes robustlens used before; on 28 px a σ = 5 blur erases the object). Levels
    in the tables and arrays are the σ as written; the report's notes give what was applied."""

    blur_sigmas: tuple[float, ...] = field(
        default=BLUR_SIGMAS, metadata=rule(ListOf(Interval(float, 0, None)))
    )
    blur_kernel: int = field(default=7, metadata=rule(ODD_KERNEL))
    median_times: tuple[int, ...] = field(
        default=MEDIAN_TIMES, metadata=rule(ListOf(Interval(int, 0, None)))
    )
    median_kernel: int = field(default=5, metadata=rule(ODD_KERNEL))
    reference_side: int = field(
        default=P.PROBE_REFERENCE_SIDE,
        metadata=rule(Interval(int, 0, None), hint="0 applies the sizes as written, in pixels"),
    )
    reversal: bool = True
    texture: tuple[str, ...] = field(
        default=TEXTURE_PROBES, metadata=rule(ListOf(Options(TEXTURE_PROBES)))
    )
    stylized_dir: str | None = field(default=None, metadata=rule(FOLDER))
    """A class-per-folder image tree with the study's class names (Stylized-ImageNet style)."""
    n: int | None = field(default=None, metadata=rule(Interval(int, 1, None)))


def donors(n: int, seed: int) -> torch.Tensor:
    """A seeded permutation of 0…n−1 without fixed points: whose amplitude each image gets."""
    if n < 2:
        raise ConfigError("the amplitude swap needs at least two images")
    return derangement(n, torch.Generator().manual_seed(seed))


@dataclass(frozen=True)
class Applied:
    """The blur and median sizes applied to images of ``sides`` (rows, columns) px."""

    sides: tuple[int, int]
    scale: tuple[float, float]
    blur_kernel: tuple[int, int]
    median_kernel: tuple[int, int]

    def sigma(self, sigma: float) -> tuple[float, float]:
        return (sigma * self.scale[0], sigma * self.scale[1])

    def note(self, params: ProbesParams) -> str:
        def size(k: tuple[int, int]) -> str:
            return f"{k[0]}×{k[1]}"

        scale = "×".join(dict.fromkeys(f"{s:.4g}" for s in self.scale))
        where = f"from {params.reference_side} px to {'×'.join(map(str, self.sides))} px"
        if not params.reference_side:
            where = "as written, in pixels"
        return (
            f"blur and median sizes {where}: σ × {scale}, blur kernel "
            f"{params.blur_kernel} → {size(self.blur_kernel)}, median kernel "
            f"{params.median_kernel} → {size(self.median_kernel)}"
        )


def applied(params: ProbesParams, images: torch.Tensor) -> Applied:
    """The sizes of §4.1 moved from ``params.reference_side`` px to the side of ``images``
    (per axis: rows, columns)."""
    ref = params.reference_side
    h, w = int(images.shape[-2]), int(images.shape[-1])
    return Applied(
        sides=(h, w),
        scale=(P.relative_sigma(1.0, h, ref), P.relative_sigma(1.0, w, ref)),
        blur_kernel=(
            P.relative_kernel(params.blur_kernel, h, ref),
            P.relative_kernel(params.blur_kernel, w, ref),
        ),
        median_kernel=(
            P.relative_kernel(params.median_kernel, h, ref),
            P.relative_kernel(params.median_kernel, w, ref),
        ),
    )


def settings(params: ProbesParams, data: ImageSet, seed: int) -> list[tuple[str, float, Transform]]:
    """(probe, level, transform) for every probe and level the parameters ask for."""
    out: list[tuple[str, float, Transform]] = []
    sizes = applied(params, data.images)
    for sigma in params.blur_sigmas:
        pair = sizes.sigma(sigma)
        out.append(
            (GAUSSIAN_BLUR, sigma, lambda x, s=pair: P.gaussian_blur(x, s, sizes.blur_kernel))
        )
    median = sizes.median_kernel
    for times in params.median_times:
        out.append((MEDIAN_FILTER, times, lambda x, t=times: P.median_filter(x, t, median)))
    if params.reversal:
        out.append(("color_reversal", 1, lambda x: P.reverse_colors(x, data.info.mean)))
    if AMPLITUDE_SWAP in params.texture:
        order = donors(len(data), seed)
        out.append((AMPLITUDE_SWAP, 1, lambda x: P.amplitude_swap(x, x[order])))
    if EDGE_MAP in params.texture:
        out.append((EDGE_MAP, 1, P.edge_map))
    return out


def transformed(
    ctx: LensContext, data: ImageSet, probe: str, level: float, fn: Transform, how: tuple = ()
) -> torch.Tensor:
    """The probe's images, computed once per run and shared by all models (``how``: whatever
    else decides them, e.g. the applied kernel sizes)."""
    key = ("probe", data.fingerprint(), probe, float(level), ctx.seed, how)
    if key not in ctx.cache:
        ctx.cache[key] = fn(data.images)
    return ctx.cache[key]


def compute(
    model: StudyModel, data: ImageSet, params: ProbesParams, ctx: LensContext
) -> LensResult:
    data = subset(data, params.n)
    labels = data.labels
    rows, arrays, notes = [], {}, []
    sizes = applied(params, data.images)
    if params.blur_sigmas or params.median_times:
        notes.append(sizes.note(params))
    how = (sizes.scale, sizes.blur_kernel, sizes.median_kernel)
    for probe, level, fn in settings(params, data, ctx.seed):
        images = transformed(ctx, data, probe, level, fn, how)
        correct = (predictions(model, images, ctx.device) == labels).numpy()
        arrays[correct_name(probe, level)] = correct
        rows.append(
            {
                "model": model.name,
                "setting": probe,
                "level": float(level),
                "metric": "accuracy",
                "value": float(correct.mean()),
                "n": len(data),
                **interval_columns(correct),
            }
        )
    if params.reversal:
        notes.append(
            f"colour reversal clips {100 * P.clipped_fraction(data.images, data.info.mean):.0f} % "
            "of pixel values to [0, 1]"
        )
    if params.stylized_dir is not None:
        rows += _stylized(model, params, ctx, arrays)
    return LensResult(tables={"probes": tidy(rows)}, arrays=arrays, notes=notes)


def _stylized(
    model: StudyModel, params: ProbesParams, ctx: LensContext, arrays: dict
) -> list[dict]:
    """Accuracy on the user's stylised images, and the shape bias where names give textures."""
    images, shape, texture = load_stylized(Path(params.stylized_dir).expanduser(), ctx)
    pred = predictions(model, images, ctx.device).numpy()
    correct = pred == shape
    arrays[correct_name(STYLIZED, 1)] = correct
    rows = [
        {
            "model": model.name,
            "setting": "stylized",
            "level": 1.0,
            "metric": "accuracy",
            "value": float(correct.mean()),
            "n": len(shape),
            **interval_columns(correct),
        }
    ]
    conflict = texture >= 0
    conflict &= texture != shape
    if conflict.any():
        rows.append(
            {
                "model": model.name,
                "setting": "stylized",
                "level": 1.0,
                "metric": "shape_bias",
                "value": shape_bias(pred[conflict], shape[conflict], texture[conflict]),
                "n": int(conflict.sum()),
            }
        )
    return rows


def shape_bias(pred: np.ndarray, shape: np.ndarray, texture: np.ndarray) -> float:
    """Geirhos et al. (2019): shape decisions / (shape + texture decisions) on cue-conflict
    images; NaN when no prediction is either."""
    shape_hits = int(np.sum(pred == shape))
    texture_hits = int(np.sum(pred == texture))
    total = shape_hits + texture_hits
    return shape_hits / total if total else float("nan")


def load_stylized(root: Path, ctx: LensContext) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Images of a class-per-folder tree at the study's resolution, their shape labels (the
    folder) in the study's class numbering, and texture labels from cue-conflict file names
    (−1 where a name does not give one)."""
    info = ctx.info
    c, h, w = info.shape
    index = index_folder(root)
    unknown = sorted(set(index.classes) - set(info.class_names))
    if unknown:
        raise ConfigError(
            f"stylized_dir {root} has class folders the study's data set lacks: "
            f"{', '.join(unknown[:5])}",
            fix=f"name the folders after the classes: {', '.join(info.class_names)}",
        )
    split = next(iter(index.splits))
    data = load_dataset(
        "imagefolder",
        split,
        root=root,
        image_size=(h, w),
        grayscale=c == 1,
        mean=list(info.mean),
        std=list(info.std),
    )
    number = {name: i for i, name in enumerate(info.class_names)}
    shape = np.array([number[index.classes[int(y)]] for y in data.labels])
    texture = [
        number.get(cue_conflict_texture(path.name, info.class_names), -1)
        for path, _ in index.splits[split]
    ]
    return data.images, shape, np.array(texture)


def cue_conflict_texture(filename: str, classes: tuple[str, ...]) -> str | None:
    """The texture class of a model-vs-human cue-conflict file, ``<shape><i>-<texture><j>.png``
    (e.g. ``cat7-elephant1.png``); None when the name does not have that form."""
    stem = filename.rsplit(".", 1)[0]
    if stem.count("-") != 1:
        return None
    part = stem.split("-")[1]
    found = [c for c in classes if part.startswith(c) and part[len(c) :].isdigit()]
    return max(found, key=len) if found else None


def plot(tables, models: list[StudyModel], params: ProbesParams, arrays=None) -> dict:
    frame = tables["probes"]
    frame = frame[frame.metric == "accuracy"]
    colors = palette(models)
    natural = next((m for m in models if m.is_natural), None)
    robust = sorted((m for m in models if m.is_robust), key=lambda m: -m.train_eps)
    fig, axes = new_figure(1, 3, figsize=(14, 3.6))
    at = f" at {params.reference_side} px" if params.reference_side else ""
    for ax, probe, xlabel in (
        (axes[0], "gaussian_blur", f"Gaussian blur σ (kernel {params.blur_kernel}){at}"),
        (
            axes[1],
            "median_filter",
            f"median filter ({params.median_kernel}×{params.median_kernel}{at}) applications",
        ),
    ):
        part = frame[frame.setting == probe]
        curves = {}
        for m in models:
            rows = part[part.model == m.name].sort_values("level")
            if rows.empty:
                continue
            curves[m.name] = rows
            ax.plot(rows.level, rows.value, marker=".", color=colors[m.name], label=m.label())
        if natural is not None and robust and natural.name in curves and robust[0].name in curves:
            a, b = curves[natural.name], curves[robust[0].name]
            x = a.level.to_numpy()
            ya, yb = a.value.to_numpy(), b.value.to_numpy()
            ax.fill_between(x, ya, yb, where=ya >= yb, color="tab:orange", alpha=0.25, lw=0)
            ax.fill_between(x, ya, yb, where=yb > ya, color="tab:blue", alpha=0.25, lw=0)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1)
    axes[0].legend(fontsize="x-small")
    others = [
        s for s in dict.fromkeys(frame.setting) if s not in ("gaussian_blur", "median_filter")
    ]
    base = frame[(frame.setting == "median_filter") & (frame.level == 0)]
    width = 0.8 / max(len(models), 1)
    for i, m in enumerate(models):
        values = [frame[(frame.setting == s) & (frame.model == m.name)].value for s in others]
        clean = base[base.model == m.name].value
        heights = [float(clean.iloc[0]) if len(clean) else np.nan]
        heights += [float(v.iloc[0]) if len(v) else np.nan for v in values]
        axes[2].bar(np.arange(len(heights)) + i * width, heights, width, color=colors[m.name])
    axes[2].set_xticks(
        np.arange(len(others) + 1) + 0.4 - width / 2,
        ["clean", *[s.replace("_", " ") for s in others]],
        fontsize="x-small",
    )
    axes[2].set_ylim(0, 1)
    axes[2].set_title("colour and texture probes", fontsize="small")
    return {
        "Accuracy under blur, median filtering, colour reversal and texture replacement "
        "(orange: natural ahead, blue: robust ahead; Fig. 6, Table 2)": fig
    }


SPEC = register_lens(
    LensSpec(
        name="probes",
        title="Accuracy under blur, median filter, colour reversal, texture replacement",
        paper=ITAZURI.label,
        section="§4.1, Fig. 5–6, Table 2",
        description=(
            "Accuracy of every model under Gaussian blur (kernel 7, σ 0–5 by 0.25), a 5×5 "
            "median filter applied 0–5 times (sizes for 224 px images, moved to the data's "
            "resolution), colour reversal around the data set mean, and "
            "texture replaced while shape stays: the Fourier amplitude of another image with "
            "the image's own phase, its Sobel edge map, and stylised images from a folder when "
            "given (with the cue-conflict shape bias)."
        ),
        params=ProbesParams,
        compute=compute,
        plot=plot,
        # 3: accuracies carry their 95 % Wilson interval (ci_low, ci_high); 2: blur and median
        # sizes relative to the image side (§4.1 gives 224 px ones)
        version=3,
    )
)
