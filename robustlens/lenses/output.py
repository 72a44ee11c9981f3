"""What a lens hands to its tables and figures: tidy tables (model × layer × setting × metric →
value) and one colour per model shared by every figure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd

from robustlens.plotting import model_colors
from robustlens.proportions import proportion_of

TIDY_COLUMNS = ("model", "layer", "setting", "metric", "value")
"""Columns every lens table has; lenses may add more (n, ci_low, ci_high, ...)."""


class Coloured(Protocol):
    """What :func:`palette` reads of a model (a :class:`~robustlens.lenses.base.StudyModel`)."""

    @property
    def name(self) -> str: ...
    @property
    def is_natural(self) -> bool: ...
    @property
    def train_eps(self) -> float: ...


def tidy(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A tidy table from row dicts, with the standard columns first."""
    frame = pd.DataFrame(rows)
    for col in TIDY_COLUMNS:
        if col not in frame.columns:
            frame[col] = "" if col != "value" else np.nan
    rest = [c for c in frame.columns if c not in TIDY_COLUMNS]
    return frame[list(TIDY_COLUMNS) + rest]


def interval_columns(flags: Any) -> dict[str, float]:
    """``ci_low``/``ci_high`` for a row whose value is the share of true ``flags`` (one per
    image: correct, robust, fooled, hit): its 95 % Wilson interval over those n images."""
    return proportion_of(flags).columns()


def palette(models: Sequence[Coloured]) -> dict[str, str]:
    """One colour per model for every figure: natural in greys, robust along ε."""
    return model_colors(
        [m.name for m in models],
        [m.name for m in models if m.is_natural],
        eps={m.name: m.train_eps for m in models},
    )
