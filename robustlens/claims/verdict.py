"""What a claim's check returns: a status from one enum, the evidence behind it, and how its
bounds were found; and how the statuses of a claim's parts combine into one."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from robustlens.papers import PaperFigure

CONVERGENCE_ONLY = frozenset({"unconverged"})
"""Masking-audit flags that say the evaluation is loose rather than that gradients are masked."""


class Status(StrEnum):
    """A claim's status. The first three are verdicts; *not computed* (a lens the claim needs
    failed, or has no results yet) and *not applicable* (a lens it needs applies to none of the
    study's models, e.g. the filter claims on MLPs) are not. A member equals its text, so the
    report reads the same as with plain strings."""

    HOLDS = "holds"
    FAILS = "fails"
    INCONCLUSIVE = "inconclusive"
    NOT_COMPUTED = "not computed"
    NOT_APPLICABLE = "not applicable"


HOLDS, FAILS, INCONCLUSIVE = Status.HOLDS, Status.FAILS, Status.INCONCLUSIVE
NOT_COMPUTED, NOT_APPLICABLE = Status.NOT_COMPUTED, Status.NOT_APPLICABLE


@dataclass(frozen=True)
class Effect:
    """One interval a verdict rests on, as the claim's picture draws it: a row (``label``: a
    model or a comparison), what is measured (``what``, the picture's axis; effects with the
    same ``what`` share a panel) in ``unit``, the estimate with its 95 % interval, and the
    decision: the claim wants the interval above ``line`` (``side`` +1), below it (−1) or
    inside ``line ± margin`` (0, an equivalence margin). ``needs``: a value the estimate must
    also reach (ρ ≥ 0.8 for "grows with ε"). ``paper``: the paper's own value of the same
    quantity on the same scale, where it prints one."""

    label: str
    what: str
    estimate: float
    low: float
    high: float
    line: float = 0.0
    side: int = 1
    margin: float = 0.0
    unit: str = ""
    needs: float | None = None
    paper: float | None = None

    def __post_init__(self) -> None:
        if self.side not in (-1, 0, 1):
            raise ValueError(f"Effect side must be -1, 0 or +1, got {self.side!r}")

    def sign(self) -> int:
        """+1: the interval lies where the claim wants it; −1: where it says the opposite;
        0: neither (across the line, or an interval that is NaN)."""
        if self.side == 0:
            lo, hi = self.line - self.margin, self.line + self.margin
            if self.low >= lo and self.high <= hi:
                return 1
            return -1 if self.low > hi or self.high < lo else 0
        side = 1 if self.low > self.line else (-1 if self.high < self.line else 0)
        sign = side * self.side
        if sign > 0 and self.needs is not None and self.estimate * self.side < self.needs:
            return 0  # above the line, but not by as much as the claim asks
        return sign


@dataclass
class Verdict:
    """A claim's status with its evidence (the numbers in words), how the intervals were found
    and the numbers themselves; and, to read beside them, what the paper itself reports
    (attached by :func:`robustlens.claims.evaluate_claims`; it takes no part in the status,
    nor in comparing verdicts)."""

    status: Status
    evidence: str
    interval: str = ""
    numbers: dict[str, Any] = field(default_factory=dict)
    seeds: int = 1
    """Training seeds per setting among the models checked (the most any setting has): 1 when
    every setting is a single model, so the intervals are over test images only."""
    paper_figure: PaperFigure | None = field(default=None, compare=False, repr=False)
    masking: dict[str, list[str]] = field(default_factory=dict, compare=False)
    """The models the verdict was evaluated on that carry raised gradient-masking flags, with
    the flags (attached by :func:`robustlens.claims.evaluate_claims`)."""
    effects: list[Effect] = field(default_factory=list, compare=False)
    """The intervals the status rests on, as structured records (the claim's forest plot);
    the same numbers as ``evidence`` and ``numbers``, so they take no part in comparing."""

    def __post_init__(self) -> None:
        self.status = Status(self.status)  # one of the five, or a ValueError naming it

    @property
    def masking_text(self) -> str:
        """For the claims table: "evaluated on a model flagged for gradient masking — model:
        flags; …", or "" when no model of the verdict carries a flag. When the only flag is
        ``unconverged`` (a stronger attack still lowers the accuracy: the number is loose, not
        necessarily masked), it says that instead."""
        if not self.masking:
            return ""
        flagged = "; ".join(f"{m}: {', '.join(f)}" for m, f in self.masking.items())
        raised = {flag for flags in self.masking.values() for flag in flags}
        if raised <= CONVERGENCE_ONLY:
            return (
                "evaluated on a model whose robust accuracy a stronger attack still lowers "
                f"(masking audit) — {flagged}"
            )
        return f"evaluated on a model flagged for gradient masking — {flagged}"

    @property
    def seeds_text(self) -> str:
        """For the claims table: "single seed" or "N seeds"."""
        return "single seed" if self.seeds == 1 else f"{self.seeds} seeds"


def combine(signs: list[int]) -> Status:
    """Holds when every sign is +1 (and there is one), fails when any is −1, else inconclusive."""
    if signs and all(s > 0 for s in signs):
        return HOLDS
    if any(s < 0 for s in signs):
        return FAILS
    return INCONCLUSIVE


def every_part(statuses: list[Status]) -> Status:
    """Verdict of a claim with several parts: fails if any part fails, holds if all hold."""
    if FAILS in statuses:
        return FAILS
    return HOLDS if statuses and all(s == HOLDS for s in statuses) else INCONCLUSIVE


def both(a: list[int], b: list[int]) -> Status:
    """Verdict of a claim with two parts: fails if either fails, holds if both hold."""
    return every_part([combine(a), combine(b)])


def from_sign(sign: int) -> Status:
    """+1 holds, −1 fails, 0 inconclusive (an interval above, below or across the line)."""
    return {1: HOLDS, -1: FAILS}.get(sign, INCONCLUSIVE)
