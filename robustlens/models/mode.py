"""Evaluation mode for the length of a computation, the caller's modes restored afterwards.

Every evaluation (accuracy, attacks for robust accuracy, predictions, lenses) runs the network
in eval mode: in train mode BatchNorm would normalise by the batch and update its running
statistics, so merely evaluating a model would change it, and dropout would make predictions
random.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn


@contextlib.contextmanager
def eval_mode(*models: nn.Module | None) -> Iterator[None]:
    """Put every sub-module of ``models`` in eval mode; restore each one's own flag on exit.

    Flags are restored per sub-module, so a model whose parts were in different modes gets
    exactly those modes back, also when the computation raises. ``None`` entries are skipped.
    """
    flags = [(m, m.training) for model in models if model is not None for m in model.modules()]
    try:
        for model in models:
            if model is not None:
                model.eval()
        yield
    finally:
        for module, flag in flags:
            module.training = flag
