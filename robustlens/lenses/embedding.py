"""Representations in two dimensions (Garaev et al. 2024, §4.2, Fig. 4–8).

PCA of penultimate representations to 2-D for clean, L2-PGD and L∞-PGD inputs (20 steps, as
in Fig. 5–8), coloured by class, one row per model. The PCA is fitted on the clean
representations and the attacked ones are projected on the same axes, so a drift shows as
movement. Because pictures alone do not compare, the lens also measures how mixed the classes
are: the k-nearest-neighbour class agreement in the full representation space and in 2-D.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from robustlens.analysis import knn_agreement, pca_2d
from robustlens.attacks.spec import CIFAR10_DIM
from robustlens.data.imageset import ImageSet
from robustlens.lenses.base import LensContext, LensResult, LensSpec, StudyModel, register_lens
from robustlens.lenses.common import (
    ParsedAttacks,
    adversarial,
    attack_refusals,
    representations,
    resolve_attacks,
    subset,
)
from robustlens.lenses.output import tidy
from robustlens.lenses.parameters import Refusal, rule
from robustlens.papers import GARAEV
from robustlens.params import Interval
from robustlens.plotting import new_figure

FIGURES_5_8 = ("pgd l2 0.25 20", "pgd linf 0.025 20")
"""Fig. 5–8 use PGD with 20 steps; the paper gives no ε there, so Table 7's budgets are used."""


@dataclass(frozen=True)
class EmbeddingParams(ParsedAttacks):
    attacks: tuple[str, ...] = FIGURES_5_8
    reference_dim: int = field(default=CIFAR10_DIM, metadata=rule(Interval(int, 0, None)))
    k: int = field(default=10, metadata=rule(Interval(int, 1, None)))
    n: int | None = None

    def refusals(self) -> Iterator[Refusal]:
        example = "pgd l2 0.25 20"
        yield from attack_refusals("attacks", self.attacks, example=example, gradient=True)
        if self.n is not None and self.n <= self.k:
            yield Refusal("n", self.n, f"a whole number > k ({self.k}) or nothing (leave it out)")


def compute(
    model: StudyModel, data: ImageSet, params: EmbeddingParams, ctx: LensContext
) -> LensResult:
    data = subset(data, params.n)
    labels = data.labels.numpy()
    reps = {"clean": representations(model, data.images, ctx.device)}
    names = {"clean": "clean"}
    for written, run in resolve_attacks(params.attack_specs, data, params.reference_dim):
        result = adversarial(ctx, model, data, run, early_stop=False)
        reps[written.key()] = representations(model, result.adversarial, ctx.device)
        names[written.key()] = run.label()
    keys = list(reps)
    pca = pca_2d(reps["clean"], *(reps[k] for k in keys[1:]))
    projected, explained = pca.projections, pca.explained_variance_ratio
    rows, arrays = [], {"labels": labels}
    for key, points in zip(keys, projected, strict=True):
        arrays[f"pca/{key}"] = points
        common = {
            "model": model.name,
            "layer": "penultimate",
            "setting": names[key],
            "key": key,
            "n": len(data),
            "k": params.k,
        }
        rows.append(
            {
                **common,
                "metric": "knn_agreement_full",
                "value": knn_agreement(reps[key], labels, k=params.k),
            }
        )
        rows.append(
            {
                **common,
                "metric": "knn_agreement_2d",
                "value": knn_agreement(points, labels, k=params.k),
            }
        )
    rows.append(
        {
            "model": model.name,
            "layer": "penultimate",
            "setting": "clean",
            "metric": "pca_explained_variance",
            "value": float(np.sum(explained)),
            "key": "clean",
        }
    )
    return LensResult(tables={"embedding": tidy(rows)}, arrays=arrays)


def plot(tables, models: list[StudyModel], params: EmbeddingParams, arrays=None) -> dict:
    from matplotlib import colormaps  # heavy: matplotlib, only when drawing
    from matplotlib.lines import Line2D

    if arrays is None:
        return {}
    frame = tables["embedding"]
    keys = list(dict.fromkeys(frame[frame.metric == "knn_agreement_2d"].key))
    names = dict(zip(frame.key, frame.setting, strict=False))
    fig, axes = new_figure(
        nrows=len(models), ncols=len(keys), figsize=(3.0 * len(keys), 2.8 * len(models))
    )
    axes = np.atleast_2d(axes).reshape(len(models), len(keys))
    for row, m in zip(axes, models, strict=True):
        labels = arrays(m.name, "labels")
        for ax, key in zip(row, keys, strict=True):
            points = arrays(m.name, f"pca/{key}")
            if points is None or labels is None:
                ax.set_axis_off()
                continue
            ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=3, vmin=0, vmax=9)
            agreement = frame[
                (frame.model == m.name) & (frame.key == key) & (frame.metric == "knn_agreement_2d")
            ].value
            ax.set_title(
                f"{m.name}: {names.get(key, key)}\nkNN agreement {float(agreement.iloc[0]):.2f}",
                fontsize="x-small",
            )
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel("PC 1 of the clean features", fontsize="x-small")
            ax.set_ylabel("PC 2", fontsize="x-small")
    cmap = colormaps["tab10"]
    marks = [Line2D([], [], ls="", marker="o", ms=4, color=cmap(k)) for k in range(10)]
    fig.legend(marks, [f"class {k}" for k in range(10)], loc="outside upper center", ncols=10,
               fontsize="x-small", frameon=False)  # fmt: skip
    return {"Penultimate representations in 2-D (PCA fitted on clean), by class (Fig. 4–8)": fig}


SPEC = register_lens(
    LensSpec(
        name="embedding",
        title="PCA of clean and adversarial representations",
        paper=GARAEV.label,
        section="§4.2, Fig. 4–8",
        description=(
            "Penultimate representations of clean, L2-PGD and L∞-PGD inputs projected on the "
            "two principal axes of the clean ones, coloured by class; the k-nearest-neighbour "
            "class agreement (k = 10) in the full space and in 2-D measures how mixed the "
            "classes are."
        ),
        params=EmbeddingParams,
        compute=compute,
        plot=plot,
        version=2,  # FGSM without early exit steps every image, also misclassified ones
    )
)
