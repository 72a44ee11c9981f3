"""Catastrophic-overfitting guard for single-step adversarial training.

Wong, Rice & Kolter (2020, "Fast is better than free", §5.3 and their early stopping) saw
FGSM training collapse within a few batches: the PGD accuracy falls to near zero while the
FGSM accuracy rises. They detect it by the PGD accuracy on a training minibatch and keep the
model from before the collapse. The guard does that: the loop gives it the PGD accuracy on a
fixed held-out training batch several times per epoch; it keeps a copy of the weights at the
best check, and when the accuracy falls more than ``drop`` below that best it reports a
collapse (the loop then restores the best weights and stops).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the model's parameters and buffers (its state dict)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@dataclass
class CollapseGuard:
    """Best PGD accuracy so far, the weights it was measured on, and the checks made.

    ``checks`` holds one record per check: ``epoch`` (fractional, e.g. 1.5 = half-way through
    the second epoch), ``step`` (optimiser steps done) and ``accuracy``. ``collapse`` is None
    until a collapse is seen, then the record of when and how far the accuracy fell.
    """

    drop: float
    checks: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None
    collapse: dict[str, Any] | None = None
    best_state: dict[str, torch.Tensor] | None = None

    def observe(self, accuracy: float, epoch: float, step: int, model: nn.Module) -> bool:
        """Record one check; True when it is a collapse (the accuracy fell more than ``drop``
        below the best check). A new best keeps a copy of ``model``'s weights."""
        record = {"epoch": epoch, "step": step, "accuracy": float(accuracy)}
        self.checks.append(record)
        if self.best is None or accuracy > self.best["accuracy"]:
            self.best = record
            self.best_state = snapshot(model)
            return False
        if self.best["accuracy"] - accuracy > self.drop:
            self.collapse = {
                "epoch": epoch,
                "step": step,
                "accuracy": float(accuracy),
                "best_accuracy": self.best["accuracy"],
                "kept": {"epoch": self.best["epoch"], "step": self.best["step"]},
            }
            return True
        return False

    def restore_best(self, model: nn.Module) -> None:
        """Load the weights of the best check into ``model``."""
        if self.best_state is None:
            raise RuntimeError("no check has been made: there are no best weights to restore")
        model.load_state_dict(self.best_state)

    def to_json(self) -> dict[str, Any]:
        """Everything but the weights (those are saved beside the training state)."""
        return {
            "drop": self.drop,
            "checks": self.checks,
            "best": self.best,
            "collapse": self.collapse,
        }

    @classmethod
    def from_json(
        cls, values: dict[str, Any], best_state: dict[str, torch.Tensor] | None
    ) -> CollapseGuard:
        return cls(
            drop=float(values["drop"]),
            checks=list(values["checks"]),
            best=values["best"],
            collapse=values["collapse"],
            best_state=best_state,
        )

    def card_record(self, attack: dict[str, Any], n: int) -> dict[str, Any]:
        """What the model card keeps: the check's attack and images, the threshold, the best
        check, the collapse (None when there was none) and every check's accuracy."""
        return {
            "attack": attack,
            "n": n,
            "drop": self.drop,
            "best": self.best,
            "collapse": self.collapse,
            "checks": self.checks,
        }
