"""Unseen attacks (Garaev et al. 2024, §3.1, Tables 1–3, A1).

Every model against a grid of attacks it was not trained on — FGSM and PGD in L1, L2 and L∞,
Carlini–Wagner L2 and DeepFool L2 — at the budgets and steps of Tables 1–2 (ResNet50, CIFAR-10
units) and Table A1 (InceptionV3, ImageNet 224 × 224 units), each moved to the data set's
resolution (see :mod:`robustlens.attacks.spec`). Table 3 (ResNet18, CIFAR-10) gives no budgets
of its own: it reuses the PGD and FGSM rows of Table 1, so it adds no rows. Each row reports
accuracy under attack; for the minimal-norm attacks (C&W, DeepFool) a sample counts as robust
when the perturbation they find is larger than the row's budget.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from robustlens.attacks.spec import (
    CIFAR10_DIM,
    AttackSpec,
    PaperRows,
    reference_name,
    table_label,
)
from robustlens.data.imageset import ImageSet
from robustlens.lenses.base import LensContext, LensResult, LensSpec, StudyModel, register_lens
from robustlens.lenses.common import (
    ATTACK_LIST,
    ParsedAttacks,
    adversarial,
    attack_array,
    attack_refusals,
    predictions,
    repeated_attacks,
    resolve_attacks,
    subset,
)
from robustlens.lenses.output import interval_columns, palette, tidy
from robustlens.lenses.parameters import Refusal, rule
from robustlens.papers import GARAEV
from robustlens.params import Interval
from robustlens.plotting import new_figure

# Names of the per-image arrays the claims read.
CLEAN = "clean"
"""[N] correct on the clean images."""
ROBUST = "robust"
"""Per attack setting, ``attack_array(ROBUST, key)``: [N] correct under the attack."""

TABLE_1 = (
    "fgsm l1 0.5",
    "fgsm l2 0.25",
    "fgsm linf 0.25",
    "fgsm linf 0.025",
    "pgd l1 0.5 100",
    "pgd l2 0.25 1000",
    "pgd l2 0.5 100",
    "pgd linf 0.025 5",
    "pgd linf 0.25 5",
    "cw l2 0.25 10",
    "deepfool l2 0.25",
)
"""The attack rows of Tables 1–2 (CIFAR-10 budgets; C&W with 10 optimisation steps)."""

TABLE_A1 = (
    "fgsm l2 0.25 @imagenet",
    "fgsm linf 0.25 @imagenet",
    "fgsm linf 0.025 @imagenet",
    "pgd l2 100 5 @imagenet",
    "pgd l2 45 100 @imagenet",
    "pgd l2 0.5 100 @imagenet",
    "pgd linf 0.5 5 @imagenet",
    "pgd linf 1 5 @imagenet",
    "cw l2 0.25 10 @imagenet",
    "deepfool l2 0.25 @imagenet",
)
"""The attack rows of Table A1 (InceptionV3; budgets for 3 × 224 × 224 inputs, which §3.1 gives
as the reason they differ from Table 1's)."""

PAPER = PaperRows({"1–2": TABLE_1, "A1": TABLE_A1}, CIFAR10_DIM)
DEFAULT_ATTACKS = PAPER.rows()
"""Tables 1–2 then A1, without A1's FGSM L∞ 0.25 and 0.025 (L∞ budgets are not rescaled, so
they are Table 1's rows again)."""


@dataclass(frozen=True)
class AttackGridParams(ParsedAttacks):
    """``attacks``: "ATTACK NORM EPS [STEPS] [@REFERENCE]" rows (Tables 1–2 and A1); a row
    ending in ``@imagenet``, ``@cifar10`` or ``@N`` gives ε for that input size, the others
    for inputs of ``reference_dim`` values (CIFAR-10's 3 072; 0 = use ε as written);
    ``n``: evaluation images (all when unset); ``cw_binary_steps``: C&W's searches over c."""

    attacks: tuple[str, ...] = field(default=DEFAULT_ATTACKS, metadata=rule(ATTACK_LIST))
    reference_dim: int = field(default=CIFAR10_DIM, metadata=rule(Interval(int, 0, None)))
    n: int | None = field(default=None, metadata=rule(Interval(int, 1, None)))
    cw_binary_steps: int = field(default=9, metadata=rule(Interval(int, 1, None)))

    def refusals(self) -> Iterator[Refusal]:
        yield from attack_refusals("attacks", self.attacks)
        yield from repeated_attacks("attacks", self.attacks, self.attack_specs, self.reference_dim)


def setting_label(written: AttackSpec, run: AttackSpec, table: str) -> str:
    """The row's name in the report: the attack as run, its paper table and, where it was
    moved, the budget as written, e.g. ``PGD-100 L2 ε=3.25 (Table A1: ε=45)``."""
    moved = run.eps != written.eps
    if table:
        extra = f"{table_label(table)}: ε={written.eps:g}" if moved else table_label(table)
    else:
        extra = f"written ε={written.eps:g}" if moved else ""
    return f"{run.label()} ({extra})" if extra else run.label()


def compute(
    model: StudyModel, data: ImageSet, params: AttackGridParams, ctx: LensContext
) -> LensResult:
    data = subset(data, params.n)
    clean = (predictions(model, data.images, ctx.device) == data.labels).numpy()
    rows = [
        {
            "model": model.name,
            "layer": "input",
            "setting": "no attack",
            "metric": "accuracy",
            "value": float(clean.mean()),
            "n": len(data),
            **interval_columns(clean),
            "attack": "none",
            "norm": "",
            "eps": 0.0,
            "eps_paper": 0.0,
            "reference": 0,
            "steps": 0,
            "table": "",
        }
    ]
    arrays = {CLEAN: clean}
    settings: set[str] = set()
    moved: dict[int, None] = {}
    for written, run in resolve_attacks(params.attack_specs, data, params.reference_dim):
        table = PAPER.source(written, params.reference_dim)
        setting = setting_label(written, run, table)
        if setting in settings:  # budgets equal to 3 digits: name the row as written
            setting = f"{setting} [{written.key()}]"
        settings.add(setting)
        reference = written.reference_for(params.reference_dim)
        if run.eps != written.eps:
            moved[reference] = None
        result = adversarial(
            ctx, model, data, run, early_stop=True, cw_binary_steps=params.cw_binary_steps
        )
        fooled = result.success.numpy()
        if run.minimal_norm:
            fooled = fooled & (result.norms.numpy() <= run.eps * (1 + 1e-6))
        robust = clean & ~fooled
        arrays[attack_array(ROBUST, written.key())] = robust
        rows.append(
            {
                "model": model.name,
                "layer": "input",
                "setting": setting,
                "metric": "accuracy",
                "value": float(robust.mean()),
                "n": len(data),
                **interval_columns(robust),
                "attack": run.attack,
                "norm": run.norm,
                "eps": run.eps,
                "eps_paper": written.eps,
                "reference": reference,
                "steps": run.steps or 0,
                "table": table,
                "key": written.key(),
            }
        )
    dim = data.info.dimension
    notes = [
        f"budgets written for {reference_name(ref)} are moved to {dim} input values "
        f"(L∞ unchanged, L2 × {np.sqrt(dim / ref):.3f}, L1 × {dim / ref:.3f})"
        for ref in moved
    ]
    return LensResult(tables={"attack_grid": tidy(rows)}, arrays=arrays, notes=notes)


def plot(tables, models: list[StudyModel], params: AttackGridParams, arrays=None) -> dict:
    frame = tables["attack_grid"]
    colors = palette(models)
    settings = list(dict.fromkeys(frame.setting))
    # at most 10 inches wide (the report's width), taller as the attack names need
    width = min(10.0, max(6.0, 0.6 * len(settings) * max(len(models), 1) ** 0.5))
    fig, ax = new_figure(figsize=(width, 4.6))
    bar = 0.8 / max(len(models), 1)
    for i, m in enumerate(models):
        part = frame[frame.model == m.name].set_index("setting").reindex(settings)
        x = np.arange(len(settings)) + (i - (len(models) - 1) / 2) * bar
        ax.bar(x, part.value, bar, color=colors[m.name], label=m.label())
    ax.set_xticks(range(len(settings)), settings, rotation=45, ha="right", fontsize="small")
    ax.set_xlabel("attack (method, norm, ε, steps)")
    ax.set_ylabel("accuracy under attack (fraction of images)")
    ax.set_ylim(0, 1)
    # above the axes: inside, it hides the bars of the first settings
    ax.legend(fontsize="x-small", ncols=min(len(models), 4), loc="lower left",
              bbox_to_anchor=(0.0, 1.01), frameon=False)  # fmt: skip
    return {"Accuracy under attacks the models were not trained on (Tables 1–3, A1)": fig}


SPEC = register_lens(
    LensSpec(
        name="attack_grid",
        title="Unseen attacks: FGSM, PGD (L1, L2, L∞), C&W, DeepFool",
        paper=GARAEV.label,
        section="§3.1, Tables 1–3, A1",
        description=(
            "Accuracy of every model under a grid of attacks it was not trained on, at the "
            "paper's budgets and steps (Tables 1–2 in CIFAR-10 units, A1 in ImageNet 224 × 224 "
            "units, moved to the data set's resolution; rows are marked with their table). "
            "C&W and DeepFool find minimal perturbations: a sample is robust when theirs "
            "exceeds the row's budget."
        ),
        params=AttackGridParams,
        # 3: accuracy rows carry their 95 % Wilson interval (ci_low, ci_high); 2: rows carry
        # their reference and paper table
        version=3,
        compute=compute,
        plot=plot,
    )
)
