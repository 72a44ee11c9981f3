"""What every attack shares: the ``attack(images, labels)`` call, targets, success and checks."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import nn

from robustlens.attacks.result import AttackResult
from robustlens.attacks.targets import TARGET_MODES, choose_targets
from robustlens.errors import ConfigError, NumericalError
from robustlens.models.mode import eval_mode


def check_images(images: torch.Tensor, labels: torch.Tensor | None = None) -> None:
    """Inputs must be a float NCHW batch in [0, 1] (normalisation lives inside the model)."""
    if not torch.is_tensor(images) or not images.is_floating_point():
        raise ConfigError("attack inputs must be a floating-point tensor of images in [0, 1]")
    if images.numel() and (float(images.min()) < 0.0 or float(images.max()) > 1.0):
        raise ConfigError(
            f"attack inputs must lie in [0, 1], got values in [{float(images.min()):.3g}, "
            f"{float(images.max()):.3g}]",
            fix="pass unnormalised images; the model's own Normalize layer applies mean/std",
        )
    if labels is not None and labels.shape[0] != images.shape[0]:
        raise ConfigError(f"{images.shape[0]} images but {labels.shape[0]} labels")


def check_finite(logits: torch.Tensor, what: str = "model") -> None:
    if not bool(torch.isfinite(logits).all()):
        bad = int((~torch.isfinite(logits)).any(dim=1).sum())
        raise NumericalError(
            f"the {what} produced NaN or infinite outputs on {bad} of {logits.shape[0]} inputs",
            fix="check the checkpoint (a diverged training run?) and the input scaling",
        )


def predict(model: nn.Module, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Predicted classes, in batches, checking for NaN outputs; the model runs in eval mode
    (its own mode restored afterwards)."""
    preds = []
    with torch.no_grad(), eval_mode(model):
        for i in range(0, images.shape[0], max(1, batch_size)):
            logits = model(images[i : i + batch_size])
            check_finite(logits)
            preds.append(logits.argmax(dim=1))
    return torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long, device=images.device)


def num_classes_of(model: nn.Module, images: torch.Tensor) -> int:
    k = getattr(model, "num_classes", None)
    if isinstance(k, int):
        return k
    with torch.no_grad():
        return int(model(images[:1]).shape[1])


class Attack(ABC):
    """Base of all attacks. ``attack(images, labels)`` returns adversarial images in [0, 1].

    Targeted attacks take explicit ``targets`` in the call, or choose them by ``target_mode``
    (``"random"``, ``"least-likely"``, ``"next"`` = y + 1 mod K). Attacks never change the
    model's train/eval mode nor its parameters' ``requires_grad``.
    """

    name = "attack"
    pooled = False
    """True for attacks that refill their working batch themselves as samples finish."""

    def __init__(
        self,
        model: nn.Module,
        *,
        targeted: bool = False,
        target_mode: str = "random",
        seed: int = 0,
    ) -> None:
        if target_mode not in TARGET_MODES:
            raise ConfigError(
                f"unknown target mode {target_mode!r}", fix=f"use one of: {', '.join(TARGET_MODES)}"
            )
        self.model = model
        self.targeted = targeted
        self.target_mode = target_mode
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(
        self, images: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.run(images, labels, targets).adversarial

    def run(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        batch_size: int | None = None,
    ) -> AttackResult:
        """Attack ``images`` and report per-sample success, norms and iterations.

        ``batch_size`` bounds how many images are processed at once (all when None).
        Gradients are enabled inside, so a caller's ``torch.no_grad()`` does not break it.
        """
        with torch.enable_grad():
            return self._run_batches(images, labels, targets, batch_size)

    def _run_batches(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        targets: torch.Tensor | None,
        batch_size: int | None,
    ) -> AttackResult:
        check_images(images, labels)
        labels = labels.to(images.device)
        if self.targeted and targets is None:
            k = num_classes_of(self.model, images)
            targets = choose_targets(
                self.target_mode, self.model, images, labels, k, self.generator
            )
        elif targets is not None:
            targets = targets.to(images.device)
            if not self.targeted:
                raise ConfigError(
                    "targets were given to an untargeted attack", fix="set targeted=True"
                )
        images = images.detach()
        n = images.shape[0]
        if self.pooled:
            return self._run(images, labels, targets, batch_size)
        if batch_size is None or batch_size >= n:
            return self._run(images, labels, targets)
        parts = [
            self._run(
                images[i : i + batch_size],
                labels[i : i + batch_size],
                targets[i : i + batch_size] if targets is not None else None,
            )
            for i in range(0, n, batch_size)
        ]
        return AttackResult.concat(parts)

    @abstractmethod
    def _run(
        self, images: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None, *args: Any
    ) -> AttackResult: ...

    def is_success(
        self, logits: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None
    ) -> torch.Tensor:
        pred = logits.argmax(dim=1)
        return pred == targets if self.targeted else pred != labels

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """The attack's exact settings, for model cards and result tables."""
