"""A training recipe: everything that decides how a model is trained, as one validated value."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from robustlens.errors import ConfigError
from robustlens.params import Interval, Options, invalid, validate

METHODS = ("natural", "pgd", "fgsm-rs")
NORMS = ("linf", "l2", "l1")
SCHEDULES = ("one-cycle", "cosine", "constant")
AUGMENTATIONS = ("none", "crop", "crop-flip")
PRECISIONS = ("fp32", "bf16")
RUNTIME_FIELDS = ("precision", "channels_last", "sync_batchnorm")
"""Fields of how a run computes rather than what it computes: left out of :meth:`Recipe.to_dict`
at their defaults, so that the digests of recipes that do not set them stay as they were."""
MAX_EPOCHS = 10_000
"""More epochs than this is refused as a typo (published schedules stop at a few hundred)."""

_AT_LEAST_ONE = Interval("integer", 1, None)
_NOT_NEGATIVE = Interval("real", 0, None, closed="left")
_FRACTION = Interval("real", 0, 1, closed="left")
CONSTRAINTS = {
    "method": Options(METHODS),
    "norm": Options(NORMS),
    "eps": _NOT_NEGATIVE,
    "steps": _AT_LEAST_ONE,
    "step_size": [Interval("real", 0, None, closed="neither"), None],
    "eps_warmup_epochs": _NOT_NEGATIVE,
    "epochs": Interval("integer", 1, MAX_EPOCHS),
    "batch_size": _AT_LEAST_ONE,
    "lr": Interval("real", 0, None, closed="neither"),
    "momentum": _FRACTION,
    "nesterov": bool,
    "weight_decay": _NOT_NEGATIVE,
    "schedule": Options(SCHEDULES),
    "warmup_fraction": _FRACTION,
    "augment": Options(AUGMENTATIONS),
    "attack_in_eval_mode": bool,
    "seed": int,
    "eval_n": _AT_LEAST_ONE,
    "eval_steps": _AT_LEAST_ONE,
    "precision": Options(PRECISIONS),
    "channels_last": bool,
    "sync_batchnorm": bool,
}
"""What each field of a :class:`Recipe` may be (robustlens.params), in field order."""
HINTS = {"epochs": f"more than {MAX_EPOCHS:,} epochs is almost surely a typo"}


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
    precision: ``fp32``, or ``bf16`` (bf16 autocast of the attack and training forward passes;
        CUDA only, refused on the CPU).
    channels_last: the NHWC memory layout for the model and batches (CUDA only; ignored with a
        warning on the CPU).
    sync_batchnorm: with several processes (torchrun), BatchNorm statistics over the global
        batch (SyncBatchNorm) instead of each rank's share.
    The card records how these took effect (``runtime``: device, processes, precision, ...).
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
    precision: str = "fp32"
    channels_last: bool = False
    sync_batchnorm: bool = False

    def __post_init__(self) -> None:
        self.check(dataclasses.asdict(self))

    @classmethod
    def check(
        cls,
        values: Mapping[str, Any],
        *,
        where: str = "training recipe",
        prefix: str = "",
        spell: Callable[[str], str] = str,
    ) -> None:
        """Raise one ConfigError for the first rule ``values`` (fields of a recipe, the others
        at their defaults) break: each field's constraint in field order (CONSTRAINTS), then
        the rules between fields. ``where``, ``prefix`` and ``spell`` name the place (see
        robustlens.params.validate)."""
        validate(values, CONSTRAINTS, where=where, prefix=prefix, hints=HINTS, spell=spell)
        full = {f.name: f.default for f in dataclasses.fields(cls)} | dict(values)

        def bad(field: str, allowed: str, hint: str | None = None) -> ConfigError:
            key = f"{prefix}.{spell(field)}" if prefix else spell(field)
            return invalid(where, key, full[field], allowed, hint)

        if full["norm"] == "linf" and full["eps"] > 1:
            raise bad("eps", "an L∞ budget ≤ 1 (pixels lie in [0, 1])")
        if full["method"] != "natural" and full["eps"] <= 0:
            raise bad(
                "eps",
                f"a budget > 0 for method {full['method']!r}",
                "e.g. eps = 0.1 for L∞ on Fashion-MNIST",
            )
        if full["eps_warmup_epochs"] > full["epochs"]:
            raise bad(
                "eps_warmup_epochs",
                f"at most epochs = {full['epochs']} (a longer warm-up never reaches eps)",
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
        """The fields, without the RUNTIME_FIELDS left at their defaults."""
        return {
            k: v
            for k, v in dataclasses.asdict(self).items()
            if k not in RUNTIME_FIELDS or v != _RUNTIME_DEFAULTS[k]
        }

    @classmethod
    def from_dict(
        cls,
        values: Mapping[str, Any],
        *,
        where: str = "training recipe",
        prefix: str = "",
        spell: Callable[[str], str] = str,
    ) -> Recipe:
        """A recipe from a table of fields; an unknown key or bad value is one ConfigError
        naming ``where`` and the key (see :meth:`check`)."""
        cls.check(values, where=where, prefix=prefix, spell=spell)
        return cls(**values)

    def digest(self) -> str:
        """sha256 of the canonical JSON form (what decides whether a model must be retrained)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    def label(self) -> str:
        """A short human name, e.g. ``natural`` or ``pgd-linf-0.1``."""
        return "natural" if not self.adversarial else f"{self.method}-{self.norm}-{self.eps:g}"


_RUNTIME_DEFAULTS = {
    f.name: f.default for f in dataclasses.fields(Recipe) if f.name in RUNTIME_FIELDS
}
