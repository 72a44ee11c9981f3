"""What an attack returns: adversarial inputs plus per-sample success and effort."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class AttackResult:
    """Per-sample outcome of one attack on one batch.

    ``success`` is True where the final ``adversarial`` input achieves the attack's goal
    (misclassified, or classified as the target); ``norms`` are ‖adversarial − clean‖ in the
    attack's norm; ``iterations`` counts the gradient steps spent on each sample.
    """

    adversarial: torch.Tensor
    success: torch.Tensor
    norms: torch.Tensor
    iterations: torch.Tensor
    loss: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.success.shape[0])

    @classmethod
    def concat(cls, parts: list[AttackResult]) -> AttackResult:
        """Join results of consecutive batches."""
        losses = [p.loss for p in parts]
        return cls(
            adversarial=torch.cat([p.adversarial for p in parts]),
            success=torch.cat([p.success for p in parts]),
            norms=torch.cat([p.norms for p in parts]),
            iterations=torch.cat([p.iterations for p in parts]),
            loss=torch.cat(losses) if all(loss is not None for loss in losses) else None,
        )

    @property
    def success_rate(self) -> float:
        return float(self.success.float().mean()) if len(self) else float("nan")
