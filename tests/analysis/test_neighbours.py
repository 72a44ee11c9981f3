"""k-NN label agreement and the shared-axes 2-D PCA of Garaev et al. 2024 §4.2."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

from robustlens.analysis import Pca2dResult, knn_agreement, knn_agreement_per_sample, pca_2d
from robustlens.errors import ConfigError

# --- k-NN agreement --------------------------------------------------------------------------


def sklearn_agreement(points: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Reference for data without distance ties."""
    _, idx = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points)
    neighbours = idx[:, 1:]  # the first is the point itself
    return (labels[neighbours] == labels[:, None]).mean(axis=1)


def test_far_apart_clusters_agree_fully():
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.standard_normal((100, 2)), rng.standard_normal((100, 2)) + 50])
    labels = np.repeat([0, 1], 100)
    assert knn_agreement(points, labels, k=10) == 1.0
    np.testing.assert_array_equal(knn_agreement_per_sample(points, labels, k=10), 1.0)


def test_random_labels_give_chance():
    rng = np.random.default_rng(1)
    points = rng.uniform(size=(2000, 2))
    labels = rng.permutation(np.repeat([0, 1], 1000))
    assert knn_agreement(points, labels, k=10) == pytest.approx(0.5, abs=0.03)
    labels4 = rng.permutation(np.repeat(np.arange(4), 500))
    assert knn_agreement(points, labels4, k=10) == pytest.approx(0.25, abs=0.03)


def test_four_points_on_a_line():
    points = np.array([[0.0], [1.0], [3.0], [7.0]])
    labels = np.array(["a", "a", "b", "b"])
    # k=1: 0→1 (a), 1→0 (a), 3→1 (a ≠ b), 7→3 (b)
    np.testing.assert_array_equal(knn_agreement_per_sample(points, labels, k=1), [1, 1, 0, 1])
    assert knn_agreement(points, labels, k=1) == 0.75
    # k=2: 0→{1, 3}, 1→{0, 3}, 3→{1, 0}, 7→{3, 1}
    np.testing.assert_array_equal(
        knn_agreement_per_sample(points, labels, k=2), [0.5, 0.5, 0.0, 0.5]
    )
    assert knn_agreement(points, labels, k=2) == 0.375
    # k=3: every other point; one of three shares the label
    np.testing.assert_allclose(knn_agreement_per_sample(points, labels, k=3), 1 / 3)


def test_ties_share_the_remaining_slots():
    points = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])
    labels = np.array([0, 0, 1, 1])
    # k=1: points 1 and 2 each have one same- and one other-label neighbour at distance 1
    expected = [1.0, 0.5, 0.5, 1.0]
    np.testing.assert_array_equal(knn_agreement_per_sample(points, labels, k=1), expected)
    # the result does not depend on the order of the points
    order = np.array([2, 0, 3, 1])
    got = knn_agreement_per_sample(points[order], labels[order], k=1)
    np.testing.assert_array_equal(got, np.array(expected)[order])
    # 0, 1, 3, 6 with k=2: point 3 has 1 (a) nearest, then 0 (a) and 6 (b) tied at distance 3
    line = np.array([[0.0], [1.0], [3.0], [6.0]])
    got = knn_agreement_per_sample(line, ["a", "a", "b", "b"], k=2)
    np.testing.assert_array_equal(got, [0.5, 0.5, 0.25, 0.5])
    # duplicates sit at distance 0; the far point has all three others tied (labels 0, 0, 1)
    dup = np.array([[0.0], [0.0], [0.0], [9.0]])
    got = knn_agreement_per_sample(dup, [0, 0, 1, 1], k=2)
    np.testing.assert_allclose(got, [0.5, 0.5, 0.0, 1 / 3], rtol=0, atol=1e-15)


@pytest.mark.parametrize(("n", "d", "k"), [(300, 2, 5), (500, 512, 10), (120, 3, 119)])
def test_matches_sklearn_neighbours(n, d, k):
    rng = np.random.default_rng(2)
    centres = rng.standard_normal((5, d)) * 2
    labels = rng.integers(0, 5, n)
    points = centres[labels] + rng.standard_normal((n, d))
    got = knn_agreement_per_sample(points, labels, k=k)
    np.testing.assert_allclose(got, sklearn_agreement(points, labels, k), rtol=0, atol=1e-12)


def test_chunked_rows_match(monkeypatch):
    from robustlens.analysis import neighbours

    rng = np.random.default_rng(3)
    points, labels = rng.standard_normal((257, 7)), rng.integers(0, 3, 257)
    whole = knn_agreement_per_sample(points, labels, k=6)
    monkeypatch.setattr(neighbours, "_CHUNK", 257 * 10)  # 10 rows at a time
    np.testing.assert_array_equal(knn_agreement_per_sample(points, labels, k=6), whole)


def test_translation_and_large_offsets():
    rng = np.random.default_rng(4)
    points, labels = rng.standard_normal((200, 16)), rng.integers(0, 2, 200)
    base = knn_agreement_per_sample(points, labels, k=7)
    np.testing.assert_array_equal(knn_agreement_per_sample(points + 1e4, labels, k=7), base)


def test_torch_inputs():
    rng = np.random.default_rng(5)
    points, labels = rng.standard_normal((100, 4)), rng.integers(0, 3, 100)
    got = knn_agreement(torch.from_numpy(points), torch.from_numpy(labels), k=5)
    assert got == knn_agreement(points, labels, k=5)


def test_knn_errors():
    rng = np.random.default_rng(6)
    points, labels = rng.standard_normal((10, 2)), np.arange(10) % 2
    with pytest.raises(ConfigError, match="at least 11 points, got 10") as err:
        knn_agreement(points, labels, k=10)
    assert "lower k" in err.value.fix
    with pytest.raises(ConfigError, match="k must be a positive integer"):
        knn_agreement(points, labels, k=0)
    with pytest.raises(ConfigError, match="k must be a positive integer"):
        knn_agreement(points, labels, k=2.0)
    with pytest.raises(ConfigError, match="one per point"):
        knn_agreement(points, labels[:9], k=3)
    with pytest.raises(ConfigError, match=r"shape \[N, D\]"):
        knn_agreement(points[:, 0], labels, k=3)
    bad = points.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ConfigError, match="NaN or infinite"):
        knn_agreement(bad, labels, k=3)


# --- PCA -------------------------------------------------------------------------------------


def plane_in_5d(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((5, 2)))
    coords = rng.standard_normal((n, 2)) * [3.0, 1.0]
    return coords @ basis.T + rng.standard_normal(5) * 10


def test_plane_is_recovered_exactly():
    x = plane_in_5d(300, seed=0)
    res = pca_2d(x)
    assert isinstance(res, Pca2dResult)
    assert res.reference.shape == (300, 2) and res.others == ()
    assert res.explained_variance_ratio.sum() == pytest.approx(1.0, abs=1e-12)
    assert res.explained_variance_ratio[0] > res.explained_variance_ratio[1]
    np.testing.assert_allclose(pdist(res.reference), pdist(x), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(res.components @ res.components.T, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(res.reference.mean(axis=0), 0.0, atol=1e-10)


@pytest.mark.parametrize(("n", "d"), [(400, 20), (15, 40)])
def test_others_use_the_reference_axes(n, d):
    rng = np.random.default_rng(1)
    ref = rng.standard_normal((n, d)) * np.linspace(3, 0.5, d) + 2.0
    adv = ref + rng.standard_normal((n, d)) * 0.7
    extra = rng.standard_normal((7, d))
    res = pca_2d(ref, adv, extra)
    sk = PCA(n_components=2).fit(ref)
    signs = np.sign(np.sum(res.components * sk.components_, axis=1))  # sklearn's sign may differ
    np.testing.assert_allclose(res.components, sk.components_ * signs[:, None], rtol=0, atol=1e-10)
    np.testing.assert_allclose(
        res.explained_variance_ratio, sk.explained_variance_ratio_, rtol=1e-10
    )
    for mine, data in zip(res.projections, (ref, adv, extra), strict=True):
        np.testing.assert_allclose(mine, sk.transform(data) * signs, rtol=0, atol=1e-9)
    np.testing.assert_allclose(res.transform(adv), res.others[0])
    # the axes come from the reference only: fitting on adv gives a different projection
    assert not np.allclose(np.abs(pca_2d(adv).reference), np.abs(res.others[0]), atol=1e-3)
    # sign convention: each component's largest-magnitude entry is positive
    pick = np.abs(res.components).argmax(axis=1)
    assert np.all(res.components[[0, 1], pick] > 0)


def test_pca_accepts_torch():
    x = plane_in_5d(50, seed=2)
    got = pca_2d(torch.from_numpy(x).float(), torch.from_numpy(x))
    ref = pca_2d(x.astype(np.float32), x)
    np.testing.assert_array_equal(got.reference, ref.reference)
    np.testing.assert_array_equal(got.others[0], ref.others[0])


def test_pca_errors():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((20, 4))
    with pytest.raises(ConfigError, match=r"others\[1\] has 3 features but reference has 4"):
        pca_2d(x, x, x[:, :3])
    with pytest.raises(ConfigError, match="constant"):
        pca_2d(np.ones((20, 4)))
    with pytest.raises(ConfigError, match="at least 2 features"):
        pca_2d(x[:, :1])
    bad = x.copy()
    bad[2, 2] = np.inf
    with pytest.raises(ConfigError, match="NaN or infinite"):
        pca_2d(x, bad)
    with pytest.raises(ConfigError, match="fitted on 4"):
        pca_2d(x).transform(x[:, :2])
