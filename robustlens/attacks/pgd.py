"""Projected gradient descent (Madry et al. 2018) and FGSM (Goodfellow et al. 2015).

One engine serves attacks, adversarial training and — through the custom-loss hook —
representation inversion and feature visualisation: it ascends a per-sample objective
(descends it for targeted attacks) by steepest steps of the threat model's norm, projecting
onto the ε-ball and the [0, 1] box after every step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from robustlens.attacks.base import Attack, check_finite
from robustlens.attacks.result import AttackResult
from robustlens.attacks.threat import ThreatModel, clip_to_box
from robustlens.errors import ConfigError

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
"""A custom objective ``loss(model, x, target) -> per-sample loss`` of shape (N,)."""


class PGD(Attack):
    """PGD in any threat model, untargeted or targeted.

    Args:
        model: classifier taking [0, 1] images.
        threat: the ε-ball (``Linf(8/255)``, ``L2(0.5)``, ``L1(10)``).
        steps: gradient steps per restart.
        step_size: step length in the threat model's norm; default 2.5·ε/steps (Madry et al.).
        random_start: start uniformly inside the ball instead of at the clean image.
        restarts: independent runs; each sample keeps its worst case over them.
        targeted / target_mode: see :class:`Attack`.
        loss: custom per-sample objective ``loss(model, x, target)``; ascended, or descended
            when ``targeted``. With a custom loss there is no notion of success, so there is no
            early exit and the best iterate is the one with the best objective.
        early_stop: stop spending steps on a sample once it is fooled (evaluation); its
            returned input is the first fooling iterate.
        track_best: return each sample's best iterate (fooling first, then highest loss)
            instead of the last one.
    """

    name = "pgd"
    pooled = True

    def __init__(
        self,
        model: nn.Module,
        threat: ThreatModel,
        steps: int = 10,
        step_size: float | None = None,
        *,
        random_start: bool = True,
        restarts: int = 1,
        targeted: bool = False,
        target_mode: str = "random",
        loss: LossFn | None = None,
        early_stop: bool = True,
        track_best: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__(model, targeted=targeted, target_mode=target_mode, seed=seed)
        if not isinstance(threat, ThreatModel):
            raise ConfigError(f"threat must be Linf(eps), L2(eps) or L1(eps), got {threat!r}")
        if int(steps) < 1:
            raise ConfigError(f"PGD needs at least one step, got steps={steps}")
        if int(restarts) < 1:
            raise ConfigError(f"restarts must be at least 1, got {restarts}")
        self.threat = threat
        self.steps = int(steps)
        self.step_size = float(step_size) if step_size is not None else 2.5 * threat.eps / steps
        if self.step_size < 0:
            raise ConfigError(f"step size must be ≥ 0, got {step_size}")
        self.random_start = random_start
        self.restarts = int(restarts)
        self.custom_loss = loss
        self.early_stop = early_stop and loss is None
        self.track_best = track_best

    # ----------------------------------------------------------------------------- objective

    def objective(
        self, x: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-sample loss to ascend (already negated for targeted attacks) and the logits."""
        if self.custom_loss is not None:
            value = self.custom_loss(self.model, x, targets if targets is not None else labels)
            if value.ndim != 1 or value.shape[0] != x.shape[0]:
                raise ConfigError(
                    "a custom loss must return one value per sample, "
                    f"got shape {tuple(value.shape)}"
                )
            check_finite(value.unsqueeze(1), "custom loss")
            return (-value if self.targeted else value), None
        logits = self.model(x)
        check_finite(logits)
        if self.targeted:
            return -F.cross_entropy(logits, targets, reduction="none"), logits
        return F.cross_entropy(logits, labels, reduction="none"), logits

    # ------------------------------------------------------------------------------- engine

    def perturb(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        targets: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        start: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The last iterate of one run, with no bookkeeping: the fast path for training.
        ``start`` is the first perturbation (instead of the random start or zero), taken as
        given: only the box keeps it, the first step's projection brings it into the ball."""
        x = images.detach()
        gen = generator or self.generator
        if start is not None:
            delta = clip_to_box(x, start.detach().to(x))
        elif self.random_start:
            delta = self.threat.random_init(x, gen)
        else:
            delta = torch.zeros_like(x)
        for _ in range(self.steps):
            xa = (x + delta).requires_grad_(True)
            with torch.enable_grad():
                loss, _ = self.objective(xa, labels, targets)
                (grad,) = torch.autograd.grad(loss.sum(), xa)
            delta = delta + self.threat.step(grad, self.step_size, xa.detach())
            delta = clip_to_box(x, self.threat.project(delta))
        return (x + delta).detach()

    def _run(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        targets: torch.Tensor | None,
        batch_size: int | None = None,
    ) -> AttackResult:
        """Attack all of ``images`` through a working pool of at most ``batch_size`` rows.

        Each row carries its own step and restart counters. A row leaves the pool when it is
        fooled (with early exit) or has used all steps of all restarts, and the next image
        takes its place at once, so batches stay full however unevenly samples finish.
        """
        x = images
        n = x.shape[0]
        dev = x.device
        capacity = n if batch_size is None else max(1, min(n, int(batch_size)))
        best_adv = x.clone()
        best_loss = torch.full((n,), -torch.inf, device=dev)
        best_success = torch.zeros(n, dtype=torch.bool, device=dev)
        iterations = torch.zeros(n, dtype=torch.long, device=dev)

        rows = torch.zeros(0, dtype=torch.long, device=dev)
        delta = x[:0].clone()
        step = torch.zeros(0, dtype=torch.long, device=dev)
        restart = torch.zeros(0, dtype=torch.long, device=dev)
        admitted = 0
        while admitted < n or rows.numel() > 0:
            if rows.numel() < capacity and admitted < n:
                new = torch.arange(admitted, min(n, admitted + capacity - rows.numel()), device=dev)
                admitted += new.numel()
                rows = torch.cat([rows, new])
                delta = torch.cat([delta, self._start(x[new])])
                step = torch.cat([step, torch.zeros_like(new)])
                restart = torch.cat([restart, torch.zeros_like(new)])
            x0 = x[rows]
            t = targets[rows] if targets is not None else None
            need_grad = bool((step < self.steps).any())
            xa = (x0 + delta).requires_grad_(need_grad)
            with torch.set_grad_enabled(need_grad):
                loss, logits = self.objective(xa, labels[rows], t)
            xa_value, loss_value = xa.detach(), loss.detach()
            success = (
                self.is_success(logits.detach(), labels[rows], t)
                if logits is not None
                else torch.zeros_like(loss_value, dtype=torch.bool)
            )
            self._keep_best(rows, xa_value, loss_value, success, best_adv, best_loss, best_success)

            run_over = step >= self.steps
            if self.early_stop:
                run_over = run_over | success
            again = run_over & (restart + 1 < self.restarts)
            if self.early_stop:
                again = again & ~best_success[rows]
            moving = ~run_over
            all_moving = bool(moving.all())
            if all_moving or bool(moving.any()):
                (grad,) = torch.autograd.grad(loss.sum(), xa)
                if all_moving:  # the common case: no masked copies
                    d = delta + self.threat.step(grad, self.step_size, xa_value)
                    delta = clip_to_box(x0, self.threat.project(d))
                    step += 1
                    iterations[rows] += 1
                else:
                    m = moving
                    d = delta[m] + self.threat.step(grad[m], self.step_size, xa_value[m])
                    delta[m] = clip_to_box(x0[m], self.threat.project(d))
                    step[m] += 1
                    iterations[rows[m]] += 1
            if bool(again.any()):
                delta[again] = self._start(x0[again])
                step[again] = 0
                restart[again] += 1
            stay = moving | again
            if not (all_moving or bool(stay.all())):
                rows, delta, step, restart = rows[stay], delta[stay], step[stay], restart[stay]
        return AttackResult(
            adversarial=best_adv,
            success=best_success,
            norms=self.threat.norms(best_adv - x),
            iterations=iterations,
            loss=-best_loss if self.targeted else best_loss,
        )

    def _start(self, x0: torch.Tensor) -> torch.Tensor:
        if self.random_start:
            return self.threat.random_init(x0, self.generator)
        return torch.zeros_like(x0)

    def _keep_best(
        self,
        active: torch.Tensor,
        xa: torch.Tensor,
        loss: torch.Tensor,
        success: torch.Tensor,
        best_adv: torch.Tensor,
        best_loss: torch.Tensor,
        best_success: torch.Tensor,
    ) -> None:
        if self.track_best:
            old_success = best_success[active]
            better = (success & ~old_success) | (
                (success == old_success) & (loss > best_loss[active])
            )
        else:
            better = torch.ones_like(success)
        if bool(better.any()):
            idx = active[better]
            best_adv[idx] = xa[better]
            best_loss[idx] = loss[better]
            best_success[idx] = success[better]

    def describe(self) -> dict[str, Any]:
        return {
            "attack": self.name,
            **self.threat.describe(),
            "steps": self.steps,
            "step_size": self.step_size,
            "random_start": self.random_start,
            "restarts": self.restarts,
            "targeted": self.targeted,
            "target_mode": self.target_mode if self.targeted else None,
            "early_stop": self.early_stop,
            "loss": "cross-entropy" if self.custom_loss is None else "custom",
            "seed": self.seed,
        }


class FGSM(PGD):
    """Fast gradient sign method (Goodfellow et al. 2015): one step of length ε, no random start.

    In L2 and L1 the step is the normalised / sparse gradient step of the threat model
    ("fast gradient method"). The stepped input is returned even where it does not fool the
    model (no best-iterate tracking). With ``early_stop`` (the default, for accuracy under
    attack) an input the model misclassifies already is returned unchanged; without it every
    input is stepped, as when clean and attacked representations are compared for all images
    (Garaev et al. 2024, §4.1).
    """

    name = "fgsm"

    def __init__(
        self,
        model: nn.Module,
        threat: ThreatModel,
        *,
        targeted: bool = False,
        target_mode: str = "random",
        early_stop: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__(
            model,
            threat,
            steps=1,
            step_size=threat.eps,
            random_start=False,
            restarts=1,
            targeted=targeted,
            target_mode=target_mode,
            early_stop=early_stop,
            track_best=False,
            seed=seed,
        )
