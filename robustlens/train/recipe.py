"""A training recipe: everything that decides how a model is trained, as one validated value."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from robustlens.errors import ConfigError

METHODS = ("natural", "pgd", "fgsm-rs")
SCHEDULES = ("one-cycle", "cosine", "constant")
AUGMENTATIONS = ("none", "crop", "crop-flip")
MAX_EPOCHS = 10_000
"""More epochs than this is refused as a typo (published schedules stop at a few hundred)."""


@dataclass(frozen=True)
class Recipe:
    """How to train one model.

    method: ``natural``; ``pgd`` (Madry et al. 2018: PGD with ``steps`` steps of
        ``step_size``, random start); ``fgsm-rs`` (Wong et al. 2020, "Fast is better than
        free": uniform random start, one signed step of ``step_size`` = 1.25·ε by default).
    norm, eps: the training threat model (ignored for ``natural``).
    eps_warmup_epochs: ε grows linearly from 0 over this many epochs (per batch).
    schedule: learning rate per batch: ``one-cycle`` (linear 0 → lr over the first
        ``warmup_fraction`` of training, then linear → 0), ``cosine`` or ``constant``.
    attack_in_eval_mode: craft training attacks with BatchNorm in eval mode (as the MadryLab
        robustness library does), so attack iterates do not move the running statistics.
    eval_n / eval_steps: the final evaluation: clean and PGD-``eval_steps`` robust accuracy at
        the training ε on ``eval_n`` class-balanced test images.
    """

    method: str = "natural"
    norm: str = "linf"
    eps: float = 0.0
    steps: int = 7
    step_size: float | None = None
    eps_warmup_epochs: float = 0.0
    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "one-cycle"
    warmup_fraction: float = 0.25
    augment: str = "none"
    attack_in_eval_mode: bool = True
    seed: int = 0
    eval_n: int = 1000
    eval_steps: int = 20

    def __post_init__(self) -> None:
        def bad(field: str, allowed: str) -> ConfigError:
            return ConfigError(
                f"training recipe: {field} = {getattr(self, field)!r} is not allowed",
                fix=f"use {allowed}",
            )

        self._check_types()
        if self.method not in METHODS:
            raise bad("method", " | ".join(METHODS))
        if self.norm not in ("linf", "l2", "l1"):
            raise bad("norm", "linf | l2 | l1")
        if self.schedule not in SCHEDULES:
            raise bad("schedule", " | ".join(SCHEDULES))
        if self.augment not in AUGMENTATIONS:
            raise bad("augment", " | ".join(AUGMENTATIONS))
        if not (math.isfinite(self.eps) and self.eps >= 0):
            raise bad("eps", "a finite number ≥ 0")
        if self.norm == "linf" and self.eps > 1:
            raise bad("eps", "an L∞ budget ≤ 1 (pixels lie in [0, 1])")
        if self.method != "natural" and self.eps <= 0:
            raise ConfigError(
                f"training recipe: method {self.method!r} needs eps > 0",
                fix="give the training budget, e.g. eps = 0.1 for L∞ on Fashion-MNIST",
            )
        for name in ("epochs", "batch_size", "steps", "eval_n", "eval_steps"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise bad(name, "a whole number ≥ 1")
        if self.epochs > MAX_EPOCHS:
            raise bad("epochs", f"at most {MAX_EPOCHS:,} epochs (more is almost surely a typo)")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise bad("lr", "a number > 0")
        if not 0 <= self.momentum < 1:
            raise bad("momentum", "a number in [0, 1)")
        if self.weight_decay < 0:
            raise bad("weight_decay", "a number ≥ 0")
        if not 0 <= self.warmup_fraction < 1:
            raise bad("warmup_fraction", "a number in [0, 1)")
        if not (math.isfinite(self.eps_warmup_epochs) and self.eps_warmup_epochs >= 0):
            raise bad("eps_warmup_epochs", "a finite number ≥ 0")
        if self.eps_warmup_epochs > self.epochs:
            raise bad(
                "eps_warmup_epochs",
                f"at most epochs = {self.epochs} (a longer warm-up never reaches eps)",
            )
        if self.step_size is not None and not (
            math.isfinite(self.step_size) and self.step_size > 0
        ):
            raise bad("step_size", "a number > 0, or leave it out for the default")

    def _check_types(self) -> None:
        """Every field has its annotated type: a whole number (not a bool) for int fields, a
        finite number for float fields, true/false for bool fields, text for str fields."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            kind = str(f.type)
            if kind.endswith("| None") and value is None:
                continue
            if kind.startswith("int"):
                ok, wanted = (
                    isinstance(value, int) and not isinstance(value, bool),
                    "a whole number",
                )
            elif kind.startswith("float"):
                ok = isinstance(value, int | float) and not isinstance(value, bool)
                ok, wanted = ok and math.isfinite(value), "a finite number"
            elif kind == "bool":
                ok, wanted = isinstance(value, bool), "true or false"
            else:
                ok, wanted = isinstance(value, str), "a string"
            if not ok:
                raise ConfigError(
                    f"training recipe: {f.name} = {value!r} is not allowed", fix=f"use {wanted}"
                )

    @property
    def adversarial(self) -> bool:
        return self.method != "natural"

    @property
    def attack_steps(self) -> int:
        return 1 if self.method == "fgsm-rs" else self.steps

    def attack_step_size(self, eps: float) -> float:
        """The step size at budget ``eps`` (ε changes during warm-up)."""
        if self.step_size is not None:
            return self.step_size * (eps / self.eps if self.eps > 0 else 0.0)
        if self.method == "fgsm-rs":
            return 1.25 * eps
        return 2.5 * eps / self.steps

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Recipe:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"training recipe: unknown key(s) {', '.join(unknown)}",
                fix=f"allowed keys: {', '.join(sorted(known))}",
            )
        return cls(**values)

    def digest(self) -> str:
        """sha256 of the canonical JSON form (what decides whether a model must be retrained)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    def label(self) -> str:
        """A short human name, e.g. ``natural`` or ``pgd-linf-0.1``."""
        return "natural" if not self.adversarial else f"{self.method}-{self.norm}-{self.eps:g}"
