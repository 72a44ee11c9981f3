"""Where computation runs and how it is seeded: device choice, seeds, library versions."""

from __future__ import annotations

import hashlib
import os
import platform
import random
import sys

import numpy as np
import torch

from robustlens._version import __version__
from robustlens.errors import ConfigError, DataError

ENV_ALLOW_LARGE = "ROBUSTLENS_ALLOW_LARGE"
"""Set to 1 to skip the memory estimates that refuse oversized data or models."""


def default_device() -> torch.device:
    """The GPU when one is visible, else the CPU; ``ROBUSTLENS_DEVICE`` overrides both."""
    forced = os.environ.get("ROBUSTLENS_DEVICE")
    if forced:
        return resolve_device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def resolve_device(name: str | torch.device | None) -> torch.device:
    """The device ``name`` names (``None``: :func:`default_device`), checked to be usable.

    A malformed name or an accelerator that is not available is a :class:`ConfigError`, so a
    run stops before any work instead of failing deep inside torch.
    """
    if name is None:
        return default_device()
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise ConfigError(
            f"unknown device {str(name)!r}", fix="use --device cpu, cuda or cuda:N"
        ) from err
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(
                f"device {str(name)!r} asked for, but no CUDA device is available",
                fix="use --device cpu (or leave --device out to use a GPU only when there is one)",
            )
        if device.index is not None and device.index >= count:
            raise ConfigError(
                f"device {str(name)!r} asked for, but only {count} CUDA device(s) exist",
                fix=f"use cuda:0 … cuda:{count - 1}, or --device cpu",
            )
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(
            f"device {str(name)!r} asked for, but no MPS device is available",
            fix="use --device cpu",
        )
    return device


def available_memory() -> int | None:
    """Bytes of memory available to this process (``MemAvailable``), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def large_allowed() -> bool:
    """True when ``ROBUSTLENS_ALLOW_LARGE`` is set to a true value (1, true, yes)."""
    return os.environ.get(ENV_ALLOW_LARGE, "").strip().lower() in ("1", "true", "yes")


def format_bytes(n: float) -> str:
    """``n`` bytes as a short human-readable size (e.g. ``23.8 GB``)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"  # pragma: no cover


def check_memory(
    nbytes: float,
    what: str,
    *,
    fix: str,
    error: type[ConfigError] | type[DataError] = ConfigError,
    allow: bool = False,
) -> None:
    """Refuse, before allocating, ``what`` needing ``nbytes`` when that exceeds the memory
    available (80 % of it, to leave room for the rest of the run).

    ``allow=True`` or ``ROBUSTLENS_ALLOW_LARGE=1`` skips the check, for users who mean it.
    """
    if allow or large_allowed():
        return
    available = available_memory()
    if available is None or nbytes <= 0.8 * available:
        return
    raise error(
        f"{what} would need about {format_bytes(nbytes)} of memory, more than the "
        f"{format_bytes(available)} available",
        fix=f"{fix}; set {ENV_ALLOW_LARGE}=1 if you really mean it",
    )


def derive_seed(seed: int, *names: str) -> int:
    """The seed of the stream named ``names`` under ``seed`` (e.g. the study seed, then
    ``"train", "linf"``): a 32-bit integer from SHA-256 of the seed and the names, so that each
    named thing draws from its own stream, changing ``seed`` changes every stream, and adding
    another named thing leaves the others' streams as they were."""
    digest = hashlib.sha256("|".join((str(seed), *names)).encode()).digest()
    return int.from_bytes(digest[:4], "little")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch, and return a CPU generator seeded with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def versions() -> dict[str, str]:
    """Versions that matter for reproducing a number: robustlens, torch, numpy, python."""
    return {
        "robustlens": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }
