"""Coverage of bootstrap intervals on simulated data, judged with a band that cannot flake."""

from __future__ import annotations

import math

Z_999 = 3.2905
"""Two-sided 99.9 % normal quantile."""


def wilson(hits: int, trials: int, z: float = Z_999) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``hits / trials``."""
    p = hits / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = (
        z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    )
    return centre - half, centre + half


def covers_nominal(hits: int, trials: int, nominal: float = 0.95) -> bool:
    """The 99.9 % Wilson interval of the observed coverage reaches ``nominal`` (or lies above
    it: a discrete statistic may only be conservative)."""
    return wilson(hits, trials)[1] >= nominal
