"""What each training method attacks with and which loss it minimises, on one batch.

Every inner maximisation runs on the attack engine (``PGD.perturb``), never special-casing a
norm: PGD and FGSM-RS as Madry et al. and Wong et al.; MART's x' by PGD on the cross-entropy;
N-FGSM (de Jorge et al. 2022) as one step of α (ε by default) from noise drawn in the ball of
radius k·ε and no projection back to the ε-ball (the engine's ball has radius k·ε + α, which
the start and one step never leave); TRADES's x' by PGD on KL(f(x) ‖ f(x')) from x + 0.001·N(0, I).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from robustlens.attacks.pgd import PGD
from robustlens.attacks.threat import threat_model
from robustlens.train.losses import kl_per_sample, mart_loss, trades_loss
from robustlens.train.recipe import Recipe

TRADES_START_STD = 0.001
"""TRADES starts its inner maximisation at x + 0.001·N(0, I) (Zhang et al. 2019, Alg. 1)."""


@dataclass
class TrainingAttack:
    """The inner maximisation of one method at one budget: ``perturb(x, y, generator)``."""

    model: nn.Module
    recipe: Recipe
    eps: float

    def engine(self, **kwargs) -> PGD:
        recipe, eps = self.recipe, self.eps
        step = recipe.attack_step_size(eps)
        ball = recipe.noise * eps + step if recipe.method == "n-fgsm" else eps
        return PGD(
            self.model,
            threat_model(recipe.norm, ball),
            steps=recipe.attack_steps,
            step_size=step,
            early_stop=False,
            track_best=False,
            **kwargs,
        )

    def perturb(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        method = self.recipe.method
        if method == "n-fgsm":
            noise = threat_model(self.recipe.norm, self.recipe.noise * self.eps)
            return self.engine(random_start=False).perturb(
                x, y, generator=generator, start=noise.random_init(x, generator)
            )
        if method == "trades":
            with torch.no_grad():
                clean = self.model(x).detach()

            def kl(model: nn.Module, xa: torch.Tensor, _: torch.Tensor) -> torch.Tensor:
                return kl_per_sample(clean, model(xa))

            draw = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
            return self.engine(random_start=False, loss=kl).perturb(
                x, y, generator=generator, start=TRADES_START_STD * draw
            )
        return self.engine(random_start=True).perturb(x, y, generator=generator)


def batch_loss(
    model: nn.Module, recipe: Recipe, x: torch.Tensor, x_adv: torch.Tensor | None, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The training loss of one batch and the logits its accuracy is counted on (those of the
    attacked inputs, or of the clean ones when there are none, e.g. during an ε warm-up from 0)."""
    if x_adv is None:
        logits = model(x)
        return F.cross_entropy(logits, y), logits
    if recipe.method in ("trades", "mart"):
        clean, adv = model(x), model(x_adv)
        loss = trades_loss if recipe.method == "trades" else mart_loss
        return loss(clean, adv, y, recipe.beta), adv
    logits = model(x_adv)
    return F.cross_entropy(logits, y), logits
