"""Equivalence of L2 and L∞ perturbation norms (Garaev et al. 2024, §3.2, Tables 4–6, Eq. 5).

For each attack, keep the perturbations that moved the prediction away from both the label
and the clean prediction, flatten them and report C1 = min and C2 = max of ‖δ‖₂ / ‖δ‖∞ (with
the median and the fraction of misclassified adversarial inputs). For any δ ≠ 0,
1 ≤ ‖δ‖₂ / ‖δ‖∞ ≤ √d (d = number of input values), with √d reached when every value is ±‖δ‖∞.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from robustlens.attacks.spec import CIFAR10_DIM
from robustlens.data.imageset import ImageSet
from robustlens.lenses.base import LensContext, LensResult, LensSpec, StudyModel, register_lens
from robustlens.lenses.common import (
    ATTACK_LIST,
    ParsedAttacks,
    adversarial,
    attack_array,
    attack_refusals,
    predictions,
    resolve_attacks,
    subset,
)
from robustlens.lenses.output import palette, tidy
from robustlens.lenses.parameters import Refusal, rule
from robustlens.papers import GARAEV
from robustlens.params import Interval
from robustlens.plotting import new_figure

# Names of the arrays the claims read.
RATIO = "ratio"
"""Per attack setting, ``attack_array(RATIO, key)``: [N] ‖δ‖₂/‖δ‖∞ (NaN: not kept)."""
SQRT_D = "sqrt_d"
"""[1] √d of the images."""

TABLE_4 = ("pgd l2 0.25 20", "pgd linf 0.03 20", "fgsm linf 0.03")
"""Tables 4–5: PGD L2 ε = 0.25, PGD L∞ ε = 0.03, FGSM L∞ ε = 0.03 (CIFAR-10 units). The paper
does not give PGD's steps; 20 is our default."""


@dataclass(frozen=True)
class NormRatioParams(ParsedAttacks):
    """PGD runs every step (no early exit), as in the paper, so L∞ perturbations saturate;
    FGSM steps every image, also those misclassified already."""

    attacks: tuple[str, ...] = field(default=TABLE_4, metadata=rule(ATTACK_LIST))
    reference_dim: int = field(default=CIFAR10_DIM, metadata=rule(Interval(int, 0, None)))
    n: int | None = field(default=None, metadata=rule(Interval(int, 1, None)))

    def refusals(self) -> Iterator[Refusal]:
        example = "pgd l2 0.25 20"
        yield from attack_refusals("attacks", self.attacks, example=example, gradient=True)


def norm_ratios(delta: np.ndarray) -> np.ndarray:
    """‖δ‖₂ / ‖δ‖∞ per row of flattened perturbations (NaN where δ = 0)."""
    flat = delta.reshape(delta.shape[0], -1).astype(np.float64)
    l2 = np.linalg.norm(flat, axis=1)
    linf = np.abs(flat).max(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(linf > 0, l2 / linf, np.nan)


def compute(
    model: StudyModel, data: ImageSet, params: NormRatioParams, ctx: LensContext
) -> LensResult:
    data = subset(data, params.n)
    clean_pred = predictions(model, data.images, ctx.device).numpy()
    labels = data.labels.numpy()
    sqrt_d = float(np.sqrt(data.info.dimension))
    rows, arrays = [], {}
    for written, run in resolve_attacks(params.attack_specs, data, params.reference_dim):
        result = adversarial(ctx, model, data, run, early_stop=False)
        adv_pred = predictions(model, result.adversarial, ctx.device).numpy()
        misclassified = adv_pred != labels
        kept = misclassified & (adv_pred != clean_pred)
        ratio = norm_ratios((result.adversarial - data.images).numpy())
        ratio = np.where(kept, ratio, np.nan)
        arrays[attack_array(RATIO, written.key())] = ratio
        ok = ratio[~np.isnan(ratio)]
        stats = {
            "C1": float(ok.min()) if ok.size else np.nan,
            "C2": float(ok.max()) if ok.size else np.nan,
            "median": float(np.median(ok)) if ok.size else np.nan,
            "misclassified": float(misclassified.mean()),
            "kept": float(kept.mean()),
            "sqrt_d": sqrt_d,
        }
        for metric, value in stats.items():
            rows.append(
                {
                    "model": model.name,
                    "layer": "input",
                    "setting": run.label(),
                    "metric": metric,
                    "value": value,
                    "n": len(data),
                    "attack": run.attack,
                    "norm": run.norm,
                    "eps": run.eps,
                    "key": written.key(),
                }
            )
    arrays[SQRT_D] = np.array([sqrt_d])
    return LensResult(tables={"norm_ratio": tidy(rows)}, arrays=arrays)


def plot(tables, models: list[StudyModel], params: NormRatioParams, arrays=None) -> dict:
    frame = tables["norm_ratio"]
    colors = palette(models)
    settings = list(dict.fromkeys(frame.setting))
    fig, axes = new_figure(ncols=len(settings), figsize=(3.6 * len(settings), 3.4))
    axes = np.atleast_1d(axes)
    sqrt_d = float(frame[frame.metric == "sqrt_d"].value.iloc[0])
    for ax, setting in zip(axes, settings, strict=True):
        part = frame[frame.setting == setting]
        for i, m in enumerate(models):
            rows = part[part.model == m.name].set_index("metric").value
            if rows.empty or np.isnan(rows.get("C1", np.nan)):
                continue
            ax.plot([i, i], [rows["C1"], rows["C2"]], color=colors[m.name], linewidth=6, alpha=0.6)
            ax.plot(i, rows["median"], "o", color="black", markersize=4)
        ax.axhline(sqrt_d, color="black", linestyle="--", linewidth=1, label=f"√d = {sqrt_d:.1f}")
        ax.set_xticks(range(len(models)), [m.name for m in models], rotation=30, ha="right")
        ax.set_title(setting, fontsize="small")
        ax.set_ylabel("‖δ‖₂ / ‖δ‖∞ (C1–C2, median)")
        ax.legend(fontsize="x-small")
    return {"‖δ‖₂ / ‖δ‖∞ of successful perturbations against √d (Tables 4–6)": fig}


SPEC = register_lens(
    LensSpec(
        name="norm_ratio",
        title="L2 / L∞ norm ratio of adversarial perturbations",
        paper=GARAEV.label,
        section="§3.2, Tables 4–6, Eq. 5",
        description=(
            "For perturbations that change the prediction away from both the label and the "
            "clean prediction: C1 = min and C2 = max of ‖δ‖₂ / ‖δ‖∞ (and the median), with the "
            "fraction of misclassified adversarial inputs and the upper bound √d."
        ),
        params=NormRatioParams,
        compute=compute,
        plot=plot,
        version=2,  # FGSM without early exit steps every image, also misclassified ones
    )
)
