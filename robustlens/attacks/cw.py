"""Carlini–Wagner L2 attack (Carlini & Wagner 2017, "Towards evaluating the robustness of NNs").

Minimises ‖x' − x‖₂² + c·f(x') over x' = (tanh(w) + 1)/2 (so x' stays in the box), with
f(x') = max(Z_y − max_{i≠y} Z_i + κ, 0) untargeted or max(max_{i≠t} Z_i − Z_t + κ, 0)
targeted (their objective f₆), by Adam; a per-sample binary search over c keeps the smallest
successful perturbation. Batched: each sample has its own c, its own search bounds and its own
early abort when its loss stops improving.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from robustlens.attacks.base import Attack, check_finite
from robustlens.attacks.result import AttackResult
from robustlens.errors import ConfigError

_UNBOUNDED = 1e10


def margin(
    logits: torch.Tensor, classes: torch.Tensor, targeted: bool, confidence: float
) -> torch.Tensor:
    """C&W's f₆: how far each sample is from the goal (0 once reached with margin κ)."""
    own = logits.gather(1, classes.unsqueeze(1)).squeeze(1)
    others = logits.scatter(1, classes.unsqueeze(1), -torch.inf).amax(dim=1)
    gap = others - own if targeted else own - others
    return (gap + confidence).clamp_min(0.0)


class CarliniWagnerL2(Attack):
    """C&W L2 with a binary search over the constant c.

    Args:
        binary_search_steps: outer searches over c (default 9, as in the paper's code).
        steps: Adam steps per search.
        learning_rate: Adam step size on w.
        initial_const: starting c.
        confidence: κ, the logit margin a success must reach.
        abort_early: stop a sample's inner loop when its loss has not improved by 0.01 % over
            the last ``steps // 10`` steps.
    """

    name = "cw-l2"

    def __init__(
        self,
        model: nn.Module,
        *,
        binary_search_steps: int = 9,
        steps: int = 1000,
        learning_rate: float = 0.01,
        initial_const: float = 1e-3,
        confidence: float = 0.0,
        abort_early: bool = True,
        targeted: bool = False,
        target_mode: str = "random",
        seed: int = 0,
    ) -> None:
        super().__init__(model, targeted=targeted, target_mode=target_mode, seed=seed)
        if binary_search_steps < 1 or steps < 1:
            raise ConfigError("C&W needs binary_search_steps ≥ 1 and steps ≥ 1")
        if learning_rate <= 0 or initial_const <= 0 or confidence < 0:
            raise ConfigError("C&W needs learning_rate > 0, initial_const > 0 and confidence ≥ 0")
        self.binary_search_steps = int(binary_search_steps)
        self.steps = int(steps)
        self.learning_rate = float(learning_rate)
        self.initial_const = float(initial_const)
        self.confidence = float(confidence)
        self.abort_early = abort_early

    def _run(
        self, images: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None
    ) -> AttackResult:
        x = images
        n = x.shape[0]
        dev = x.device
        classes = targets if self.targeted else labels
        w0 = torch.atanh((2 * x - 1) * (1 - 1e-6))
        const = torch.full((n,), self.initial_const, device=dev)
        lower = torch.zeros(n, device=dev)
        upper = torch.full((n,), _UNBOUNDED, device=dev)
        best_l2 = torch.full((n,), torch.inf, device=dev)
        best_adv = x.clone()
        iterations = torch.zeros(n, dtype=torch.long, device=dev)
        for _ in range(self.binary_search_steps):
            found = self._inner(x, w0, classes, const, best_l2, best_adv, iterations)
            # Per-sample binary search on c (Carlini & Wagner's schedule).
            upper = torch.where(found, torch.minimum(upper, const), upper)
            lower = torch.where(found, lower, torch.maximum(lower, const))
            bounded = upper < _UNBOUNDED
            const = torch.where(bounded, (lower + upper) / 2, const * 10)
        success = torch.isfinite(best_l2)
        norms = torch.where(success, (best_adv - x).reshape(n, -1).norm(dim=1), torch.inf)
        return AttackResult(best_adv, success, norms, iterations)

    def _inner(
        self,
        x: torch.Tensor,
        w0: torch.Tensor,
        classes: torch.Tensor,
        const: torch.Tensor,
        best_l2: torch.Tensor,
        best_adv: torch.Tensor,
        iterations: torch.Tensor,
    ) -> torch.Tensor:
        """One search step at constants ``const``; returns which samples succeeded in it."""
        n = x.shape[0]
        found = torch.zeros(n, dtype=torch.bool, device=x.device)
        active = torch.arange(n, device=x.device)
        w = w0.clone()
        m = torch.zeros_like(w)
        v = torch.zeros_like(w)
        beta1, beta2, eps_adam = 0.9, 0.999, 1e-8
        check_every = max(1, self.steps // 10)
        previous = torch.full((n,), torch.inf, device=x.device)
        for step in range(1, self.steps + 1):
            wa = w[active].requires_grad_(True)
            xa = (torch.tanh(wa) + 1) / 2
            with torch.enable_grad():
                logits = self.model(xa)
                check_finite(logits)
                l2sq = (xa - x[active]).reshape(active.numel(), -1).pow(2).sum(dim=1)
                f = margin(logits, classes[active], self.targeted, self.confidence)
                loss = l2sq + const[active] * f
                (grad,) = torch.autograd.grad(loss.sum(), wa)
            with torch.no_grad():
                ok = self.is_success_with_margin(logits.detach(), classes[active])
                l2 = l2sq.detach().sqrt()
                improved = ok & (l2 < best_l2[active])
                if bool(improved.any()):
                    idx = active[improved]
                    best_l2[idx] = l2[improved]
                    best_adv[idx] = xa.detach()[improved]
                found[active[ok]] = True
                iterations[active] += 1
                # Adam on the active rows (moments are element-wise, so rows are independent).
                m[active] = beta1 * m[active] + (1 - beta1) * grad
                v[active] = beta2 * v[active] + (1 - beta2) * grad * grad
                m_hat = m[active] / (1 - beta1**step)
                v_hat = v[active] / (1 - beta2**step)
                w[active] = wa.detach() - self.learning_rate * m_hat / (v_hat.sqrt() + eps_adam)
                if self.abort_early and step % check_every == 0:
                    current = loss.detach()
                    stalled = current > previous[active] * 0.9999
                    previous[active] = current
                    active = active[~stalled]
                    if active.numel() == 0:
                        break
        return found

    def is_success_with_margin(self, logits: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """Success of C&W: reaches the goal by the margin κ (plain success when κ = 0)."""
        if self.confidence == 0:
            pred = logits.argmax(dim=1)
            return pred == classes if self.targeted else pred != classes
        return margin(logits, classes, self.targeted, self.confidence) <= 0

    def describe(self) -> dict[str, Any]:
        return {
            "attack": self.name,
            "norm": "l2",
            "binary_search_steps": self.binary_search_steps,
            "steps": self.steps,
            "learning_rate": self.learning_rate,
            "initial_const": self.initial_const,
            "confidence": self.confidence,
            "abort_early": self.abort_early,
            "targeted": self.targeted,
            "target_mode": self.target_mode if self.targeted else None,
        }
