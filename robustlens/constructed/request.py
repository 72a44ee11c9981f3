"""What a study asks for when a model trains on a constructed set (``train_on``): the kind of
set, the model it is made against, its attack settings and an optional leakage check.

The rules here are Springer et al. (2021)'s and Ilyas et al. (2019)'s: which sets exist, which
settings each takes, and that only a robust model can check a targeted set for leakage. The
study file reader (:mod:`robustlens.study.spec`) checks the table's keys and value types and
hands the values to :meth:`TrainOn.parse`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from robustlens.constructed.inversion import SEED_MODES

TRAIN_ON_SETS = ("robustified", "zero", "zero-all", "negative")
"""Constructed training sets (Springer et al. §3.2–3.3; Ilyas et al.): D_R ("robust-data"),
zero-robust with random or all targets, negative-robust."""
TARGETED_SETS = ("zero", "zero-all", "negative")
TRAIN_ON_KEYS = {"set", "source", "steps", "step_size", "eps", "seed_mode", "leakage_model"}
"""``train_on`` keys. ``steps``, ``step_size`` and ``eps`` (L2, in [0, 1] pixel units) are used
as written, never rescaled to the data's resolution. Left out, a targeted set (zero, zero-all,
negative) takes Table 4's ε = 0.5, 200 steps of 0.1 — the paper's own numbers for CIFAR-10 and
ImageNet-9 at 64 × 64 alike — and a robustified set Table 4's schedule (400 × 0.05 at 32 × 32,
step moved like an L2 budget to other resolutions; no ε, Table 4: ∞). ``seed_mode``
(robustified only): "other-image" (default, Springer et al. §3.3) or "noise" (Garaev et al.
§3.1). ``leakage_model`` (targeted only): an adversarially trained model listed earlier, whose
predictions on the set are recorded as a robust-feature-leakage check (§3.2); it does not change
the set."""


class Checker(Protocol):
    """How the reader of a ``train_on`` table reports problems: ``key`` is a key of the table
    ("" for the table itself); ``typed`` returns the value checked against ``kind``."""

    def error(self, key: str, problem: str, allowed: str | None = None) -> Exception: ...

    def typed(self, key: str, value: Any, kind: type, *, minimum: int | None = None) -> Any: ...


@dataclass(frozen=True)
class TrainOn:
    """A constructed training set made from the training split against the model ``source``
    (see :data:`TRAIN_ON_KEYS`); the settings left None take the paper's defaults."""

    set: str
    source: str
    steps: int | None = None
    step_size: float | None = None
    eps: float | None = None
    seed_mode: str | None = None
    leakage_model: str | None = None
    """A robust model whose predictions on a targeted set are recorded (a check only)."""

    @property
    def options(self) -> dict[str, Any]:
        """The settings given for building the set (those left out are not named): with the
        kind, the source model and the training data, what identifies the set."""
        names = ("steps", "step_size", "eps", "seed_mode")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}

    @classmethod
    def parse(
        cls,
        table: dict[str, Any],
        check: Checker,
        earlier: Sequence[str],
        robust: Sequence[str],
    ) -> TrainOn:
        """A validated ``train_on`` table whose keys are among :data:`TRAIN_ON_KEYS`.
        ``earlier`` names the models listed before this one (its source and leakage model must
        be among them, so every model used is obtained first and no cycle can arise);
        ``robust`` those of them adversarially trained on the data set's own training split."""
        kind = check.typed("set", table.get("set"), str)
        if kind not in TRAIN_ON_SETS:
            raise check.error("set", f"unknown constructed set {kind!r}", ", ".join(TRAIN_ON_SETS))
        source = table.get("source")
        if source not in earlier:
            raise check.error(
                "source",
                f"{source!r} is not a model listed before this one",
                ", ".join(earlier) or "(no model comes before it)",
            )
        steps = None
        if "steps" in table:
            steps = check.typed("steps", table["steps"], int, minimum=1)
        sizes: dict[str, float] = {}
        for name in ("step_size", "eps"):
            if name in table:
                value = check.typed(name, table[name], float)
                if value <= 0:
                    raise check.error(
                        name,
                        f"must be > 0, got {value} (L2, in [0, 1] pixel units, used as written)",
                    )
                sizes[name] = float(value)
        if "eps" in sizes and kind == "robustified":
            raise check.error("eps", "a robustified set has no budget (Table 4: ∞)")
        seed_mode = None
        if "seed_mode" in table:
            seed_mode = check.typed("seed_mode", table["seed_mode"], str)
            if kind != "robustified":
                raise check.error(
                    "seed_mode",
                    f"only a robustified set starts from seeds, not a {kind} set",
                    'leave it out, or use set = "robustified"',
                )
            if seed_mode not in SEED_MODES:
                raise check.error(
                    "seed_mode", f"unknown seed mode {seed_mode!r}", ", ".join(SEED_MODES)
                )
        leakage_model = None
        if "leakage_model" in table:
            leakage_model = _leakage_model(table, check, kind, earlier, robust)
        return cls(kind, source, steps, sizes.get("step_size"), sizes.get("eps"), seed_mode,
                   leakage_model)  # fmt: skip


def _leakage_model(
    table: dict[str, Any], check: Checker, kind: str, earlier: Sequence[str], robust: Sequence[str]
) -> str:
    """The robust model that checks a targeted set for robust feature leakage (§3.2)."""
    name = check.typed("leakage_model", table["leakage_model"], str)
    if kind not in TARGETED_SETS:
        raise check.error(
            "leakage_model",
            "a robustified set keeps its images' own labels: there is no new label to leak",
            f"leave it out, or use set = one of {', '.join(TARGETED_SETS)}",
        )
    if name not in earlier:
        raise check.error(
            "leakage_model",
            f"{name!r} is not a model listed before this one",
            ", ".join(robust) or "(no robust model comes before it)",
        )
    if name not in robust:
        raise check.error(
            "leakage_model",
            f"{name!r} is not adversarially trained on the data set's own training split, so "
            "it does not tell robust features apart",
            ", ".join(robust) or "(no robust model comes before it)",
        )
    return name
