"""Per-sample attack objectives on logits: cross-entropy and the DLR margins of Croce & Hein.

Croce & Hein (2020), "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks", §4: with the logits z sorted so that z_π1 ≥ z_π2 ≥ …,

    DLR(z, y)    = −(z_y − max_{i≠y} z_i) / (z_π1 − z_π3)
    DLR_T(z, y, t) = −(z_y − z_t) / (z_π1 − (z_π3 + z_π4) / 2)

Both are invariant to a shift and a positive rescaling of the logits, so a model that saturates
its softmax cannot hide its margin from them. Each denominator carries the 1e-12 safeguard of
the authors' implementation (it is zero only when the top three or four logits tie).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from robustlens.errors import ConfigError

SAFEGUARD = 1e-12
LOSSES = ("ce", "dlr", "dlr-targeted")


def need_classes(classes: int, k: int, loss: str) -> None:
    """ConfigError unless the model has at least ``k`` classes (the DLR ranks need them)."""
    if classes < k:
        raise ConfigError(
            f"the {loss} loss needs at least {k} classes, the model has {classes}",
            fix="use the cross-entropy loss (apgd, loss='ce') for models with fewer classes",
        )


def ce_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-sample cross-entropy of the true labels (ascended by untargeted attacks)."""
    return F.cross_entropy(logits, labels, reduction="none")


def dlr_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-sample DLR loss −(z_y − max_{i≠y} z_i) / (z_π1 − z_π3 + 1e-12); ≥ 0 once fooled."""
    need_classes(logits.shape[1], 3, "DLR")
    top = logits.topk(3, dim=1).values
    z_y = logits.gather(1, labels.unsqueeze(1)).squeeze(1)
    # max over i ≠ y: the second largest where y holds the largest, else the largest
    is_top = logits.argmax(dim=1) == labels
    other = torch.where(is_top, top[:, 1], top[:, 0])
    return -(z_y - other) / (top[:, 0] - top[:, 2] + SAFEGUARD)


def targeted_dlr_loss(
    logits: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Per-sample targeted DLR −(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2 + 1e-12)."""
    need_classes(logits.shape[1], 4, "targeted DLR")
    top = logits.topk(4, dim=1).values
    z_y = logits.gather(1, labels.unsqueeze(1)).squeeze(1)
    z_t = logits.gather(1, targets.unsqueeze(1)).squeeze(1)
    return -(z_y - z_t) / (top[:, 0] - 0.5 * (top[:, 2] + top[:, 3]) + SAFEGUARD)
