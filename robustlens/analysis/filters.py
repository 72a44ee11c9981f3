"""Statistics of convolution filters (Gavrikov & Keuper 2022, §3, Eq. 2–10).

A layer's weights W [c_out, c_in, k1, k2] are read as n = c_out·c_in flattened filters of
k1·k2 coefficients (Eq. 2). Where the text leaves details open these follow the authors'
notebooks (../shared/papers/README.md): a filter is sparse when ‖F‖∞ ≤ 0.01·max|W| of the
raw weights (Eq. 7, sparsity.ipynb); for the filter basis and the coefficient shift each
non-sparse filter is divided by its own ‖F‖∞ (Eq. 3); the variance entropy (Eq. 8) is fitted
to the layer's non-sparse filters "without normalization of filters" (§3, as the authors'
torchconvquality computes ``variance_entropy_clean``), with the ‖F‖∞-scaled form of their
pca.ipynb on request; eigenvalues are sᵢ²/(n − 1) of the centred matrix (Eq. 4–5); entropies
are base 10 (Eq. 8); KL divergences
(Eq. 10) are those of the authors' pca.ipynb: every coefficient axis is binned into 70 bins
over one global range (the minimum and maximum of all coefficients, every axis, of all
filters in the basis), as a density histogram (count / (n · bin width)); empty bins are then
set to float32 eps and each histogram renormalised to sum 1; natural logarithms; axes weighted
by the explained-variance ratio of the basis. Everything is float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robustlens.errors import ConfigError

SPARSE_FRACTION = 0.01
"""Eq. 7: ε₀ = max|W| / 100."""
KL_BINS = 70
EMPTY_BIN = float(np.finfo(np.float32).eps)


def filter_matrix(weight: np.ndarray) -> np.ndarray:
    """Eq. 2: [c_out, c_in, k1, k2] → [c_out·c_in, k1·k2] (float64)."""
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim != 4:
        raise ConfigError(f"convolution weights must have 4 dimensions, got shape {w.shape}")
    return w.reshape(w.shape[0] * w.shape[1], w.shape[2] * w.shape[3])


def sparse_mask(weight: np.ndarray) -> np.ndarray:
    """Eq. 7: which filters have every coefficient within ±max|W|/100 (a zero layer: all)."""
    f = filter_matrix(weight)
    bound = SPARSE_FRACTION * np.abs(f).max()
    return np.abs(f).max(axis=1) <= bound


def sparsity(weight: np.ndarray) -> float:
    """Eq. 7: the fraction of sparse filters in a layer."""
    return float(sparse_mask(weight).mean())


def scaled_filters(weight: np.ndarray) -> np.ndarray:
    """Eq. 3 after dropping sparse filters: each filter divided by its own ‖F‖∞."""
    f = filter_matrix(weight)[~sparse_mask(weight)]
    d = np.abs(f).max(axis=1, keepdims=True)
    return np.where(d > 0, f / np.where(d > 0, d, 1.0), f)


@dataclass(frozen=True)
class FilterBasis:
    """Eq. 4–5: principal components (rows of ``basis``), their explained-variance ratios and
    the column means that were subtracted."""

    basis: np.ndarray
    explained_variance_ratio: np.ndarray
    mean: np.ndarray

    def coefficients(self, filters: np.ndarray) -> np.ndarray:
        """Eq. 6 inverted: coefficients c of each filter along each basis vector."""
        return (np.asarray(filters, dtype=np.float64) - self.mean) @ self.basis.T


def filter_basis(filters: np.ndarray) -> FilterBasis:
    """PCA by SVD of the centred [n, k²] matrix: V, â = a/‖a‖₁ with a = s²/(n − 1)."""
    f = np.asarray(filters, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ConfigError(
            f"a filter basis needs at least 2 non-sparse filters, got {f.shape[0]}",
            fix="include more layers or models",
        )
    mean = f.mean(axis=0)
    _, s, vt = np.linalg.svd(f - mean, full_matrices=False)
    a = s**2 / (f.shape[0] - 1)
    total = a.sum()
    ratio = a / total if total > 0 else np.zeros_like(a)
    return FilterBasis(basis=vt, explained_variance_ratio=ratio, mean=mean)


def variance_entropy(weight: np.ndarray, *, scaled: bool = False) -> float:
    """Eq. 8: −Σ âᵢ log₁₀ âᵢ over the basis of the layer's non-sparse filters (0 = one
    direction; log₁₀(k²) = uniform, 0.954 for 3×3). The filters are taken as they are (§3:
    "without normalization of filters"), or each divided by its own ‖F‖∞ with ``scaled`` (the
    authors' pca.ipynb). NaN when fewer than two filters are not sparse."""
    f = scaled_filters(weight) if scaled else filter_matrix(weight)[~sparse_mask(weight)]
    if f.shape[0] < 2:
        return float("nan")
    ratio = filter_basis(f).explained_variance_ratio
    ratio = ratio[ratio > 0]
    return float(-(ratio * np.log10(ratio)).sum())


def orthogonality(weight: np.ndarray) -> float:
    """Eq. 9: 1 − ‖ŴŴᵀ − I‖₁ / (c_out(c_out − 1)) with Ŵ the filterbanks [c_out, c_in·k²]
    scaled to unit length (‖·‖₁ the sum of absolute entries). NaN for a single filterbank."""
    w = np.asarray(weight, dtype=np.float64)
    c_out = w.shape[0]
    if c_out < 2:
        return float("nan")
    banks = w.reshape(c_out, -1)
    norms = np.linalg.norm(banks, axis=1, keepdims=True)
    unit = banks / np.where(norms > 0, norms, 1.0)
    gram = unit @ unit.T
    return float(1.0 - np.abs(gram - np.eye(c_out)).sum() / (c_out * (c_out - 1)))


ValueRange = tuple[float, float]


def value_range(*samples: np.ndarray) -> ValueRange:
    """The global (min, max) over every value of ``samples``: the one histogram range of all
    axes (Eq. 10 as the authors compute it). A single value is widened by ±0.5, as
    ``np.histogram`` does."""
    values = [np.asarray(s, dtype=np.float64) for s in samples]
    if not values or any(v.size == 0 for v in values):
        raise ConfigError("a KL divergence needs values on both sides")
    low = float(min(v.min() for v in values))
    high = float(max(v.max() for v in values))
    return (low - 0.5, high + 0.5) if high <= low else (low, high)


def _histograms(sample: np.ndarray, limits: ValueRange, bins: int) -> np.ndarray:
    """Per column of ``sample`` [n, axes], the authors' discrete distribution over ``limits``:
    the density histogram count / (n · width) (values outside the range left out, as
    ``np.histogram`` does), empty bins set to float32 eps, renormalised to sum 1."""
    low, high = limits
    edges = np.linspace(low, high, bins + 1)
    inside = (sample >= low) & (sample <= high)
    idx = np.clip(np.searchsorted(edges, sample, side="right") - 1, 0, bins - 1)
    axes = sample.shape[1]
    idx = np.where(inside, idx + np.arange(axes) * bins, axes * bins)  # outside: a spare slot
    counts = np.bincount(idx.ravel(), minlength=axes * bins + 1)[: axes * bins]
    counts = counts.reshape(axes, bins).astype(np.float64)
    n = counts.sum(axis=1, keepdims=True)
    if np.any(n == 0):
        raise ConfigError(f"no values within the histogram range [{low:g}, {high:g}]")
    density = counts / (n * ((high - low) / bins))
    density[density == 0] = EMPTY_BIN
    return density / density.sum(axis=1, keepdims=True)


def histogram_pair(
    p: np.ndarray, q: np.ndarray, bins: int = KL_BINS, limits: ValueRange | None = None
) -> tuple[np.ndarray, ...]:
    """The authors' discrete distributions of two samples over one range (``limits``, by
    default both samples' global range): see :func:`coefficient_divergence`."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    limits = value_range(p, q) if limits is None else limits
    return tuple(_histograms(s.reshape(-1, 1), limits, bins)[0] for s in (p, q))


def symmetric_kl(p: np.ndarray, q: np.ndarray) -> float:
    """Σ P log(P/Q) + Q log(Q/P) of two discrete distributions (natural log)."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    return float(np.sum(p * np.log(p / q)) + np.sum(q * np.log(q / p)))


def coefficient_divergence(
    coeff_a: np.ndarray,
    coeff_b: np.ndarray,
    weights: np.ndarray,
    bins: int = KL_BINS,
    limits: ValueRange | None = None,
) -> tuple[float, np.ndarray]:
    """Eq. 10: Σᵢ wᵢ·KL_sym(Pᵢ, Qᵢ) over basis axes i, Pᵢ and Qᵢ the two sets' coefficients
    along axis i as the authors' discrete distributions: ``bins`` bins over one range for
    every axis (``limits``; by default the global min and max of both sets' coefficients),
    density histograms with empty bins set to float32 eps, renormalised. Returns the weighted
    sum and the per-axis divergences."""
    a, b = np.atleast_2d(coeff_a).astype(np.float64), np.atleast_2d(coeff_b).astype(np.float64)
    if a.shape[0] == 0 or b.shape[0] == 0:
        raise ConfigError("a KL divergence needs values on both sides")
    limits = value_range(a, b) if limits is None else limits
    p, q = _histograms(a, limits, bins), _histograms(b, limits, bins)
    per_axis = np.sum(p * np.log(p / q) + q * np.log(q / p), axis=1)
    return float(np.dot(np.asarray(weights, dtype=np.float64), per_axis)), per_axis


def depth_group(index: int, relative_depth: float) -> str:
    """'first' for the first convolution, else the decile of relative depth ('d1' … 'd10')."""
    if index == 0:
        return "first"
    return f"d{min(int(np.ceil(relative_depth * 10)), 10) or 1}"


GroupedFilters = dict[tuple[str, str], np.ndarray]
"""(depth group, kernel such as '3x3') → scaled non-sparse filters [n, k²]."""


def group_order(group: str) -> int:
    """'first' before 'd1' … 'd10'."""
    return 0 if group == "first" else int(group[1:])


def pooled(sets: list[GroupedFilters], kernel: str, group: str | None = None) -> np.ndarray:
    """All filters of one kernel size (and depth group, if given) across several models."""
    parts = [
        f for s in sets for (g, k), f in s.items() if k == kernel and (group is None or g == group)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, 0))


@dataclass(frozen=True)
class FilterShift:
    """Eq. 10 by depth group for one kernel size: the basis fitted on all filters of both
    sets; per group the weighted divergence, the per-axis divergences and, when permutations
    were asked for, the mean divergence of label-shuffled splits of the same filters.

    Histogram KL grows as samples shrink (a first layer may hold 32 filters, a deep one
    thousands), so divergences of groups of different sizes only compare after subtracting
    that shuffled baseline: :attr:`excess`."""

    kernel: str
    basis: FilterBasis
    divergence: dict[str, float]
    per_axis: dict[str, np.ndarray]
    shuffled: dict[str, np.ndarray]
    """Per group, the divergences of the label-shuffled splits (empty without permutations)."""
    limits: ValueRange | None = None
    """The histogram range of every axis: all coefficients of all filters in the basis."""

    @property
    def baseline(self) -> dict[str, float]:
        return {g: float(np.mean(v)) for g, v in self.shuffled.items()}

    @property
    def excess(self) -> dict[str, float]:
        """Divergence above the label-shuffled baseline, per group (needs permutations)."""
        base = self.baseline
        return {g: v - base[g] for g, v in self.divergence.items() if g in base}

    @property
    def p_value(self) -> dict[str, float]:
        """Permutation p-value per group: (1 + #shuffled ≥ observed) / (1 + #shuffles)."""
        return {
            g: (1 + int(np.sum(v >= self.divergence[g]))) / (1 + v.size)
            for g, v in self.shuffled.items()
        }


def filter_shift(
    first: list[GroupedFilters],
    second: list[GroupedFilters],
    kernel: str,
    *,
    permutations: int = 0,
    seed: int = 0,
) -> FilterShift | None:
    """Coefficient divergence between two sets of models (e.g. robust and natural) for each
    depth group both have, in the basis of all their filters of that kernel size (Fig. 1, 3),
    with the mean over ``permutations`` random relabellings of the group's filters into
    two sets of the same sizes as a baseline. None when either side has fewer than two
    filters of that size."""
    a_all, b_all = pooled(first, kernel), pooled(second, kernel)
    if a_all.shape[0] < 2 or b_all.shape[0] < 2:
        return None
    basis = filter_basis(np.concatenate([a_all, b_all]))
    weights = basis.explained_variance_ratio
    limits = value_range(basis.coefficients(a_all), basis.coefficients(b_all))
    groups = sorted(
        {g for s in first for g, k in s if k == kernel}
        & {g for s in second for g, k in s if k == kernel},
        key=group_order,
    )
    rng = np.random.default_rng([seed, 10])
    divergence, per_axis, shuffled = {}, {}, {}
    for g in groups:
        a, b = pooled(first, kernel, g), pooled(second, kernel, g)
        if a.shape[0] == 0 or b.shape[0] == 0:
            continue
        ca, cb = basis.coefficients(a), basis.coefficients(b)
        divergence[g], per_axis[g] = coefficient_divergence(ca, cb, weights, KL_BINS, limits)
        if permutations:
            both = np.concatenate([ca, cb])
            null = []
            for _ in range(permutations):
                mixed = both[rng.permutation(both.shape[0])]
                split = (mixed[: len(ca)], mixed[len(ca) :])
                null.append(coefficient_divergence(*split, weights, KL_BINS, limits)[0])
            shuffled[g] = np.array(null)
    return FilterShift(kernel, basis, divergence, per_axis, shuffled, limits)
