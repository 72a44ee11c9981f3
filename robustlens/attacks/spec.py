"""Attack settings as short strings ("pgd linf 0.025 5"), scaled between input resolutions.

Papers give budgets for CIFAR-10 (3 × 32 × 32 = 3 072 values) or ImageNet. To keep the
per-value size of a perturbation when the input has d values instead of d_ref, an L∞ budget
stays as it is, an L2 budget is multiplied by √(d / d_ref) and an L1 budget by d / d_ref
(the ε-ball of each norm then holds the same constant perturbation per value).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from torch import nn

from robustlens.attacks.base import Attack
from robustlens.errors import ConfigError

ATTACKS = ("pgd", "fgsm", "cw", "deepfool")
NORM_NAMES = {"linf": "L∞", "l2": "L2", "l1": "L1"}
CIFAR10_DIM = 3 * 32 * 32
MINIMAL_NORM = ("cw", "deepfool")


def scale_eps(norm: str, eps: float, dim: int, reference_dim: int) -> float:
    """``eps`` set for inputs of ``reference_dim`` values, moved to inputs of ``dim`` values."""
    if reference_dim <= 0 or dim == reference_dim:
        return eps
    ratio = dim / reference_dim
    return eps * {"linf": 1.0, "l2": math.sqrt(ratio), "l1": ratio}[norm]


@dataclass(frozen=True)
class AttackSpec:
    """One attack setting: attack, norm, budget ε and (for iterative attacks) steps."""

    attack: str
    norm: str
    eps: float
    steps: int | None = None

    @classmethod
    def parse(cls, text: str) -> AttackSpec:
        """Read ``"ATTACK NORM EPS [STEPS]"``, e.g. ``"pgd l2 0.25 100"``, ``"fgsm linf 0.03"``."""
        parts = str(text).split()
        usage = 'write "ATTACK NORM EPS [STEPS]", e.g. "pgd linf 0.025 5" or "fgsm l2 0.25"'
        if len(parts) not in (3, 4):
            raise ConfigError(f"attack setting {text!r} is not understood", fix=usage)
        attack, norm = parts[0].lower(), parts[1].lower()
        if attack not in ATTACKS:
            raise ConfigError(
                f"unknown attack {parts[0]!r} in {text!r}", fix=f"use {', '.join(ATTACKS)}"
            )
        if norm not in NORM_NAMES:
            raise ConfigError(f"unknown norm {parts[1]!r} in {text!r}", fix="use linf, l2 or l1")
        try:
            eps = float(parts[2])
            steps = int(parts[3]) if len(parts) == 4 else None
        except ValueError as exc:
            raise ConfigError(
                f"attack setting {text!r}: ε or steps is not a number", fix=usage
            ) from exc
        if not math.isfinite(eps) or eps < 0 or (steps is not None and steps < 1):
            raise ConfigError(f"attack setting {text!r}: ε must be ≥ 0 and steps ≥ 1", fix=usage)
        if attack == "cw" and norm != "l2":
            raise ConfigError(f"{text!r}: Carlini–Wagner is an L2 attack", fix="use cw l2 …")
        if attack == "deepfool" and norm == "l1":
            raise ConfigError(f"{text!r}: DeepFool supports l2 and linf", fix="use deepfool l2 …")
        if attack == "pgd" and steps is None:
            raise ConfigError(f"{text!r}: PGD needs a number of steps", fix=usage)
        return cls(attack, norm, eps, steps)

    def scaled(self, dim: int, reference_dim: int) -> AttackSpec:
        return AttackSpec(
            self.attack, self.norm, scale_eps(self.norm, self.eps, dim, reference_dim), self.steps
        )

    @property
    def minimal_norm(self) -> bool:
        return self.attack in MINIMAL_NORM

    def label(self) -> str:
        """e.g. ``PGD-5 L∞ ε=0.025`` or ``FGSM L2 ε=0.126``."""
        name = {"pgd": "PGD", "fgsm": "FGSM", "cw": "C&W", "deepfool": "DeepFool"}[self.attack]
        steps = f"-{self.steps}" if self.steps and self.attack != "fgsm" else ""
        return f"{name}{steps} {NORM_NAMES[self.norm]} ε={self.eps:.3g}"

    def key(self) -> str:
        """Canonical text form (what :meth:`parse` reads)."""
        steps = f" {self.steps}" if self.steps is not None else ""
        return f"{self.attack} {self.norm} {self.eps:g}{steps}"

    def run_key(self, *, early_stop: bool = True, cw_binary_steps: int = 9) -> str:
        """Everything that determines the attack's output, with the options :meth:`build`
        takes. Minimal-norm attacks always stop once fooled and do not depend on ε (it only
        judges their result), so settings differing in ε or early exit share one run."""
        if not self.minimal_norm:
            return f"{self.key()} early_stop={bool(early_stop)}"
        steps = self.steps or {"cw": 1000, "deepfool": 50}[self.attack]
        searches = f" searches={cw_binary_steps}" if self.attack == "cw" else ""
        return f"{self.attack} {self.norm} * {steps}{searches}"

    def build(
        self,
        model: nn.Module,
        *,
        seed: int = 0,
        early_stop: bool = True,
        cw_binary_steps: int = 9,
    ) -> Attack:
        """The attack object. PGD uses the default step 2.5·ε/steps and a random start."""
        from robustlens.attacks import FGSM, PGD, CarliniWagnerL2, DeepFool, threat_model

        if self.attack == "pgd":
            return PGD(
                model,
                threat_model(self.norm, self.eps),
                self.steps,
                early_stop=early_stop,
                seed=seed,
            )
        if self.attack == "fgsm":
            return FGSM(model, threat_model(self.norm, self.eps), seed=seed)
        if self.attack == "cw":
            return CarliniWagnerL2(
                model, steps=self.steps or 1000, binary_search_steps=cw_binary_steps, seed=seed
            )
        return DeepFool(model, self.norm, steps=self.steps or 50, seed=seed)

    def describe(self) -> dict[str, Any]:
        return {"attack": self.attack, "norm": self.norm, "eps": self.eps, "steps": self.steps}


def parse_specs(texts: tuple[str, ...] | list[str]) -> list[AttackSpec]:
    return [AttackSpec.parse(t) for t in texts]
