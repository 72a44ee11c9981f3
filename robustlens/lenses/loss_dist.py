"""Loss distributions under attack (Garaev et al. 2024, §3.3, Fig. 1–3).

Per-sample cross-entropy on clean inputs and under PGD L2 (ε = 0.5, 10 steps) and PGD L∞
(ε = 0.05, 5 steps), CIFAR-10 units moved to the data set's resolution; histograms with KDE
overlays, one panel per model; and the proxy A-distance 2(1 − 2·err) between the clean and
each adversarial loss distribution, err being the cross-validated error of a classifier that
tells them apart (Ben-David et al. 2007), with folds drawn over images so that the clean and
the attacked copy of an image are always held out together (the two samples are paired).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import gaussian_kde

from robustlens.analysis import proxy_a_distance
from robustlens.attacks.spec import CIFAR10_DIM
from robustlens.data.imageset import ImageSet
from robustlens.lenses.base import LensContext, LensResult, LensSpec, StudyModel, register_lens
from robustlens.lenses.common import (
    ATTACK_LIST,
    ParsedAttacks,
    adversarial,
    attack_array,
    attack_refusals,
    per_sample_loss,
    resolve_attacks,
    subset,
)
from robustlens.lenses.output import palette, tidy
from robustlens.lenses.parameters import Refusal, rule
from robustlens.papers import GARAEV
from robustlens.params import Interval
from robustlens.plotting import new_figure

# Names of the arrays the claims read.
A_ERRORS = "a_errors"
"""Per attack setting, ``attack_array(A_ERRORS, key)``: [2, N] out-of-fold errors of the
domain classifier on the clean and the attacked copy of each image."""

LOSS = "loss"
"""Per-image cross-entropy [N]: ``attack_array(LOSS, "clean")`` on the clean images and
``attack_array(LOSS, key)`` under each attack setting (the claims refit the A-distance's
classifier on them)."""
CLEAN_LOSS = "clean"

PAPER_ATTACKS = ("pgd l2 0.5 10", "pgd linf 0.05 5")


@dataclass(frozen=True)
class LossDistParams(ParsedAttacks):
    attacks: tuple[str, ...] = field(default=PAPER_ATTACKS, metadata=rule(ATTACK_LIST))
    reference_dim: int = field(default=CIFAR10_DIM, metadata=rule(Interval(int, 0, None)))
    n: int | None = field(default=None, metadata=rule(Interval(int, 1, None)))
    folds: int = field(default=5, metadata=rule(Interval(int, 2, None)))

    def refusals(self) -> Iterator[Refusal]:
        example = "pgd l2 0.5 10"
        yield from attack_refusals("attacks", self.attacks, example=example, gradient=True)


def compute(
    model: StudyModel, data: ImageSet, params: LossDistParams, ctx: LensContext
) -> LensResult:
    data = subset(data, params.n)
    clean = per_sample_loss(model, data.images, data.labels, ctx.device)
    arrays = {attack_array(LOSS, CLEAN_LOSS): clean}
    rows = [
        {
            "model": model.name,
            "layer": "output",
            "setting": "clean",
            "metric": "mean_loss",
            "value": float(clean.mean()),
            "n": len(data),
            "key": "clean",
        }
    ]
    for written, run in resolve_attacks(params.attack_specs, data, params.reference_dim):
        result = adversarial(ctx, model, data, run, early_stop=False)
        loss = per_sample_loss(model, result.adversarial, data.labels, ctx.device)
        arrays[attack_array(LOSS, written.key())] = loss
        # clean[i] and loss[i] are the same image: paired folds keep its two copies together
        a = proxy_a_distance(clean, loss, folds=params.folds, seed=ctx.seed, paired=True)
        # Per-image out-of-fold errors on the clean and the attacked copy: claims bootstrap
        # over images with them.
        arrays[attack_array(A_ERRORS, written.key())] = np.stack([a.errors_a, a.errors_b]).astype(
            bool
        )
        common = {
            "model": model.name,
            "layer": "output",
            "setting": run.label(),
            "n": len(data),
            "key": written.key(),
        }
        rows.append({**common, "metric": "mean_loss", "value": float(loss.mean())})
        rows.append({**common, "metric": "a_distance", "value": float(a.distance)})
        rows.append({**common, "metric": "classifier_error", "value": float(a.error)})
    return LensResult(tables={"loss_dist": tidy(rows)}, arrays=arrays)


def plot(tables, models: list[StudyModel], params: LossDistParams, arrays=None) -> dict:
    figures = {}
    if arrays is not None:
        keys = ["clean", *(k for k in dict.fromkeys(tables["loss_dist"].key) if k != "clean")]
        losses = {
            m.name: {k: v for k in keys if (v := arrays(m.name, f"loss/{k}")) is not None}
            for m in models
        }
        figures.update(plot_distributions(models, losses))

    frame = tables["loss_dist"]
    colors = palette(models)
    fig, ax = new_figure()
    settings = [s for s in dict.fromkeys(frame.setting) if s != "clean"]
    width = 0.8 / max(len(models), 1)
    for i, m in enumerate(models):
        part = frame[(frame.model == m.name) & (frame.metric == "a_distance")].set_index("setting")
        x = np.arange(len(settings)) + (i - (len(models) - 1) / 2) * width
        ax.bar(x, part.reindex(settings).value, width, color=colors[m.name], label=m.label())
    ax.set_xticks(range(len(settings)), settings, fontsize="small")
    ax.set_ylabel("proxy A-distance (clean vs attacked)")
    ax.set_ylim(0, 2)
    ax.legend(fontsize="x-small")
    figures["A-distance between clean and adversarial loss distributions (§3.3)"] = fig
    return figures


def plot_distributions(models: list[StudyModel], losses: dict[str, dict[str, np.ndarray]]) -> dict:
    """Histograms with KDE overlays, one panel per model (Fig. 1–3)."""
    fig, axes = new_figure(ncols=len(models), figsize=(3.4 * len(models), 3.0))
    axes = np.atleast_1d(axes)
    shades = ["#444444", "#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    for ax, m in zip(axes, models, strict=True):
        per_setting = losses.get(m.name, {})
        top = max((np.quantile(v, 0.99) for v in per_setting.values() if v.size), default=1.0)
        grid = np.linspace(0, max(top, 1e-3), 200)
        for color, (setting, values) in zip(shades, per_setting.items(), strict=False):
            ax.hist(values, bins=40, range=(0, grid[-1]), density=True, alpha=0.3, color=color)
            if values.size > 1 and np.ptp(values) > 0:
                ax.plot(grid, gaussian_kde(values)(grid), color=color, label=setting)
        ax.set_title(m.label(), fontsize="small")
        ax.set_xlabel("cross-entropy loss")
        ax.legend(fontsize="x-small")
    return {"Per-sample loss: clean and attacked, histograms with KDE (Fig. 1–3)": fig}


SPEC = register_lens(
    LensSpec(
        name="loss_dist",
        title="Loss distributions under L2 and L∞ attacks",
        paper=GARAEV.label,
        section="§3.3, Fig. 1–3",
        description=(
            "Per-sample cross-entropy on clean inputs and under PGD L2 and PGD L∞, and the proxy "
            "A-distance 2(1 − 2·err) between the clean and each adversarial loss distribution "
            "(err: 5-fold cross-validated error of a logistic classifier on the loss)."
        ),
        params=LossDistParams,
        compute=compute,
        plot=plot,
        version=2,  # FGSM without early exit steps every image, also misclassified ones
    )
)
