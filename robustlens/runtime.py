"""Where computation runs and how it is seeded: device choice, seeds, library versions."""

from __future__ import annotations

import os
import platform
import random
import sys

import numpy as np
import torch


def default_device() -> torch.device:
    """The GPU when one is visible, else the CPU; ``ROBUSTLENS_DEVICE`` overrides both."""
    forced = os.environ.get("ROBUSTLENS_DEVICE")
    if forced:
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch, and return a CPU generator seeded with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def versions() -> dict[str, str]:
    """Versions that matter for reproducing a number: robustlens, torch, numpy, python."""
    from robustlens import __version__

    return {
        "robustlens": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }
