"""Neighbourhood label agreement and a shared-axes 2-D PCA of representations.

Garaev, Rasheed, Khan, "Not So Robust after All", Algorithms 17:162 (2024), §4.2 and Fig. 4–8
project 512-D penultimate representations of clean and adversarial images to 2-D with PCA and
judge by eye how the classes intermingle. :func:`pca_2d` reproduces the projection with axes
fitted on one reference set (e.g. clean images), so other sets (e.g. their adversarial
counterparts) are drawn on the same axes; :func:`knn_agreement` puts a number on the
intermingling, in the 2-D projection or in the full representation space.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import torch

from robustlens.analysis.similarity import ArrayLike, as_float64, check_finite
from robustlens.errors import ConfigError

# Squared distances d²_ij that agree within this fraction of |x_i|² + |x_j|² (centred points)
# count as tied; the Gram-matrix formula for d²_ij is accurate to about 1e-13 of that scale.
_TIE_RTOL = 1e-9
# Distance-matrix entries computed at once (rows per chunk = this / N).
_CHUNK = 4_000_000


def _points(points: ArrayLike, name: str = "points") -> np.ndarray:
    m = as_float64(points, name)
    if m.ndim != 2:
        raise ConfigError(
            f"{name} must have shape [N, D], got shape {tuple(m.shape)}",
            fix="flatten each sample, e.g. x.reshape(len(x), -1)",
        )
    check_finite(m, name)
    return m


def knn_agreement_per_sample(points: ArrayLike, labels: ArrayLike, *, k: int = 10) -> np.ndarray:
    """For each of the N points [N, D], the fraction of its k nearest other points (Euclidean,
    itself excluded) that share its label; returns float64 [N].

    Exact, by brute force over a distance matrix computed in chunks. Ties: when several points
    lie at the k-th smallest distance (equal up to 1e-9 of the squared norms involved), the
    remaining slots are shared equally among all of them, i.e. the result is the average over
    every way of breaking the tie, and so does not depend on the order of the points.
    Duplicated points are at distance 0 from each other and count as neighbours.
    """
    x = _points(points)
    n = x.shape[0]
    lab = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if lab.shape != (n,):
        raise ConfigError(
            f"labels must have shape [{n}] (one per point), got shape {tuple(lab.shape)}",
            fix="pass one label per row of points",
        )
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}", fix="use k=10")
    if k >= n:
        raise ConfigError(
            f"k = {k} neighbours need at least {k + 1} points, got {n} (a point is not its own "
            "neighbour)",
            fix=f"lower k below {n} or pass more points",
        )
    k = int(k)
    x = x - x.mean(axis=0)  # translation-invariant; centring shrinks the Gram-formula error
    sq = np.einsum("ij,ij->i", x, x)
    _, codes = np.unique(lab, return_inverse=True)
    codes = codes.reshape(n)
    out = np.empty(n)
    xt = torch.from_numpy(x)
    rows = max(1, _CHUNK // n)
    for start in range(0, n, rows):
        idx = np.arange(start, min(n, start + rows))
        local = np.arange(len(idx))
        d2 = sq[idx, None] + sq[None, :] - 2.0 * (xt[start : start + len(idx)] @ xt.T).numpy()
        np.maximum(d2, 0.0, out=d2)
        d2[local, idx] = np.inf  # a point is not its own neighbour
        jk = np.argpartition(d2, k - 1, axis=1)[:, k - 1]  # a k-th nearest neighbour
        kth = d2[local, jk][:, None]
        # each Gram-formula d²_ij is accurate to ~eps·(|x_i|² + |x_j|²); compare with slack
        tol = _TIE_RTOL * ((2.0 * sq[idx] + sq[jk])[:, None] + sq[None, :])
        closer = d2 < kth - tol
        tied = np.abs(d2 - kth) <= tol
        same = codes[idx, None] == codes[None, :]
        n_closer = closer.sum(axis=1)
        share = (tied & same).sum(axis=1) / tied.sum(axis=1)
        out[idx] = ((closer & same).sum(axis=1) + (k - n_closer) * share) / k
    return out


def knn_agreement(points: ArrayLike, labels: ArrayLike, *, k: int = 10) -> float:
    """Mean over points of :func:`knn_agreement_per_sample`: 1 when every point's k nearest
    neighbours share its label, about Σ_c p_c² (p_c the class shares) when labels are unrelated
    to position."""
    return float(knn_agreement_per_sample(points, labels, k=k).mean())


@dataclass(frozen=True, eq=False)
class Pca2dResult:
    """A 2-component PCA fitted on a reference set and applied to it and to other sets.

    ``reference`` [N, 2] and ``others`` (one [M_i, 2] per other set, in order): projections
    (x − mean) · componentsᵀ; ``explained_variance_ratio`` [2]: variance of the reference along
    each component over its total variance; ``components`` [2, D] (orthonormal rows, sign fixed
    so that each row's largest-magnitude entry is positive); ``mean`` [D]: the reference mean.
    """

    reference: np.ndarray
    others: tuple[np.ndarray, ...]
    explained_variance_ratio: np.ndarray
    components: np.ndarray
    mean: np.ndarray

    @property
    def projections(self) -> tuple[np.ndarray, ...]:
        """The reference projection followed by every other one."""
        return (self.reference, *self.others)

    def transform(self, x: ArrayLike) -> np.ndarray:
        """Project a further set [M, D] onto the same axes."""
        m = _points(x, "x")
        if m.shape[1] != self.mean.shape[0]:
            raise ConfigError(
                f"x has {m.shape[1]} features but the PCA was fitted on {self.mean.shape[0]}",
                fix="project representations of the same layer",
            )
        return _project(m - self.mean, self.components)


def _project(centred: np.ndarray, components: np.ndarray) -> np.ndarray:
    """centred [M, D] · componentsᵀ [D, 2], through torch (see robustlens.analysis.similarity)."""
    return (torch.from_numpy(centred) @ torch.from_numpy(components).T).numpy()


def pca_2d(reference: ArrayLike, *others: ArrayLike) -> Pca2dResult:
    """Fit a 2-component PCA on ``reference`` [N, D] (centred by its own mean) and project it and
    every array of ``others`` [M_i, D] with the same mean and components (Garaev et al. 2024,
    §4.2), so that e.g. clean and adversarial representations share axes. Float64; exact (an
    eigendecomposition of the D×D covariance, or an SVD when D > N)."""
    ref = _points(reference, "reference")
    n, d = ref.shape
    if n < 2 or d < 2:
        raise ConfigError(
            f"pca_2d needs at least 2 samples with at least 2 features, got shape {(n, d)}",
            fix="pass more samples or a representation with more features",
        )
    if (ref == ref[0]).all():
        raise ConfigError(
            "reference is constant over samples (zero variance): PCA axes are undefined",
            fix="check that the representations were extracted from different inputs",
        )
    mean = ref.mean(axis=0)
    xc = ref - mean
    xs = torch.from_numpy(xc / np.abs(xc).max())  # scale-free: no over- or underflow of squares
    if d <= n:
        lam, vecs = torch.linalg.eigh(xs.T @ xs)
        lam = lam.flip(0).clamp_min(0.0).numpy()
        comps = vecs[:, -2:].flip(1).T.numpy().copy()
    else:
        _, s, vt = torch.linalg.svd(xs, full_matrices=False)
        lam, comps = (s**2).numpy(), vt[:2].numpy().copy()
    total, top = float(lam.sum()), lam[:2]
    pick = np.abs(comps).argmax(axis=1)
    comps *= np.sign(comps[np.arange(2), pick])[:, None]
    projected = []
    for i, other in enumerate(others):
        m = _points(other, f"others[{i}]")
        if m.shape[1] != d:
            raise ConfigError(
                f"others[{i}] has {m.shape[1]} features but reference has {d}",
                fix="project representations of the same layer",
            )
        projected.append(_project(m - mean, comps))
    return Pca2dResult(
        reference=_project(xc, comps),
        others=tuple(projected),
        explained_variance_ratio=top / total,
        components=comps,
        mean=mean,
    )
