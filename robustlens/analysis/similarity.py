"""Similarity of two representations of the same samples: SVCCA and linear CKA.

* SVCCA — Raghu, Gilmer, Yosinski, Sohl-Dickstein, "SVCCA: Singular Vector Canonical Correlation
  Analysis for Deep Learning Dynamics and Interpretability", NeurIPS 2017. Garaev, Rasheed, Khan,
  "Not So Robust after All", Algorithms 17:162 (2024), §4.1 and Table 7 use it to compare the
  penultimate representations of clean and adversarial images.
* Linear CKA — Kornblith, Norouzi, Lee, Hinton, "Similarity of Neural Network Representations
  Revisited", ICML 2019.

Inputs are numpy arrays or torch tensors of shape [N, D] (rows = samples, the same samples in
the same order in both inputs); everything is computed in float64 on the CPU. Matrix products
and decompositions of this package go through torch (MKL), never numpy's BLAS: it is faster, and
alternating the two libraries' thread pools costs more than either (each spins after a call).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import torch

from robustlens.errors import ConfigError

ArrayLike = np.ndarray | torch.Tensor

# Directions whose variance is below this fraction of the largest are numerical noise (the
# Gram-matrix eigenvalues carry an absolute error of about D·eps·λ₁) and are never kept.
_NEGLIGIBLE = 1e-12
# Above this spread λ₁/λ_k of the kept variances the Gram-matrix route loses accuracy (it
# squares the condition number), so the basis is recomputed by an SVD of the data.
_GRAM_MAX_SPREAD = 1e6


@dataclass(frozen=True, eq=False)
class SvccaResult:
    """SVCCA of two representations.

    ``correlations``: canonical correlations of the reduced representations, sorted descending,
    length min(kept_x, kept_y); ``mean``: their mean, the SVCCA similarity (Raghu et al. 2017);
    ``kept_x`` / ``kept_y``: singular directions kept for each input; ``n_samples``: N.
    """

    correlations: np.ndarray
    mean: float
    kept_x: int
    kept_y: int
    n_samples: int


def as_float64(x: ArrayLike, name: str) -> np.ndarray:
    """``x`` (numpy array, torch tensor or nested sequence) as a float64 numpy array."""
    if isinstance(x, torch.Tensor):
        return x.detach().to(device="cpu", dtype=torch.float64).numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ConfigError(
            f"{name} must be a numeric array, got {type(x).__name__}",
            fix="pass a numpy array or torch tensor of numbers",
        ) from err


def check_finite(x: np.ndarray, name: str) -> None:
    """Raise :class:`ConfigError` when ``x`` holds NaN or infinite values."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(x.sum()):  # fast path: a NaN or inf would make the sum non-finite
            return
    if not np.isfinite(x).all():
        bad = int(np.count_nonzero(~np.isfinite(x)))
        raise ConfigError(
            f"{name} holds {bad} NaN or infinite value(s)",
            fix="remove or repair those samples (a diverged model or attack produces them)",
        )


def _matrix(x: ArrayLike, name: str) -> np.ndarray:
    """A finite, non-constant float64 matrix [N, D] with N ≥ 2."""
    m = as_float64(x, name)
    if m.ndim != 2:
        raise ConfigError(
            f"{name} must have shape [N, D] (rows = samples), got shape {tuple(m.shape)}",
            fix="flatten each sample's representation, e.g. x.reshape(len(x), -1)",
        )
    if m.shape[0] < 2 or m.shape[1] < 1:
        raise ConfigError(
            f"{name} needs at least 2 samples and 1 feature, got shape {tuple(m.shape)}",
            fix="pass more samples",
        )
    check_finite(m, name)
    if (m == m[0]).all():
        raise ConfigError(
            f"{name} is constant over samples (zero variance), so similarity is undefined",
            fix="check that the representations were extracted from different inputs",
        )
    return m


def _pair(x: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs validated, with matching N, column-centred and scaled."""
    xm, ym = _matrix(x, "x"), _matrix(y, "y")
    if xm.shape[0] != ym.shape[0]:
        raise ConfigError(
            f"x and y must hold the same samples, got {xm.shape[0]} and {ym.shape[0]} rows",
            fix="pass the representations of the same inputs, in the same order",
        )
    return _centre_scaled(xm), _centre_scaled(ym)


def _centre_scaled(m: np.ndarray) -> np.ndarray:
    """Columns centred, then the whole matrix divided by its largest magnitude (both measures
    are scale-invariant; this keeps squares from over- or underflowing)."""
    c = m - m.mean(axis=0)
    c /= max(c.max(), -c.min())
    return c


def _cut(variances: np.ndarray, keep: float) -> int:
    """Smallest k whose top-k variances (descending, s² of the centred data) reach ``keep`` of
    the total; directions of negligible variance are never kept."""
    total = variances.sum()
    significant = int(np.count_nonzero(variances > _NEGLIGIBLE * variances[0]))
    ratio = np.cumsum(variances) / total
    k = int(np.searchsorted(ratio, keep - 1e-12)) + 1  # first index with ratio ≥ keep
    return max(1, min(k, significant))


def _basis_svd(xc: torch.Tensor, keep: float) -> tuple[torch.Tensor, int]:
    """Orthonormal basis U_k of the kept directions, by an SVD of the centred data."""
    u, s, _ = torch.linalg.svd(xc, full_matrices=False)
    k = _cut((s**2).numpy(), keep)
    return u[:, :k], k


def _basis(xc: np.ndarray, keep: float) -> tuple[torch.Tensor, int]:
    """Orthonormal basis [N, k] of span(U_k S_k), the reduced data of SVCCA, and k.

    The eigendecomposition of the smaller Gram matrix (XᵀX or XXᵀ, eigenvalues s²) is several
    times faster than an SVD of X; when the kept variances spread too widely for it to be
    accurate (it squares the condition number), the SVD is used instead.
    """
    n, d = xc.shape
    xc = torch.from_numpy(xc)
    gram = xc.T @ xc if d <= n else xc @ xc.T  # XᵀX = V S² Vᵀ or XXᵀ = U S² Uᵀ
    lam, vecs = torch.linalg.eigh(gram)
    lam, vecs = lam.flip(0).clamp_min(0.0), vecs.flip(1)
    k = _cut(lam.numpy(), keep)
    if lam[0] > _GRAM_MAX_SPREAD * lam[k - 1]:
        return _basis_svd(xc, keep)
    if d <= n:
        return (xc @ vecs[:, :k]) / lam[:k].sqrt(), k  # U_k = X V_k S_k⁻¹
    return vecs[:, :k], k


def svcca(x: ArrayLike, y: ArrayLike, *, keep: float = 0.99) -> SvccaResult:
    """SVCCA similarity of two representations [N, Dx] and [N, Dy] of the same N samples.

    Following Raghu et al. (2017) as used by Garaev et al. (2024, §4.1): centre each matrix's
    columns; keep, separately for x and y, the smallest number of top singular directions whose
    s² sum to at least ``keep`` of the total s² (variance, not singular values); reduce each input
    to U_k S_k; the canonical correlations of the reduced inputs are the singular values of
    Q_xᵀ Q_y for orthonormal bases Q of their column spans (here U_k itself). ``mean`` is their
    mean. Numerically negligible directions (variance below 1e-12 of the largest) are never
    kept, so ``keep=1.0`` keeps every direction of the numerical rank.

    Needs more distinct samples than kept_x + kept_y: with fewer, the two kept subspaces of the
    space of centred samples (dimension distinct − 1; a repeated row, as in a bootstrap
    resample, adds none) must share directions, and canonical correlations of exactly 1
    appear whatever the data.
    """
    if isinstance(keep, bool) or not isinstance(keep, numbers.Real) or not 0.0 < keep <= 1.0:
        raise ConfigError(
            f"keep is the fraction of variance to keep and must lie in (0, 1], got {keep!r}",
            fix="use keep=0.99 as in SVCCA (Raghu et al. 2017), or 1.0 to keep all directions",
        )
    xc, yc = _pair(x, y)
    n = xc.shape[0]
    qx, kx = _basis(xc, float(keep))
    qy, ky = _basis(yc, float(keep))
    distinct = n if n <= kx + ky else _distinct_rows(xc, yc)
    if distinct <= kx + ky:
        repeats = (
            f" ({n} rows, {n - distinct} of them repeats of another row, as in a bootstrap "
            "resample, which holds about 63 % distinct rows)"
            if distinct < n
            else ""
        )
        raise ConfigError(
            f"svcca kept {kx} + {ky} singular directions but has only {distinct} samples"
            f"{repeats}; it needs at least {kx + ky + 1} distinct ones (more than kept_x + "
            "kept_y), or the kept subspaces are forced to overlap and canonical correlations "
            "of 1 appear regardless of the data",
            fix=f"pass at least {kx + ky + 1} distinct samples (several times more is better; "
            "a bootstrap resample of n rows holds about 0.63·n) or lower keep",
        )
    corr = torch.linalg.svdvals(qx.T @ qy).numpy()  # descending, min(kx, ky) of them
    corr = np.clip(corr, 0.0, 1.0)
    return SvccaResult(
        correlations=corr, mean=float(corr.mean()), kept_x=kx, kept_y=ky, n_samples=n
    )


def _distinct_rows(xc: np.ndarray, yc: np.ndarray) -> int:
    """Number of distinct samples (rows of [x, y]); repeated samples span no new direction."""
    both = np.ascontiguousarray(np.concatenate([xc, yc], axis=1) + 0.0)  # −0.0 becomes 0.0
    rows = both.view(np.dtype((np.void, both.dtype.itemsize * both.shape[1]))).ravel()
    return int(np.unique(rows).size)


def linear_cka(x: ArrayLike, y: ArrayLike) -> float:
    """Linear CKA (Kornblith et al. 2019) of [N, Dx] and [N, Dy]: with centred columns,
    ‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F), in [0, 1]; computed through N×N Gram matrices when N is
    smaller than the feature dimensions."""
    xc, yc = _pair(x, y)
    n, dx, dy = xc.shape[0], xc.shape[1], yc.shape[1]
    tx, ty = torch.from_numpy(xc), torch.from_numpy(yc)
    if n < max(dx, dy):
        kx, ky = tx @ tx.T, ty @ ty.T  # ‖YᵀX‖²_F = ⟨XXᵀ, YYᵀ⟩_F, ‖XᵀX‖_F = ‖XXᵀ‖_F
        cross = float((kx * ky).sum())
        norm_x, norm_y = float(torch.linalg.norm(kx)), float(torch.linalg.norm(ky))
    else:
        cross = float(torch.linalg.norm(ty.T @ tx) ** 2)
        norm_x, norm_y = float(torch.linalg.norm(tx.T @ tx)), float(torch.linalg.norm(ty.T @ ty))
    return min(max(cross / (norm_x * norm_y), 0.0), 1.0)
