"""Lenses: analyses of models from the papers, registered by name.

Importing this package registers every lens (``robustlens.lenses.LENSES``).
"""

from robustlens.lenses import activations, color, latent  # noqa: F401  (registration)
from robustlens.lenses.base import (
    LENSES,
    LensContext,
    LensResult,
    LensSpec,
    StudyModel,
    get_lens,
    list_lenses,
    register_lens,
    tidy,
)

__all__ = [
    "LENSES",
    "LensContext",
    "LensResult",
    "LensSpec",
    "StudyModel",
    "get_lens",
    "list_lenses",
    "register_lens",
    "tidy",
]
