"""Accuracy on robustified test sets (Springer et al. 2021, §4–5.1, Tables 1/2/5/6, Fig. 3).

Each source model C (by default the natural and adversarially trained models of the first
model's architecture, as the paper's ResNet50 C_ε; never a model trained on a constructed set)
robustifies the same evaluation images: R_C holds, for each image x, the image whose
representation under C matches x's, grown from another image of the set
(:func:`robustlens.constructed.robustify`, Table 4's schedule). Every model of the study is
then evaluated on every R_C. A model evaluated on its own R is marked ``self``: R_C was built
for C's own features, so that number says nothing about shared features (the paper's standard
model C' is evaluated on R_0 of a *different* standard model). The construction is checked per
source: the relative representation distance reached and the source's accuracy on its own R.
In a study each R is a constructed set like the training sets (safetensors + JSON card with
these checks, built in resumable chunks) in
``<study>/constructed/robustified-<split>-<source>-<key>/``, reused by later runs and loadable
with :func:`robustlens.constructed.load_set`. Chance accuracy is 1 / the data set's number of
classes (Tables 2/6 note it for ImageNet-9) and is recorded with every accuracy.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
import torch

from robustlens.attacks.spec import NORM_NAMES
from robustlens.constructed.build import build_robustified
from robustlens.constructed.inversion import SEED_MODES, robustify
from robustlens.constructed.sets import CARD, load_set
from robustlens.data.imageset import ImageSet
from robustlens.lenses.base import LensContext, LensResult, LensSpec, StudyModel, register_lens
from robustlens.lenses.common import chosen_sources, predictions, source_order, subset
from robustlens.lenses.output import interval_columns, tidy
from robustlens.lenses.parameters import LensParams, rule
from robustlens.papers import SPRINGER
from robustlens.params import Interval, Options
from robustlens.plotting import draw_annotated_grid, new_figure, style_axes

# Name of the per-image correctness arrays the claims read.
TEST = "test"
"""The source name of the unmodified test set."""


def correct_name(evaluator: str, source: str) -> str:
    """[N] whether ``evaluator`` classifies the set robustified against ``source`` (or the
    test set, ``TEST``) correctly."""
    return f"correct/{evaluator}/{source}"


@dataclass(frozen=True)
class UniversalityParams(LensParams):
    n: int | None = field(default=200, metadata=rule(Interval(int, 2, None)))
    steps: int | None = field(default=None, metadata=rule(Interval(int, 1, None)))
    """Inversion steps (None: Table 4's 400, or 200 at ImageNet size)."""
    step_size: float | None = field(
        default=None, metadata=rule(Interval(float, 0, None, closed="right"))
    )
    """Inversion step (None: Table 4's, moved to the data's resolution like an L2 budget)."""
    seed_mode: str = field(default="other-image", metadata=rule(Options(SEED_MODES)))
    sources: tuple[str, ...] | None = None
    """Models that robustify (None: the natural and adversarially trained models of the first
    model's architecture; models trained on constructed sets are left out)."""
    show: int = 6


@dataclass(frozen=True)
class RobustifiedTestSet:
    images: torch.Tensor
    distance: np.ndarray
    """Relative representation distance reached, per image."""
    start_distance: np.ndarray
    folder: str | None
    """The set's folder under ``<study>/constructed`` (None outside a study)."""


def robustified(
    ctx: LensContext, source: StudyModel, data: ImageSet, params: UniversalityParams
) -> RobustifiedTestSet:
    """R of ``data`` against ``source``: computed once per run, and in a study kept as a
    constructed set in ``ctx.sets`` (reused when it is there)."""
    recipe = [source.digest, data.fingerprint(), params.steps, params.step_size,
              params.seed_mode, ctx.seed]  # fmt: skip
    key = ("robustified", *recipe)
    if key in ctx.cache:
        return ctx.cache[key]
    net = source.model
    images, labels = data.images.to(ctx.device), data.labels.to(ctx.device)
    if ctx.sets is None:
        made = robustify(net, images, labels, steps=params.steps, step_size=params.step_size,
                         seed_mode=params.seed_mode, seed=ctx.seed)  # fmt: skip
        result = RobustifiedTestSet(made.images.cpu(), made.distance, made.start_distance, None)
    else:
        digest = hashlib.sha256(json.dumps(recipe).encode()).hexdigest()[:12]
        folder = ctx.sets / f"robustified-{data.split}-{source.name}-{digest}"
        if (folder / CARD).is_file():
            made = load_set(folder, dataset=data.info.name, shape=tuple(data.info.shape))
        else:
            made = build_robustified(folder, net, data, model_digest=source.digest,
                                     steps=params.steps, step_size=params.step_size,
                                     seed_mode=params.seed_mode, seed=ctx.seed)  # fmt: skip
        result = RobustifiedTestSet(
            made.images.cpu(),
            made.measures["distance"].numpy(),
            made.measures["start_distance"].numpy(),
            folder.name,
        )
    ctx.cache[key] = result
    return result


def compute(
    models: list[StudyModel], data: ImageSet, params: UniversalityParams, ctx: LensContext
) -> LensResult:
    """Every model's accuracy on the test images and on R of every source (Tables 1/2/5/6,
    Fig. 3), with chance and each construction's representation distance."""
    data = subset(data, params.n)
    sources = chosen_sources(models, params.sources, "universality")
    labels = data.labels
    chance = 1.0 / data.info.num_classes
    rows, arrays = [], {"labels": labels.numpy()}
    for m in models:
        clean = (predictions(m, data.images, ctx.device) == labels).numpy()
        arrays[correct_name(m.name, TEST)] = clean
        rows.append(_row(m, TEST, None, clean, chance))
    for s in sources:
        result = robustified(ctx, s, data, params)
        images = result.images
        arrays[f"distance/{s.name}"] = result.distance
        arrays[f"images/{s.name}"] = images[: params.show].numpy()
        for m in models:
            correct = (predictions(m, images, ctx.device) == labels).numpy()
            arrays[correct_name(m.name, s.name)] = correct
            rows.append(_row(m, s.name, s, correct, chance))
        rows.append(
            {
                "model": s.name,
                "setting": "construction",
                "metric": "relative_distance",
                # float64: the same summary whether the set was just made or read back
                "value": float(np.mean(result.distance, dtype=np.float64)),
                "median": float(np.median(np.asarray(result.distance, dtype=np.float64))),
                "start": float(np.mean(result.start_distance, dtype=np.float64)),
                "n": len(data),
                "set": result.folder or "",
            }
        )
    for m in models:
        rows.append({"model": m.name, "setting": "chance", "metric": "chance_accuracy",
                     "value": chance, "n": data.info.num_classes})  # fmt: skip
    arrays["images/original"] = data.images[: params.show].numpy()
    notes = [
        "a model evaluated on the set it robustified itself is marked self: that set was "
        "built from its own features",
        f"sources: {', '.join(s.name for s in sources)}; chance accuracy "
        f"1/{data.info.num_classes} = {chance:.3f}",
    ]
    return LensResult(tables={"universality": tidy(rows)}, arrays=arrays, notes=notes)


def _row(
    m: StudyModel, setting: str, source: StudyModel | None, correct: np.ndarray, chance: float
) -> dict:
    return {
        "model": m.name,
        "setting": setting,
        "metric": "accuracy",
        "value": float(correct.mean()),
        "source_eps": None if source is None else source.train_eps,
        "source_norm": None if source is None else (source.train_norm or "natural"),
        "self": source is not None and source.name == m.name,
        "n": int(correct.size),
        **interval_columns(correct),
        "chance": chance,
    }


def set_label(name: str, source: StudyModel | None) -> str:
    """A column of Table 5: ``R_0 (natural-2)`` for a natural source (its name says which
    standard model), ``R_0.05 L∞`` for a robust one."""
    if source is None:
        return f"R ({name})"
    if source.is_natural:
        return f"R_0 ({name})"
    norm = NORM_NAMES.get(source.train_norm or "", source.train_norm or "")
    return f"R_{source.train_eps:g} {norm}".rstrip()


def plot(tables, models: list[StudyModel], params: UniversalityParams, arrays=None) -> dict:
    """Every model × every set with chance marked (Tables 1/2/5/6), a standard model's accuracy
    on R_ε by the source's ε (Fig. 3), and example robustified images (Fig. 2)."""
    frame = tables["universality"]
    acc = frame[frame.metric == "accuracy"]
    chance = float(acc["chance"].iloc[0]) if len(acc) else None
    by_name = {m.name: m for m in models}
    named = list(dict.fromkeys(acc[acc.setting != "test"].setting))
    order = [m.name for m in source_order([by_name[s] for s in named if s in by_name])]
    order = ["test", *order, *(s for s in named if s not in by_name)]
    columns = ["Test"] + [set_label(s, by_name.get(s)) for s in order[1:]]
    if len(set(columns)) < len(columns):  # two sources of the same ε and norm: say which
        columns = ["Test"] + [
            c if columns.count(c) == 1 else f"{c} ({s})"
            for c, s in zip(columns[1:], order[1:], strict=True)
        ]
    names = [m.name for m in models]
    grid = np.full((len(names), len(order)), np.nan)
    selfs = np.zeros_like(grid, dtype=bool)
    for r in acc.itertuples():
        if r.model in names and r.setting in order:
            i, j = names.index(r.model), order.index(r.setting)
            grid[i, j] = r.value
            selfs[i, j] = getattr(r, "self", False) is True
    at_chance = grid <= (chance if chance is not None else -1.0)
    figures = {}
    fig, ax = new_figure(1, 1, figsize=(1.2 * len(order) + 3.5, 0.55 * len(names) + 1.8))
    image = draw_annotated_grid(ax, grid, names, columns, marks=selfs, mark="*")
    for i, j in zip(*np.nonzero(at_chance & np.isfinite(grid)), strict=True):
        ax.add_patch(_cell(i, j))
    bar = fig.colorbar(image, ax=ax, shrink=0.85, label="accuracy")
    title = "Accuracy (%) on robustified sets; * = the model's own set"
    if chance is not None:
        bar.ax.axhline(chance, color="red", lw=1.5)
        title += f"; hatched = at or below chance ({100 * chance:.1f} %, red on the scale)"
    ax.set_title(title, fontsize="small")
    figures["Accuracy on robustified test sets, every model × every source (Table 5)"] = fig
    fig, ax = new_figure(1, 1, figsize=(5.5, 3.6))
    own = acc["self"].fillna(False).astype(bool)
    for m in [m for m in models if m.is_natural]:
        part = acc[(acc.model == m.name) & (acc.setting != "test") & ~own]
        part = part.assign(eps=part.source_eps.astype(float)).sort_values("eps")
        if not part.empty:
            ax.plot(part.eps, part.value, marker="o", label=f"{m.name} on R_ε")
    if chance is not None:
        ax.axhline(chance, color="grey", ls="--", lw=1, label=f"chance ({100 * chance:.1f} %)")
    style_axes(ax, xlabel="training ε of the source model (0 = natural)", ylabel="accuracy")
    ax.set_ylim(0, 1)
    ax.legend(fontsize="x-small")
    figures["A standard model's accuracy on R_ε by the source's ε (Fig. 3)"] = fig
    if arrays is not None:
        figures.update(_examples(models, arrays, params))
    return figures


def _cell(i: int, j: int):
    # heavy: matplotlib, only when the figure is drawn
    from matplotlib.patches import Rectangle

    return Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///", edgecolor="red", lw=0)


def _examples(models: list[StudyModel], arrays, params: UniversalityParams) -> dict:
    original = arrays(models[0].name, "images/original")
    sources = [m for m in models if arrays(m.name, f"images/{m.name}") is not None]
    if original is None or not sources:
        return {}
    show = min(len(original), params.show)
    fig, axes = new_figure(show, len(sources) + 1, figsize=(1.3 * (len(sources) + 1), 1.3 * show))
    axes = np.atleast_2d(axes).reshape(show, len(sources) + 1)
    for i in range(show):
        for j, m in enumerate([*sources, None]):
            im = original[i] if m is None else arrays(m.name, f"images/{m.name}")[i]
            ax = axes[i, j]
            grey = im.shape[0] == 1
            shown = im[0] if grey else im.transpose(1, 2, 0)
            ax.imshow(shown, cmap="gray" if grey else None, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title("original" if m is None else m.name, fontsize="x-small")
    return {"Robustified images by source model (Fig. 2)": fig}


SPEC = register_lens(
    LensSpec(
        name="universality",
        title="Accuracy on robustified test sets",
        paper=SPRINGER.label,
        section="§4–5.1, Tables 1/2/5/6, Fig. 2–3",
        description=(
            "The evaluation images robustified against each source model (by default the "
            "natural and robust models of the first model's architecture; representation "
            "inversion from another image, Table 4's 400 steps of 0.05 at CIFAR-10 resolution, "
            "moved to the data's), the relative representation distance each source reached, "
            "and the accuracy of every model on every robustified set against chance, a "
            "model's own set marked."
        ),
        params=UniversalityParams,
        compute=compute,
        plot=plot,
        scope="study",
        version=4,  # accuracies carry their 95 % Wilson interval (ci_low, ci_high)
    )
)
