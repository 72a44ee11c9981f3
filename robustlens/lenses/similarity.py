"""Similarity of clean and adversarial representations (Garaev et al. 2024, §4.1, Tables 7, A3).

SVCCA (Raghu et al. 2017) between a model's penultimate representations of clean and attacked
inputs: centre, keep the top singular directions explaining 99 % of the variance (s²), CCA,
mean correlation; linear CKA (Kornblith et al. 2019) beside it. The paper used one batch of 128
images; we use every evaluation image (CCA with few samples per dimension overstates the
correlations) and add a paired bootstrap over images, identical resamples for every model.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from robustlens.analysis import linear_cka, svcca
from robustlens.analysis.bootstrap import bootstrap_indices
from robustlens.attacks.spec import CIFAR10_DIM, PaperRows, table_label
from robustlens.data.imageset import ImageSet
from robustlens.lenses.base import LensContext, LensResult, LensSpec, StudyModel, register_lens
from robustlens.lenses.common import (
    ATTACK_LIST,
    ParsedAttacks,
    adversarial,
    attack_array,
    attack_refusals,
    repeated_attacks,
    representations,
    resolve_attacks,
    subset,
)
from robustlens.lenses.output import palette, tidy
from robustlens.lenses.parameters import Refusal, rule
from robustlens.papers import GARAEV
from robustlens.params import Interval
from robustlens.plotting import new_figure

# Names of the arrays the claims read.
SVCCA, SVCCA_BOOT = "svcca", "svcca_boot"
"""Per attack setting, ``attack_array(SVCCA, key)``: [1] SVCCA of clean and adversarial
representations; ``attack_array(SVCCA_BOOT, key)``: [resamples] on resampled images."""

TABLE_7 = ("pgd l2 0.25 100", "pgd linf 0.025 100", "fgsm l2 0.25", "fgsm linf 0.025")
"""Table 7: PGD (100 steps) and FGSM in L2 (ε 0.25) and L∞ (ε 0.025), CIFAR-10 units."""

TABLE_A3 = ("pgd l2 0.25 1000", "pgd linf 0.25 5", "fgsm l2 0.25", "fgsm linf 0.25")
"""Table A3: the best and worst PGD and FGSM rows of Tables 1–2 (CIFAR-10 units)."""

PAPER = PaperRows({"7": TABLE_7, "A3": TABLE_A3}, CIFAR10_DIM)
DEFAULT_ATTACKS = PAPER.rows()
"""Table 7's rows, then Table A3's without FGSM L2 0.25 (already in Table 7)."""


@dataclass(frozen=True)
class SimilarityParams(ParsedAttacks):
    """The attacks of Tables 7 and A3 (CIFAR-10 units, for inputs of ``reference_dim``
    values unless a row ends in ``@imagenet``/``@cifar10``/``@N``); ``keep``: variance
    fraction SVCCA keeps; ``bootstrap``: resamples over images for the claims' intervals.
    Every attack runs without early exit, so every image is attacked (FGSM too, also the
    images misclassified already): §4.1 compares clean and attacked representations of all
    images."""

    attacks: tuple[str, ...] = field(default=DEFAULT_ATTACKS, metadata=rule(ATTACK_LIST))
    reference_dim: int = field(default=CIFAR10_DIM, metadata=rule(Interval(int, 0, None)))
    keep: float = field(default=0.99, metadata=rule(Interval(float, 0, 1, closed="right")))
    n: int | None = field(default=None, metadata=rule(Interval(int, 2, None)))
    bootstrap: int = field(default=100, metadata=rule(Interval(int, 0, None)))

    def refusals(self) -> Iterator[Refusal]:
        example = "pgd l2 0.25 100"
        yield from attack_refusals("attacks", self.attacks, example=example, gradient=True)
        yield from repeated_attacks("attacks", self.attacks, self.attack_specs, self.reference_dim)


def compute(
    model: StudyModel, data: ImageSet, params: SimilarityParams, ctx: LensContext
) -> LensResult:
    data = subset(data, params.n)
    clean = representations(model, data.images, ctx.device)
    boot = bootstrap_indices(len(data), params.bootstrap, ctx.seed) if params.bootstrap else None
    rows, arrays = [], {}
    for written, run in resolve_attacks(params.attack_specs, data, params.reference_dim):
        result = adversarial(ctx, model, data, run, early_stop=False)
        adv = representations(model, result.adversarial, ctx.device)
        s = svcca(clean, adv, keep=params.keep)
        cka = linear_cka(clean, adv)
        table = PAPER.source(written, params.reference_dim)
        common = {
            "model": model.name,
            "layer": "penultimate",
            "setting": f"{run.label()} ({table_label(table)})" if table else run.label(),
            "n": len(data),
            "key": written.key(),
            "norm": run.norm,
            "attack": run.attack,
            "table": table,
        }
        rows.append(
            {
                **common,
                "metric": "svcca",
                "value": float(s.mean),
                "kept_clean": s.kept_x,
                "kept_adversarial": s.kept_y,
            }
        )
        rows.append({**common, "metric": "linear_cka", "value": float(cka)})
        arrays[attack_array(SVCCA, written.key())] = np.array([s.mean])
        arrays[f"cka/{written.key()}"] = np.array([cka])
        if boot is not None:
            arrays[attack_array(SVCCA_BOOT, written.key())] = np.array(
                [svcca(clean[i], adv[i], keep=params.keep).mean for i in boot]
            )
    return LensResult(tables={"similarity": tidy(rows)}, arrays=arrays)


def plot(tables, models: list[StudyModel], params: SimilarityParams, arrays=None) -> dict:
    frame = tables["similarity"]
    colors = palette(models)
    figures = {}
    for metric, title in (("svcca", "SVCCA"), ("linear_cka", "linear CKA")):
        part = frame[frame.metric == metric]
        settings = list(dict.fromkeys(part.setting))
        fig, ax = new_figure(figsize=(6.0, 3.4))
        width = 0.8 / max(len(models), 1)
        for i, m in enumerate(models):
            values = part[part.model == m.name].set_index("setting").reindex(settings).value
            x = np.arange(len(settings)) + (i - (len(models) - 1) / 2) * width
            ax.bar(x, values, width, color=colors[m.name], label=m.label())
        ax.set_xticks(range(len(settings)), settings, rotation=20, ha="right", fontsize="small")
        ax.set_ylim(0, 1)
        ax.set_ylabel(f"{title}(clean, adversarial)")
        ax.legend(fontsize="x-small")
        figures[f"{title} between clean and adversarial representations (Tables 7, A3)"] = fig
    return figures


SPEC = register_lens(
    LensSpec(
        name="similarity",
        title="SVCCA and CKA of clean vs adversarial representations",
        paper=GARAEV.label,
        section="§4.1, Tables 7, A3",
        description=(
            "SVCCA (99 % of the variance kept, s²) and linear CKA between each model's "
            "penultimate representations of clean and attacked evaluation images, in float64."
        ),
        params=SimilarityParams,
        version=3,  # FGSM steps every image, also the misclassified ones (§4.1)
        compute=compute,
        plot=plot,
    )
)
