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

METHODS = ("natural", "pgd", "fgsm-rs", "n-fgsm", "trades", "mart")
SINGLE_STEP = ("fgsm-rs", "n-fgsm")
"""Methods with a one-step inner maximisation: the ones that can overfit catastrophically."""
METHOD_FIELDS = {
    "beta": ("trades", "mart"),
    "noise": ("n-fgsm",),
    "overfit_checks": SINGLE_STEP,
    "overfit_drop": SINGLE_STEP,
}
"""Fields only some methods use: left at their defaults (and out of :meth:`Recipe.to_dict`,
so the digests of recipes that do not use them stay as they were) for the other methods."""
DEFAULT_STEPS = {"trades": 10, "mart": 10}
"""Inner-maximisation steps when ``steps`` is left out (TRADES and MART: the papers' 10)."""
NORMS = ("linf", "l2", "l1")
SCHEDULES = ("one-cycle", "cosine", "constant")
AUGMENTATIONS = ("none", "crop", "crop-flip")
PRECISIONS = ("fp32", "bf16")
RUNTIME_FIELDS = ("precision", "channels_last", "sync_batchnorm")
"""Fields of how a run computes rather than what it computes: left out of :meth:`Recipe.to_dict`
at their defaults, so that the digests of recipes that do not set them stay as they were."""
LATER_FIELDS = (*RUNTIME_FIELDS, "eval_attack")
"""Fields added after recipes were first stored, left out at their defaults for the same
reason (``eval_attack`` changes the card's final evaluation, not the weights)."""
EVAL_ATTACKS = ("pgd", "autoattack")
MAX_EPOCHS = 10_000
"""More epochs than this is refused as a typo (published schedules stop at a few hundred)."""

_AT_LEAST_ONE = Interval("integer", 1, None)
_NOT_NEGATIVE = Interval("real", 0, None, closed="left")
_FRACTION = Interval("real", 0, 1, closed="left")
CONSTRAINTS = {
    "method": Options(METHODS),
    "norm": Options(NORMS),
    "eps": _NOT_NEGATIVE,
    "steps": [_AT_LEAST_ONE, None],
    "step_size": [Interval("real", 0, None, closed="neither"), None],
    "beta": Interval("real", 0, None, closed="neither"),
    "noise": _NOT_NEGATIVE,
    "overfit_checks": Interval("integer", 0, None),
    "overfit_drop": Interval("real", 0, 1, closed="right"),
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
    "eval_attack": Options(EVAL_ATTACKS),
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
        free": uniform random start, one signed step of ``step_size`` = 1.25·ε by default);
        ``n-fgsm`` (de Jorge et al. 2022, "Make some noise": noise from the ball of radius
        ``noise``·ε, one step of ``step_size`` = ε by default, no projection back to the
        ε-ball); ``trades`` (Zhang et al. 2019: CE(f(x), y) + β·KL(f(x) ‖ f(x')), x' from
        PGD on the KL started at x + 0.001·N(0, I)); ``mart`` (Wang et al. 2020:
        BCE(p(x'), y) + β·KL(p(x) ‖ p(x'))·(1 − p_y(x)), x' from PGD on the cross-entropy).
        TRADES and MART take ``steps`` = 10 steps of ε/4 by default, the others 7 steps.
    norm, eps: the training threat model (ignored for ``natural``).
    beta: the weight of the robust term of ``trades`` (β, 6 in the paper) and ``mart`` (the
        paper's λ, also 6).
    noise: ``n-fgsm``'s noise magnitude k (the paper's 2).
    overfit_checks / overfit_drop: catastrophic-overfitting checks per epoch of the
        single-step methods (0: none), and the fall in PGD accuracy on a held-out training
        batch, below its best, that counts as a collapse (Wong et al. 2020's 0.2): training
        then stops and keeps the weights of the best check (see robustlens.train.guard).
    eps_warmup_epochs: ε grows linearly from 0 over this many epochs (per batch).
    schedule: learning rate per batch: ``one-cycle`` (linear 0 → lr over the first
        ``warmup_fraction`` of training, then linear → 0), ``cosine`` or ``constant``.
    attack_in_eval_mode: craft training attacks with BatchNorm in eval mode (as the MadryLab
        robustness library does), so attack iterates do not move the running statistics.
    eval_n / eval_steps / eval_attack: the final evaluation: clean and robust accuracy at the
        training ε on ``eval_n`` class-balanced test images, under PGD-``eval_steps``
        (``eval_attack = "pgd"``) or AutoAttack ``standard`` (``"autoattack"``, Croce & Hein
        2020: the evaluation of record, minutes per thousand images on the CPU).
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
    steps: int | None = None
    step_size: float | None = None
    beta: float = 6.0
    noise: float = 2.0
    overfit_checks: int = 4
    overfit_drop: float = 0.2
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
    eval_attack: str = "pgd"
    precision: str = "fp32"
    channels_last: bool = False
    sync_batchnorm: bool = False

    def __post_init__(self) -> None:
        self.check(dataclasses.asdict(self))
        if self.steps is None:
            object.__setattr__(self, "steps", DEFAULT_STEPS.get(self.method, 7))

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
        for field, users in METHOD_FIELDS.items():
            if full["method"] not in users and full[field] != _DEFAULTS[field]:
                methods = " or ".join(repr(m) for m in users)
                raise bad(field, f"{spell(field)} only with method {methods}")
        if full["eps_warmup_epochs"] > full["epochs"]:
            raise bad(
                "eps_warmup_epochs",
                f"at most epochs = {full['epochs']} (a longer warm-up never reaches eps)",
            )

    @property
    def adversarial(self) -> bool:
        return self.method != "natural"

    @property
    def single_step(self) -> bool:
        return self.method in SINGLE_STEP

    @property
    def attack_steps(self) -> int:
        return 1 if self.single_step else int(self.steps or 0)

    def attack_step_size(self, eps: float) -> float:
        """The step size at budget ``eps`` (ε changes during warm-up)."""
        if self.step_size is not None:
            return self.step_size * (eps / self.eps if self.eps > 0 else 0.0)
        if self.method == "fgsm-rs":
            return 1.25 * eps
        if self.method == "n-fgsm":
            return eps
        if self.method in ("trades", "mart"):
            return eps / 4
        return 2.5 * eps / self.attack_steps

    def uses(self, field: str) -> bool:
        """Whether this recipe's method reads ``field`` (every field but METHOD_FIELDS')."""
        return self.method in METHOD_FIELDS.get(field, METHODS)

    def for_method(self, method: str, **changes: Any) -> Recipe:
        """This recipe with another method (and ``changes``): the fields the new method does not
        use return to their defaults."""
        values = {k: v for k, v in self.to_dict().items() if k not in METHOD_FIELDS}
        return Recipe.from_dict({**values, "method": method, **changes})

    def to_dict(self) -> dict[str, Any]:
        """The fields, without those the method does not use (METHOD_FIELDS) and the
        LATER_FIELDS left at their defaults."""
        return {
            k: v
            for k, v in dataclasses.asdict(self).items()
            if self.uses(k) and (k not in LATER_FIELDS or v != _DEFAULTS[k])
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


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Recipe)}

METHOD_NAMES = {"fgsm-rs": "FGSM-RS", "n-fgsm": "N-FGSM", "pgd": "PGD", "trades": "TRADES",
                "mart": "MART"}  # fmt: skip


def method_name(recipe: Mapping[str, Any]) -> str:
    """How a recipe's (or a card's recipe's) method reads in a table, e.g. ``PGD-7``,
    ``TRADES-10 β=6``, ``N-FGSM k=2``, ``FGSM-RS``; ``natural`` for natural training."""
    method = recipe.get("method", "natural")
    if method == "natural":
        return "natural"
    name = METHOD_NAMES.get(method, method)
    if method in SINGLE_STEP:
        return f"{name} k={recipe.get('noise'):g}" if method == "n-fgsm" else name
    steps = recipe.get("steps") or DEFAULT_STEPS.get(method, 7)
    beta = f" β={recipe.get('beta'):g}" if method in METHOD_FIELDS["beta"] else ""
    return f"{name}-{steps}{beta}"
