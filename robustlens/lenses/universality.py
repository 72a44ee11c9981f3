"""Accuracy on robustified test sets (Springer et al. 2021, §4–5.1, Tables 1/2/5/6, Fig. 3).

Each source model C (every model of the study by default) robustifies the same evaluation
images: R_C holds, for each image x, the image whose representation under C matches x's, grown
from another image of the set (:func:`robustlens.constructed.robustify`, Table 4's schedule).
Every model of the study is then evaluated on every R_C. A model evaluated on its own R is
marked ``self``: R_C was built for C's own features, so that number says nothing about shared
features (the paper's standard model C' is evaluated on R_0 of a *different* standard model).
The construction is checked per source: the relative representation distance reached and the
source's accuracy on its own R. In a study each R is a constructed set like the training sets
(safetensors + JSON card with these checks, built in resumable chunks) in
``<study>/constructed/robustified-<split>-<source>-<key>/``, reused by later runs and loadable
with :func:`robustlens.constructed.load_set`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import torch

from robustlens.constructed.build import build_robustified
from robustlens.constructed.inversion import SEED_MODES, robustify
from robustlens.constructed.sets import CARD, load_set
from robustlens.data.imageset import ImageSet
from robustlens.errors import ConfigError
from robustlens.lenses.base import (
    LensContext,
    LensResult,
    LensSpec,
    StudyModel,
    register_lens,
    tidy,
)
from robustlens.lenses.common import predictions, subset


@dataclass(frozen=True)
class UniversalityParams:
    n: int | None = 200
    steps: int | None = None
    """Inversion steps (None: Table 4's 400, or 200 at ImageNet size)."""
    step_size: float | None = None
    """Inversion step (None: Table 4's, moved to the data's resolution like an L2 budget)."""
    seed_mode: str = "other-image"
    sources: tuple[str, ...] | None = None
    """Models that robustify (all when None)."""
    show: int = 6

    def __post_init__(self) -> None:
        if self.seed_mode not in SEED_MODES:
            raise ConfigError(
                f"unknown seed_mode {self.seed_mode!r}", fix=f"use {', '.join(SEED_MODES)}"
            )
        if (self.steps is not None and self.steps < 1) or (
            self.step_size is not None and self.step_size <= 0
        ):
            raise ConfigError("steps must be ≥ 1 and step_size > 0")
        if self.n is not None and self.n < 2:
            raise ConfigError("universality needs n ≥ 2 images")


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
    data = subset(data, params.n)
    names = [m.name for m in models]
    wanted = names if params.sources is None else list(params.sources)
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        raise ConfigError(
            f"universality sources {', '.join(unknown)} are not models of the study",
            fix=f"choose from {', '.join(names)}",
        )
    sources = [m for m in models if m.name in wanted]
    labels = data.labels
    rows, arrays = [], {"labels": labels.numpy()}
    for m in models:
        clean = (predictions(m, data.images, ctx.device) == labels).numpy()
        arrays[f"correct/{m.name}/test"] = clean
        rows.append(_row(m, "test", None, clean))
    for s in sources:
        result = robustified(ctx, s, data, params)
        images = result.images
        arrays[f"distance/{s.name}"] = result.distance
        arrays[f"images/{s.name}"] = images[: params.show].numpy()
        for m in models:
            correct = (predictions(m, images, ctx.device) == labels).numpy()
            arrays[f"correct/{m.name}/{s.name}"] = correct
            rows.append(_row(m, s.name, s, correct))
        rows.append(
            {
                "model": s.name,
                "setting": "construction",
                "metric": "relative_distance",
                "value": float(np.mean(result.distance)),
                "median": float(np.median(result.distance)),
                "start": float(np.mean(result.start_distance)),
                "n": len(data),
                "set": result.folder or "",
            }
        )
    arrays["images/original"] = data.images[: params.show].numpy()
    notes = [
        "a model evaluated on the set it robustified itself is marked self: that set was "
        "built from its own features"
    ]
    return LensResult(tables={"universality": tidy(rows)}, arrays=arrays, notes=notes)


def _row(m: StudyModel, setting: str, source: StudyModel | None, correct: np.ndarray) -> dict:
    return {
        "model": m.name,
        "setting": setting,
        "metric": "accuracy",
        "value": float(correct.mean()),
        "source_eps": None if source is None else source.train_eps,
        "source_norm": None if source is None else (source.train_norm or "natural"),
        "self": source is not None and source.name == m.name,
        "n": int(correct.size),
    }


def plot(tables, models: list[StudyModel], params: UniversalityParams, arrays=None) -> dict:
    from robustlens.study.figures import new_figure

    frame = tables["universality"]
    acc = frame[frame.metric == "accuracy"]
    order = ["test", *dict.fromkeys(acc[acc.setting != "test"].setting)]
    by_eps = {m.name: m.train_eps for m in models}
    order = ["test", *sorted(order[1:], key=lambda s: by_eps.get(s, 0.0))]
    names = [m.name for m in models]
    grid = np.full((len(names), len(order)), np.nan)
    selfs = np.zeros_like(grid, dtype=bool)
    for _, r in acc.iterrows():
        if r.model in names and r.setting in order:
            i, j = names.index(r.model), order.index(r.setting)
            grid[i, j] = r.value
            selfs[i, j] = bool(r.get("self", False) is True)
    figures = {}
    fig, ax = new_figure(1, 1, figsize=(1.2 * len(order) + 2.5, 0.55 * len(names) + 1.5))
    ax.imshow(grid, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    for i in range(len(names)):
        for j in range(len(order)):
            if np.isfinite(grid[i, j]):
                text = f"{100 * grid[i, j]:.0f}" + ("*" if selfs[i, j] else "")
                ax.text(j, i, text, ha="center", va="center", color="w", fontsize="small")
    ax.set_yticks(range(len(names)), names, fontsize="small")
    ax.set_xticks(range(len(order)), ["Test"] + [f"R from {s}" for s in order[1:]],
                  rotation=30, ha="right", fontsize="small")  # fmt: skip
    ax.set_title("Accuracy (%) on robustified sets; * = the model's own set", fontsize="small")
    figures["Accuracy on robustified test sets, every model × every source (Table 5)"] = fig
    labels = arrays(models[0].name, "labels") if arrays is not None else None
    chance = 1.0 / len(np.unique(labels)) if labels is not None and len(labels) else None
    fig, ax = new_figure(1, 1, figsize=(5.5, 3.6))
    for m in [m for m in models if m.is_natural]:
        own = acc["self"].fillna(False).astype(bool)
        part = acc[(acc.model == m.name) & (acc.setting != "test") & ~own]
        part = part.assign(eps=part.source_eps.astype(float)).sort_values("eps")
        if not part.empty:
            ax.plot(part.eps, part.value, marker="o", label=f"{m.name} on R_ε")
    if chance is not None:
        ax.axhline(chance, color="grey", ls="--", lw=1, label="chance")
    ax.set_xlabel("training ε of the source model (0 = natural)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.legend(fontsize="x-small")
    figures["A standard model's accuracy on R_ε by the source's ε (Fig. 3)"] = fig
    if arrays is not None:
        figures.update(_examples(models, arrays, params))
    return figures


def _examples(models: list[StudyModel], arrays, params: UniversalityParams) -> dict:
    from robustlens.study.figures import new_figure

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
        paper="001_3364f971c200652f (Springer et al.)",
        section="§4–5.1, Tables 1/2/5/6, Fig. 2–3",
        description=(
            "The evaluation images robustified against each source model (representation "
            "inversion from another image, Table 4's 400 steps of 0.05 at CIFAR-10 resolution, "
            "moved to the data's), the relative representation distance each source reached, "
            "and the accuracy of every model on every robustified set, a model's own set marked."
        ),
        params=UniversalityParams,
        compute=compute,
        plot=plot,
        scope="study",
    )
)
