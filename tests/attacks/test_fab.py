"""FAB and FAB-T: exact projections, known minimal distances of linear models, ball and box."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from robustlens.attacks import FAB, L1, L2, Linf
from robustlens.attacks.fab import project_to_hyperplane
from robustlens.attacks.spec import AttackSpec
from robustlens.errors import ConfigError
from tests.attacks.test_minimal_norm import MARGINS, binary_linear
from tests.attacks.tiny_models import LinearClassifier
from tests.tolerances import float_tol

THREATS = {"linf": Linf(0), "l2": L2(0), "l1": L1(0)}
DUAL = {"linf": np.inf, "l2": 2, "l1": 1}  # ‖δ‖ = margin / ‖w‖_dual, dual of the dual: the norm
F64 = float_tol(torch.float64)


# ------------------------------------------------------------------------------ projections


def _l2_by_bisection(t: np.ndarray, v: np.ndarray, gap: float) -> np.ndarray:
    """min ‖d‖₂ with ⟨v, d⟩ = gap, t + d ∈ [0, 1]: d = clip(λv, −t, 1 − t), λ by bisection."""
    lo, hi = 0.0, 1e6
    for _ in range(200):
        mid = (lo + hi) / 2
        if v @ np.clip(mid * v, -t, 1 - t) < gap:
            lo = mid
        else:
            hi = mid
    return np.clip(hi * v, -t, 1 - t)


def _lp_optimum(t: np.ndarray, w: np.ndarray, rhs: float, norm: str) -> float:
    """min ‖d‖ (L1 or L∞) subject to ⟨w, d⟩ = rhs and t + d ∈ [0, 1], by linear programming."""
    d = t.size
    if norm == "l1":  # d = p − q, p, q ≥ 0
        bounds = [(0, 1 - ti) for ti in t] + [(0, ti) for ti in t]
        res = linprog(np.ones(2 * d), A_eq=np.concatenate([w, -w])[None], b_eq=[rhs], bounds=bounds)
    else:  # min r with −r ≤ d_i ≤ r
        eye = np.eye(d)
        a_ub = np.block([[eye, -np.ones((d, 1))], [-eye, -np.ones((d, 1))]])
        bounds = [(-ti, 1 - ti) for ti in t] + [(0, None)]
        res = linprog(
            np.r_[np.zeros(d), 1.0],
            A_ub=a_ub,
            b_ub=np.zeros(2 * d),
            A_eq=np.r_[w, 0.0][None],
            b_eq=[rhs],
            bounds=bounds,
        )
    assert res.status == 0
    return float(res.fun)


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_projection_onto_hyperplane_and_box_is_the_exact_minimiser(norm):
    gen = torch.Generator().manual_seed(7)
    d, m = 7, 60
    t = torch.rand(m, d, generator=gen, dtype=torch.float64)
    w = torch.randn(m, d, generator=gen, dtype=torch.float64)
    w[::4, :2] = 0.0  # coordinates the hyperplane ignores
    b = (w * t).sum(1) + 0.8 * torch.randn(m, generator=gen, dtype=torch.float64)
    step = project_to_hyperplane(t, w, b, norm)
    end = t + step
    assert bool(((end >= 0) & (end <= 1)).all())
    reach_hi, reach_lo = w.clamp_min(0).sum(1), w.clamp_max(0).sum(1)
    feasible = (b <= reach_hi) & (b >= reach_lo)
    assert 10 < int(feasible.sum()) < m  # both cases occur
    tol = float_tol(torch.float64, d, ulps=64)
    for i in range(m):
        ti, wi, di = t[i].numpy(), w[i].numpy(), step[i].numpy()
        if not feasible[i]:
            # as far toward the hyperplane as the box allows: the corner along ±w
            corner = np.where(wi * np.sign(float(b[i]) - wi @ ti) > 0, 1.0, 0.0)
            target = np.where(wi != 0, corner, ti)
            np.testing.assert_allclose(ti + di, target, atol=tol)
            continue
        assert abs(wi @ (ti + di) - float(b[i])) <= tol * (1 + np.abs(wi).sum())
        size = np.linalg.norm(di, ord={"linf": np.inf, "l2": 2, "l1": 1}[norm])
        if norm == "l2":
            gap = float(b[i]) - wi @ ti
            best = _l2_by_bisection(ti, wi * np.sign(gap), abs(gap))
            # float64 throughout: d rounded sums, amplified at most by ‖w‖₁ (as above)
            np.testing.assert_allclose(di, best, atol=tol * (1 + np.abs(wi).sum()))
        else:
            # the LP solver (HiGHS) meets its constraints to 1e-7: ours may beat it by that
            assert size <= _lp_optimum(ti, wi, float(b[i]) - wi @ ti, norm) + 1e-6


# ------------------------------------------------------------------ known minimal distances


def fab_ratio_on_a_line(steps: int, eta: float = 1.05, beta: float = 0.9, alpha_max: float = 0.1):
    """Smallest ‖δ‖ / (true distance) FAB records in ``steps`` iterations on a linear model.

    With the box not binding, every projection lies on the line x + u·δ* (δ* the exact
    minimal perturbation): from x + u·δ*, δ = (1 − u)·δ* and δ_orig = δ*, so
    α = min((1 − u)/(2 − u), α_max) and u ← (1 − α)(u + η(1 − u)) + α·η; a point past the
    boundary (u > 1) is recorded and pulled back, u ← β·u.
    """
    u, best = 0.0, float("inf")
    for _ in range(steps):
        alpha = min((1 - u) / (2 - u), alpha_max)
        u = (1 - alpha) * (u + eta * (1 - u)) + alpha * eta
        if u > 1:
            best, u = min(best, u), beta * u
    return best


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
@pytest.mark.parametrize("steps", [1, 5, 40])
def test_fab_finds_the_minimal_distance_of_a_linear_model(norm, steps):
    # ‖δ‖_p = margin / ‖w‖_q with q the dual norm. FAB's first step overshoots by η; each
    # pulled-back restart of the line search approaches 1 from above: fab_ratio_on_a_line.
    # Tolerance: float32 rounding of the 12-term sums at each of the ``steps`` iterations.
    model, w, x, y = binary_linear(MARGINS)
    dual = {"linf": w.abs().sum(), "l2": w.norm(), "l1": w.abs().max()}[norm]
    exact = MARGINS / dual
    result = FAB(model, norm, steps=steps).run(x, y)
    assert result.success.all()
    expected = fab_ratio_on_a_line(steps)
    tol = steps * float_tol(torch.float32, 12, ulps=16)
    torch.testing.assert_close(result.norms / exact, torch.full((4,), expected), rtol=tol, atol=0)
    assert 1.0 < expected <= 1.05  # never below the true distance
    assert torch.equal(result.norms, THREATS[norm].norms(result.adversarial - x))
    with torch.no_grad():
        assert (model(result.adversarial).argmax(1) == 1).all()


def test_the_line_search_ratio_by_hand():
    # Step 1 records u = η = 1.05 and pulls back to u = βη = 0.945. Step 2: δ = (1 − βη)·δ*,
    # α = (1 − βη)/(2 − βη) = 0.0521 < α_max, u = (1 − α)(βη + η(1 − βη)) + αη = 1.005213;
    # later steps never record less (the ratio FAB reaches on a linear model: within 0.53 %)
    eta, beta = 1.05, 0.9
    alpha = (1 - beta * eta) / (2 - beta * eta)
    second = (1 - alpha) * (beta * eta + eta * (1 - beta * eta)) + alpha * eta
    assert fab_ratio_on_a_line(1) == pytest.approx(1.05, rel=F64)
    assert second == pytest.approx(1.005213, abs=1e-6)
    for steps in (2, 5, 20, 100):
        assert fab_ratio_on_a_line(steps) == pytest.approx(second, rel=F64)


def three_class_corner():
    """x = (0, 0), class 0; class 1 beyond x₁ = 0.9 (top other class by clean logit),
    class 2 beyond x₂ = 0.5 (the closer boundary in every norm)."""
    weight = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    bias = torch.tensor([0.0, -0.9, -1.0])
    return LinearClassifier(weight, bias).eval(), torch.zeros(1, 1, 1, 2), torch.tensor([0])


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_fab_t_aims_at_the_top_classes_and_fab_at_the_closest(norm):
    model, x, y = three_class_corner()
    steps = 30
    ratio = fab_ratio_on_a_line(steps)
    tol = steps * float_tol(torch.float32, 2, ulps=16)
    one = FAB(model, norm, steps=steps, targets=1).run(x, y)
    assert one.norms.item() == pytest.approx(0.9 * ratio, rel=tol)
    both = FAB(model, norm, steps=steps, targets=9).run(x, y)  # 9 > K − 1 = 2 targets
    assert both.norms.item() == pytest.approx(0.5 * ratio, rel=tol)
    untargeted = FAB(model, norm, steps=steps).run(x, y)
    assert untargeted.norms.item() == pytest.approx(0.5 * ratio, rel=tol)


def test_bounded_fab_succeeds_exactly_within_its_bound():
    model, w, x, y = binary_linear(MARGINS)
    found = MARGINS / w.norm() * fab_ratio_on_a_line(100)
    bound = float(found[1]) * (1 + 1e-4)  # images 0 and 1 within it, 2 and 3 beyond
    result = FAB(model, "l2", steps=100, eps=bound).run(x, y)
    assert result.success.tolist() == [True, True, False, False]
    assert (result.norms[:2] <= bound).all() and torch.isinf(result.norms[2:]).all()
    assert torch.equal(result.adversarial[2:], x[2:])  # not broken: the clean image
    # it stops spending steps on an image once it is broken within the bound
    assert (result.iterations[:2] < 100).all() and (result.iterations[2:] == 100).all()


# ------------------------------------------------------------------------- ball and box


def _linear10(side: int = 6, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    model = LinearClassifier(torch.randn(10, side * side, generator=gen), torch.zeros(10)).eval()
    x = torch.rand(10, 1, side, side, generator=gen)
    with torch.no_grad():
        y = model(x).argmax(1)
    y[0] = (y[0] + 1) % 10  # one image already misclassified
    return model, x, y


@settings(max_examples=8, deadline=None)
@given(
    norm=st.sampled_from(["linf", "l2", "l1"]),
    eps=st.one_of(st.none(), st.floats(0.01, 3.0)),
    targets=st.sampled_from([0, 3, 9]),
    restarts=st.integers(1, 2),
    seed=st.integers(0, 1000),
)
def test_fab_returns_inputs_in_the_box_with_their_norms(norm, eps, targets, restarts, seed):
    model, x, y = _linear10(seed=seed % 5)
    fab = FAB(model, norm, steps=8, restarts=restarts, targets=targets, eps=eps, seed=seed)
    result = fab.run(x, y)
    adv = result.adversarial
    assert adv.min() >= 0 and adv.max() <= 1
    with torch.no_grad():
        pred = model(adv).argmax(1)
    assert torch.equal(result.success, pred != y)
    assert result.success[0] and result.norms[0] == 0  # misclassified already: untouched
    found = result.success
    size = THREATS[norm].norms(adv - x)
    torch.testing.assert_close(result.norms[found], size[found])
    assert torch.isinf(result.norms[~found]).all() and torch.equal(adv[~found], x[~found])
    if eps is not None:
        assert (result.norms[found] <= eps).all()


def test_seeded_restarts_and_the_model_left_alone():
    model, x, y = _linear10()
    model.train()
    flags = [p.requires_grad for p in model.parameters()]
    a = FAB(model, "l2", steps=5, restarts=3, seed=1).run(x, y)
    b = FAB(model, "l2", steps=5, restarts=3, seed=1).run(x, y)
    assert torch.equal(a.adversarial, b.adversarial) and torch.equal(a.norms, b.norms)
    one = FAB(model, "l2", steps=5, restarts=1, seed=1).run(x, y)
    assert (a.norms <= one.norms).all()  # restarts only ever keep the smaller norm
    assert model.training and [p.requires_grad for p in model.parameters()] == flags


def test_bad_settings_and_spec_texts():
    model, x, y = _linear10()
    with pytest.raises(ConfigError, match="norm"):
        FAB(model, "l3")
    with pytest.raises(ConfigError, match="steps"):
        FAB(model, steps=0)
    with pytest.raises(ConfigError, match="bound"):
        FAB(model, eps=-1.0)
    with pytest.raises(ConfigError, match="untargeted"):
        FAB(model).run(x, y, targets=y)
    fab_t = AttackSpec.parse("fab-t l2 0.5 100").build(model)
    assert isinstance(fab_t, FAB) and (fab_t.targets, fab_t.eps, fab_t.steps) == (9, 0.5, 100)
    assert fab_t.norm == "l2"
    assert AttackSpec.parse("fab-t l2 0.5 100").label() == "FAB-T-100 L2 ε=0.5"
    fab = AttackSpec.parse("fab linf 0.1 100").build(model)
    assert (fab.targets, fab.eps, fab.norm) == (0, 0.1, "linf")
    assert AttackSpec.parse("fab l1 5").build(model).steps == 100
