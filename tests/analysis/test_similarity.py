"""SVCCA (Raghu et al. 2017) and linear CKA (Kornblith et al. 2019) vs. independent references."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from robustlens.analysis import SvccaResult, linear_cka, svcca
from robustlens.errors import ConfigError

# --- independent references ------------------------------------------------------------------


def ref_cca(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Classic CCA: singular values of Σaa^{-1/2} Σab Σbb^{-1/2} (sample covariances)."""
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    n = len(a)
    saa, sbb, sab = a.T @ a / (n - 1), b.T @ b / (n - 1), a.T @ b / (n - 1)
    wa = np.linalg.inv(np.real(scipy.linalg.sqrtm(saa)))
    wb = np.linalg.inv(np.real(scipy.linalg.sqrtm(sbb)))
    corr = np.linalg.svd(wa @ sab @ wb, compute_uv=False)
    return np.sort(corr)[::-1][: min(a.shape[1], b.shape[1])]


def ref_reduce(x: np.ndarray, keep: float) -> np.ndarray:
    """SVCCA's SV step: top singular directions explaining `keep` of Σs² of the centred data."""
    xc = x - x.mean(axis=0)
    u, s, _ = scipy.linalg.svd(xc, full_matrices=False, lapack_driver="gesvd")
    var = s**2
    k = next(i + 1 for i in range(len(var)) if var[: i + 1].sum() >= keep * var.sum() - 1e-12)
    return u[:, :k] * s[:k]


def ref_svcca(x: np.ndarray, y: np.ndarray, keep: float = 0.99) -> tuple[np.ndarray, int, int]:
    rx, ry = ref_reduce(x, keep), ref_reduce(y, keep)
    return ref_cca(rx, ry), rx.shape[1], ry.shape[1]


def orthogonal(d: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def related_pair(rng: np.random.Generator, n: int = 400, dx: int = 20, dy: int = 15):
    """Two representations sharing a few latent factors, with decaying spectra."""
    z = rng.standard_normal((n, 6))
    x = z @ rng.standard_normal((6, dx)) + 0.3 * rng.standard_normal((n, dx))
    y = np.tanh(z @ rng.standard_normal((6, dy))) + 0.5 * rng.standard_normal((n, dy))
    return x * np.linspace(1.0, 0.2, dx), y


def zero_mean_orthonormal(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    a = rng.standard_normal((n, k))
    q, _ = np.linalg.qr(a - a.mean(axis=0))
    return q


# --- agreement with the references -----------------------------------------------------------


@pytest.mark.parametrize("keep", [0.9, 0.99, 1.0])
def test_svcca_matches_reference(keep):
    x, y = related_pair(np.random.default_rng(0))
    res = svcca(x, y, keep=keep)
    corr, kx, ky = ref_svcca(x, y, keep)
    assert isinstance(res, SvccaResult)
    assert (res.kept_x, res.kept_y, res.n_samples) == (kx, ky, 400)
    assert res.correlations.shape == (min(kx, ky),)
    np.testing.assert_allclose(res.correlations, corr, rtol=0, atol=1e-9)
    assert res.mean == pytest.approx(corr.mean(), abs=1e-10)
    assert np.all(np.diff(res.correlations) <= 0)


def test_svcca_matches_reference_more_features_than_samples():
    rng = np.random.default_rng(1)
    z = rng.standard_normal((80, 5))
    x = z @ rng.standard_normal((5, 300)) + 1e-3 * rng.standard_normal((80, 300))
    y = (z + 0.5 * rng.standard_normal((80, 5))) @ rng.standard_normal((5, 200))
    res = svcca(x, y)
    corr, kx, ky = ref_svcca(x, y, 0.99)
    assert (res.kept_x, res.kept_y) == (kx, ky)
    np.testing.assert_allclose(res.correlations, corr, rtol=0, atol=1e-9)


def test_svcca_matches_reference_ill_conditioned():
    """Singular values spanning 5 orders of magnitude in rotated directions, all kept: the
    Gram-matrix route would lose ~1e-9 here, so the SVD route must be taken."""
    rng = np.random.default_rng(2)
    x = zero_mean_orthonormal(400, 40, rng) * np.logspace(0, -5, 40) @ orthogonal(40, rng)
    y = x @ rng.standard_normal((40, 6)) + 0.01 * rng.standard_normal((400, 6))
    y = np.concatenate([y, x[:, :10]], axis=1)
    res = svcca(x, y, keep=1.0)
    corr, kx, ky = ref_svcca(x, y, 1.0)
    assert (res.kept_x, res.kept_y) == (kx, ky) == (40, 16)
    np.testing.assert_allclose(res.correlations, corr, rtol=0, atol=1e-11)


def test_cca_of_reduced_data_matches_classic_cca():
    """keep=1 on full-rank data: SVCCA is plain CCA of the raw inputs."""
    x, y = related_pair(np.random.default_rng(3), dx=7, dy=5)
    np.testing.assert_allclose(
        svcca(x, y, keep=1.0).correlations, ref_cca(x, y), rtol=0, atol=1e-10
    )


def test_linear_cka_matches_definition():
    x, y = related_pair(np.random.default_rng(4))
    xc, yc = x - x.mean(axis=0), y - y.mean(axis=0)
    expected = np.linalg.norm(yc.T @ xc) ** 2 / (
        np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc)
    )
    assert linear_cka(x, y) == pytest.approx(expected, rel=1e-12)
    # the N×N (kernel) route, taken when N is smaller than the feature dimension
    xw, yw = x[:12], y[:12]
    xc, yc = xw - xw.mean(axis=0), yw - yw.mean(axis=0)
    expected = np.linalg.norm(yc.T @ xc) ** 2 / (
        np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc)
    )
    assert linear_cka(xw, yw) == pytest.approx(expected, rel=1e-12)


# --- constructed canonical correlations ------------------------------------------------------


def test_known_canonical_correlations():
    rng = np.random.default_rng(5)
    theta = np.array([0.1, 0.4, 0.8, 1.2, 1.5])
    q = zero_mean_orthonormal(200, 10, rng)
    u, w = q[:, :5], q[:, 5:]
    v = u * np.cos(theta) + w * np.sin(theta)
    res = svcca(u, v, keep=1.0)
    assert (res.kept_x, res.kept_y) == (5, 5)
    np.testing.assert_allclose(res.correlations, np.cos(theta), rtol=0, atol=1e-10)
    assert res.mean == pytest.approx(np.cos(theta).mean(), abs=1e-10)
    # mixing and rescaling the directions within each set changes nothing
    mixed = svcca(
        u @ orthogonal(5, rng) * [1, 2, 3, 4, 5], v @ rng.standard_normal((5, 5)), keep=1.0
    )
    np.testing.assert_allclose(mixed.correlations, np.cos(theta), rtol=0, atol=1e-10)


def test_sv_cut_uses_squared_singular_values():
    rng = np.random.default_rng(6)
    s = np.array([10.0, 3.0, 1.0, 0.5, 0.3, 0.1])
    # the cut discriminates: s² reaches 99 % at 3 directions, s itself only at 5
    assert np.searchsorted(np.cumsum(s**2) / (s**2).sum(), 0.99) + 1 == 3
    assert np.searchsorted(np.cumsum(s) / s.sum(), 0.99) + 1 == 5
    x = zero_mean_orthonormal(200, 6, rng) * s @ orthogonal(6, rng)
    np.testing.assert_allclose(np.linalg.svd(x - x.mean(axis=0), compute_uv=False), s)
    res = svcca(x, rng.standard_normal((200, 4)))
    assert res.kept_x == 3
    assert res.kept_y == 4
    assert svcca(x, x, keep=0.999).kept_x == 4


def test_centring_removes_offsets():
    rng = np.random.default_rng(7)
    x, y = related_pair(rng)
    base_s, base_c = svcca(x, y), linear_cka(x, y)
    shifted_x = x + 1e3 * rng.standard_normal(x.shape[1])
    shifted_y = y - 5e2 * rng.standard_normal(y.shape[1])
    res = svcca(shifted_x, shifted_y)
    assert (res.kept_x, res.kept_y) == (base_s.kept_x, base_s.kept_y)
    np.testing.assert_allclose(res.correlations, base_s.correlations, rtol=0, atol=1e-9)
    assert linear_cka(shifted_x, shifted_y) == pytest.approx(base_c, abs=1e-9)
    # sanity: without centring the offset would dominate the first singular direction
    s_raw = np.linalg.svd(shifted_x, compute_uv=False)
    assert s_raw[0] ** 2 / (s_raw**2).sum() > 0.99


# --- invariances -----------------------------------------------------------------------------


def test_self_similarity_is_one():
    x, _ = related_pair(np.random.default_rng(8))
    res = svcca(x, x)
    np.testing.assert_allclose(res.correlations, 1.0, rtol=0, atol=1e-12)
    assert res.mean == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)


def test_invariance_to_orthogonal_transforms_and_isotropic_scaling():
    rng = np.random.default_rng(9)
    x, y = related_pair(rng)
    base_s, base_c = svcca(x, y), linear_cka(x, y)
    variants = [
        (x @ orthogonal(x.shape[1], rng), y),
        (x, y @ orthogonal(y.shape[1], rng)),
        (3.7 * x, y),
        (x, 1e-3 * y),
        (-x @ orthogonal(x.shape[1], rng), 250.0 * y @ orthogonal(y.shape[1], rng)),
    ]
    for vx, vy in variants:
        res = svcca(vx, vy)
        assert (res.kept_x, res.kept_y) == (base_s.kept_x, base_s.kept_y)
        np.testing.assert_allclose(res.correlations, base_s.correlations, rtol=0, atol=1e-10)
        assert linear_cka(vx, vy) == pytest.approx(base_c, abs=1e-12)


def test_cka_changes_under_anisotropic_scaling():
    rng = np.random.default_rng(10)
    x, y = related_pair(rng)
    scaled = x * np.logspace(0, 2, x.shape[1])
    assert abs(linear_cka(scaled, y) - linear_cka(x, y)) > 1e-2


def test_torch_inputs_give_the_numpy_result():
    x, y = related_pair(np.random.default_rng(11))
    tx, ty = torch.from_numpy(x).float().requires_grad_(), torch.from_numpy(y).float()
    xs, ys = tx.detach().double().numpy(), ty.double().numpy()
    np.testing.assert_array_equal(svcca(tx, ty).correlations, svcca(xs, ys).correlations)
    assert linear_cka(tx, ty) == linear_cka(xs, ys)


# --- errors ----------------------------------------------------------------------------------


def test_too_few_samples_for_the_kept_dimensions():
    rng = np.random.default_rng(12)
    x, y = rng.standard_normal((20, 50)), rng.standard_normal((20, 50))
    with pytest.raises(ConfigError, match=r"kept 19 \+ 19 .* only 20 samples.* at least 39") as err:
        svcca(x, y, keep=1.0)
    assert err.value.fix and "samples" in err.value.fix
    with pytest.raises(ConfigError, match="needs at least"):
        svcca(x, y)
    # with enough samples for the kept directions it works
    assert svcca(x[:, :5], y[:, :5]).kept_x == 5


def test_repeated_rows_do_not_count_as_samples():
    """A bootstrap resample repeats rows; a repeat spans no new direction, so the forced
    overlap appears once the distinct rows, not the rows, are too few for the kept subspaces:
    for independent x and y the top canonical correlation is then exactly 1."""
    rng = np.random.default_rng(14)
    x, y = rng.standard_normal((40, 12)), rng.standard_normal((40, 12))
    assert svcca(x, y, keep=1.0).kept_x == 12  # 40 distinct rows > 12 + 12: fine
    idx = np.random.default_rng(0).integers(0, 40, 40)
    distinct = np.unique(idx).size
    assert distinct <= 24 < 40  # 40 rows, but only 24 distinct ones
    xr, yr = x[idx], y[idx]
    # what svcca would report without the guard: bases of the two centred column spans
    qx = np.linalg.svd(xr - xr.mean(0), full_matrices=False)[0]
    qy = np.linalg.svd(yr - yr.mean(0), full_matrices=False)[0]
    assert np.linalg.svd(qx.T @ qy, compute_uv=False)[0] == pytest.approx(1.0, abs=1e-9)
    with pytest.raises(ConfigError, match=rf"only {distinct} samples \(40 rows") as err:
        svcca(xr, yr, keep=1.0)
    assert "at least 25 distinct" in str(err.value) and "bootstrap" in err.value.fix
    # a repeat only in x or only in y is a distinct sample: rows of [x, y] are compared
    x_dup = x.copy()
    x_dup[1:20] = x_dup[0]  # 19 repeats in x (21 distinct x rows ≤ 24), none in y
    assert svcca(x_dup, y, keep=1.0).n_samples == 40
    # a resample with enough distinct rows passes
    big_x, big_y = rng.standard_normal((200, 12)), rng.standard_normal((200, 12))
    sample = np.random.default_rng(1).integers(0, 200, 200)
    assert 24 < np.unique(sample).size < 200
    res = svcca(big_x[sample], big_y[sample], keep=1.0)
    assert (res.kept_x, res.kept_y, res.n_samples) == (12, 12, 200)
    assert res.correlations.max() < 0.9  # nothing forced


def test_mismatched_rows():
    rng = np.random.default_rng(13)
    with pytest.raises(ConfigError, match="same samples"):
        svcca(rng.standard_normal((30, 4)), rng.standard_normal((31, 4)))
    with pytest.raises(ConfigError, match="same samples"):
        linear_cka(rng.standard_normal((30, 4)), rng.standard_normal((31, 4)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs(bad):
    rng = np.random.default_rng(14)
    x, y = rng.standard_normal((30, 4)), rng.standard_normal((30, 4))
    x[3, 1] = bad
    for fn in (svcca, linear_cka):
        with pytest.raises(ConfigError, match="NaN or infinite"):
            fn(x, y)
        with pytest.raises(ConfigError, match="NaN or infinite"):
            fn(y, x)


def test_constant_input():
    rng = np.random.default_rng(15)
    const = np.full((30, 4), 2.5)
    for fn in (svcca, linear_cka):
        with pytest.raises(ConfigError, match="constant"):
            fn(const, rng.standard_normal((30, 3)))
        with pytest.raises(ConfigError, match="constant"):
            fn(rng.standard_normal((30, 3)), const)


@pytest.mark.parametrize("keep", [0, 0.0, 1.5, -0.1, float("nan"), True, "0.99"])
def test_keep_out_of_range(keep):
    rng = np.random.default_rng(16)
    with pytest.raises(ConfigError, match="keep"):
        svcca(rng.standard_normal((30, 4)), rng.standard_normal((30, 4)), keep=keep)


def test_wrong_shapes():
    rng = np.random.default_rng(17)
    with pytest.raises(ConfigError, match=r"shape \[N, D\]"):
        svcca(rng.standard_normal(30), rng.standard_normal((30, 2)))
    with pytest.raises(ConfigError, match=r"shape \[N, D\]"):
        linear_cka(rng.standard_normal((30, 2, 2)), rng.standard_normal((30, 2)))
    with pytest.raises(ConfigError, match="at least 2 samples"):
        linear_cka(np.ones((1, 3)), np.ones((1, 3)))


# --- properties ------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(12, 80),
    dx=st.integers(1, 5),
    dy=st.integers(1, 5),
    mix=st.floats(0.0, 1.0),
    spread=st.floats(0.0, 8.0),
    keep=st.sampled_from([0.5, 0.9, 0.99, 1.0]),
)
def test_bounds_and_symmetry_random(seed, n, dx, dy, mix, spread, keep):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dx)) * 10.0 ** rng.uniform(-spread, 0.0, dx)
    y = mix * x @ rng.standard_normal((dx, dy)) + (1 - mix) * rng.standard_normal((n, dy))
    check_bounds_and_symmetry(x, y, keep)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    xy=st.integers(1, 4).flatmap(
        lambda d: st.tuples(
            hnp.arrays(np.float64, (20, d), elements=st.floats(-100, 100, width=32)),
            hnp.arrays(np.float64, (20, 4 - d + 1), elements=st.floats(-100, 100, width=32)),
        )
    )
)
def test_bounds_and_symmetry_arbitrary(xy):
    x, y = xy
    assume(not (x == x[0]).all() and not (y == y[0]).all())
    try:
        check_bounds_and_symmetry(x, y, 0.99)
    except ConfigError as err:
        # refused only for repeated rows, too few distinct ones for what it could keep (the
        # count is taken after centring, where rows a hair apart may round together)
        distinct = np.unique(np.hstack([x, y]), axis=0).shape[0]
        found = re.search(r"only (\d+) samples \(20 rows", str(err))
        assert found and int(found.group(1)) <= min(distinct, x.shape[1] + y.shape[1])


def check_bounds_and_symmetry(x: np.ndarray, y: np.ndarray, keep: float) -> None:
    a, b = svcca(x, y, keep=keep), svcca(y, x, keep=keep)
    assert 0.0 <= a.mean <= 1.0 + 1e-12
    assert np.all((a.correlations >= 0.0) & (a.correlations <= 1.0 + 1e-12))
    assert (a.kept_x, a.kept_y) == (b.kept_y, b.kept_x)
    np.testing.assert_allclose(a.correlations, b.correlations, rtol=0, atol=1e-9)
    c = linear_cka(x, y)
    assert 0.0 <= c <= 1.0 + 1e-12
    assert c == pytest.approx(linear_cka(y, x), abs=1e-12)
