"""Transfer of adversarial examples from natural and robust sources (Springer et al. 2021,
§5.2, Fig. 5–6, Table 4).

Adversarial examples are made on each source model with untargeted and targeted PGD L2 (Table 4:
ε = 2.0, 100 steps of 0.1 at CIFAR-10 resolution, both moved to the data's resolution like any
L2 budget; targets uniformly random among the other classes, seeded) and evaluated on victim
models: naturally trained models of *other* architectures than the sources'. Per source and
victim: the untargeted error rate and the targeted success rate, with per-image outcomes for
the claims' paired bootstrap. Each model's clean error (and how often it already predicts the
target class) on the same images is recorded as the baseline the transfer rates are read
against: an untargeted "transfer" error no higher than the victim's clean error transfers
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from robustlens.attacks.pgd import PGD
from robustlens.attacks.spec import CIFAR10_DIM, NORM_NAMES, scale_eps
from robustlens.attacks.threat import L2
from robustlens.data.imageset import ImageSet
from robustlens.errors import ConfigError
from robustlens.lenses.base import LensContext, LensResult, LensSpec, StudyModel, register_lens
from robustlens.lenses.common import (
    ATTACK_BATCH,
    chosen_sources,
    model_arch,
    predictions,
    source_order,
    subset,
)
from robustlens.lenses.output import interval_columns, palette, tidy
from robustlens.lenses.parameters import LensParams, rule
from robustlens.papers import SPRINGER
from robustlens.params import Interval
from robustlens.plotting import draw_annotated_grid, new_figure, style_axes

# Names of the per-image arrays the claims read.


def hit_name(victim: str, source: str) -> str:
    """[N] whether ``victim`` predicts the target on ``source``'s targeted examples."""
    return f"hit/{victim}/{source}"


def clean_hit_name(victim: str) -> str:
    """[N] whether ``victim`` already predicts the target on the clean image."""
    return f"clean_hit/{victim}"


def parse_hit(name: str) -> tuple[str, str] | None:
    """(victim, source) of a :func:`hit_name`, or None for any other array."""
    kind, _, rest = name.partition("/")
    victim, _, source = rest.partition("/")
    if kind != "hit" or not victim or not source or "/" in source:
        return None
    return victim, source


CLEAN = "clean"
"""The ``setting`` of the baseline rows: the model on the unperturbed images."""


@dataclass(frozen=True)
class TransferParams(LensParams):
    eps: float = field(default=2.0, metadata=rule(Interval(float, 0, None, closed="right")))
    steps: int = field(default=100, metadata=rule(Interval(int, 1, None)))
    step_size: float = field(default=0.1, metadata=rule(Interval(float, 0, None, closed="right")))
    reference_dim: int = CIFAR10_DIM
    """The resolution ``eps`` and ``step_size`` are given for (0: use them as written)."""
    n: int | None = field(default=200, metadata=rule(Interval(int, 2, None)))
    sources: tuple[str, ...] | None = None
    """Source models (None: the natural and adversarially trained models of the first model's
    architecture; models trained on constructed sets are left out)."""


def other_targets(labels: torch.Tensor, num_classes: int, seed: int) -> torch.Tensor:
    """A uniformly random class other than the label, per image (seeded)."""
    gen = torch.Generator().manual_seed(seed)
    shift = torch.randint(1, num_classes, labels.shape, generator=gen)
    return (labels.cpu() + shift) % num_classes


def compute(
    models: list[StudyModel], data: ImageSet, params: TransferParams, ctx: LensContext
) -> LensResult:
    """Untargeted error and targeted success of each source's PGD L2 examples on every victim
    and on the source itself (Fig. 5–6), with each model's clean baseline on the same images."""
    data = subset(data, params.n)
    sources = chosen_sources(models, params.sources, "transfer")
    source_archs = {model_arch(s) for s in sources}
    victims = [m for m in models if m.is_natural and model_arch(m) not in source_archs]
    if not victims:
        raise ConfigError(
            "transfer needs victim models: naturally trained models of another architecture "
            f"than the sources ({', '.join(sorted(source_archs))})",
            fix="add e.g. a natural 'mlp' or 'resnet20' model to the study",
        )
    dim = int(data.images[0].numel())
    eps = scale_eps("l2", params.eps, dim, params.reference_dim)
    step = scale_eps("l2", params.step_size, dim, params.reference_dim)
    x, y = data.images.to(ctx.device), data.labels.to(ctx.device)
    targets = other_targets(data.labels, data.info.num_classes, ctx.seed)
    rows: list[dict[str, Any]] = []
    arrays = {"targets": targets.numpy()}
    baseline: dict[str, tuple[float, float]] = {}
    victim_names = {v.name for v in victims}
    for v in [*sources, *victims]:
        clean = predictions(v, data.images, ctx.device)
        error, hit = (clean != data.labels).numpy(), (clean == targets).numpy()
        arrays[f"clean_error/{v.name}"], arrays[clean_hit_name(v.name)] = error, hit
        baseline[v.name] = (float(error.mean()), float(hit.mean()))
        for metric, values in (("clean_error", error), ("clean_target_rate", hit)):
            rows.append(
                {
                    "model": v.name,
                    "setting": CLEAN,
                    "metric": metric,
                    "value": float(values.mean()),
                    "source_eps": None,
                    "source_norm": None,
                    "victim": v.name in victim_names,
                    "n": len(data),
                    **interval_columns(values),
                }
            )
    for s in sources:
        made = {}
        for mode in ("untargeted", "targeted"):
            attack = PGD(
                s.model,
                L2(eps),
                steps=params.steps,
                step_size=step,
                random_start=False,
                targeted=mode == "targeted",
                early_stop=False,
                track_best=False,
                seed=ctx.seed,
            )
            t = targets.to(ctx.device) if mode == "targeted" else None
            made[mode] = attack.run(x, y, targets=t, batch_size=ATTACK_BATCH).adversarial.cpu()
        for v in [s, *victims]:
            error = (predictions(v, made["untargeted"], ctx.device) != data.labels).numpy()
            hit = (predictions(v, made["targeted"], ctx.device) == targets).numpy()
            arrays[f"error/{v.name}/{s.name}"] = error
            arrays[hit_name(v.name, s.name)] = hit
            for k, (metric, values) in enumerate(
                (("untargeted_error", error), ("targeted_success", hit))
            ):
                rows.append(
                    {
                        "model": v.name,
                        "setting": s.name,
                        "metric": metric,
                        "value": float(values.mean()),
                        "source_eps": s.train_eps,
                        "source_norm": s.train_norm or "natural",
                        "victim": v.name != s.name,
                        "n": len(data),
                        **interval_columns(values),
                        "baseline": baseline[v.name][k],
                    }
                )
    notes = [
        f"PGD L2 ε={eps:.3g}, {params.steps} steps of {step:.3g} (Table 4's ε={params.eps:g}, "
        f"step {params.step_size:g} moved from {params.reference_dim} to {dim} input values); "
        f"sources: {', '.join(s.name for s in sources)}; "
        f"victims: {', '.join(v.name for v in victims)}",
        "baseline: each model's error (clean_error) and rate of predicting the target class "
        "(clean_target_rate) on the same unperturbed images; a transfer rate means something "
        "only above it",
    ]
    return LensResult(tables={"transfer": tidy(rows)}, arrays=arrays, notes=notes)


def source_label(name: str, by_name: dict[str, StudyModel]) -> str:
    """``natural (natural)`` / ``l2-0.5 (L2 ε=0.5)`` for a source of the study."""
    m = by_name.get(name)
    return m.label() if m is not None else name


def plot(tables, models: list[StudyModel], params: TransferParams, arrays=None) -> dict:
    """The rates by the source's training ε with each victim's clean baseline (Fig. 5–6), and
    the source × victim matrices of both rates."""
    frame = tables["transfer"]
    victim_rows = frame[frame.victim.astype(bool)]
    attacked = victim_rows[victim_rows.setting != CLEAN]
    clean = victim_rows[victim_rows.setting == CLEAN]
    by_name = {m.name: m for m in models}
    colors = palette(models)
    victims = list(dict.fromkeys(attacked.model))
    named = list(dict.fromkeys(frame[frame.setting != CLEAN].setting))
    known = source_order([by_name[s] for s in named if s in by_name])
    source_names = [m.name for m in known] + [s for s in named if s not in by_name]
    figures = {}

    panels = (
        ("untargeted_error", "clean_error", "untargeted error rate on the victim (Fig. 5)",
         "victim's clean error"),
        ("targeted_success", "clean_target_rate", "targeted success rate on the victim (Fig. 6)",
         "victim predicts the target on clean images"),
    )  # fmt: skip
    fig, axes = new_figure(1, 2, figsize=(10, 3.8))
    for ax, (metric, base_metric, title, base_label) in zip(axes, panels, strict=True):
        part = attacked[attacked.metric == metric]
        norms = sorted({str(n) for n in part.source_norm.dropna()} - {"natural"})
        for victim in victims:
            mine = part[part.model == victim]
            colour = colors.get(victim)
            for norm in norms or ["natural"]:
                curve = mine[mine.source_norm.isin(["natural", norm])]
                curve = curve.assign(eps=curve.source_eps.astype(float)).sort_values("eps")
                label = victim if len(norms) < 2 else f"{victim} ({NORM_NAMES.get(norm, norm)})"
                style = "-" if norm == (norms or ["natural"])[0] else ":"
                ax.plot(curve.eps, curve.value, marker="o", color=colour, ls=style, label=label)
            base = clean[(clean.model == victim) & (clean.metric == base_metric)]
            if not base.empty:
                ax.axhline(float(base.value.iloc[0]), color=colour, ls="--", lw=1, alpha=0.7)
        style_axes(ax, title=title, xlabel="training ε of the source model (0 = natural)")
        ax.title.set_fontsize("small")
        ax.set_ylim(0, 1)
        if not clean.empty:
            ax.plot([], [], color="grey", ls="--", lw=1, label=base_label)
        ax.legend(fontsize="x-small", title="victim", title_fontsize="x-small")
    figures["Transfer of PGD L2 examples from sources of growing ε to other architectures"] = fig

    if victims and source_names:
        fig, axes = new_figure(
            1, 2, figsize=(2 * (1.1 * len(victims) + 3.2), 0.5 * (len(source_names) + 1) + 2)
        )
        for ax, (metric, base_metric, title, _) in zip(axes, panels, strict=True):
            grid = np.full((len(source_names) + 1, len(victims)), np.nan)
            part = attacked[attacked.metric == metric]
            for r in part.itertuples():
                if r.setting in source_names:
                    grid[source_names.index(r.setting), victims.index(r.model)] = r.value
            for r in clean[clean.metric == base_metric].itertuples():
                if r.model in victims:
                    grid[-1, victims.index(r.model)] = r.value
            labels = [source_label(s, by_name) for s in source_names] + ["no attack (baseline)"]
            image = draw_annotated_grid(ax, grid, labels, victims)
            ax.axhline(len(source_names) - 0.5, color="white", lw=2)
            ax.set_xlabel("victim")
            ax.set_title(f"{title.split(' (')[0]} (%)", fontsize="small")
        fig.colorbar(image, ax=axes, shrink=0.8, label="rate")
        fig.suptitle(
            "rows: source models; last row: the victim on the clean images", fontsize="small"
        )
        figures["Source × victim matrices of untargeted error and targeted success (Fig. 5–6)"] = (
            fig
        )
    return figures


SPEC = register_lens(
    LensSpec(
        name="transfer",
        title="Transfer of adversarial examples from robust sources",
        paper=SPRINGER.label,
        section="§5.2, Fig. 5–6, Table 4",
        description=(
            "Untargeted and targeted PGD L2 examples (ε 2.0, 100 steps of 0.1 at CIFAR-10 "
            "resolution, moved to the data's) made on each source model (by default the "
            "natural and robust models of the first model's architecture) and evaluated on "
            "naturally trained victims of other architectures: untargeted error and targeted "
            "success rates by the source's training ε, against each victim's clean error and "
            "clean rate of predicting the target on the same images."
        ),
        params=TransferParams,
        compute=compute,
        plot=plot,
        scope="study",
        version=3,  # rates carry their 95 % Wilson interval (ci_low, ci_high)
    )
)
