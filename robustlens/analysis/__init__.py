"""Representation and distribution comparisons: SVCCA and linear CKA, the proxy A-distance,
k-nearest-neighbour label agreement and a shared-axes 2-D PCA (Garaev et al. 2024, §3.3, §4)."""

from robustlens.analysis.adistance import ADistanceResult, proxy_a_distance
from robustlens.analysis.neighbours import (
    Pca2dResult,
    knn_agreement,
    knn_agreement_per_sample,
    pca_2d,
)
from robustlens.analysis.similarity import SvccaResult, linear_cka, svcca

__all__ = [
    "ADistanceResult",
    "Pca2dResult",
    "SvccaResult",
    "knn_agreement",
    "knn_agreement_per_sample",
    "linear_cka",
    "pca_2d",
    "proxy_a_distance",
    "svcca",
]
