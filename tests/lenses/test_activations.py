"""The activations lens (Carletti et al. 2022, Def. 3.1–3.4, Eq. 2) against hand-made oracles."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from robustlens.errors import ConfigError
from robustlens.lenses import get_lens
from robustlens.lenses.activations import (
    ActivationParams,
    cluster_count,
    compute,
    map_states,
    redundancy,
)
from robustlens.lenses.output import TIDY_COLUMNS
from robustlens.models import read_activations
from robustlens.params import invalid
from tests.lenses.helpers import (
    TOY,
    make_ctx,
    make_images,
    rows,
    small_cnn,
    study_model,
    value,
)
from tests.tolerances import float_tol

INFO = TOY
N_IMAGES = 40


def sim_tol(channels: int, pixels: int) -> float:
    """Absolute tolerance of the lens's float32 mean similarity (‖Σu‖² − Σ‖u‖²) / pairs: the
    Gram sum ‖Σu‖² ≤ channels² gathers channels · pixels rounded terms and then cancels."""
    pairs = max(channels * (channels - 1), 1)
    return float_tol(torch.float32, channels * pixels) * channels**2 / pairs


def maps(*patterns, h: int = 1) -> torch.Tensor:
    """One image [1, C, h, W] whose C feature maps are the given flat patterns."""
    t = torch.tensor(patterns, dtype=torch.float32)
    return t.reshape(1, t.shape[0], h, -1)


# --------------------------------------------------------------------------- map_states


def test_map_states_all_above_threshold_is_active_and_dense():
    acts = maps([0.5, 1.0, 2.0, 0.1])
    active, dense = map_states(acts, tau_act=0.0, tau_dens=0.95)
    assert active.tolist() == [[True]]
    assert dense.tolist() == [[True]]


def test_map_states_one_of_four_above_is_active_but_dense_only_at_low_level():
    acts = maps([0.0, 3.0, 0.0, 0.0], h=2)  # 2 × 2 map, one activation above 0
    active, dense = map_states(acts, tau_act=0.0, tau_dens=0.95)
    assert active.tolist() == [[True]] and dense.tolist() == [[False]]
    active, dense = map_states(acts, tau_act=0.0, tau_dens=0.25)
    assert active.tolist() == [[True]] and dense.tolist() == [[True]]
    # 25 % is "at least 25 %" but not "at least 26 %"
    assert map_states(acts, 0.0, 0.26)[1].tolist() == [[False]]


def test_map_states_all_zero_map_is_inactive_and_not_dense():
    active, dense = map_states(maps([0.0] * 6), tau_act=0.0, tau_dens=0.95)
    assert active.tolist() == [[False]] and dense.tolist() == [[False]]


def test_map_states_activation_exactly_at_threshold_is_not_greater():
    acts = maps([0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.50001])
    active, dense = map_states(acts, tau_act=0.5, tau_dens=0.2)
    assert active.tolist() == [[False, True]]
    assert dense.tolist() == [[False, True]]


def test_map_states_negative_activations_are_inactive():
    active, _ = map_states(maps([-1.0, -0.2, -5.0]), tau_act=0.0, tau_dens=0.5)
    assert active.tolist() == [[False]]


@pytest.mark.parametrize(("above", "dense"), [(19, True), (18, False), (20, True)])
def test_map_states_at_least_95_percent_of_20(above, dense):
    acts = maps([1.0] * above + [0.0] * (20 - above), h=4)  # 4 × 5 map
    assert map_states(acts, 0.0, 0.95)[1].item() is dense


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 3),
    st.integers(1, 4),
    st.sampled_from([(1, 1), (2, 2), (2, 4), (4, 4)]),
    st.integers(0, 16),
    st.sampled_from([-0.5, 0.0, 0.3, 1.0]),
    st.integers(0, 2**31 - 1),
)
def test_map_states_matches_the_definitions(b, c, hw, sixteenths, tau_act, seed):
    """Def. 3.1 / 3.2 counted by hand in exact arithmetic (τ_dens a multiple of 1/16)."""
    rng = np.random.default_rng(seed)
    h, w = hw
    values = rng.choice([-1.0, 0.0, 0.3, 0.5, 1.0, 2.0], size=(b, c, h, w))
    tau_dens = sixteenths / 16
    active, dense = map_states(torch.tensor(values, dtype=torch.float32), tau_act, tau_dens)
    assert active.shape == dense.shape == (b, c)
    above = (values > tau_act).reshape(b, c, -1).sum(axis=2)
    np.testing.assert_array_equal(active.numpy(), above > 0)
    np.testing.assert_array_equal(dense.numpy(), above * 16 >= sixteenths * h * w)


# --------------------------------------------------------------------------- redundancy


def test_proportional_maps_are_both_redundant():
    acts = maps([1.0, 2.0, 0.0, 3.0], [2.0, 4.0, 0.0, 6.0])
    active, _ = map_states(acts, 0.0, 0.95)
    red, mean_sim, clusters = redundancy(acts, active, tau_sim=0.95)
    assert red.tolist() == [2]
    assert mean_sim.item() == pytest.approx(1.0, abs=sim_tol(2, 4))
    assert clusters.tolist() == [1]


def test_orthogonal_maps_are_not_redundant():
    acts = maps([1.0, 2.0, 0.0, 0.0], [0.0, 0.0, 5.0, 1.0])
    active, _ = map_states(acts, 0.0, 0.95)
    red, mean_sim, clusters = redundancy(acts, active, tau_sim=0.95)
    assert red.tolist() == [0]
    assert mean_sim.item() == pytest.approx(0.0, abs=sim_tol(2, 4))
    assert clusters.tolist() == [2]


def test_inactive_map_never_counts_even_when_identical_to_an_active_one():
    # Given by the mask: map 1 equals map 0 but is marked inactive.
    acts = maps([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [3.0, 0.0, 0.0])
    active = torch.tensor([[True, False, True]])
    red, mean_sim, clusters = redundancy(acts, active, tau_sim=0.95)
    assert red.tolist() == [0]
    expected = 3.0 / (math.sqrt(14.0) * 3.0)  # cos(map 0, map 2), the only active pair
    assert mean_sim.item() == pytest.approx(expected, abs=sim_tol(3, 3))
    assert clusters.tolist() == [2]
    # Through Def. 3.1: a scaled copy that never exceeds τ_act is inactive, cosine 1 or not.
    acts = maps([0.2, 0.4, 0.6], [1.0, 2.0, 3.0])
    active, _ = map_states(acts, tau_act=0.7, tau_dens=0.5)
    assert active.tolist() == [[False, True]]
    red, mean_sim, clusters = redundancy(acts, active, tau_sim=0.95)
    assert red.tolist() == [0]
    assert math.isnan(mean_sim.item())
    assert clusters.tolist() == [1]


def test_mean_similarity_is_mean_of_off_diagonal_cosines_among_active_maps():
    rng = np.random.default_rng(3)
    x = rng.random((4, 6))  # 4 maps of 6 activations, non-negative
    x[2] = 0.0  # map 2 is inactive
    acts = torch.tensor(x[None, :, None, :], dtype=torch.float32)
    active, _ = map_states(acts, 0.0, 0.95)
    assert active.tolist() == [[True, True, False, True]]
    red, mean_sim, _ = redundancy(acts, active, tau_sim=0.95)
    kept = x[[0, 1, 3]].astype(np.float32).astype(np.float64)
    unit = kept / np.linalg.norm(kept, axis=1, keepdims=True)
    s = unit @ unit.T
    off = s[~np.eye(3, dtype=bool)]
    assert off.size == 6
    assert mean_sim.item() == pytest.approx(off.mean(), abs=sim_tol(4, 6))
    assert red.item() == int(((s > 0.95) & ~np.eye(3, dtype=bool)).any(axis=1).sum())


def test_clusters_are_connected_components_of_the_similarity_graph():
    """Maps at 0°, 20°, 40°: 0°–20° and 20°–40° are above τ_sim = cos 30°, 0°–40° is not, yet
    all three are one cluster (so all redundant); a fourth orthogonal map stays alone."""
    deg = [0.0, 20.0, 40.0]
    patterns = [[math.cos(math.radians(a)), math.sin(math.radians(a)), 0.0] for a in deg]
    acts = maps(*patterns, [0.0, 0.0, 1.0])
    active, _ = map_states(acts, 0.0, 0.0)
    red, _, clusters = redundancy(acts, active, tau_sim=math.cos(math.radians(30)))
    assert red.tolist() == [3]
    assert clusters.tolist() == [2]


@pytest.mark.parametrize("n_active", [0, 1])
def test_fewer_than_two_active_maps_give_nan_similarity_and_no_redundancy(n_active):
    acts = maps([1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
    if n_active == 0:
        acts = torch.zeros_like(acts)
    active, _ = map_states(acts, 0.0, 0.95)
    assert int(active.sum()) == n_active
    red, mean_sim, clusters = redundancy(acts, active, tau_sim=0.5)
    assert red.tolist() == [0]
    assert math.isnan(mean_sim.item())
    assert clusters.tolist() == [n_active]


def test_redundancy_is_per_image():
    """Two images in one batch: redundant in the first, orthogonal in the second."""
    a = torch.tensor([[1.0, 2.0, 0.0, 0.0], [2.0, 4.0, 0.0, 0.0]])
    b = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    acts = torch.stack([a, b]).reshape(2, 2, 2, 2)
    active, _ = map_states(acts, 0.0, 0.95)
    red, mean_sim, clusters = redundancy(acts, active, tau_sim=0.9)
    assert red.tolist() == [2, 0]
    assert mean_sim.tolist() == pytest.approx([1.0, 0.0], abs=sim_tol(2, 4))
    assert clusters.tolist() == [1, 2]


# --------------------------------------------------------------------------- cluster_count


def scipy_components(adjacency: np.ndarray, nodes: np.ndarray) -> int:
    idx = np.flatnonzero(nodes)
    if idx.size == 0:
        return 0
    sub = adjacency[np.ix_(idx, idx)]
    return int(connected_components(csr_matrix(sub), directed=False)[0])


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 3), st.integers(1, 10), st.floats(0.0, 1.0), st.integers(0, 2**31 - 1))
def test_cluster_count_matches_scipy_connected_components(b, c, density, seed):
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.random((b, c, c)) < density, k=1)
    adjacency = upper | upper.transpose(0, 2, 1)
    adjacency |= np.eye(c, dtype=bool) & (rng.random((b, c, c)) < 0.5)  # self-loops are harmless
    nodes = rng.random((b, c)) < 0.7
    counts = cluster_count(torch.from_numpy(adjacency), torch.from_numpy(nodes))
    expected = [scipy_components(adjacency[i], nodes[i]) for i in range(b)]
    assert counts.tolist() == expected


def test_cluster_count_follows_long_paths_and_ignores_unchosen_bridges():
    rng = np.random.default_rng(0)
    for c in (2, 7, 25, 40):
        order = rng.permutation(c)  # a path visiting the nodes in random order
        adjacency = np.zeros((c, c), dtype=bool)
        adjacency[order[:-1], order[1:]] = True
        adjacency |= adjacency.T
        nodes = np.ones(c, dtype=bool)
        count = cluster_count(torch.from_numpy(adjacency[None]), torch.from_numpy(nodes[None]))
        assert count.tolist() == [1]
        # removing one interior node from the chosen set splits the path in two
        cut = nodes.copy()
        if c > 2:
            cut[order[c // 2]] = False
            count = cluster_count(torch.from_numpy(adjacency[None]), torch.from_numpy(cut[None]))
            assert count.tolist() == [2] == [scipy_components(adjacency, cut)]


# --------------------------------------------------------------------------- compute


def varied_model():
    """A small CNN whose batch-norm affine parameters make some maps inactive or sparse."""
    net = small_cnn(INFO, seed=0)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name in ("block1", "block2"):
            bn = getattr(net, name)[1]
            bn.bias.copy_(torch.randn(bn.num_features, generator=gen))
            bn.weight.copy_(torch.rand(bn.num_features, generator=gen) + 0.5)
    return net.eval()


def reference(net, images: torch.Tensor, p: ActivationParams) -> dict[str, dict[str, np.ndarray]]:
    """A straightforward per-image re-implementation of Def. 3.1–3.4 and Eq. 2 in NumPy."""
    acts = read_activations(net, images)
    out = {}
    for tap, a in acts.items():
        a = a.double().numpy()
        n, c = a.shape[:2]
        res = {k: np.zeros(n) for k in ("dense_maps", "active_maps", "redundant_maps")}
        res["mean_similarity"] = np.full(n, np.nan)
        res["clusters"] = np.zeros(n)
        res["dense"] = np.zeros((n, c), dtype=bool)
        for i in range(n):
            flat = a[i].reshape(c, -1)
            above = flat > p.tau_act
            active = above.any(axis=1)
            dense = above.mean(axis=1) >= p.tau_dens
            res["dense"][i] = dense
            res["dense_maps"][i] = dense.sum()
            res["active_maps"][i] = active.sum()
            kept = flat[active]
            k = kept.shape[0]
            if k == 0:
                continue
            unit = kept / np.linalg.norm(kept, axis=1, keepdims=True)
            s = unit @ unit.T
            off = ~np.eye(k, dtype=bool)
            linked = (s > p.tau_sim) & off
            res["redundant_maps"][i] = linked.any(axis=1).sum()
            res["clusters"][i] = connected_components(csr_matrix(linked), directed=False)[0]
            if k >= 2:
                res["mean_similarity"][i] = s[off].mean()
            # distance of the nearest cosine to τ_sim: the float32 lens and this float64
            # reference make the same threshold decisions only where it exceeds their rounding
            res["margin"] = min(res.get("margin", np.inf), np.abs(s[off] - p.tau_sim).min())
        res["N_k"] = np.array(int(res["dense"].all(axis=0).sum()))
        res["channels"] = np.array(c)
        res["pixels"] = np.array(a.shape[2] * a.shape[3])
        out[tap] = res
    return out


PARAM_SETS = [
    ActivationParams(),  # the paper's τ_act = 0, τ_dens = τ_sim = 0.95 (fast path, no clusters)
    ActivationParams(count_clusters=True),
    ActivationParams(tau_act=0.1, tau_dens=0.5, tau_sim=0.6, count_clusters=True),
    ActivationParams(tau_act=0.1, tau_dens=0.5, tau_sim=0.6),
]


@pytest.fixture(scope="module")
def setup():
    net = varied_model()
    data = make_images(INFO, N_IMAGES, seed=2)
    return study_model(net, "nat"), data


@pytest.mark.parametrize(
    "params", PARAM_SETS, ids=["paper", "paper-clusters", "loose-clusters", "loose"]
)
def test_compute_matches_per_image_reference(setup, params):
    model, data = setup
    result = compute(model, data, params, make_ctx(INFO))
    ref = reference(model.model, data.images, params)
    frame = result.tables["activations"]
    freq = result.tables["activation_frequency"]
    assert list(result.arrays["taps"]) == ["block1", "block2"]
    interesting = 0
    for depth, (tap, r) in enumerate(ref.items(), start=1):
        channels, pixels = int(r["channels"]), int(r["pixels"])
        tol = sim_tol(channels, pixels)
        assert r["margin"] > 10 * tol  # so the thresholded counts below must agree exactly
        np.testing.assert_array_equal(result.arrays[f"dense/{tap}"], r["dense"])
        metrics = ["dense_maps", "active_maps", "redundant_maps"]
        metrics += ["clusters"] if params.count_clusters else []
        assert (f"clusters/{tap}" in result.arrays) == params.count_clusters
        for metric in metrics:
            np.testing.assert_array_equal(
                result.arrays[f"{metric}/{tap}"], r[metric], err_msg=metric
            )
        np.testing.assert_allclose(
            result.arrays[f"mean_similarity/{tap}"], r["mean_similarity"], rtol=0, atol=tol
        )
        layer = rows(frame, layer=tap)
        assert set(layer.depth) == {depth} and set(layer.channels) == {int(r["channels"])}
        assert value(frame, layer=tap, metric="always_dense_maps") == r["N_k"]
        for metric in metrics:
            assert value(frame, layer=tap, metric=metric) == pytest.approx(r[metric].mean())
        ok = r["mean_similarity"][~np.isnan(r["mean_similarity"])]
        sim_row = rows(frame, layer=tap, metric="mean_similarity")
        assert int(sim_row.n.iloc[0]) == ok.size
        assert float(sim_row.value.iloc[0]) == pytest.approx(ok.mean(), abs=tol)
        half = 1.96 * ok.std(ddof=1) / np.sqrt(ok.size)  # its error: ≤ 1.96 · 2 tol / √n
        assert float(sim_row.ci_low.iloc[0]) == pytest.approx(ok.mean() - half, abs=2 * tol)
        assert float(sim_row.ci_high.iloc[0]) == pytest.approx(ok.mean() + half, abs=2 * tol)
        per_map = rows(freq, layer=tap).sort_values("setting", key=lambda s: s.str[4:].astype(int))
        np.testing.assert_allclose(per_map.value.to_numpy(), r["dense"].mean(axis=0))
        # the example must not be degenerate: states and redundancy vary between images/maps
        interesting += int(0 < r["dense"].mean() < 1) + int(r["redundant_maps"].max() > 0)
    assert interesting >= 2


def test_compute_does_not_depend_on_batch_size(setup):
    model, data = setup
    params = PARAM_SETS[1]
    small = compute(model, data, dataclasses.replace(params, batch_size=7), make_ctx(INFO))
    whole = compute(model, data, dataclasses.replace(params, batch_size=40), make_ctx(INFO))
    # float results may differ in rounding between batch sizes (block1: 4 maps of 12 × 12,
    # block2: 8 of 6 × 6); counts must not, as no cosine lies near τ_sim (checked above)
    tol = max(sim_tol(4, 144), sim_tol(8, 36))
    for name in ("activations", "activation_frequency"):
        pd.testing.assert_frame_equal(small.tables[name], whole.tables[name], rtol=0, atol=tol)
    assert small.arrays.keys() == whole.arrays.keys()
    for key, arr in whole.arrays.items():
        if arr.dtype.kind == "f":
            np.testing.assert_allclose(small.arrays[key], arr, rtol=0, atol=tol, err_msg=key)
        else:
            np.testing.assert_array_equal(small.arrays[key], arr, err_msg=key)


def test_compute_tables_are_tidy_and_dense_arrays_are_n_by_channels(setup):
    model, data = setup
    result = compute(model, data, ActivationParams(batch_size=16), make_ctx(INFO))
    assert set(result.tables) == {"activations", "activation_frequency"}
    for name, frame in result.tables.items():
        assert list(frame.columns[: len(TIDY_COLUMNS)]) == list(TIDY_COLUMNS), name
        assert set(frame.model) == {"nat"}
        assert set(frame.layer) == {"block1", "block2"}
    assert result.arrays["dense/block1"].shape == (N_IMAGES, 4)
    assert result.arrays["dense/block2"].shape == (N_IMAGES, 8)
    assert result.arrays["dense/block1"].dtype == bool
    for tap in ("block1", "block2"):
        assert result.arrays[f"redundant_maps/{tap}"].shape == (N_IMAGES,)
    expected_metrics = {
        "always_dense_maps",
        "dense_maps",
        "active_maps",
        "redundant_maps",
        "mean_similarity",
    }
    assert set(result.tables["activations"].metric) == expected_metrics
    assert len(result.tables["activation_frequency"]) == 4 + 8


def test_compute_on_selected_taps_only(setup):
    model, data = setup
    result = compute(model, data, ActivationParams(taps=("block2",)), make_ctx(INFO))
    assert set(result.tables["activations"].layer) == {"block2"}
    assert "dense/block1" not in result.arrays
    full = compute(model, data, ActivationParams(), make_ctx(INFO))
    np.testing.assert_array_equal(result.arrays["dense/block2"], full.arrays["dense/block2"])


def test_compute_unknown_tap_is_a_config_error(setup):
    model, data = setup
    with pytest.raises(ConfigError, match="nope"):
        compute(model, data, ActivationParams(taps=("nope",)), make_ctx(INFO))


def test_compute_with_no_active_maps_notes_undefined_similarity():
    net = small_cnn(INFO, seed=0)
    with torch.no_grad():
        for name in ("block1", "block2"):
            getattr(net, name)[1].bias.fill_(-100.0)  # every ReLU output is 0
    model = study_model(net, "dead")
    data = make_images(INFO, 10, seed=4)
    result = compute(model, data, ActivationParams(), make_ctx(INFO))
    frame = result.tables["activations"]
    for tap in ("block1", "block2"):
        assert value(frame, layer=tap, metric="always_dense_maps") == 0
        assert value(frame, layer=tap, metric="active_maps") == 0
        assert value(frame, layer=tap, metric="redundant_maps") == 0
        assert np.isnan(result.arrays[f"mean_similarity/{tap}"]).all()
        sim = rows(frame, layer=tap, metric="mean_similarity")
        assert np.isnan(sim.value.iloc[0]) and int(sim.n.iloc[0]) == 0
    assert any("fewer than two active maps" in note and "dead" in note for note in result.notes)


def test_compute_on_a_varied_model_notes_only_the_taps_it_read(setup):
    model, data = setup
    notes = compute(model, data, ActivationParams(), make_ctx(INFO)).notes
    assert notes == [f"{model.name}: feature maps of {', '.join(model.model.taps)}"]


# --------------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tau_dens": 1.5},
        {"tau_dens": -0.1},
        {"tau_sim": 1.5},
        {"tau_sim": -1.01},
        {"batch_size": 0},
    ],
)
def test_invalid_params_raise_config_error(kwargs):
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        ActivationParams(**kwargs)


def test_boundary_params_are_accepted():
    low = ActivationParams(tau_dens=0.0, tau_sim=-1.0)
    high = ActivationParams(tau_dens=1.0, tau_sim=1.0, batch_size=1)
    assert (low.tau_dens, low.tau_sim) == (0.0, -1.0)
    assert (high.tau_dens, high.tau_sim, high.batch_size) == (1.0, 1.0, 1)


def test_resolve_params_defaults_and_overrides():
    spec = get_lens("activations")
    assert spec.resolve_params(INFO, {}, "s") == ActivationParams()
    p = spec.resolve_params(INFO, {"tau_act": 0, "taps": ["block1"], "batch_size": 3}, "s")
    assert p.tau_act == 0.0 and isinstance(p.tau_act, float)
    assert p.taps == ("block1",) and p.batch_size == 3


def test_resolve_params_rejects_unknown_keys_naming_them():
    spec = get_lens("activations")
    with pytest.raises(ConfigError) as err:
        spec.resolve_params(INFO, {"tau_density": 0.5, "tau_sim": 0.5}, "study.yaml: lenses")
    assert "tau_density" in str(err.value) and "study.yaml: lenses" in str(err.value)
    assert "tau_dens" in (err.value.fix or "")


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"tau_dens": "high"}, "where.tau_dens"),
        ({"tau_act": True}, "where.tau_act"),
        ({"tau_sim": float("nan")}, "where.tau_sim"),
        ({"batch_size": 2.5}, "where.batch_size"),
        ({"batch_size": True}, "where.batch_size"),
        ({"taps": "block1"}, "where.taps"),
        ({"taps": ["block1", 2]}, "where.taps[1]"),
    ],
)
def test_resolve_params_rejects_wrong_types_naming_the_key(overrides, named):
    with pytest.raises(ConfigError) as err:
        get_lens("activations").resolve_params(INFO, overrides, "where")
    assert named in str(err.value)


def test_resolve_params_invalid_value_names_the_place():
    with pytest.raises(ConfigError) as err:
        get_lens("activations").resolve_params(INFO, {"tau_dens": 1.5}, "where")
    assert str(err.value) == str(invalid("", "where.tau_dens", 1.5, "a number in [0, 1]"))


def test_dense_graphs_fall_back_to_label_propagation_with_the_same_counts(monkeypatch):
    from robustlens.lenses import activations

    rng = np.random.default_rng(3)
    cases = []
    for _ in range(30):
        b, c = int(rng.integers(1, 4)), int(rng.integers(1, 12))
        upper = np.triu(rng.random((b, c, c)) < rng.random(), k=1)
        cases.append((upper | upper.transpose(0, 2, 1), rng.random((b, c)) < 0.7))
    monkeypatch.setattr(activations, "MAX_UNION_FIND_EDGES", 0)  # every graph counts as dense
    for adjacency, nodes in cases:
        counts = cluster_count(torch.from_numpy(adjacency), torch.from_numpy(nodes))
        assert counts.tolist() == [
            scipy_components(a, n) for a, n in zip(adjacency, nodes, strict=True)
        ]


@pytest.mark.parametrize("tau_sim", [-0.5, 0.0, 0.5, 0.95, 1.0])
def test_fast_redundancy_path_agrees_with_the_edge_path(tau_sim):
    gen = torch.Generator().manual_seed(7)
    acts = torch.relu(torch.randn(20, 12, 3, 3, generator=gen))
    acts[:, 3] = acts[:, 2] * 2.0  # an exact duplicate map (cosine 1)
    acts[:5, 4] = 0.0  # inactive in some images
    active, _ = map_states(acts, 0.0, 0.95)
    slow = redundancy(acts, active, tau_sim, clusters=True)
    fast = redundancy(acts, active, tau_sim, clusters=False)
    assert torch.equal(slow[0], fast[0])
    torch.testing.assert_close(slow[1], fast[1], equal_nan=True)
    assert fast[2] is None


# --------------------------------------------------------------------------- figures


def _frame(models: list[str], n_k: float) -> pd.DataFrame:
    rows = [
        {"model": m, "layer": f"block{d}", "depth": d, "metric": metric, "value": value}
        for i, m in enumerate(models)
        for d in (1, 2)
        for metric, value in (
            ("always_dense_maps", n_k),
            ("redundant_maps", 1.0 + i + d),
            ("mean_similarity", np.nan),
        )
    ]
    return pd.DataFrame(rows)


def test_a_degenerate_measure_is_said_in_words_not_drawn():
    from matplotlib.figure import Figure

    from robustlens.plotting import close_figure

    net = small_cnn(INFO)
    models = [study_model(net, "nat"), study_model(net, "other")]
    params = ActivationParams(tau_dens=0.9)
    figures = get_lens("activations").plot(
        {"activations": _frame(["nat", "other"], 0.0)}, models, params
    )
    n_k, c_k, s_k = figures.values()
    assert isinstance(n_k, str) and "N_k is 0 in every block for every model" in n_k
    assert "τ_dens = 0.9 " in n_k  # the reason names the threshold in force
    assert s_k == "mean similarity is undefined for every model and block."
    assert isinstance(c_k, Figure)
    close_figure(c_k)
    drawn = get_lens("activations").plot(
        {"activations": _frame(["nat", "other"], 2.0)}, models, params
    )
    assert isinstance(next(iter(drawn.values())), Figure)  # N_k = 2 for both: a level, drawn
    for fig in drawn.values():
        if isinstance(fig, Figure):
            close_figure(fig)
