"""Tiny hand-made results whose verdicts, evidence and numbers are known exactly.

Per-image values that are the same for every image make every bootstrap resample equal to the
full data, so an interval collapses to its estimate and the evidence text is known by hand:
``point(0.5)`` is what ``Interval(0.5, 0.5, 0.5).text()`` writes. Two-valued data put an
interval across a threshold.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from robustlens.claims import ResultsView
from robustlens.lenses.base import StudyModel
from robustlens.models.card import ModelCard

CI = "95 % paired bootstrap CI over images"


def model(
    name: str,
    method: str = "natural",
    norm: str = "linf",
    eps: float = 0.0,
    arch: str = "small-cnn",
    train_on: dict | None = None,
    channels: int = 1,
) -> StudyModel:
    """A model card of ``channels``-channel 28 × 28 inputs (grey-scale by default)."""
    card = ModelCard(
        arch=arch,
        arch_kwargs={},
        num_classes=10,
        input_shape=(channels, 28, 28),
        mean=(0.5,) * channels,
        std=(0.5,) * channels,
        recipe={"method": method, "norm": norm, "eps": eps},
    )
    if train_on is not None:
        card.source = {"train_on": train_on}
    return StudyModel(name, None, card, digest=name)  # type: ignore[arg-type]


def view(
    models: list[StudyModel],
    arrays: dict[tuple[str, str, str], np.ndarray],
    n: int,
    lenses: set[str] | None = None,
    resamples: int = 200,
    num_classes: int = 10,
    names: bool = True,
) -> ResultsView:
    """A view over ``arrays`` keyed (lens, model, name); ``names`` lists a lens's arrays."""

    def listed(lens: str, m: str) -> list[str]:
        return [name for (ln, mn, name) in arrays if (ln, mn) == (lens, m)]

    lenses = lenses if lenses is not None else {lens for lens, _, _ in arrays}
    v = ResultsView(
        models,
        lambda lens, m, name: arrays.get((lens, m, name)),
        lenses,
        n,
        num_classes,
        names=listed if names else None,
    )
    v.resamples = resamples
    return v


def point(value: float, digits: int = 3) -> str:
    """The text of an interval collapsed to ``value``."""
    return f"{value:.{digits}g} [{value:.{digits}g}, {value:.{digits}g}]"


def flags(*bits: int) -> np.ndarray:
    """Per-image correct / incorrect flags."""
    return np.array(bits, dtype=bool)


def const(value: float, n: int) -> np.ndarray:
    return np.full(n, value, dtype=np.float64)


Check = Callable[[ResultsView], object]


def run(check: Check, v: ResultsView):
    """The check on the view, as ``evaluate_claims`` calls it (it bootstraps with the view's
    own resampling weights)."""
    return check(v)
