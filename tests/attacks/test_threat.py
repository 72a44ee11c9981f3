"""Threat models: random starts inside the ball, steepest steps, exact projections."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustlens.attacks.threat import L1, L2, Linf, clip_to_box, project_l1_ball, threat_model
from robustlens.errors import ConfigError
from tests.tolerances import float_tol

THREATS = {"linf": Linf, "l2": L2, "l1": L1}


def brute_force_l1_projection(v: np.ndarray, eps: float) -> np.ndarray:
    """Projection onto the L1 ball by enumerating supports (independent of the sort method).

    For a fixed support S with signs sign(v), the KKT conditions give w_S = v_S − θ·sign(v_S)
    with θ = (‖v_S‖₁ − ε)/|S|; feasible candidates need |v_i| ≥ θ on S; the answer is the
    feasible candidate nearest to v.
    """
    if np.abs(v).sum() <= eps:
        return v.copy()
    best, best_dist = None, np.inf
    d = v.size
    for size in range(1, d + 1):
        for support in itertools.combinations(range(d), size):
            s = np.array(support)
            theta = (np.abs(v[s]).sum() - eps) / size
            if theta < 0 or np.any(np.abs(v[s]) < theta - 1e-12):
                continue
            w = np.zeros_like(v)
            w[s] = v[s] - theta * np.sign(v[s])
            if np.abs(w).sum() > eps + 1e-9:
                continue
            dist = np.sum((w - v) ** 2)
            if dist < best_dist:
                best, best_dist = w, dist
    assert best is not None
    return best


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(-3, 3, allow_nan=False), min_size=1, max_size=6),
    st.floats(0.01, 5.0),
)
def test_l1_projection_matches_brute_force(values, eps):
    v = np.array(values, dtype=np.float64)
    ours = project_l1_ball(torch.tensor(v).unsqueeze(0), eps).squeeze(0).numpy()
    np.testing.assert_allclose(ours, brute_force_l1_projection(v, eps), atol=1e-9)


def test_l1_projection_known_case():
    # |v| = (3, 1), ε = 2: θ = (3 + 1 − 2)/2 = 1 → (2, 0).
    out = project_l1_ball(torch.tensor([[3.0, -1.0]]), 2.0)
    assert torch.allclose(out, torch.tensor([[2.0, 0.0]]))
    inside = torch.tensor([[0.5, -0.5]])
    assert torch.equal(project_l1_ball(inside, 2.0), inside)


images = st.tuples(
    st.integers(1, 4),
    st.integers(1, 3),
    st.integers(1, 6),
    st.integers(1, 6),
    st.integers(0, 10**6),
)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(list(THREATS)), st.floats(0.0, 3.0), images)
def test_random_init_and_projection_stay_in_ball_and_box(norm, eps, shape_seed):
    n, c, h, w, seed = shape_seed
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, c, h, w, generator=gen)
    threat = THREATS[norm](eps)
    delta = threat.random_init(x, gen)
    assert bool(threat.contains(delta).all())
    adv = x + delta
    assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0
    wild = torch.randn(n, c, h, w, generator=gen) * 5
    projected = clip_to_box(x, threat.project(wild))
    assert bool(threat.contains(projected).all())
    assert float((x + projected).min()) >= 0.0 and float((x + projected).max()) <= 1.0


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(list(THREATS)), st.floats(0.01, 2.0), images)
def test_step_has_the_requested_length(norm, step, shape_seed):
    n, c, h, w, seed = shape_seed
    gen = torch.Generator().manual_seed(seed)
    grad = torch.randn(n, c, h, w, generator=gen)
    x = torch.full((n, c, h, w), 0.5)  # interior: no coordinate is blocked by the box
    threat = THREATS[norm](1.0)
    s = threat.step(grad, step, x)
    if norm == "linf":
        assert torch.allclose(s.abs(), torch.full_like(s, step))
    else:
        # the step is g scaled by its norm, then measured again: two reductions of c·h·w terms
        tol = float_tol(torch.float32, 2 * c * h * w)
        torch.testing.assert_close(threat.norms(s), torch.full((n,), step), rtol=tol, atol=0)
    # Steepest ascent: the step never decreases the linearised objective.
    assert bool(((s * grad).reshape(n, -1).sum(1) >= 0).all())


def test_l1_step_is_sparse_and_skips_blocked_coordinates():
    grad = torch.zeros(1, 1, 10, 10)
    grad[0, 0, 0, 0] = 5.0  # largest, but the pixel is already at 1 and pushed outward
    grad[0, 0, 1, 1] = 3.0
    x = torch.full((1, 1, 10, 10), 0.5)
    x[0, 0, 0, 0] = 1.0
    step = L1(1.0, sparsity=0.99).step(grad, 0.7, x)
    nonzero = step.nonzero()
    assert nonzero.tolist() == [[0, 0, 1, 1]]
    assert float(step.abs().sum()) == pytest.approx(0.7)


def _radius_fraction(threat, d, n=20000, seed=0):
    x = torch.full((n, 1, 1, d), 0.5)
    delta = threat.random_init(x, torch.Generator().manual_seed(seed))
    return float((threat.norms(delta) <= threat.eps / 2).float().mean())


@pytest.mark.parametrize("cls", [L2, L1])
def test_random_start_is_uniform_in_the_ball_not_on_the_sphere(cls):
    # Uniform in a d-dimensional ball: P(‖δ‖ ≤ ε/2) = (1/2)^d, for any norm's ball.
    d = 3
    fraction = _radius_fraction(cls(0.4), d)  # 0.4 keeps x ± δ inside the box around 0.5
    assert fraction == pytest.approx(0.5**d, abs=0.01)


def test_linf_random_start_is_uniform_in_the_cube():
    x = torch.full((20000, 1, 1, 2), 0.5)
    delta = Linf(0.2).random_init(x, torch.Generator().manual_seed(1))
    assert float((delta.abs() <= 0.1).all(dim=3).float().mean()) == pytest.approx(0.25, abs=0.01)


def test_threat_model_by_name_and_bad_values():
    assert threat_model("Linf", 0.1) == Linf(0.1)
    assert threat_model("2", 0.5) == L2(0.5)
    with pytest.raises(ConfigError, match="unknown norm"):
        threat_model("l3", 0.1)
    with pytest.raises(ConfigError, match="finite number"):
        Linf(-1.0)
    with pytest.raises(ConfigError, match="finite number"):
        L2(float("nan"))
    with pytest.raises(ConfigError, match="sparsity"):
        L1(1.0, sparsity=1.5)
