"""AutoAttack (Croce & Hein 2020, ICML, §5): a fixed sequence of diverse attacks, each run only
on the points every earlier attack left robust; a point counts as broken by the first attack
that fools the model within the threat model, and the robust accuracy is the worst case over
the sequence.

Versions, as the authors define them (their released code fixes the counts):

- ``standard``: APGD-CE (100 iterations, 1 run), APGD-T (targeted DLR, the 9 most likely other
  classes, 100 iterations each), FAB-T (9 targets, 100 iterations, bounded by ε) and Square
  (5 000 queries); L∞ and L2.
- ``plus``: APGD-CE and APGD-DLR with 5 restarts, FAB (untargeted, 5 restarts), Square (5 000
  queries), APGD-T and FAB-T (9 targets each).
- ``rand``: for randomised models, APGD-CE and APGD-DLR with the gradient averaged over 20 draws
  of the model's randomness (expectation over transformation, Athalye et al. 2018) per step.

With fewer than 10 classes the targeted attacks aim at every other class (K − 1 targets).

L1 (``standard`` only; Croce & Hein 2021, "Mind the box", and their released code): APGD-CE
with 5 restarts and APGD-T with 5 targets, both APGD-L1 with the large-ε stages (3ε → 2ε → ε,
:mod:`robustlens.attacks.apgd_l1`), then FAB-T in L1 (9 targets) and the L1 Square attack
(5 000 queries; :mod:`robustlens.attacks.square`, after the authors' code). ``plus`` and
``rand`` are not defined for L1 (the authors' code warns that ``plus`` is untested there) and
are refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from robustlens.attacks.apgd import APGD, APGDT
from robustlens.attacks.base import Attack, predict
from robustlens.attacks.fab import FAB
from robustlens.attacks.result import AttackResult
from robustlens.attacks.square import Square
from robustlens.attacks.threat import L1, L2, Linf, ThreatModel
from robustlens.errors import ConfigError

VERSIONS = ("standard", "plus", "rand")
CLEAN = "clean"
"""``broken_by`` of a point the model already misclassifies (no attack is run on it)."""
ROBUST = ""
"""``broken_by`` of a point no attack of the sequence broke."""
TARGETS = 9
QUERIES = 5000
STEPS = 100
PLUS_RESTARTS = 5
EOT_DRAWS = 20
L1_RESTARTS = 5
L1_TARGETS = 5
L1_VERSIONS = ("standard",)


@dataclass
class AutoAttackResult(AttackResult):
    """An :class:`AttackResult` that also says, per point, which attack of the sequence broke
    it first (``"clean"`` for a point misclassified to begin with, ``""`` when none did)."""

    broken_by: list[str] = field(default_factory=list)

    @classmethod
    def concat(cls, parts: list[AttackResult]) -> AutoAttackResult:  # type: ignore[override]
        joined = AttackResult.concat(parts)
        broken = [name for p in parts for name in getattr(p, "broken_by", [])]
        return cls(**vars(joined), broken_by=broken)

    def counts(self) -> dict[str, int]:
        """How many points each attack broke first (and how many stayed robust, as ``""``)."""
        out: dict[str, int] = {}
        for name in self.broken_by:
            out[name] = out.get(name, 0) + 1
        return out


def _threat(norm: str, eps: float, version: str) -> ThreatModel:
    key = str(norm).strip().lower()
    if key not in ("linf", "l2", "l1"):
        raise ConfigError(f"unknown norm {norm!r} for AutoAttack", fix="use linf, l2 or l1")
    if key == "l1" and version not in L1_VERSIONS:
        raise ConfigError(
            f"AutoAttack {version!r} is not defined in L1 (the authors define only 'standard')",
            fix="use version 'standard' in l1, or linf / l2",
        )
    return {"linf": Linf, "l2": L2, "l1": L1}[key](eps)


class AutoAttack(Attack):
    """The AutoAttack sequence ``version`` at ``norm`` ε (see the module docs).

    ``attack(images, labels)`` returns the worst-case adversarial images; :meth:`run` returns an
    :class:`AutoAttackResult` whose ``success`` is True for every point not robust to the
    sequence (clean errors included, as RobustBench counts them) and whose ``broken_by`` names
    the attack that broke each point first. Each component is seeded from ``seed``.
    """

    name = "autoattack"
    pooled = True  # every component pools its own batch

    def __init__(
        self,
        model: nn.Module,
        norm: str,
        eps: float,
        *,
        version: str = "standard",
        seed: int = 0,
    ) -> None:
        super().__init__(model, seed=seed)
        if version not in VERSIONS:
            raise ConfigError(
                f"unknown AutoAttack version {version!r}", fix=f"use one of: {', '.join(VERSIONS)}"
            )
        self.threat = _threat(norm, eps, version)
        self.norm = self.threat.norm
        self.eps = float(eps)
        self.version = version

    def components(self) -> list[tuple[str, Attack]]:
        """The sequence, as (name, attack) in the order it runs."""
        m, t, n, s = self.model, self.threat, self.norm, self.seed
        if n == "l1":
            return [
                ("apgd-ce", APGD(m, t, STEPS, restarts=L1_RESTARTS, large_eps=True, seed=s)),
                ("apgd-t", APGDT(m, t, STEPS, targets=L1_TARGETS, large_eps=True, seed=s)),
                ("fab-t", FAB(m, n, steps=STEPS, targets=TARGETS, eps=self.eps, seed=s)),
                ("square", Square(m, t, QUERIES, seed=s)),
            ]
        apgd_ce = APGD(m, t, STEPS, loss="ce", seed=s)
        apgd_t = APGDT(m, t, STEPS, targets=TARGETS, seed=s)
        fab_t = FAB(m, n, steps=STEPS, targets=TARGETS, eps=self.eps, seed=s)
        square = Square(m, t, QUERIES, seed=s)
        if self.version == "standard":
            return [("apgd-ce", apgd_ce), ("apgd-t", apgd_t), ("fab-t", fab_t), ("square", square)]
        if self.version == "plus":
            r = PLUS_RESTARTS
            return [
                ("apgd-ce", APGD(m, t, STEPS, loss="ce", restarts=r, seed=s)),
                ("apgd-dlr", APGD(m, t, STEPS, loss="dlr", restarts=r, seed=s)),
                ("fab", FAB(m, n, steps=STEPS, restarts=r, eps=self.eps, seed=s)),
                ("square", square),
                ("apgd-t", apgd_t),
                ("fab-t", fab_t),
            ]
        return [
            ("apgd-ce", APGD(m, t, STEPS, loss="ce", eot=EOT_DRAWS, seed=s)),
            ("apgd-dlr", APGD(m, t, STEPS, loss="dlr", eot=EOT_DRAWS, seed=s)),
        ]

    def _run(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        targets: torch.Tensor | None,
        batch_size: int | None = None,
    ) -> AutoAttackResult:
        if targets is not None:
            raise ConfigError("AutoAttack is untargeted", fix="leave targets out")
        n, dev = images.shape[0], images.device
        adversarial = images.clone()
        iterations = torch.zeros(n, dtype=torch.long, device=dev)
        robust = self._clean_correct(images, labels, batch_size)
        broken_by = [ROBUST if bool(r) else CLEAN for r in robust.tolist()]
        for name, attack in self.components():
            left = robust.nonzero().flatten()
            if left.numel() == 0:
                break
            result = attack.run(images[left], labels[left], batch_size=batch_size)
            fooled = left[result.success.to(dev)]
            adversarial[fooled] = result.adversarial.to(dev)[result.success.to(dev)]
            iterations[left] += result.iterations.to(dev)
            robust[fooled] = False
            for i in fooled.tolist():
                broken_by[i] = name
        attacked = torch.tensor([b not in (ROBUST, CLEAN) for b in broken_by], device=dev)
        for i in self._unconfirmed(images, adversarial, labels, attacked, batch_size).tolist():
            robust[i], broken_by[i] = True, ROBUST
            adversarial[i] = images[i]
        return AutoAttackResult(
            adversarial=adversarial,
            success=~robust,
            norms=self.threat.norms(adversarial - images),
            iterations=iterations,
            broken_by=broken_by,
        )

    def _predict(self, x: torch.Tensor, batch_size: int | None) -> torch.Tensor:
        return predict(self.model, x, x.shape[0] if batch_size is None else int(batch_size))

    def _clean_correct(
        self, images: torch.Tensor, labels: torch.Tensor, batch_size: int | None
    ) -> torch.Tensor:
        return self._predict(images, batch_size) == labels

    def _unconfirmed(
        self,
        images: torch.Tensor,
        adversarial: torch.Tensor,
        labels: torch.Tensor,
        attacked: torch.Tensor,
        batch_size: int | None,
    ) -> torch.Tensor:
        """The points an attack reported broken whose adversarial, checked once more as the
        authors' code does, is not misclassified (a non-deterministic model) or lies outside
        the ε-ball or the [0, 1] box; they count as robust."""
        idx = attacked.nonzero().flatten()
        if idx.numel() == 0:
            return idx
        x, x0 = adversarial[idx], images[idx]
        fooled = self._predict(x, batch_size) != labels[idx]
        in_box = ((x >= 0) & (x <= 1)).flatten(1).all(1)
        return idx[~(fooled & self.threat.contains(x - x0) & in_box)]

    def describe(self) -> dict[str, Any]:
        return {
            "attack": "autoattack",
            "version": self.version,
            "norm": self.norm,
            "eps": self.eps,
            "components": [name for name, _ in self.components()],
            "seed": self.seed,
        }
