"""Distance to the decision boundary (Garaev et al. 2024, §5, Eq. 6–7, Table 8).

DeepFool (Moosavi-Dezfooli et al. 2016) in L2 and L∞ estimates, for each evaluation image, the
smallest perturbation that changes the model's prediction: its norm is the distance d(x) of
Eq. 7 from x to the decision boundary D of Eq. 6 around the class the model predicts for x.
DeepFool starts from the clean prediction, not the label: for a correctly classified image the
two agree (and the run is the one attack_grid's DeepFool row shares); a misclassified image
gets its own run from its predicted class, so it is not counted at distance 0 (which would
bias the mean against less accurate models). The lens reports the mean, median and
distribution of d(x) and the mean number of DeepFool iterations (Table 8's "steps"), over all
images and over the correctly classified ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from robustlens.attacks.result import AttackResult
from robustlens.attacks.spec import NORM_NAMES, AttackSpec
from robustlens.data.imageset import ImageSet
from robustlens.lenses.base import LensContext, LensResult, LensSpec, StudyModel, register_lens
from robustlens.lenses.common import adversarial, predictions, subset
from robustlens.lenses.output import palette, tidy
from robustlens.lenses.parameters import LensParams, rule
from robustlens.papers import GARAEV
from robustlens.params import Interval, ListOf, Options
from robustlens.plotting import new_figure

# Names of the arrays the claims read.


def distance_name(norm: str) -> str:
    """[N] DeepFool's ``norm`` distance to the boundary from the clean prediction (NaN: not
    crossed)."""
    return f"distance/{norm}"


@dataclass(frozen=True)
class BoundaryParams(LensParams):
    """DeepFool with at most ``steps`` iterations and overshoot 0.02 (on the total)."""

    norms: tuple[str, ...] = field(
        default=("l2", "linf"), metadata=rule(ListOf(Options(("l2", "linf")), min_len=1))
    )
    steps: int = field(default=50, metadata=rule(Interval(int, 1, None)))
    n: int | None = field(default=None, metadata=rule(Interval(int, 1, None)))


def from_prediction(
    ctx: LensContext,
    model: StudyModel,
    data: ImageSet,
    predicted: torch.Tensor,
    spec: AttackSpec,
) -> AttackResult:
    """DeepFool of every image of ``data`` started from its clean prediction (Eq. 6–7).

    Correctly classified images take the run on the true labels, shared through the attack
    cache with every lens that asks for it (attack_grid's DeepFool row); the misclassified
    ones are attacked again with their predicted class as the label, and the two are merged.
    """
    shared = adversarial(ctx, model, data, spec, early_stop=True)
    wrong = torch.nonzero(predicted != data.labels).flatten()
    if wrong.numel() == 0:
        return shared
    relabelled = ImageSet(
        data.images[wrong], predicted[wrong], data.info, data.split, data.indices[wrong]
    )
    moved = adversarial(ctx, model, relabelled, spec, early_stop=True)
    merged = AttackResult(
        shared.adversarial.clone(),
        shared.success.clone(),
        shared.norms.clone(),
        shared.iterations.clone(),
    )
    for name in ("adversarial", "success", "norms", "iterations"):
        getattr(merged, name)[wrong] = getattr(moved, name)
    return merged


def compute(
    model: StudyModel, data: ImageSet, params: BoundaryParams, ctx: LensContext
) -> LensResult:
    data = subset(data, params.n)
    predicted = predictions(model, data.images, ctx.device)
    correct = (predicted == data.labels).numpy()
    rows, arrays = [], {"correct": correct}
    for norm in params.norms:
        spec = AttackSpec("deepfool", norm, 0.0, params.steps)
        result = from_prediction(ctx, model, data, predicted, spec)
        found = result.success.numpy()
        # a sample DeepFool could not move across the boundary has no distance (NaN)
        distance = np.where(found, result.norms.numpy().astype(np.float64), np.nan)
        iterations = result.iterations.numpy().astype(np.float64)
        arrays[distance_name(norm)] = distance
        arrays[f"iterations/{norm}"] = iterations
        for subset_name, mask in (("all", np.ones_like(correct)), ("correct", correct)):
            d = distance[mask & found]
            common = {
                "model": model.name,
                "layer": "input",
                "setting": f"DeepFool {NORM_NAMES[norm]}",
                "norm": norm,
                "images": subset_name,
                "n": int(mask.sum()),
            }
            rows.append(
                {
                    **common,
                    "metric": f"mean_distance_{subset_name}",
                    "value": float(d.mean()) if d.size else np.nan,
                }
            )
            rows.append(
                {
                    **common,
                    "metric": f"median_distance_{subset_name}",
                    "value": float(np.median(d)) if d.size else np.nan,
                }
            )
        rows.append(
            {
                "model": model.name,
                "layer": "input",
                "setting": f"DeepFool {NORM_NAMES[norm]}",
                "metric": "mean_iterations",
                "value": float(iterations.mean()),
                "norm": norm,
                "n": len(data),
            }
        )
        rows.append(
            {
                "model": model.name,
                "layer": "input",
                "setting": f"DeepFool {NORM_NAMES[norm]}",
                "metric": "not_found",
                "value": float((~found).mean()),
                "norm": norm,
                "n": len(data),
            }
        )
    return LensResult(tables={"boundary": tidy(rows)}, arrays=arrays)


def plot(tables, models: list[StudyModel], params: BoundaryParams, arrays=None) -> dict:
    if arrays is None:
        return {}
    colors = palette(models)
    fig, axes = new_figure(ncols=len(params.norms), figsize=(4.4 * len(params.norms), 3.4))
    axes = np.atleast_1d(axes)
    for ax, norm in zip(axes, params.norms, strict=True):
        data, names = [], []
        for m in models:
            d = arrays(m.name, distance_name(norm))
            if d is not None:
                data.append(d[np.isfinite(d)])
                names.append(m.name)
        if not data:
            continue
        parts = ax.violinplot(data, showmedians=True)
        for body, name in zip(parts["bodies"], names, strict=True):
            body.set_facecolor(colors[name])
            body.set_alpha(0.6)
        ax.set_xticks(range(1, len(names) + 1), names, rotation=30, ha="right")
        ax.set_ylabel(f"DeepFool {NORM_NAMES[norm]} distance to the boundary")
    return {"Distance of each image to the decision boundary (Table 8)": fig}


SPEC = register_lens(
    LensSpec(
        name="boundary",
        title="Distance to the decision boundary (DeepFool)",
        paper=GARAEV.label,
        section="§5, Eq. 6–7, Table 8",
        description=(
            "DeepFool L2 and L∞ distance from each evaluation image to the decision boundary: "
            "mean, median and distribution, and the mean number of iterations."
        ),
        params=BoundaryParams,
        compute=compute,
        plot=plot,
    )
)
