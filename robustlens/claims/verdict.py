"""What a claim's check returns: a status from one enum, the evidence behind it, and how its
bounds were found; and how the statuses of a claim's parts combine into one."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from robustlens.papers import PaperFigure


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

    def __post_init__(self) -> None:
        self.status = Status(self.status)  # one of the five, or a ValueError naming it

    @property
    def masking_text(self) -> str:
        """For the claims table: "evaluated on a model flagged for gradient masking — model:
        flags; …", or "" when no model of the verdict carries a flag."""
        if not self.masking:
            return ""
        flagged = "; ".join(f"{m}: {', '.join(f)}" for m, f in self.masking.items())
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
