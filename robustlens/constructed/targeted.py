"""Zero-robust and negative-robust training sets (Springer et al. 2021, §3.2, App. A, Table 4;
Ilyas et al. 2019).

Each image x is attacked with targeted PGD L2 against a standard model toward a new label ŷ
and labelled ŷ, so that only non-robust features tie an image to its new label:

* ``zero``: ŷ uniformly random (robust features carry no information about ŷ);
* ``zero-all``: one example per target class for every image (what the paper did for
  CIFAR-10);
* ``negative``: ŷ = y + 1 mod K (robust features point away from ŷ: the control for robust
  feature leakage).

Defaults are Table 4's: ε = 0.5 (L2, in [0, 1] pixel units), 200 steps of 0.1, at every
resolution. The paper keeps these numbers for CIFAR-10 (3072 values) and for ImageNet-9 at
64 × 64 (12288 values) alike — unlike its transfer budget, which it moves from 2.0 to 4.0 — so
they are not rescaled to the data's resolution here either; a given ``eps`` / ``step_size`` is
used as written. The attack runs all its steps from the clean image (no random start) and the
set records how many attacks reached their target.

:func:`leakage` is the check for robust feature leakage (§3.2, Engstrom et al. 2019): the share
of a set that a robust model classifies as its new label ŷ, and as the source image's label y.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from robustlens.attacks.evaluate import predict
from robustlens.attacks.pgd import PGD
from robustlens.attacks.threat import L2
from robustlens.errors import ConfigError

MODES = ("zero", "zero-all", "negative")
EPS, STEPS, STEP_SIZE = 0.5, 200, 0.1
"""Table 4 (zero- and negative-robust rows, CIFAR-10 and ImageNet-9 alike): L2 ε, steps, step."""


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
    """Targeted PGD L2 examples toward the mode's new labels (see the module notes): ε and the
    step size default to Table 4's 0.5 and 0.1, unscaled; given values are used as written."""
    if num_classes < 2:
        raise ConfigError("targeted sets need at least two classes")
    gen = torch.Generator().manual_seed(seed)
    source, targets = new_labels(labels, mode, num_classes, gen)
    x = images[source.to(images.device)]
    y = labels[source.to(labels.device)]
    adversarial, success = attack_toward(
        model, x, y, targets.to(images.device), eps=eps, steps=steps, step_size=step_size,
        seed=seed, batch_size=batch_size,
    )  # fmt: skip
    return TargetedResult(adversarial, targets.to(images.device), source, success)


def attack_toward(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    targets: torch.Tensor,
    *,
    eps: float | None = None,
    steps: int = STEPS,
    step_size: float | None = None,
    seed: int = 0,
    batch_size: int = 250,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Targeted PGD L2 (Table 4's defaults, unscaled) moving each image toward its target:
    the examples and whether ``model`` predicts the target on each."""
    eps = EPS if eps is None else float(eps)
    step_size = STEP_SIZE if step_size is None else float(step_size)
    if eps <= 0 or step_size <= 0 or steps < 1:
        raise ConfigError(
            f"a targeted set needs ε > 0, a step size > 0 and steps ≥ 1, got {eps}, "
            f"{step_size}, {steps}",
            fix="leave them out for Table 4's ε = 0.5, 200 steps of 0.1",
        )
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
    adversarial = attack.run(images, labels, targets=targets, batch_size=batch_size).adversarial
    success = predict(model, adversarial, 500) == targets
    return adversarial.detach(), success.cpu()


def leakage(
    model: nn.Module,
    images: torch.Tensor,
    new_labels: torch.Tensor,
    original_labels: torch.Tensor,
    batch_size: int = 500,
) -> dict[str, float | int]:
    """Robust feature leakage (Springer et al. §3.2): the share of a targeted set's images that
    a robust ``model`` classifies as their new label ŷ and as their source image's label y.

    A robust model sees robust features only; if it calls many perturbed images ŷ, the
    perturbation carried robust features of ŷ and the set does not isolate non-robust ones.
    """
    if not (len(images) == len(new_labels) == len(original_labels)) or len(images) == 0:
        raise ConfigError("leakage needs one new and one original label per image")
    device = next(model.parameters(), torch.zeros(0)).device
    predicted = torch.cat(
        [
            predict(model, images[i : i + 10 * batch_size].to(device), batch_size).cpu()
            for i in range(0, len(images), 10 * batch_size)
        ]
    )
    return {
        "new_label_fraction": float((predicted == new_labels.cpu()).float().mean()),
        "original_label_fraction": float((predicted == original_labels.cpu()).float().mean()),
        "examples": len(images),
    }


def describe_leakage(leak: dict) -> str:
    """One line for a recorded leakage check, e.g. ``l2-1.5 classifies 10.8 % as the new
    label, 79.9 % as the original``."""
    return (
        f"{leak.get('model')} classifies {100 * leak['new_label_fraction']:.1f} % as the new "
        f"label, {100 * leak['original_label_fraction']:.1f} % as the original"
    )
