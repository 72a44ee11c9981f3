"""A gradient-masking audit of every model (Athalye, Carlini & Wagner 2018, §5; Carlini et al.
2019, "On evaluating adversarial robustness", §4–5).

A robust accuracy measured by a gradient attack is an upper bound that masked gradients can make
loose. Per model, at its audit budget (a robust model's own training norm and ε; the others
L∞ at RobustBench's budget, moved to the data's resolution), the lens runs the checks those
papers list and records each as a flag, *raised*, *clear* or *not computed* (with the reason),
with the numbers behind it:

1. ``single-step``: FGSM leaves fewer images robust than PGD at the same ε (exact one-sided
   McNemar test on the images the two disagree on, at ``alpha``);
2. ``eps-trend``: accuracy rises with ε on a grid of multiples of the budget (McNemar per pair,
   Bonferroni over the pairs), or stays above chance at a large ε: L∞ 0.5, L2 0.5·√d, L1 0.5·d
   (every image can be moved to the grey image 0.5 there, so a working attack leaves at most the
   largest class share; exact one-sided binomial test against that share);
3. ``black-box``: a gradient-free attack (see :data:`BLACK_BOX`) breaks images the white-box
   attacks (PGD, the stronger PGD and FGSM, per image worst case) do not (McNemar);
4. ``unconverged``: a stronger white-box attack lowers the accuracy (per image worst case)
   by more than ``unconverged_points`` points: PGD with ``more_steps`` × the steps and
   ``restarts`` restarts, and APGD-T (Croce & Hein 2020 §4: the targeted DLR loss toward
   ``apgd_targets`` classes, as many iterations; at least 4 classes), the part of AutoAttack
   that catches a cross-entropy loss saturated or badly scaled (PGD-CE's blind spot);
5. ``transfer``: PGD examples made on the study's natural model (the surrogate) and transferred
   break images the white-box attacks do not (McNemar);
6. ``gradients``: the input gradient of the logit margin is zero or not finite on more than
   ``gradient_fraction`` of the images; ``probabilities``: every output row is non-negative and
   sums to 1 (a softmax inside the model saturates the attacks' loss); ``randomness``: two
   forward passes in eval mode differ (a randomised model: evaluate it with expectation over
   transformation, AutoAttack's ``rand`` version).

The table ``masking`` has, per model and flag, a row ``metric = "raised"`` (1 raised, 0 clear,
NaN not computed; ``status`` and ``reason`` columns) and one row per number behind it.
:func:`raised_flags` reads which flags a model carries; the study results hand them to the
claims and the report.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.stats import binom
from torch import nn

from robustlens.attacks.apgd import APGDT
from robustlens.attacks.base import Attack
from robustlens.attacks.pgd import PGD
from robustlens.attacks.random_search import RandomSearch, margin
from robustlens.attacks.spec import CIFAR10_DIM, NORM_NAMES, AttackSpec, scale_eps
from robustlens.attacks.square import Square
from robustlens.attacks.threat import ThreatModel, threat_model
from robustlens.data.imageset import ImageSet
from robustlens.errors import ConfigError
from robustlens.lenses.base import LensContext, LensResult, LensSpec, StudyModel, register_lens
from robustlens.lenses.common import ATTACK_BATCH, adversarial, subset
from robustlens.lenses.output import tidy
from robustlens.lenses.parameters import LensParams, Refusal, rule
from robustlens.params import Interval, ListOf, Options
from robustlens.plotting import new_figure

RAISED, CLEAR, NOT_COMPUTED = "raised", "clear", "not computed"
TABLE = "masking"
FLAGS = {
    "single-step": "single-step attack stronger than iterative",
    "eps-trend": "accuracy does not fall to chance as ε grows",
    "black-box": "black-box attack stronger than white-box",
    "unconverged": "more steps, restarts or APGD-T's margin loss still lower the accuracy",
    "transfer": "transfer from a natural surrogate stronger than white-box",
    "gradients": "zero or non-finite input gradients",
    "probabilities": "outputs are probabilities, not logits",
    "randomness": "outputs change between forward passes (randomised model: use EOT / 'rand')",
}
"""Every flag of the audit, in order, with what it means when raised."""

BLACK_BOX: dict[str, tuple[Callable[[nn.Module, ThreatModel, int, int], Attack], tuple]] = {
    "square": (lambda m, t, q, s: Square(m, t, q, seed=s), ("linf", "l2", "l1")),
    "random-search": (lambda m, t, q, s: RandomSearch(m, t, q, seed=s), ("linf", "l2")),
}
"""Black-box attacks flag 3 can use: name → (``make(model, threat, queries, seed)``, norms):
the Square attack (Andriushchenko et al. 2020; AutoAttack's black-box component, 5 000
queries there) by default, and a plain score-based random search."""

RECOMMEND = {
    "single-step": "attack with APGD / more steps from several starts; do not trust PGD alone",
    "eps-trend": "check the attack at large ε; a correct attack reaches chance there",
    "black-box": "evaluate with a black-box attack (Square) beside the white-box ones",
    "unconverged": (
        "raise the steps and restarts until the accuracy stops falling, and evaluate with "
        "AutoAttack (robustlens eval --attack autoattack)"
    ),
    "transfer": "add transfer attacks from the natural model to the evaluation",
    "gradients": "use BPDA or a smooth surrogate for the non-differentiable part",
    "probabilities": "attack the logits (remove the softmax) or use a margin loss",
    "randomness": "evaluate with expectation over the randomness (AutoAttack 'rand')",
}
BUDGETS = {"linf": 8 / 255, "l2": 0.5, "l1": 12.0}
"""RobustBench's budgets at CIFAR-10 resolution (L1: Croce & Hein 2021), for the models that
were not adversarially trained in the audit norm."""


@dataclass(frozen=True)
class MaskingParams(LensParams):
    """``n``: images audited per model; ``norm``: the audit norm ("auto": a robust model's
    training norm, L∞ for the others); ``eps``: the audit budget for every model (None: a robust
    model's training ε in its norm, else RobustBench's budget), in units of inputs of
    ``reference_dim`` values (0: as written); ``steps``: the PGD of record; ``more_steps`` ×
    steps with ``restarts`` restarts, and APGD-T toward ``apgd_targets`` classes (0: none) as
    many iterations: the convergence check; ``eps_grid``: multiples of the
    budget for the ε trend (the large ε is added); ``queries``: the black-box attack's budget;
    ``surrogate``: the natural model transferred from (None: the study's first natural one);
    ``alpha``: the tests' level; ``unconverged_points``, ``gradient_fraction``: thresholds."""

    n: int | None = field(default=200, metadata=rule(Interval(int, 10, None)))
    norm: str = field(default="auto", metadata=rule(Options(("auto", "linf", "l2", "l1"))))
    eps: float | None = field(default=None, metadata=rule(Interval(float, 0, None, closed="right")))
    reference_dim: int = field(default=CIFAR10_DIM, metadata=rule(Interval(int, 0, None)))
    steps: int = field(default=20, metadata=rule(Interval(int, 1, None)))
    more_steps: int = field(default=5, metadata=rule(Interval(int, 1, None)))
    restarts: int = field(default=2, metadata=rule(Interval(int, 1, None)))
    apgd_targets: int = field(default=3, metadata=rule(Interval(int, 0, None)))
    eps_grid: tuple[float, ...] = field(
        default=(0.5, 1.0, 2.0),
        metadata=rule(ListOf(Interval(float, 0, None, closed="right"), min_len=1)),
    )
    queries: int = field(default=500, metadata=rule(Interval(int, 1, None)))
    black_box: str = field(default="square", metadata=rule(Options(tuple(BLACK_BOX))))
    surrogate: str | None = None
    alpha: float = field(default=0.05, metadata=rule(Interval(float, 0, 1, closed="neither")))
    unconverged_points: float = field(default=1.0, metadata=rule(Interval(float, 0, 100)))
    gradient_fraction: float = field(default=0.01, metadata=rule(Interval(float, 0, 1)))

    def refusals(self) -> Iterator[Refusal]:
        if self.more_steps == 1 and self.restarts == 1:
            yield Refusal(
                "more_steps",
                self.more_steps,
                "more than 1 when restarts = 1",
                hint="the convergence check needs more steps or more restarts than PGD's own",
            )


@dataclass
class Flag:
    """One check on one model: its status, why, and the numbers behind it."""

    name: str
    status: str
    reason: str
    numbers: dict[str, float] = field(default_factory=dict)


def raised_flags(frame: pd.DataFrame) -> dict[str, list[str]]:
    """Model → the flags raised on it (in :data:`FLAGS` order), from a ``masking`` table."""
    rows = frame[(frame["metric"] == "raised") & (frame["status"] == RAISED)]
    out: dict[str, list[str]] = {}
    for model, flag in zip(rows["model"], rows["setting"], strict=True):
        out.setdefault(str(model), []).append(str(flag))
    order = list(FLAGS)
    return {m: sorted(f, key=order.index) for m, f in out.items()}


# ------------------------------------------------------------------------------ statistics


def stronger_p(only_a: int, only_b: int) -> float:
    """Exact one-sided McNemar p-value that attack A breaks more images than B: P(X ≥ only_a)
    for X ~ Binomial(only_a + only_b, 1/2) (the images exactly one of them breaks)."""
    total = only_a + only_b
    return 1.0 if only_a == 0 else float(binom.sf(only_a - 1, total, 0.5))


def paired(robust_a: np.ndarray, robust_b: np.ndarray, a: str, b: str) -> dict[str, float]:
    """Accuracies of A and B, the discordant counts and :func:`stronger_p` (A stronger)."""
    only_a = int((~robust_a & robust_b).sum())
    only_b = int((robust_a & ~robust_b).sum())
    return {
        f"{a}_accuracy": float(robust_a.mean()),
        f"{b}_accuracy": float(robust_b.mean()),
        f"broken_by_{a}_only": only_a,
        f"broken_by_{b}_only": only_b,
        "p_value": stronger_p(only_a, only_b),
    }


def large_eps(norm: str, dim: int) -> float:
    """The radius in ``norm`` that reaches the grey image 0.5 from any image in [0, 1]^dim."""
    return {"linf": 0.5, "l2": 0.5 * math.sqrt(dim), "l1": 0.5 * dim}[norm]


# --------------------------------------------------------------------------------- the audit


@dataclass
class Audit:
    """What the checks of one model share: its images, budget and per-image outcomes."""

    model: StudyModel
    data: ImageSet
    params: MaskingParams
    ctx: LensContext
    norm: str
    eps: float
    clean: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.clean = self.correct(self.data.images)

    def correct(self, images: torch.Tensor) -> np.ndarray:
        out = []
        with torch.no_grad():
            for i in range(0, len(images), ATTACK_BATCH):
                logits = self.model.model(images[i : i + ATTACK_BATCH].to(self.ctx.device))
                out.append(logits.argmax(1).cpu())
        return (torch.cat(out) == self.data.labels).numpy()

    def robust(self, spec: AttackSpec, *, source: StudyModel | None = None) -> np.ndarray:
        """Images correct on the clean image and under the attack (made on ``source``, when
        given, and transferred)."""
        made_on = source or self.model
        result = adversarial(self.ctx, made_on, self.data, spec, early_stop=source is None)
        return self.clean & self.correct(result.adversarial)

    def run(self, attack: Attack) -> np.ndarray:
        x, y = self.data.images.to(self.ctx.device), self.data.labels.to(self.ctx.device)
        result = attack.run(x, y, batch_size=ATTACK_BATCH)
        return self.clean & ~result.success.cpu().numpy()

    def pgd(self, eps: float | None = None) -> np.ndarray:
        return self.robust(
            AttackSpec("pgd", self.norm, self.eps if eps is None else eps, self.params.steps)
        )


def audit_budget(model: StudyModel, params: MaskingParams, dim: int) -> tuple[str, float]:
    """(norm, ε) a model is audited at, ε in the data's own units."""
    trained = model.train_norm if model.is_robust else None
    norm = params.norm if params.norm != "auto" else trained or "linf"
    if params.eps is not None:
        return norm, scale_eps(norm, params.eps, dim, params.reference_dim)
    if trained == norm:
        return norm, model.train_eps
    return norm, scale_eps(norm, BUDGETS[norm], dim, params.reference_dim)


def single_step(a: Audit, pgd: np.ndarray, fgsm: np.ndarray) -> Flag:
    numbers = paired(fgsm, pgd, "fgsm", "pgd")
    up = numbers["p_value"] < a.params.alpha
    why = (
        f"FGSM {numbers['fgsm_accuracy']:.3f} vs PGD-{a.params.steps} "
        f"{numbers['pgd_accuracy']:.3f}; FGSM alone breaks {numbers['broken_by_fgsm_only']}, "
        f"PGD alone {numbers['broken_by_pgd_only']} (one-sided McNemar p = "
        f"{numbers['p_value']:.3g}, α = {a.params.alpha:g})"
    )
    return Flag("single-step", RAISED if up else CLEAR, why, numbers)


def eps_trend(a: Audit) -> Flag:
    dim = a.data.info.dimension
    top = large_eps(a.norm, dim)
    # metrics named by the multiple of the budget, so that rows line up across models
    named = {a.eps * f: f"accuracy@{f:g}×ε" for f in a.params.eps_grid if 0 < a.eps * f < top}
    named[top] = "accuracy@large ε"
    grid = sorted(named)
    robust = [a.pgd(e) for e in grid]
    numbers = {named[e]: float(r.mean()) for e, r in zip(grid, robust, strict=True)}
    pairs = [(i, j) for i in range(len(grid)) for j in range(i + 1, len(grid))]
    level = a.params.alpha / max(len(pairs), 1)
    rises = []
    for i, j in pairs:
        p = stronger_p(int((robust[j] & ~robust[i]).sum()), int((robust[i] & ~robust[j]).sum()))
        if p < level:
            rises.append(
                f"ε {grid[i]:.3g} → {grid[j]:.3g} ({robust[i].mean():.3f} → "
                f"{robust[j].mean():.3f}, p = {p:.3g})"
            )
    labels = a.data.labels.numpy()
    chance = float(np.bincount(labels).max() / len(labels))
    hits = int(robust[-1].sum())
    p_chance = float(binom.sf(hits - 1, len(labels), chance)) if hits else 1.0
    numbers.update(
        {"chance": chance, "large_eps": top, "p_above_chance": p_chance, "pairs_rising": len(rises)}
    )
    above = p_chance < a.params.alpha
    parts = []
    if rises:
        parts.append(
            "accuracy rises with ε: "
            + "; ".join(rises)
            + f" (McNemar, Bonferroni over {len(pairs)} pairs)"
        )
    parts.append(
        f"at the large ε {top:.3g}: accuracy {robust[-1].mean():.3f} vs chance "
        f"{chance:.3f} (one-sided binomial p = {p_chance:.3g})"
    )
    return Flag("eps-trend", RAISED if rises or above else CLEAR, "; ".join(parts), numbers)


def black_box(a: Audit, white: np.ndarray) -> Flag:
    make, norms = BLACK_BOX[a.params.black_box]
    if a.norm not in norms:
        return Flag(
            "black-box",
            NOT_COMPUTED,
            f"{a.params.black_box} covers {', '.join(norms)}, not {a.norm}; the Square "
            "attack (black_box = 'square') covers all three",
        )
    attack = make(a.model.model, threat_model(a.norm, a.eps), a.params.queries, a.ctx.seed)
    numbers = paired(a.run(attack), white, "black_box", "white_box")
    up = numbers["p_value"] < a.params.alpha
    why = (
        f"{a.params.black_box} ({a.params.queries} queries) "
        f"{numbers['black_box_accuracy']:.3f} vs white-box worst case "
        f"{numbers['white_box_accuracy']:.3f}; black-box alone breaks "
        f"{numbers['broken_by_black_box_only']} (McNemar p = {numbers['p_value']:.3g})"
    )
    return Flag("black-box", RAISED if up else CLEAR, why, numbers)


def unconverged(
    a: Audit, pgd: np.ndarray, strong: np.ndarray, targeted: np.ndarray | None, why_not: str
) -> Flag:
    """PGD of record against the longer PGD and APGD-T (None: not run, ``why_not`` says why)."""
    stronger = strong if targeted is None else strong & targeted
    worst = pgd & stronger
    extra = int((pgd & ~stronger).sum())  # images only a stronger attack breaks
    drop = 100 * extra / len(pgd)
    numbers = {
        "pgd_accuracy": float(pgd.mean()),
        "strong_accuracy": float(strong.mean()),
        "apgd_t_accuracy": float(targeted.mean()) if targeted is not None else math.nan,
        "worst_case_accuracy": float(worst.mean()),
        "drop_points": drop,
    }
    p = a.params
    apgd_t = (
        f"APGD-T ({p.apgd_targets} targets, {p.steps * p.more_steps} it.) {targeted.mean():.3f}"
        if targeted is not None
        else f"APGD-T not run ({why_not})"
    )
    why = (
        f"PGD-{p.steps} {pgd.mean():.3f}; PGD-{p.steps * p.more_steps} × {p.restarts} "
        f"restarts {strong.mean():.3f}; {apgd_t}; worst case of all {worst.mean():.3f} "
        f"({drop:.1f} points lower; threshold {p.unconverged_points:g})"
    )
    up = 100 * extra > p.unconverged_points * len(pgd)  # in whole images: no rounding
    return Flag("unconverged", RAISED if up else CLEAR, why, numbers)


def transfer(a: Audit, white: np.ndarray, surrogate: StudyModel | None) -> Flag:
    if surrogate is None:
        return Flag("transfer", NOT_COMPUTED, "the study has no natural model to transfer from")
    if surrogate.name == a.model.name:
        return Flag("transfer", NOT_COMPUTED, "the model is the natural surrogate itself")
    spec = AttackSpec("pgd", a.norm, a.eps, a.params.steps)
    numbers = paired(a.robust(spec, source=surrogate), white, "transfer", "white_box")
    up = numbers["p_value"] < a.params.alpha
    why = (
        f"PGD-{a.params.steps} from {surrogate.name}: {numbers['transfer_accuracy']:.3f} vs "
        f"white-box worst case {numbers['white_box_accuracy']:.3f}; transfer alone breaks "
        f"{numbers['broken_by_transfer_only']} (McNemar p = {numbers['p_value']:.3g})"
    )
    return Flag("transfer", RAISED if up else CLEAR, why, numbers)


def output_checks(a: Audit) -> list[Flag]:
    """The gradient, probability and randomness checks on the clean images."""
    net, dev = a.model.model, a.ctx.device
    zero, first, second = 0, [], []
    for i in range(0, len(a.data), ATTACK_BATCH):
        x = a.data.images[i : i + ATTACK_BATCH].to(dev).requires_grad_(True)
        y = a.data.labels[i : i + ATTACK_BATCH].to(dev)
        with torch.enable_grad():
            out = net(x)
            (grad,) = torch.autograd.grad(margin(out, y).sum(), x, allow_unused=True)
        grad = (torch.zeros_like(x) if grad is None else grad).flatten(1)  # None: no path
        bad = (grad == 0).all(dim=1) | ~torch.isfinite(grad).all(dim=1)
        zero += int(bad.sum())
        first.append(out.detach().cpu())
        with torch.no_grad():
            second.append(net(x.detach()).cpu())
    n, p = len(a.data), a.params
    fraction = zero / n
    flags = [
        Flag(
            "gradients",
            RAISED if fraction > p.gradient_fraction else CLEAR,
            f"margin gradient zero or not finite on {zero} of {n} images "
            f"({100 * fraction:.1f} %; threshold {100 * p.gradient_fraction:g} %)",
            {"zero_or_nonfinite_fraction": fraction},
        )
    ]
    out, again = torch.cat(first), torch.cat(second)
    k, eps = out.shape[1], float(torch.finfo(out.dtype).eps)
    sums = out.double().sum(dim=1)
    tol = 4 * eps * k  # K rounded terms summed
    prob = bool((out >= 0).all()) and bool(((sums - 1).abs() <= tol).all())
    flags.append(
        Flag(
            "probabilities",
            RAISED if prob else CLEAR,
            f"outputs {'are' if prob else 'are not'} all non-negative rows summing to 1 "
            f"(row sums {float(sums.min()):.4g} … {float(sums.max()):.4g})",
            {
                "min_output": float(out.min()),
                "min_row_sum": float(sums.min()),
                "max_row_sum": float(sums.max()),
            },
        )
    )
    scale = float(out.abs().max()) + 1.0
    diff = float((out - again).abs().max()) if torch.isfinite(out).all() else math.inf
    limit = 16 * eps * math.sqrt(a.data.info.dimension) * scale
    changed = float((out.argmax(1) != again.argmax(1)).float().mean())
    noisy = diff > limit
    flags.append(
        Flag(
            "randomness",
            RAISED if noisy else CLEAR,
            f"two eval-mode passes differ by up to {diff:.3g} (tolerance {limit:.2g}); "
            f"{100 * changed:.1f} % of predictions change",
            {"max_output_change": diff, "prediction_change": changed},
        )
    )
    return flags


def audit_model(
    model: StudyModel,
    surrogate: StudyModel | None,
    data: ImageSet,
    params: MaskingParams,
    ctx: LensContext,
) -> tuple[Audit, list[Flag], dict[str, np.ndarray]]:
    """Every flag of one model, and the per-image robustness under each attack."""
    norm, eps = audit_budget(model, params, data.info.dimension)
    a = Audit(model, data, params, ctx, norm, eps)
    pgd = a.pgd()
    fgsm = a.robust(AttackSpec("fgsm", norm, eps))
    threat = threat_model(norm, eps)
    steps = params.steps * params.more_steps
    strong = a.run(PGD(model.model, threat, steps, restarts=params.restarts, seed=ctx.seed))
    targeted, why_not = None, ""
    if params.apgd_targets == 0:
        why_not = "apgd_targets = 0"
    elif data.info.num_classes < APGDT.min_classes:
        why_not = f"the targeted DLR loss needs 4 classes, the data has {data.info.num_classes}"
    else:
        apgdt = APGDT(model.model, threat, steps, targets=params.apgd_targets, seed=ctx.seed)
        targeted = a.run(apgdt)
    white = pgd & strong & fgsm & (targeted if targeted is not None else True)
    flags = [
        single_step(a, pgd, fgsm),
        eps_trend(a),
        black_box(a, white),
        unconverged(a, pgd, strong, targeted, why_not),
        transfer(a, white, surrogate),
        *output_checks(a),
    ]
    arrays = {"clean": a.clean, "pgd": pgd, "fgsm": fgsm, "strong": strong}
    if targeted is not None:
        arrays["apgd-t"] = targeted
    return a, flags, arrays


def choose_surrogate(models: list[StudyModel], wanted: str | None) -> StudyModel | None:
    """The named model, else the study's first model trained naturally on its own data."""
    if wanted is not None:
        found = [m for m in models if m.name == wanted]
        if not found:
            raise ConfigError(
                f"masking surrogate {wanted!r} is not a model of the study",
                fix=f"choose from {', '.join(m.name for m in models)}",
            )
        return found[0]
    return next((m for m in models if m.is_natural), None)


def array_name(model: str, what: str) -> str:
    """``<what>/<model>``: [N] per-image robustness of ``model`` under ``what``."""
    return f"{what}/{model}"


def compute(
    models: list[StudyModel], data: ImageSet, params: MaskingParams, ctx: LensContext
) -> LensResult:
    data = subset(data, params.n)
    surrogate = choose_surrogate(models, params.surrogate)
    rows: list[dict[str, Any]] = []
    arrays: dict[str, np.ndarray] = {}
    notes = []
    for m in models:
        a, flags, robust = audit_model(m, surrogate, data, params, ctx)
        arrays.update({array_name(m.name, k): v for k, v in robust.items()})
        base = {"model": m.name, "layer": "input", "norm": a.norm, "eps": a.eps, "n": len(data)}
        for f in flags:
            value = {RAISED: 1.0, CLEAR: 0.0}.get(f.status, np.nan)
            extra = {"status": f.status, "reason": f.reason}
            rows.append({**base, "setting": f.name, "metric": "raised", "value": value, **extra})
            rows += [
                {**base, "setting": f.name, "metric": k, "value": float(v), **extra}
                for k, v in f.numbers.items()
            ]
            if f.status == RAISED:
                notes.append(f"{m.name}: {FLAGS[f.name]} — {f.reason}; {RECOMMEND[f.name]}")
    if surrogate is not None:
        notes.append(f"transfer attacks are made on {surrogate.name}")
    return LensResult(tables={TABLE: tidy(rows)}, arrays=arrays, notes=notes)


def plot(tables, models: list[StudyModel], params: MaskingParams, arrays=None) -> dict:
    from matplotlib.colors import ListedColormap  # heavy: matplotlib, only when drawing

    frame = tables[TABLE]
    flags = frame[frame.metric == "raised"]
    names = [m.name for m in models if m.name in set(flags.model)]
    grid = np.full((len(names), len(FLAGS)), np.nan)
    for i, name in enumerate(names):
        part = flags[flags.model == name].set_index("setting")["value"]
        grid[i] = [part.get(f, np.nan) for f in FLAGS]
    fig, ax = new_figure(figsize=(7.0, 0.45 * len(names) + 1.8))
    # clear: near white, not computed: grey, raised: orange (no red-green pair; each cell says it)
    shades = ListedColormap(["#f4f4f4", "#bdbdbd", "#e66100"])
    ax.imshow(np.nan_to_num(grid, nan=0.5), cmap=shades, vmin=0, vmax=1, aspect="auto")
    text = {1.0: "raised", 0.0: "clear"}
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            ax.text(j, i, text.get(grid[i, j], "n/c"), ha="center", va="center", fontsize="x-small")
    ax.set_yticks(range(len(names)), names, fontsize="small")
    ax.set_xticks(range(len(FLAGS)), list(FLAGS), rotation=30, ha="right", fontsize="small")
    ax.set_xlabel("gradient-masking test")
    ax.set_ylabel("model")
    return {"Gradient-masking flags per model (n/c: not computed)": fig}


SPEC = register_lens(
    LensSpec(
        name="masking",
        title="Gradient-masking audit",
        paper="Athalye, Carlini & Wagner 2018; Carlini et al. 2019",
        section="§5; §4–5",
        description=(
            "Per model, at its audit budget (a robust model's training norm and ε; the other "
            "models L∞ at RobustBench's budget, "
            + ", ".join(f"{NORM_NAMES[k]} {v:.3g}" for k, v in BUDGETS.items())
            + " at CIFAR-10 resolution, moved to the data's), eight flags, each raised, clear "
            "or not computed with its reason and numbers. (1) single-step: FGSM breaks more "
            "images than PGD (exact one-sided McNemar test on the images only one of them "
            "breaks, at alpha). (2) eps-trend: accuracy rises between two ε of the grid "
            "(McNemar, Bonferroni over the pairs), or stays above chance (the largest class "
            "share; exact binomial test) at the large ε, L∞ 0.5, L2 0.5·√d, L1 0.5·d, from "
            "where every image reaches the grey image. (3) black-box: a gradient-free attack "
            "(the Square attack by default, or a score-based random search) "
            "breaks more images than the white-box worst case (McNemar). (4) unconverged: PGD "
            "with more_steps × the steps and restarts, or APGD-T (targeted DLR loss toward "
            "apgd_targets classes, as many iterations; 4 classes or more), breaks more than "
            "unconverged_points % of the images PGD left. (5) transfer: PGD examples made on "
            "the study's first natural model break more than the white-box worst case "
            "(McNemar). (6) gradients: "
            "the input gradient of the logit margin is zero or not finite on more than "
            "gradient_fraction of the images; probabilities: every output row is non-negative "
            "and sums to 1; randomness: two eval-mode passes differ (evaluate with expectation "
            "over the randomness, AutoAttack's rand). The report marks every robustness number "
            "of a flagged model and every claim evaluated on one. Cost per model, on the images "
            "still robust: PGD steps × (grid size + 1) + steps × more_steps × (restarts + "
            "apgd_targets) gradient steps, queries forward passes, and one PGD on the surrogate "
            "shared by all."
        ),
        params=MaskingParams,
        compute=compute,
        plot=plot,
        scope="study",
        version=2,  # the black-box flag is computed in L1 too (the L1 Square attack)
        anatomy="any classifier: reads only its outputs and input gradients",
    )
)
