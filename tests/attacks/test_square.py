"""Square Attack: the p schedule, window sides and patterns by hand, ball and box (L∞, L2, L1),
query accounting, and L1 against a linear model's exact minimal L1 distances."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustlens.attacks import L1, L2, Linf, Square
from robustlens.attacks.apgd import inner_radius
from robustlens.attacks.spec import AttackSpec
from robustlens.attacks.square import (
    centred_squares,
    eta,
    l2_window_side,
    p_schedule,
    window_side,
)
from robustlens.errors import ConfigError
from tests.attacks.tiny_models import LinearClassifier, TinyCNN
from tests.tolerances import float_tol

F32 = float_tol(torch.float32)


def test_p_schedule_halves_at_the_papers_iterations_rescaled_to_the_budget():
    # 10 000 queries: the authors' breakpoints as written; p halves after iteration 10, 50, …
    expected = {0: 0.8, 10: 0.8, 11: 0.4, 50: 0.4, 51: 0.2, 200: 0.2, 201: 0.1, 500: 0.1}
    expected |= {501: 0.05, 1001: 0.025, 2001: 0.0125, 4001: 0.00625, 6001: 0.003125}
    expected |= {8000: 0.003125, 8001: 0.0015625, 9999: 0.0015625}
    for it, p in expected.items():
        assert p_schedule(0.8, it, 10000) == pytest.approx(p, rel=1e-12), it
    # 5 000 queries: iteration i counts as int(i · 10000 / 5000) = 2i, so p halves after 5
    assert p_schedule(0.8, 5, 5000) == 0.8  # 2·5 = 10: still p_init
    assert p_schedule(0.8, 6, 5000) == 0.4  # 12 > 10
    assert p_schedule(0.8, 25, 5000) == 0.4  # 50
    assert p_schedule(0.8, 26, 5000) == 0.2  # 52
    assert p_schedule(0.8, 4001, 5000) == pytest.approx(0.8 / 512)  # 8002


def test_window_sides_by_hand():
    # Fashion-MNIST, 1 × 28 × 28 = 784 values: √(0.8 · 784) = 25.04 → 25
    assert window_side(0.8, 784, 1, 28, 28) == 25
    assert window_side(0.4, 784, 1, 28, 28) == 18  # √313.6 = 17.7
    assert window_side(0.8 / 512, 784, 1, 28, 28) == 1  # √1.225 = 1.1
    assert window_side(0.0001, 784, 1, 28, 28) == 1  # √0.078 rounds to 0: at least 1
    assert window_side(1.0, 3 * 32 * 32, 3, 32, 32) == 32  # per channel: √1024
    assert window_side(1.0, 3 * 32 * 40, 3, 32, 40) == 32  # at most the smaller side
    # L2: at least 3 and odd
    assert l2_window_side(0.4, 784, 1, 28, 28) == 19  # 17.7 → 18 → 19
    assert l2_window_side(0.8, 784, 1, 28, 28) == 25
    assert l2_window_side(0.001, 784, 1, 28, 28) == 3
    assert l2_window_side(1.0, 784, 1, 28, 28) == 28  # 28 → 29, capped at the side


def test_centred_squares_and_the_l2_pattern_by_hand():
    # 3 × 3: centre Σ_{k=0,1} 1/(k+1)² = 1.25, the ring 1/4; unit norm
    raw = torch.tensor([[0.25, 0.25, 0.25], [0.25, 1.25, 0.25], [0.25, 0.25, 0.25]])
    torch.testing.assert_close(centred_squares(3, 3), raw / raw.norm(), rtol=F32, atol=F32)
    # 1 × 3 strip: centre (0, 1) → [1/4, 5/4, 1/4]
    strip = torch.tensor([[0.25, 1.25, 0.25]])
    torch.testing.assert_close(centred_squares(1, 3), strip / strip.norm(), rtol=F32, atol=F32)
    # η(3): the 1 × 3 strip on top, minus the 2 × 3 centred squares (centre (1, 1)) below
    low = torch.tensor([[0.25, 0.25, 0.25], [0.25, 1.25, 0.25]])
    top, bottom = strip / strip.norm(), -low / low.norm()
    want = torch.cat([top, bottom])
    want = want / want.norm()
    torch.testing.assert_close(eta(3, False), want, rtol=F32, atol=F32)
    torch.testing.assert_close(eta(3, True), want.T, rtol=F32, atol=F32)
    assert eta(7, False).norm().item() == pytest.approx(1.0, rel=4 * F32)


def test_the_l1_pattern_by_hand():
    # 3 × 3, weights 1/(k+1)⁴: centre 1 + 1/16, ring 1/16; unit L1 norm (sum 1.5625)
    raw = torch.tensor([[1, 1, 1], [1, 17, 1], [1, 1, 1]]) / 16
    torch.testing.assert_close(centred_squares(3, 3, "l1"), raw / raw.sum(), rtol=F32, atol=F32)
    # η_L1(3): the 1 × 3 strip [1/16, 17/16, 1/16] on top, minus the 2 × 3 squares below, each
    # half of unit L1 mass, the whole of unit L1 mass
    strip = torch.tensor([[1.0, 17.0, 1.0]])
    low = torch.tensor([[1.0, 1.0, 1.0], [1.0, 17.0, 1.0]])
    want = torch.cat([strip / strip.sum(), -low / low.sum()]) / 2
    torch.testing.assert_close(eta(3, False, "l1"), want, rtol=F32, atol=F32)
    torch.testing.assert_close(eta(3, True, "l1"), want.T, rtol=F32, atol=F32)
    assert eta(9, False, "l1").abs().sum().item() == pytest.approx(1.0, rel=4 * F32)


def _model_and_data(n: int = 12, side: int = 8, seed: int = 0):
    """A random 10-class linear model (cheap, and its scores respond to every pixel)."""
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(10, side * side, generator=gen) * 0.5
    model = LinearClassifier(weight, torch.zeros(10)).eval()
    x = torch.rand(n, 1, side, side, generator=gen)
    with torch.no_grad():
        y = model(x).argmax(1)  # clean predictions: every image starts correctly classified
    return model, x, y


@settings(max_examples=10, deadline=None)
@given(
    norm=st.sampled_from(["linf", "l2", "l1"]),
    eps=st.floats(0.01, 2.0),
    queries=st.integers(1, 25),
    seed=st.integers(0, 10_000),
    targeted=st.booleans(),
)
def test_square_stays_in_the_ball_and_box(norm, eps, queries, seed, targeted):
    model, x, y = _model_and_data(seed=seed % 7)
    threat = {"linf": Linf, "l2": L2, "l1": L1}[norm](eps)
    result = Square(model, threat, queries, targeted=targeted, seed=seed).run(x, y)
    adv = result.adversarial
    assert adv.min() >= 0 and adv.max() <= 1
    assert bool(threat.contains(adv - x, tol=4 * F32).all())
    if norm == "l1":  # projected to a radius under ε that survives rounding: no tolerance
        assert bool((threat.norms(adv - x) <= eps).all())
    assert (result.iterations <= queries).all() and (result.iterations >= 0).all()
    with torch.no_grad():
        pred = model(adv).argmax(1)
    # success is exactly what the model says on the returned input
    if not targeted:
        assert torch.equal(result.success, pred != y)
    if norm == "linf":
        # every pixel moved by ε (stripes and windows set x ± ε) unless the box stopped it
        moved = (adv - x).abs()
        at_eps = (moved - eps).abs() <= 4 * F32
        at_box = (adv == 0) | (adv == 1)
        untouched = (result.iterations == 0).view(-1, 1, 1, 1)  # never attacked
        assert bool((at_eps | at_box | untouched).all())


@pytest.mark.parametrize(("threat", "on_sphere"), [(L2(0.3), 0.3), (L1(0.4), None)])
def test_perturbations_use_the_whole_budget_away_from_the_box(threat, on_sphere):
    # Images at 0.5 and ε small enough that no pixel reaches 0 or 1. L2: ‖δ‖₂ = ε exactly.
    # L1: each step moves the budget left, ε − ‖δ‖₁, into the new window and the projection
    # is idle inside the box, so ‖δ‖₁ is the radius just under ε that survives rounding.
    model = TinyCNN().eval()
    x = torch.full((6, 1, 10, 10), 0.5)
    with torch.no_grad():
        y = model(x).argmax(1)
    result = Square(model, threat, 30, seed=1).run(x, y)
    attacked = result.iterations > 0
    assert attacked.any()
    if on_sphere is None:
        on_sphere = inner_radius(threat, x)
        assert 0 < threat.eps - on_sphere < 1e-3
        assert bool((result.norms[attacked] <= threat.eps).all())
    torch.testing.assert_close(
        result.norms[attacked],
        torch.full((int(attacked.sum()),), on_sphere),
        rtol=float_tol(torch.float32, 100),
        atol=0,
    )


def test_l1_square_never_beats_the_exact_minimal_l1_distance_and_finds_the_near_ones():
    # A linear model: the least L1 change that makes class k win over y is
    # (z_y − z_k) / max_i |w_yi − w_ki| (all of it on one pixel; the box can only make it
    # larger). No image farther than ε may break; the ones within ε/3 should.
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(10, 64, generator=gen)
    model = LinearClassifier(weight, torch.zeros(10)).eval()
    x = 0.25 + 0.5 * torch.rand(100, 1, 8, 8, generator=gen)
    with torch.no_grad():
        logits = model(x)
    y = logits.argmax(1)
    reach = (weight[y].unsqueeze(1) - weight.unsqueeze(0)).abs().amax(dim=2)
    gap = logits.gather(1, y.unsqueeze(1)) - logits
    distance = torch.where(gap > 0, gap / reach, torch.inf).amin(dim=1)
    eps = 1.0
    result = Square(model, L1(eps), 500, seed=0).run(x, y)
    far, near = distance > eps, distance < eps / 3
    assert far.sum() >= 20 and near.sum() >= 5
    assert not bool(result.success[far].any())
    assert result.success[near].float().mean() >= 0.8
    assert result.success.sum() >= 0.4 * (~far).sum()  # 24 of 47 when written


class CountingModel(torch.nn.Module):
    """Counts the rows each forward call scores."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.rows = 0
        self.num_classes = 10

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rows += x.shape[0]
        return self.inner(x)


def test_queries_go_only_to_images_not_yet_broken():
    model, x, y = _model_and_data(n=16, side=10)
    counting = CountingModel(model).eval()
    result = Square(counting, Linf(0.04), 60, seed=0).run(x, y)
    assert result.success.any() and not result.success.all()  # some break early, some never
    # one clean pass over all images, then exactly the recorded queries
    assert counting.rows == x.shape[0] + int(result.iterations.sum())
    broken_early = result.success & (result.iterations < 60)
    assert broken_early.any()
    assert (result.iterations[~result.success] == 60).all()


def test_already_misclassified_images_cost_no_query():
    model, x, y = _model_and_data(n=8)
    wrong = (y + 1) % 10
    result = Square(model, Linf(0.1), 20).run(x, wrong)
    assert result.success.all() and (result.iterations == 0).all()
    assert torch.equal(result.adversarial, x)


def test_seeded_and_leaves_the_model_alone():
    model, x, y = _model_and_data(n=10, side=10)
    model.train()
    flags = [p.requires_grad for p in model.parameters()]
    before = [p.detach().clone() for p in model.parameters()]
    a = Square(model, Linf(0.2), 30, seed=3).run(x, y)
    b = Square(model, Linf(0.2), 30, seed=3).run(x, y)
    c = Square(model, Linf(0.2), 30, seed=4).run(x, y)
    assert torch.equal(a.adversarial, b.adversarial) and torch.equal(a.iterations, b.iterations)
    assert not torch.equal(a.adversarial, c.adversarial)
    assert model.training and [p.requires_grad for p in model.parameters()] == flags
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before, strict=True))


def test_targeted_success_means_the_target_class():
    model, x, y = _model_and_data(n=12, side=10)
    targets = (y + 1) % 10
    result = Square(model, Linf(0.5), 200, targeted=True, seed=0).run(x, y, targets)
    with torch.no_grad():
        pred = model(result.adversarial).argmax(1)
    assert result.success.any()
    assert torch.equal(result.success, pred == targets)


def test_more_queries_keep_or_lower_the_best_margin():
    # 1 query is the stripes' start; more queries can only keep or lower the best margin
    model, x, y = _model_and_data(n=12, side=10)
    short = Square(model, Linf(0.02), 1, seed=0).run(x, y)
    long = Square(model, Linf(0.02), 150, seed=0).run(x, y)
    still = ~short.success
    assert still.any()
    assert (long.loss[still] <= short.loss[still]).all()
    assert (long.loss[still] < short.loss[still]).any()


def test_bad_settings_fail_before_any_query():
    model = TinyCNN().eval()
    with pytest.raises(ConfigError, match="supports Linf"):
        Square(model, "linf 0.1")
    with pytest.raises(ConfigError, match="at least one query"):
        Square(model, Linf(0.1), 0)
    with pytest.raises(ConfigError, match="p_init"):
        Square(model, Linf(0.1), p_init=0.0)
    with pytest.raises(ConfigError, match="loss"):
        Square(model, Linf(0.1), loss="hinge")
    with pytest.raises(ConfigError, match="NCHW"):
        Square(model, Linf(0.1)).run(torch.rand(2, 4), torch.zeros(2, dtype=torch.long))


def test_spec_text_builds_square_with_queries():
    spec = AttackSpec.parse("square linf 0.1 5000")
    attack = spec.build(TinyCNN().eval(), seed=2)
    assert isinstance(attack, Square) and attack.queries == 5000 and attack.threat == Linf(0.1)
    assert spec.label() == "Square-5000 L∞ ε=0.1"
    assert AttackSpec.parse("square l2 0.5").build(TinyCNN()).queries == 5000
    l1 = AttackSpec.parse("square l1 5 100").build(TinyCNN().eval())
    assert l1.threat.norm == "l1" and l1.threat.eps == 5 and l1.queries == 100
    assert math.isclose(attack.describe()["p_init"], 0.8)
