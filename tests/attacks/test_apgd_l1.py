"""APGD-L1 (Croce & Hein 2021): the projection onto L1 ball ∩ box against independent
references, the ball and box for any setting (hypothesis), its strength on a linear model
whose minimal L1 distances a linear program gives, and the L1 AutoAttack composition."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from robustlens.attacks import APGD, APGDT, FAB, L1, PGD, AutoAttack, Linf, autoattack
from robustlens.attacks.apgd_l1 import L1Schedule, project_l1_box, sparse_direction
from robustlens.attacks.spec import AttackSpec
from robustlens.errors import ConfigError
from tests.attacks.test_fab import _lp_optimum
from tests.attacks.test_minimal_norm import binary_linear
from tests.attacks.tiny_models import TinyCNN
from tests.tolerances import float_tol

# ------------------------------------------------------------------------------ projection


def _by_bisection(v: np.ndarray, lo: np.ndarray, hi: np.ndarray, r: float) -> np.ndarray:
    """The projection from its KKT form, θ found by 200 bisections in float64."""
    a, b = np.abs(v), np.where(v > 0, hi, -lo)

    def at(theta: float) -> np.ndarray:
        return np.sign(v) * np.clip(a - theta, 0, b)

    if np.abs(at(0.0)).sum() <= r:
        return at(0.0)
    low, high = 0.0, float(a.max())
    for _ in range(200):
        mid = (low + high) / 2
        low, high = (mid, high) if np.abs(at(mid)).sum() > r else (low, mid)
    return at(high)


def _lp_gap(v: np.ndarray, p: np.ndarray, lo: np.ndarray, hi: np.ndarray, r: float) -> float:
    """max over c in the set of ⟨v − p, c − p⟩ by linear programming (c = c⁺ − c⁻): ≤ 0 exactly
    when p is the Euclidean projection of v onto the convex set (variational inequality)."""
    g, d = v - p, v.size
    bounds = [(0, h) for h in hi] + [(0, -low) for low in lo]
    res = linprog(-np.r_[g, -g], A_ub=np.ones((1, 2 * d)), b_ub=[r], bounds=bounds)
    assert res.status == 0
    return -float(res.fun) - float(g @ p)


def _cases(seed: int = 3, n: int = 40, d: int = 9):
    gen = torch.Generator().manual_seed(seed)
    x0 = torch.rand(n, d, generator=gen, dtype=torch.float64)
    x0[::5, :3] = 0.0  # coordinates on the box's faces
    x0[1::5, :3] = 1.0
    v = torch.randn(n, d, generator=gen, dtype=torch.float64) * 0.8
    v[2::5, 4:] = 0.0  # coordinates that do not move
    radius = torch.rand(n, generator=gen, dtype=torch.float64) * 2.0
    radius[::7] = 0.0
    radius[3::7] = 50.0  # the box binds alone
    return x0, v, radius


def test_projection_matches_bisection_and_satisfies_the_variational_inequality():
    x0, v, radius = _cases()
    lo, hi = -x0, 1.0 - x0
    p = project_l1_box(v, lo, hi, radius)
    assert bool(((p >= lo) & (p <= hi)).all())
    assert bool((p.abs().sum(1) <= radius).all())
    d = v.shape[1]
    tol = float_tol(torch.float64, 2 * d, ulps=64)
    for i in range(v.shape[0]):
        vi, pi, li, hi_i, ri = (t[i].numpy() for t in (v, p, lo, hi, radius))
        ref = _by_bisection(vi, li, hi_i, float(ri))
        np.testing.assert_allclose(pi, ref, atol=tol * (1 + np.abs(vi).sum()))
        # HiGHS meets its constraints to 1e-7, so the LP optimum is trusted to that
        assert _lp_gap(vi, pi, li, hi_i, float(ri)) <= 1e-6 * (1 + np.abs(vi).sum())


def test_projection_keeps_inside_points_and_reaches_the_sphere_otherwise():
    x0, v, radius = _cases(seed=11)
    lo, hi = -x0, 1.0 - x0
    p = project_l1_box(v, lo, hi, radius)
    clipped = torch.minimum(torch.maximum(v, lo), hi)
    inside = clipped.abs().sum(1) <= radius
    assert 5 < int(inside.sum()) < v.shape[0]
    assert torch.equal(p[inside], clipped[inside])
    tol = float_tol(torch.float64, 2 * v.shape[1], ulps=64)
    sphere = p[~inside].abs().sum(1)
    torch.testing.assert_close(sphere, radius[~inside], rtol=tol, atol=tol)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    d=st.integers(1, 40),
    r=st.floats(0.0, 30.0),
    scale=st.sampled_from([1e-3, 1.0, 100.0]),
)
def test_float32_projection_never_leaves_ball_or_box(seed, d, r, scale):
    gen = torch.Generator().manual_seed(seed)
    x0 = torch.rand(4, d, generator=gen).round() * torch.rand(4, d, generator=gen)
    v = torch.randn(4, d, generator=gen) * scale
    p = project_l1_box(v, -x0, 1.0 - x0, r)
    assert p.dtype == torch.float32
    end = x0 + p
    assert bool(((end >= 0) & (end <= 1)).all())
    assert bool((p.abs().sum(1) <= r).all())


def test_sparse_direction_moves_the_top_fraction_by_an_l1_unit():
    g = torch.tensor([[0.1, -3.0, 2.0, 0.5, -0.2, 1.0, 0.0, 4.0, -0.3, 0.05]])
    step = sparse_direction(g, torch.tensor([0.3]))  # index ⌊0.7·10⌋ = 7 of the sorted |g|
    third = 1 / 3
    expected = torch.tensor([[0.0, -third, third, 0.0, 0.0, 0.0, 0.0, third, 0.0, 0.0]])
    tol = float_tol(torch.float32, 10)
    torch.testing.assert_close(step, expected, rtol=tol, atol=tol)
    assert torch.equal(step != 0, expected != 0)


def test_large_eps_stages_and_check_intervals():
    radius_of = float
    plain = L1Schedule(L1(2.0), 100, radius_of, large_eps=False)
    assert plain.lengths.tolist() == [100] and plain.every.tolist() == [4]
    staged = L1Schedule(L1(2.0), 100, radius_of, large_eps=True)
    assert staged.eps == [6.0, 4.0, 2.0]
    assert staged.lengths.tolist() == [30, 30, 40] and staged.every.tolist() == [1, 1, 1]
    short = L1Schedule(L1(2.0), 3, radius_of, large_eps=True)
    assert short.lengths.tolist() == [1, 1, 1] and sum(short.lengths.tolist()) == 3


# ------------------------------------------------------------------------- the attack


@settings(max_examples=15, deadline=None)
@given(
    eps=st.floats(0.0, 8.0),
    steps=st.integers(1, 5),
    kind=st.sampled_from(["ce", "dlr", "t"]),
    large_eps=st.booleans(),
    restarts=st.integers(1, 2),
    early_stop=st.booleans(),
    batch_size=st.sampled_from([None, 2, 5]),
    seed=st.integers(0, 1000),
)
def test_apgd_l1_output_obeys_ball_and_box(
    eps, steps, kind, large_eps, restarts, early_stop, batch_size, seed
):
    model = TinyCNN(seed=1).eval()
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(6, 1, 6, 6, generator=gen)
    x[0], x[1] = 0.0, 1.0  # images at the box corners
    y = torch.randint(0, 10, (6,), generator=gen)
    common = dict(restarts=restarts, early_stop=early_stop, large_eps=large_eps, seed=seed)
    if kind == "t":
        attack = APGDT(model, L1(eps), steps, targets=3, **common)
    else:
        attack = APGD(model, L1(eps), steps, loss=kind, **common)
    result = attack.run(x, y, batch_size=batch_size)
    adv = result.adversarial
    assert adv.shape == x.shape and adv.dtype == x.dtype
    assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0
    # no tolerance: the iterates stay inside ε with room for the rounding of x + δ − x
    assert bool((L1(eps).norms(adv - x) <= eps).all())
    runs = restarts * (3 if kind == "t" else 1)
    assert bool((result.iterations <= steps * runs).all())
    if not early_stop:
        assert bool((result.iterations == steps * runs).all())
    with torch.no_grad():
        assert torch.equal(result.success, model(adv).argmax(1) != y)


def test_apgd_l1_breaks_every_point_within_its_budget_on_a_linear_model():
    """The minimal L1 distance to the boundary is an LP; APGD-L1 must break every point whose
    distance is below ε (all at least 10 % below it) and cannot break the others (the ball
    holds), with and without the large-ε stages."""
    margins = torch.tensor([0.1, 0.3, 0.6, 1.0, 1.4])
    model, w, x, y = binary_linear(margins, d=12, seed=2)
    flat = x.flatten(1).double().numpy()
    wn = w.double().numpy()
    exact = np.array(
        [_lp_optimum(t, wn, float(m), "l1") for t, m in zip(flat, margins, strict=True)]
    )
    eps = float(np.sqrt(exact[2] * exact[3]))  # between the third and fourth distances
    assert not bool(((exact > eps / 1.1) & (exact < eps * 1.1)).any())
    for large_eps in (False, True):
        result = APGD(model, L1(eps), 100, large_eps=large_eps).run(x, y)
        assert result.success.tolist() == (exact < eps).tolist(), large_eps


@pytest.mark.slow
def test_apgd_l1_is_not_weaker_than_pgd_l1_or_fab_l1(fmnist_models, fmnist_test):
    """Slow (120 images × 100 iterations of four attacks on a trained CNN): on the
    FGSM-RS model, images robust under APGD-L1 (CE and DLR, AutoAttack's two losses, large-ε
    stages) but broken by PGD-L1 (100 steps) or by FAB-L1 bounded at ε must not dominate:
    exact one-sided sign test, p ≥ 0.01 (as the oracle tests).

    Both losses, not CE alone: on the fixture model trained with one thread, APGD-CE-L1 left
    8 images robust that FAB-L1 broke (8 : 0, p = 0.004) and so did APGD-DLR-L1 (64 robust
    against CE's 72 of 95): the CE loss saturates on this FGSM-RS model, which is the reason
    AutoAttack pairs it with a margin loss (Croce & Hein 2020 §3.1)."""
    from tests.attacks.test_apgd_oracle import ALPHA, sign_test

    model = fmnist_models["robust"]
    x, y = fmnist_test.images[:120], fmnist_test.labels[:120]
    eps = 8.0  # on the quickstart's L∞ 0.1 model, APGD-L1 left 41 / 46 at ε = 2, 38 / 46 at 4
    with torch.no_grad():
        clean = model(x).argmax(1) == y
    ours = clean.clone()
    for loss in ("ce", "dlr"):
        ours &= ~APGD(model, L1(eps), 100, loss=loss, large_eps=True).run(x, y).success
    others = {
        "pgd-l1": PGD(model, L1(eps), 100),
        "fab-l1": FAB(model, "l1", steps=100, eps=eps),
    }
    for name, attack in others.items():
        theirs = clean & ~attack.run(x, y).success
        b, c, p = sign_test(ours, theirs)
        assert p >= ALPHA, (name, b, c, p)
    assert 0 < int(ours.sum()) < int(clean.sum())  # ε leaves both outcomes possible


# ------------------------------------------------------------------------- composition


def test_autoattack_l1_is_the_authors_standard_composition():
    aa = AutoAttack(TinyCNN(), "l1", 12.0)
    parts = dict(aa.components())
    assert list(parts) == ["apgd-ce", "apgd-t", "fab-t", "square"]
    ce, t, fab, square = parts["apgd-ce"], parts["apgd-t"], parts["fab-t"], parts["square"]
    assert isinstance(ce.threat, L1) and ce.loss == "ce" and ce.restarts == 5 and ce.large_eps
    assert t.n_targets == 5 and t.restarts == 1 and t.large_eps and t.steps == ce.steps == 100
    assert fab.describe()["norm"] == "l1" and fab.describe()["targets"] == 9
    assert isinstance(square.threat, L1) and square.threat.eps == 12.0
    assert square.queries == 5000 and square.p_init == 0.8
    assert aa.describe()["norm"] == "l1"


def test_l1_settings_parse_and_build():
    apgd = AttackSpec.parse("apgd l1 12").build(TinyCNN())
    assert isinstance(apgd, APGD) and isinstance(apgd.threat, L1) and apgd.steps == 100
    assert not apgd.large_eps
    apgd_t = AttackSpec.parse("apgd-t l1 12 50").build(TinyCNN())
    assert isinstance(apgd_t, APGDT) and apgd_t.steps == 50
    aa = AttackSpec.parse("autoattack l1 12").build(TinyCNN())
    assert isinstance(aa, AutoAttack) and aa.norm == "l1" and aa.eps == 12.0


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: AutoAttack(TinyCNN(), "l1", 12.0, version="plus"), "not defined in L1"),
        (lambda: AutoAttack(TinyCNN(), "l1", 12.0, version="rand"), "not defined in L1"),
        (lambda: AttackSpec.parse("autoattack-plus l1 12"), "standard version"),
        (lambda: APGD(TinyCNN(), Linf(0.1), large_eps=True), "large_eps"),
    ],
)
def test_l1_settings_without_a_definition_are_one_clear_error(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


def test_autoattack_l1_runs_and_every_break_is_within_the_ball(monkeypatch):
    monkeypatch.setattr(autoattack, "QUERIES", 500)  # Square's share; the rest at full length
    model = TinyCNN(seed=2).eval()
    gen = torch.Generator().manual_seed(5)
    x = torch.rand(8, 1, 6, 6, generator=gen)
    with torch.no_grad():
        y = model(x).argmax(1)  # all clean-correct
    y[0] = (y[0] + 1) % 10  # one clean error
    eps = 0.5
    result = AutoAttack(model, "l1", eps).run(x, y)
    assert result.broken_by[0] == "clean"
    assert bool((L1(eps).norms(result.adversarial - x) <= eps).all())
    with torch.no_grad():
        fooled = model(result.adversarial).argmax(1) != y
    assert torch.equal(result.success, fooled)
    assert set(result.broken_by) <= {"clean", "", "apgd-ce", "apgd-t", "fab-t", "square"}
