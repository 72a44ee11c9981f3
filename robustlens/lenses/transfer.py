"""Transfer of adversarial examples from natural and robust sources (Springer et al. 2021,
§5.2, Fig. 5–6, Table 4).

Adversarial examples are made on each source model with untargeted and targeted PGD L2 (Table 4:
ε = 2.0, 100 steps of 0.1 at CIFAR-10 resolution, both moved to the data's resolution like any
L2 budget; targets uniformly random among the other classes, seeded) and evaluated on victim
models: naturally trained models of *other* architectures than the source's. Per source and
victim: the untargeted error rate and the targeted success rate, with per-image outcomes for
the claims' paired bootstrap.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from robustlens.attacks.pgd import PGD
from robustlens.attacks.spec import CIFAR10_DIM, scale_eps
from robustlens.attacks.threat import L2
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
from robustlens.lenses.common import ATTACK_BATCH, predictions, subset


@dataclass(frozen=True)
class TransferParams:
    eps: float = 2.0
    steps: int = 100
    step_size: float = 0.1
    reference_dim: int = CIFAR10_DIM
    """The resolution ``eps`` and ``step_size`` are given for (0: use them as written)."""
    n: int | None = 200
    sources: tuple[str, ...] | None = None
    """Source models (all models of the first model's architecture when None)."""

    def __post_init__(self) -> None:
        if self.eps <= 0 or self.steps < 1 or self.step_size <= 0:
            raise ConfigError("transfer needs eps > 0, steps ≥ 1 and step_size > 0")
        if self.n is not None and self.n < 2:
            raise ConfigError("transfer needs n ≥ 2 images")


def _arch(m: StudyModel) -> str:
    return str(getattr(m.card, "arch", "") or getattr(m.model, "arch", ""))


def other_targets(labels: torch.Tensor, num_classes: int, seed: int) -> torch.Tensor:
    """A uniformly random class other than the label, per image (seeded)."""
    gen = torch.Generator().manual_seed(seed)
    shift = torch.randint(1, num_classes, labels.shape, generator=gen)
    return (labels.cpu() + shift) % num_classes


def compute(
    models: list[StudyModel], data: ImageSet, params: TransferParams, ctx: LensContext
) -> LensResult:
    data = subset(data, params.n)
    names = [m.name for m in models]
    if params.sources is None:
        sources = [m for m in models if _arch(m) == _arch(models[0])]
    else:
        unknown = sorted(set(params.sources) - set(names))
        if unknown:
            raise ConfigError(
                f"transfer sources {', '.join(unknown)} are not models of the study",
                fix=f"choose from {', '.join(names)}",
            )
        sources = [m for m in models if m.name in params.sources]
    victims = [m for m in models if m.is_natural and _arch(m) not in {_arch(s) for s in sources}]
    if not victims:
        raise ConfigError(
            "transfer needs victim models: naturally trained models of another architecture "
            f"than the sources ({', '.join(sorted({_arch(s) for s in sources}))})",
            fix="add e.g. a natural 'mlp' or 'resnet20' model to the study",
        )
    dim = int(data.images[0].numel())
    eps = scale_eps("l2", params.eps, dim, params.reference_dim)
    step = scale_eps("l2", params.step_size, dim, params.reference_dim)
    x, y = data.images.to(ctx.device), data.labels.to(ctx.device)
    targets = other_targets(data.labels, data.info.num_classes, ctx.seed).to(ctx.device)
    rows, arrays = [], {"targets": targets.cpu().numpy()}
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
            t = targets if mode == "targeted" else None
            made[mode] = attack.run(x, y, targets=t, batch_size=ATTACK_BATCH).adversarial.cpu()
        for v in [s, *victims]:
            error = (predictions(v, made["untargeted"], ctx.device) != data.labels).numpy()
            hit = (predictions(v, made["targeted"], ctx.device) == targets.cpu()).numpy()
            arrays[f"error/{v.name}/{s.name}"] = error
            arrays[f"hit/{v.name}/{s.name}"] = hit
            for metric, values in (("untargeted_error", error), ("targeted_success", hit)):
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
                    }
                )
    notes = [
        f"PGD L2 ε={eps:.3g}, {params.steps} steps of {step:.3g} (Table 4's ε={params.eps:g}, "
        f"step {params.step_size:g} moved from {params.reference_dim} to {dim} input values); "
        f"victims: {', '.join(v.name for v in victims)}"
    ]
    return LensResult(tables={"transfer": tidy(rows)}, arrays=arrays, notes=notes)


def plot(tables, models: list[StudyModel], params: TransferParams, arrays=None) -> dict:
    from robustlens.study.figures import new_figure

    frame = tables["transfer"]
    frame = frame[frame.victim.astype(bool)]
    fig, axes = new_figure(1, 2, figsize=(10, 3.6))
    for ax, metric, title in (
        (axes[0], "untargeted_error", "untargeted error rate on the victim (Fig. 5)"),
        (axes[1], "targeted_success", "targeted success rate on the victim (Fig. 6)"),
    ):
        part = frame[frame.metric == metric]
        for victim in dict.fromkeys(part.model):
            curve = part[part.model == victim]
            curve = curve.assign(eps=curve.source_eps.astype(float)).sort_values("eps")
            ax.plot(curve.eps, curve.value, marker="o", label=victim)
        ax.set_xlabel("training ε of the source model (0 = natural)")
        ax.set_title(title, fontsize="small")
        ax.set_ylim(0, 1)
    axes[0].legend(fontsize="x-small", title="victim", title_fontsize="x-small")
    return {"Transfer of PGD L2 examples from sources of growing ε to other architectures": fig}


SPEC = register_lens(
    LensSpec(
        name="transfer",
        title="Transfer of adversarial examples from robust sources",
        paper="001_3364f971c200652f (Springer et al.)",
        section="§5.2, Fig. 5–6, Table 4",
        description=(
            "Untargeted and targeted PGD L2 examples (ε 2.0, 100 steps of 0.1 at CIFAR-10 "
            "resolution, moved to the data's) made on each source model and evaluated on "
            "naturally trained victims of other architectures: untargeted error and targeted "
            "success rates by the source's training ε."
        ),
        params=TransferParams,
        compute=compute,
        plot=plot,
        scope="study",
    )
)
