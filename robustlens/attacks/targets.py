"""Target labels for targeted attacks: random, least-likely, or the permutation y → y + 1."""

from __future__ import annotations

import torch

from robustlens.errors import ConfigError

TARGET_MODES = ("random", "least-likely", "next")


def random_targets(
    labels: torch.Tensor, num_classes: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A label drawn uniformly from the K − 1 classes other than each true label."""
    if num_classes < 2:
        raise ConfigError("targeted attacks need at least two classes")
    offset = torch.randint(1, num_classes, labels.shape, generator=generator)
    return (labels.cpu() + offset).remainder(num_classes).to(labels.device)


def next_targets(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The permutation y → (y + 1) mod K (the negative-robust construction of Springer et al.)."""
    return (labels + 1).remainder(num_classes)


def least_likely_targets(logits: torch.Tensor) -> torch.Tensor:
    """The class each clean input is least likely to be (Kurakin et al. 2017)."""
    return logits.argmin(dim=1)


def choose_targets(
    mode: str,
    model: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Targets for ``images`` by ``mode`` (one of :data:`TARGET_MODES`)."""
    key = mode.strip().lower().replace("_", "-")
    if key == "random":
        return random_targets(labels, num_classes, generator)
    if key == "next":
        return next_targets(labels, num_classes)
    if key == "least-likely":
        with torch.no_grad():
            return least_likely_targets(model(images))
    raise ConfigError(f"unknown target mode {mode!r}", fix=f"use one of: {', '.join(TARGET_MODES)}")
