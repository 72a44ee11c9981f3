"""Lenses: analyses of models from the papers, registered by name.

Importing this package registers every lens (``robustlens.lenses.LENSES``).
"""

from robustlens.lenses import (  # noqa: F401  (importing a lens module registers it)
    activations,
    attack_grid,
    boundary,
    color,
    embedding,
    ensemble,
    featviz,
    filters,
    latent,
    loss_dist,
    masking,
    norm_ratio,
    probes,
    saliency,
    similarity,
    transfer,
    universality,
)
from robustlens.lenses.base import (
    LENSES,
    LensContext,
    LensResult,
    LensSpec,
    StudyModel,
    get_lens,
    list_lenses,
    register_lens,
)
from robustlens.lenses.output import tidy

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
