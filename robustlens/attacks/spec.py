"""Attack settings as short strings ("pgd linf 0.025 5"), scaled between input resolutions.

Papers give budgets for CIFAR-10 (3 × 32 × 32 = 3 072 values) or ImageNet (Garaev et al. 2024,
Table A1: 3 × 224 × 224 = 150 528 values). To keep the per-value size of a perturbation when
the input has d values instead of d_ref, an L∞ budget stays as it is, an L2 budget is
multiplied by √(d / d_ref) and an L1 budget by d / d_ref (the ε-ball of each norm then holds
the same constant perturbation per value). A setting may name its own d_ref with a trailing
tag (``"pgd l2 45 100 @imagenet"``); without one, the lens's ``reference_dim`` applies.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from torch import nn

from robustlens.attacks.apgd import APGD, APGDT
from robustlens.attacks.autoattack import AutoAttack
from robustlens.attacks.base import Attack
from robustlens.attacks.cw import CarliniWagnerL2
from robustlens.attacks.deepfool import DeepFool
from robustlens.attacks.fab import FAB
from robustlens.attacks.pgd import FGSM, PGD
from robustlens.attacks.square import Square
from robustlens.attacks.threat import threat_model
from robustlens.errors import ConfigError

ATTACKS = ("pgd", "fgsm", "cw", "deepfool", "apgd", "apgd-dlr", "apgd-t")
ALIASES = {"apgd-ce": "apgd"}
APGD_FAMILY = ("apgd", "apgd-dlr", "apgd-t")
APGD_STEPS = 100
"""Iterations of an APGD setting without STEPS (per target for apgd-t; Croce & Hein 2020)."""
NAMES = {
    "pgd": "PGD",
    "fgsm": "FGSM",
    "cw": "C&W",
    "deepfool": "DeepFool",
    "apgd": "APGD-CE",
    "apgd-dlr": "APGD-DLR",
    "apgd-t": "APGD-T",
}
NORM_NAMES = {"linf": "L∞", "l2": "L2", "l1": "L1"}
CIFAR10_DIM = 3 * 32 * 32
IMAGENET_DIM = 3 * 224 * 224
REFERENCES = {"cifar10": CIFAR10_DIM, "imagenet": IMAGENET_DIM}
"""Named reference resolutions for the ``@TAG`` of a setting (input values per image)."""
REFERENCE_NAMES = {CIFAR10_DIM: "CIFAR-10", IMAGENET_DIM: "ImageNet 224 × 224"}
MINIMAL_NORM = ("cw", "deepfool")
SEARCH_ATTACKS = {"square": ("Square", 5000), "fab": ("FAB", 100), "fab-t": ("FAB-T", 100)}
"""Square (STEPS = queries) and the bounded FAB / FAB-T (9 targets): label, default steps."""
ATTACKS += tuple(SEARCH_ATTACKS)
AUTOATTACK = {"autoattack": "standard", "autoattack-plus": "plus", "autoattack-rand": "rand"}
"""AutoAttack's versions (Croce & Hein 2020): their components fix their own iterations."""
ATTACKS += tuple(AUTOATTACK)
NAMES.update({k: label for k, (label, _) in SEARCH_ATTACKS.items()})
NAMES.update(
    {
        "autoattack": "AutoAttack",
        "autoattack-plus": "AutoAttack+",
        "autoattack-rand": "AutoAttack-rand",
    }
)
USAGE = (
    'write "ATTACK NORM EPS [STEPS] [@cifar10|@imagenet|@N]", e.g. "pgd linf 0.025 5", '
    '"fgsm l2 0.25", "apgd linf 8/255" or "pgd l2 45 100 @imagenet" (ε written for '
    "ImageNet's 3 × 224 × 224 inputs; without a tag the lens's reference_dim applies); ε may be "
    "a fraction such as 8/255"
)
REFERENCE_FIX = (
    "end the setting with @cifar10 (3 × 32 × 32 = 3 072 values), @imagenet "
    "(3 × 224 × 224 = 150 528 values) or @N for budgets written for inputs of N values, "
    "e.g. @784; leave it out to use the lens's reference_dim"
)


def reference_tag(dim: int) -> str:
    """The ``@TAG`` text for a reference of ``dim`` input values (its name when it has one)."""
    names = {v: k for k, v in REFERENCES.items()}
    return f"@{names.get(dim, dim)}"


def reference_name(dim: int) -> str:
    """e.g. ``CIFAR-10 (3,072 values)``; ``inputs of 784 values`` for unnamed ones."""
    name = REFERENCE_NAMES.get(dim)
    return f"{name} ({dim:,} values)" if name else f"inputs of {dim:,} values"


def parse_reference(tag: str, text: str = "") -> int:
    """Input values per image named by a reference tag (``@cifar10``, ``@imagenet``, ``@784``)."""
    name = tag[1:].lower() if tag.startswith("@") else tag.lower()
    if name in REFERENCES:
        return REFERENCES[name]
    if re.fullmatch(r"[0-9]+", name) and int(name) > 0:
        return int(name)
    where = f" in {text!r}" if text else ""
    raise ConfigError(f"unknown reference {tag!r}{where}", fix=REFERENCE_FIX)


def parse_eps(word: str) -> float:
    """ε as written: a number (``0.03``) or a fraction of two numbers (``8/255``)."""
    top, slash, bottom = word.partition("/")
    return float(top) / float(bottom) if slash else float(word)


def eps_text(eps: float) -> str:
    """ε as :meth:`AttackSpec.key` writes it: ``%g``, or ``k/255`` where that is exactly ε and
    ``%g`` is not (8/255 stays 8/255 through a round trip)."""
    text = f"{eps:g}"
    k = round(eps * 255)
    if float(text) != eps and k / 255 == eps:
        return f"{k}/255"
    return text


def scale_eps(norm: str, eps: float, dim: int, reference_dim: int) -> float:
    """``eps`` set for inputs of ``reference_dim`` values, moved to inputs of ``dim`` values."""
    if reference_dim <= 0 or dim == reference_dim:
        return eps
    ratio = dim / reference_dim
    return eps * {"linf": 1.0, "l2": math.sqrt(ratio), "l1": ratio}[norm]


@dataclass(frozen=True)
class AttackSpec:
    """One attack setting: attack, norm, budget ε, (for iterative attacks) steps and the
    input size ε was written for (``reference``; None = the lens's ``reference_dim``)."""

    attack: str
    norm: str
    eps: float
    steps: int | None = None
    reference: int | None = None

    def __post_init__(self) -> None:
        eps = self.eps
        if isinstance(eps, bool) or not isinstance(eps, int | float) or not math.isfinite(eps):
            raise ConfigError(f"attack ε must be a finite number, got {eps!r}", fix=USAGE)
        if eps < 0:
            raise ConfigError(f"attack ε must be ≥ 0, got {eps!r}", fix=USAGE)

    @classmethod
    def parse(cls, text: str) -> AttackSpec:
        """Read ``"ATTACK NORM EPS [STEPS] [@REFERENCE]"``.

        e.g. ``"pgd l2 0.25 100"``, ``"fgsm linf 0.03"``, ``"pgd l2 45 100 @imagenet"``. The
        optional last word names the resolution ε was written for: ``@cifar10`` (3 072
        values, Tables 1–2 of Garaev et al. 2024), ``@imagenet`` (3 × 224 × 224 = 150 528,
        their Table A1) or ``@N`` (inputs of N values). Without it the lens's
        ``reference_dim`` applies.
        """
        parts = str(text).split()
        usage = USAGE
        tags = [i for i, part in enumerate(parts) if part.startswith("@")]
        reference = None
        if tags:
            if tags != [len(parts) - 1] or parts[-1] == "@":
                raise ConfigError(
                    f"attack setting {text!r}: the reference must be one last word, e.g. @imagenet",
                    fix=REFERENCE_FIX,
                )
            reference = parse_reference(parts.pop(), str(text))
        if len(parts) not in (3, 4):
            raise ConfigError(f"attack setting {text!r} is not understood", fix=usage)
        attack, norm = parts[0].lower(), parts[1].lower()
        attack = ALIASES.get(attack, attack)
        if attack not in ATTACKS:
            raise ConfigError(
                f"unknown attack {parts[0]!r} in {text!r}", fix=f"use {', '.join(ATTACKS)}"
            )
        if norm not in NORM_NAMES:
            raise ConfigError(f"unknown norm {parts[1]!r} in {text!r}", fix="use linf, l2 or l1")
        try:
            eps = parse_eps(parts[2])
            steps = int(parts[3]) if len(parts) == 4 else None
        except (ValueError, ZeroDivisionError) as exc:
            raise ConfigError(
                f"attack setting {text!r}: ε or steps is not a number", fix=usage
            ) from exc
        if not math.isfinite(eps) or eps < 0 or (steps is not None and steps < 1):
            raise ConfigError(f"attack setting {text!r}: ε must be ≥ 0 and steps ≥ 1", fix=usage)
        if attack == "cw" and norm != "l2":
            raise ConfigError(f"{text!r}: Carlini–Wagner is an L2 attack", fix="use cw l2 …")
        if attack == "deepfool" and norm == "l1":
            raise ConfigError(f"{text!r}: DeepFool supports l2 and linf", fix="use deepfool l2 …")
        if attack in AUTOATTACK and steps is not None:
            raise ConfigError(
                f"{text!r}: AutoAttack's components fix their own iterations",
                fix=f'write e.g. "{attack} linf 8/255"',
            )
        if attack in AUTOATTACK and norm == "l1" and attack != "autoattack":
            raise ConfigError(
                f"{text!r}: in l1 AutoAttack is defined only in its standard version",
                fix='write e.g. "autoattack l1 12"',
            )
        if attack == "pgd" and steps is None:
            raise ConfigError(f"{text!r}: PGD needs a number of steps", fix=usage)
        return cls(attack, norm, eps, steps, reference)

    def reference_for(self, reference_dim: int) -> int:
        """The input size ε was written for: the setting's own, else the lens's (0 = as is)."""
        return self.reference if self.reference is not None else reference_dim

    def scaled(self, dim: int, reference_dim: int) -> AttackSpec:
        """The setting as run on inputs of ``dim`` values; ``reference_dim`` applies when the
        setting names no reference. The result is in the data's own units (no reference)."""
        eps = scale_eps(self.norm, self.eps, dim, self.reference_for(reference_dim))
        return AttackSpec(self.attack, self.norm, eps, self.steps)

    def identity(self, reference_dim: int) -> tuple:
        """What makes two settings the same attack at every resolution: L∞ budgets are never
        moved, so their reference does not matter; FGSM ignores steps."""
        reference = None if self.norm == "linf" else self.reference_for(reference_dim)
        steps = None if self.attack == "fgsm" else self.steps
        if self.attack in APGD_FAMILY:
            steps = steps or APGD_STEPS
        return (self.attack, self.norm, self.eps, steps, reference)

    @property
    def minimal_norm(self) -> bool:
        return self.attack in MINIMAL_NORM

    def label(self) -> str:
        """e.g. ``PGD-5 L∞ ε=0.025`` or ``FGSM L2 ε=0.126``."""
        name = NAMES[self.attack]
        steps = f"-{self.steps}" if self.steps and self.attack != "fgsm" else ""
        ref = f" {reference_tag(self.reference)}" if self.reference is not None else ""
        return f"{name}{steps} {NORM_NAMES[self.norm]} ε={self.eps:.3g}{ref}"

    def key(self) -> str:
        """Canonical text form (what :meth:`parse` reads), e.g. ``pgd l2 45 100 @imagenet``."""
        return self._text(eps_text(self.eps))

    def _text(self, eps: str) -> str:
        steps = f" {self.steps}" if self.steps is not None else ""
        ref = f" {reference_tag(self.reference)}" if self.reference is not None else ""
        return f"{self.attack} {self.norm} {eps}{steps}{ref}"

    def run_key(self, *, early_stop: bool = True, cw_binary_steps: int = 9) -> str:
        """Everything that determines the attack's output, with the options :meth:`build`
        takes (ε exactly, and its reference if the setting is not yet scaled). Minimal-norm
        attacks always stop once fooled and do not depend on ε (it only judges their
        result), so settings differing in ε, reference or early exit share one run."""
        if not self.minimal_norm:
            return f"{self._text(repr(float(self.eps)))} early_stop={bool(early_stop)}"
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
        """The attack object. PGD uses the default step 2.5·ε/steps and a random start; APGD
        (apgd = APGD-CE, apgd-dlr, apgd-t with 9 targets) runs STEPS iterations, 100 if not
        given, one restart."""
        if self.attack == "pgd":
            return PGD(
                model,
                threat_model(self.norm, self.eps),
                self.steps,
                early_stop=early_stop,
                seed=seed,
            )
        if self.attack in APGD_FAMILY:
            threat = threat_model(self.norm, self.eps)
            steps = self.steps or APGD_STEPS
            if self.attack == "apgd-t":
                return APGDT(model, threat, steps, early_stop=early_stop, seed=seed)
            loss = "dlr" if self.attack == "apgd-dlr" else "ce"
            return APGD(model, threat, steps, loss=loss, early_stop=early_stop, seed=seed)
        if self.attack == "fgsm":
            return FGSM(model, threat_model(self.norm, self.eps), early_stop=early_stop, seed=seed)
        if self.attack == "cw":
            return CarliniWagnerL2(
                model, steps=self.steps or 1000, binary_search_steps=cw_binary_steps, seed=seed
            )
        if self.attack in SEARCH_ATTACKS:
            return self._build_search(model, seed)
        if self.attack in AUTOATTACK:
            return AutoAttack(
                model, self.norm, self.eps, version=AUTOATTACK[self.attack], seed=seed
            )
        return DeepFool(model, self.norm, steps=self.steps or 50, seed=seed)

    def _build_search(self, model: nn.Module, seed: int) -> Attack:
        """Square (STEPS queries) or the bounded FAB / FAB-T (STEPS iterations, 1 restart)."""
        steps = self.steps or SEARCH_ATTACKS[self.attack][1]
        if self.attack == "square":
            return Square(model, threat_model(self.norm, self.eps), steps, seed=seed)
        targets = 9 if self.attack == "fab-t" else 0
        return FAB(model, self.norm, steps=steps, targets=targets, eps=self.eps, seed=seed)

    def describe(self) -> dict[str, Any]:
        return {
            "attack": self.attack,
            "norm": self.norm,
            "eps": self.eps,
            "steps": self.steps,
            "reference": self.reference,
        }


def parse_specs(texts: tuple[str, ...] | list[str]) -> list[AttackSpec]:
    """Every setting parsed (the first bad one raises a ConfigError naming it)."""
    return [AttackSpec.parse(t) for t in texts]


def repeats(specs: Sequence[AttackSpec], reference_dim: int) -> Iterator[tuple[int, int]]:
    """(first, i) for each setting ``i`` that is the same attack as an earlier one, ``first``,
    at every resolution (see :meth:`AttackSpec.identity`): the two would give identical rows."""
    seen: dict[tuple, int] = {}
    for i, spec in enumerate(specs):
        first = seen.setdefault(spec.identity(reference_dim), i)
        if first != i:
            yield first, i


def refuse_repeats(specs: Sequence[AttackSpec], reference_dim: int, lens: str) -> None:
    """ConfigError naming the first two settings that are the same attack (:func:`repeats`)."""
    for first, i in repeats(specs, reference_dim):
        raise ConfigError(
            f"{lens}: attack rows {specs[first].key()!r} and {specs[i].key()!r} are the same "
            "attack (L∞ budgets are never rescaled; FGSM takes no steps)",
            fix="keep one of them",
        )


@dataclass(frozen=True)
class PaperRows:
    """The attack rows of some of a paper's tables: ``tables`` maps a table's name ("1–2",
    "A1") to its rows; rows without a reference tag are in units of ``reference_dim``."""

    tables: Mapping[str, Sequence[str]]
    reference_dim: int = CIFAR10_DIM

    @cached_property
    def _identities(self) -> dict[str, tuple[tuple[str, tuple], ...]]:
        """Each table's rows with their identity (:meth:`AttackSpec.identity`), parsed once."""
        return {
            name: tuple(
                (text, AttackSpec.parse(text).identity(self.reference_dim)) for text in texts
            )
            for name, texts in self.tables.items()
        }

    def rows(self) -> tuple[str, ...]:
        """Every table's rows in order, each attack once (a later table's row that is the
        same attack at every resolution, e.g. an L∞ budget in both, is left out)."""
        seen, out = set(), []
        for rows in self._identities.values():
            for text, identity in rows:
                if identity not in seen:
                    seen.add(identity)
                    out.append(text)
        return tuple(out)

    def source(self, spec: AttackSpec, reference_dim: int) -> str:
        """The tables a setting (read with the lens's ``reference_dim``) comes from, e.g.
        ``"1–2, A1"``; ``""`` for a setting of none of them."""
        identity = spec.identity(reference_dim)
        return ", ".join(
            name
            for name, rows in self._identities.items()
            if any(found == identity for _, found in rows)
        )


def table_label(source: str) -> str:
    """``"Table A1"`` / ``"Tables 1–2, A1"`` for a :meth:`PaperRows.source`."""
    several = "," in source or "–" in source
    return f"Table{'s' if several else ''} {source}"
