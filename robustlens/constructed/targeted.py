"""Zero-robust and negative-robust training sets (Springer et al. 2021, §3.2, App. A, Table 4;
Ilyas et al. 2019).

Each image x is attacked with targeted PGD L2 against a standard model toward a new label ŷ
and labelled ŷ, so that only non-robust features tie an image to its new label:

* ``zero``: ŷ uniformly random (robust features carry no information about ŷ);
* ``zero-all``: one example per target class for every image (what the paper did for
  CIFAR-10);
* ``negative``: ŷ = y + 1 mod K (robust features point away from ŷ: the control for robust
  feature leakage).

Table 4: ε = 0.5, 200 steps of 0.1 at CIFAR-10 resolution; here moved to the data's resolution
like any L2 budget. The attack runs all its steps from the clean image (no random start) and
the set records how many attacks reached their target.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from robustlens.attacks.evaluate import predict
from robustlens.attacks.pgd import PGD
from robustlens.attacks.spec import CIFAR10_DIM, scale_eps
from robustlens.attacks.threat import L2
from robustlens.errors import ConfigError

MODES = ("zero", "zero-all", "negative")
EPS, STEPS, STEP_SIZE = 0.5, 200, 0.1


@dataclass
class TargetedResult:
    images: torch.Tensor
    labels: torch.Tensor
    """The new labels ŷ."""
    source: torch.Tensor
    """Index of the source image of each example."""
    success: torch.Tensor
    """Whether the model predicts ŷ on the example."""


def new_labels(
    labels: torch.Tensor, mode: str, num_classes: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(source index, ŷ) for every example the mode makes from ``labels``."""
    n = labels.shape[0]
    if mode == "zero":
        return torch.arange(n), torch.randint(0, num_classes, (n,), generator=generator)
    if mode == "zero-all":
        source = torch.arange(n).repeat_interleave(num_classes)
        return source, torch.arange(num_classes).repeat(n)
    if mode == "negative":
        return torch.arange(n), (labels.cpu() + 1) % num_classes
    raise ConfigError(f"unknown targeted-set mode {mode!r}", fix=f"use {', '.join(MODES)}")


def targeted_examples(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    mode: str,
    num_classes: int,
    *,
    eps: float | None = None,
    steps: int = STEPS,
    step_size: float | None = None,
    seed: int = 0,
    batch_size: int = 250,
) -> TargetedResult:
    """Targeted PGD L2 examples toward the mode's new labels (see the module notes)."""
    if num_classes < 2:
        raise ConfigError("targeted sets need at least two classes")
    dim = int(images[0].numel())
    eps = scale_eps("l2", EPS, dim, CIFAR10_DIM) if eps is None else float(eps)
    step_size = scale_eps("l2", STEP_SIZE, dim, CIFAR10_DIM) if step_size is None else step_size
    gen = torch.Generator().manual_seed(seed)
    source, targets = new_labels(labels, mode, num_classes, gen)
    x = images[source.to(images.device)]
    y = labels[source.to(labels.device)]
    attack = PGD(
        model,
        L2(eps),
        steps=steps,
        step_size=step_size,
        random_start=False,
        targeted=True,
        early_stop=False,
        track_best=False,
        seed=seed,
    )
    targets = targets.to(images.device)
    adversarial = attack.run(x, y, targets=targets, batch_size=batch_size).adversarial
    success = predict(model, adversarial, 500) == targets
    return TargetedResult(adversarial.detach(), targets, source, success.cpu())
