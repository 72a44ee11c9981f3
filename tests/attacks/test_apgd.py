"""APGD and APGD-T: the checkpoint schedule, the DLR losses and the step-size rule checked by
hand; the exact L2-ball ∩ box projection; known optima; bad inputs; attack settings."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robustlens.attacks import APGD, APGDT, L2, Linf
from robustlens.attacks import apgd as apgd_module
from robustlens.attacks.apgd import _Set, checkpoints, project_l2_box
from robustlens.attacks.losses import SAFEGUARD, dlr_loss, targeted_dlr_loss
from robustlens.attacks.spec import AttackSpec
from robustlens.errors import ConfigError
from tests.attacks.tiny_models import LinearClassifier, TinyCNN
from tests.tolerances import close, float_tol

# ------------------------------------------------------------------- checkpoint schedule


def test_checkpoints_of_a_100_iteration_run():
    # p: 0, 0.22, 0.22 + max(0.22 − 0.03, 0.06) = 0.41, 0.41 + 0.16 = 0.57, 0.57 + 0.13 = 0.70,
    # 0.70 + 0.10 = 0.80, 0.80 + 0.07 = 0.87, 0.87 + max(0.04, 0.06) = 0.93, 0.99; 1.05 > 1.
    assert checkpoints(100) == [0, 22, 41, 57, 70, 80, 87, 93, 99]


def test_checkpoints_of_short_runs():
    # N = 10: ⌈2.2⌉, ⌈4.1⌉, ⌈5.7⌉, 7, 8, ⌈8.7⌉, ⌈9.3⌉ = 10, ⌈9.9⌉ = 10 (kept once)
    assert checkpoints(10) == [0, 3, 5, 6, 7, 8, 9, 10]
    assert checkpoints(1) == [0, 1]
    # N = 1000: 220, 410, 570, 700, 800, 870, 930, 990
    assert checkpoints(1000) == [0, 220, 410, 570, 700, 800, 870, 930, 990]


# ----------------------------------------------------------------------------- losses

Z = torch.tensor([[1.0, 4.0, 2.0, 3.0], [1.0, 4.0, 2.0, 3.0], [0.0, 1.0, 5.0, 5.0]])


def test_dlr_by_hand():
    y = torch.tensor([1, 0, 2])
    # row 0: y is the top class: −(4 − 3)/(4 − 2) = −0.5
    # row 1: −(z_0 − max_{i≠0} z_i)/(z_π1 − z_π3) = −(1 − 4)/(4 − 2) = 1.5
    # row 2: a tie at the top; y = 2 holds one of the two 5s: −(5 − 5)/(5 − 1) = 0
    expected = torch.tensor([-0.5, 1.5, 0.0])
    torch.testing.assert_close(dlr_loss(Z, y), expected, **close(torch.float32, 4))


def test_targeted_dlr_by_hand():
    y, t = torch.tensor([1, 0, 2]), torch.tensor([0, 1, 0])
    # row 0: −(4 − 1)/(4 − (2 + 1)/2) = −3/2.5 = −1.2
    # row 1: −(1 − 4)/2.5 = 1.2
    # row 2: sorted 5, 5, 1, 0: −(5 − 0)/(5 − 0.5) = −10/9
    expected = torch.tensor([-1.2, 1.2, -10 / 9])
    torch.testing.assert_close(targeted_dlr_loss(Z, y, t), expected, **close(torch.float32, 4))


def test_dlr_is_shift_and_scale_invariant():
    # Exact but for the safeguard s: −a·m/(a·D + s) differs from −m/(D + s) by the relative
    # amount s·|1 − a|/(a·D + s) ≤ s·|1 − a|/(a·D), D the smallest denominator.
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(32, 10, generator=gen, dtype=torch.float64)
    y, t = torch.randint(0, 10, (32,), generator=gen), torch.randint(0, 10, (32,), generator=gen)
    top = z.topk(4, dim=1).values
    smallest = float(torch.minimum(top[:, 0] - top[:, 2], top[:, 0] - top[:, 2:].mean(1)).min())
    a = 7.5
    tol = close(torch.float64, 10)
    tol["rtol"] += SAFEGUARD * (a - 1) / (a * smallest)
    for f in (lambda z: dlr_loss(z, y), lambda z: targeted_dlr_loss(z, y, t)):
        torch.testing.assert_close(f(a * z - 3.0), f(z), **tol)


def test_dlr_safeguard_keeps_ties_finite():
    flat = torch.zeros(2, 5)
    y = torch.tensor([0, 3])
    assert torch.equal(dlr_loss(flat, y), torch.zeros(2))
    assert torch.equal(targeted_dlr_loss(flat, y, torch.tensor([1, 1])), torch.zeros(2))


def test_dlr_needs_enough_classes():
    with pytest.raises(ConfigError, match="at least 3 classes"):
        dlr_loss(torch.zeros(2, 2), torch.tensor([0, 1]))
    with pytest.raises(ConfigError, match="at least 4 classes"):
        targeted_dlr_loss(torch.zeros(2, 3), torch.tensor([0, 1]), torch.tensor([1, 0]))


# ------------------------------------------------------------------ the step-size rule


def crafted_state(attack: APGD, t: int) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """Four rows at iteration t, best loss 2 (3 for row 3), current loss 0.5."""
    x0 = torch.full((4, 1, 2, 2), 0.5)
    state = attack._fresh(x0, _Set(attack.threat, x0))
    state["t"] = torch.full((4,), t)
    state["x"] = torch.full_like(x0, 0.45)
    state["x_max"] = torch.full_like(x0, 0.55)
    state["g_max"] = torch.full_like(x0, 7.0)
    state["eta"] = torch.full((4,), 0.2)
    state["loss_prev"] = torch.full((4,), 1.0)  # the current loss 0.5 is no increase
    state["loss_max"] = torch.tensor([2.0, 2.0, 2.0, 3.0])
    state["loss_max_last"] = torch.tensor([1.0, 1.0, 2.0, 3.0])
    state["halved_last"] = torch.tensor([False, False, False, True])
    state["increases"] = torch.tensor([16, 17, 17, 17])
    return state, torch.full((4,), 0.5), torch.full_like(x0, -1.0)


def test_checkpoint_halves_on_condition_1_or_2_and_restarts_from_the_best_point():
    attack = APGD(TinyCNN(), Linf(0.1), steps=100)
    state, loss, grad = crafted_state(attack, t=22)  # first checkpoint, 22 steps since w_0
    grad = attack._checkpoint(state, loss, grad, attack._span)
    # row 0: 16 increases < 0.75 · 22 = 16.5 (condition 1); row 1: 17 ≥ 16.5 and the best
    # loss rose since the last checkpoint; row 2: best loss unchanged and η not halved last
    # time (condition 2); row 3: unchanged too, but η was halved last time.
    halved = torch.tensor([True, False, True, False])
    assert torch.equal(state["eta"], torch.where(halved, 0.1, 0.2))
    assert torch.equal(state["halved_last"], halved)
    h = halved.view(-1, 1, 1, 1)
    assert torch.equal(state["x"], torch.where(h, 0.55, 0.45).expand_as(state["x"]))
    assert torch.equal(grad, torch.where(h, 7.0, -1.0).expand_as(grad))
    assert torch.equal(state["loss_prev"], torch.where(halved, 2.0, 0.5))
    assert torch.equal(state["increases"], torch.zeros(4, dtype=torch.long))
    assert torch.equal(state["loss_max_last"], state["loss_max"])


def test_no_change_between_checkpoints():
    attack = APGD(TinyCNN(), Linf(0.1), steps=100)
    state, loss, grad = crafted_state(attack, t=30)
    before = {k: v.clone() for k, v in state.items()}
    out = attack._checkpoint(state, loss, grad, attack._span)
    assert torch.equal(out, grad)
    for key in ("eta", "x", "halved_last", "loss_max_last", "increases"):
        assert torch.equal(state[key], before[key]), key
    # an increase is counted
    state["loss_prev"] = torch.full((4,), 0.25)
    attack._checkpoint(state, loss, grad, attack._span)
    assert torch.equal(state["increases"], before["increases"] + 1)


class Recording(APGD):
    """APGD that records (iteration, η) after each checkpoint test."""

    def _checkpoint(self, s, loss, grad, span):
        out = super()._checkpoint(s, loss, grad, span)
        self.trace.append((int(s["t"][0]), float(s["eta"][0])))
        return out


def binary_linear(d: int = 12, seed: int = 0) -> tuple[LinearClassifier, torch.Tensor]:
    """Two classes; logit₁ − logit₀ = w·x + b, margin −3 at x = 0.5 (class 0)."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(d, generator=gen)
    weight = torch.stack([torch.zeros(d), w])
    bias = torch.tensor([0.0, -float(w.sum()) * 0.5 - 3.0])
    return LinearClassifier(weight, bias).eval(), w


def test_step_size_halves_at_every_checkpoint_once_the_loss_stops_rising():
    # On a linear model the first L∞ step (η = 2ε) lands on the maximising vertex ε·sign(w),
    # and momentum pushes outward only, so the loss never rises again: condition 1 holds at
    # every checkpoint (1 increase of 22 in the first interval, then 0) and η halves 8 times.
    model, w = binary_linear()
    eps = 0.05
    x = torch.full((1, 1, 3, 4), 0.5)
    attack = Recording(model, Linf(eps), steps=100, early_stop=False)
    attack.trace = []
    result = attack.run(x, torch.zeros(1, dtype=torch.long))
    halvings = {t: eta for t, eta in attack.trace}
    expected = {w_j: 2 * eps / 2**j for j, w_j in enumerate(checkpoints(100)) if j > 0}
    for t, eta in expected.items():
        assert halvings[t] == pytest.approx(eta, rel=float_tol(torch.float32))
    assert halvings[98] == pytest.approx(expected[93], rel=float_tol(torch.float32))
    delta = (result.adversarial - x).flatten()
    tol = 16 * float_tol(torch.float32)
    torch.testing.assert_close(delta, eps * w.sign(), rtol=0, atol=tol)
    assert int(result.iterations) == 100


def test_apgd_reaches_the_known_optimum_of_a_linear_model():
    model, w = binary_linear()
    x = torch.full((4, 1, 3, 4), 0.5)
    y = torch.zeros(4, dtype=torch.long)
    tiny = float_tol(torch.float32, n_terms=w.numel(), ulps=16)
    # L∞: the vertex ε·sign(w), a few roundings per value inside ε (apgd.inner_radius)
    result = APGD(model, Linf(0.05), steps=20, early_stop=False).run(x, y)
    delta = (result.adversarial - x).flatten(1)
    torch.testing.assert_close(delta, (0.05 * w.sign()).expand_as(delta), rtol=0, atol=tiny)
    # L2: ε·w/‖w‖ up to the angle θ the float32 loss can still tell apart: the CE falls by
    # p₁·ε‖w‖·(1 − cos θ) ≈ p₁·ε‖w‖·θ²/2 (p₁ the class-1 probability), which is invisible
    # below a few units of rounding of the CE itself.
    eps = 0.2
    result = APGD(model, L2(eps), steps=20, early_stop=False).run(x, y)
    with torch.no_grad():
        ce = float(torch.nn.functional.cross_entropy(model(result.adversarial[:1]), y[:1]))
        p1 = float(model(x[:1]).softmax(1)[0, 1])
    theta = (2 * 8 * float_tol(torch.float32) * ce / (p1 * eps * float(w.norm()))) ** 0.5
    error = ((result.adversarial - x).flatten(1) - eps * w / w.norm()).norm(dim=1)
    assert bool((error <= eps * theta + tiny).all()), (error, eps * theta)
    assert not bool(result.success.any())


# --------------------------------------------------------------------- the projection


def bisection_projection(v, lo, hi, r, rounds=200):
    """Reference in float64: the largest s ∈ [0, 1] with ‖clip(s·v)‖ ≤ r, by bisection."""
    a, b = torch.zeros(v.shape[0], 1, dtype=v.dtype), torch.ones(v.shape[0], 1, dtype=v.dtype)
    inside = torch.minimum(torch.maximum(v, lo), hi).norm(dim=1, keepdim=True) <= r
    for _ in range(rounds):
        m = (a + b) / 2
        ok = torch.minimum(torch.maximum(m * v, lo), hi).norm(dim=1, keepdim=True) <= r
        a, b = torch.where(ok, m, a), torch.where(ok, b, m)
    s = torch.where(inside, torch.ones_like(a), a)
    return torch.minimum(torch.maximum(s * v, lo), hi)


@pytest.mark.parametrize("seed", range(4))
def test_l2_box_projection_is_the_euclidean_projection(seed):
    gen = torch.Generator().manual_seed(seed)
    x0 = torch.rand(64, 50, generator=gen, dtype=torch.float64)
    x0[:8, :25] = 0.0  # at the box's corners, where clipping binds at once
    x0[8:16, :25] = 1.0
    v = torch.randn(64, 50, generator=gen, dtype=torch.float64) * torch.rand(
        64, 1, generator=gen, dtype=torch.float64
    )
    r = 0.8
    ours = project_l2_box(v, -x0, 1 - x0, r)
    ref = bisection_projection(v, -x0, 1 - x0, r)
    torch.testing.assert_close(ours, ref, **close(torch.float64, 50, ulps=64))
    assert bool((ours.norm(dim=1) <= r * (1 + float_tol(torch.float64, 50))).all())
    # the projection is at least as near v as ball-then-clip (AutoAttack's L2 step)
    naive = v * (r / v.norm(dim=1, keepdim=True)).clamp_max(1)
    naive = torch.minimum(torch.maximum(naive, -x0), 1 - x0)
    slack = float_tol(torch.float64, 50)
    assert bool(((ours - v).norm(dim=1) <= (naive - v).norm(dim=1) * (1 + slack)).all())


@pytest.mark.parametrize("rounds", [1, 2, apgd_module.ACTIVE_SET_ROUNDS])
def test_the_active_set_iteration_and_its_sort_fallback_agree(rounds):
    """Cut the iteration short (1 or 2 rounds leave rows unsettled, which go to the sort):
    every way through gives the sort's projection, in float64 to its rounding."""
    gen = torch.Generator().manual_seed(rounds)
    x0 = torch.rand(128, 200, generator=gen, dtype=torch.float64)
    x0[:32, :100] = 0.0
    x0[32:64, 100:] = 1.0
    v = torch.randn(128, 200, generator=gen, dtype=torch.float64) * torch.rand(
        128, 1, generator=gen, dtype=torch.float64
    )
    for r in (0.3, 1.0, 3.0):
        ours = project_l2_box(v, -x0, 1 - x0, r, rounds)
        ref = project_l2_box(v, -x0, 1 - x0, r, rounds=0)  # the sort for every row
        torch.testing.assert_close(ours, ref, **close(torch.float64, 200, ulps=64))


# ----------------------------------------------------------------- checks and plumbing


def test_bad_settings_are_refused_before_work():
    model = TinyCNN()
    with pytest.raises(ConfigError, match="large_eps"):
        APGD(model, L2(1.0), large_eps=True)
    with pytest.raises(ConfigError, match="loss"):
        APGD(model, Linf(0.1), loss="hinge")
    with pytest.raises(ConfigError, match="steps"):
        APGD(model, Linf(0.1), steps=0)
    with pytest.raises(ConfigError, match="rho"):
        APGD(model, Linf(0.1), rho=0.0)
    x, y = torch.rand(2, 1, 1, 2), torch.tensor([0, 1])
    two = LinearClassifier(torch.eye(2, 2), torch.zeros(2))
    with pytest.raises(ConfigError, match="at least 3 classes"):
        APGD(two, Linf(0.1), loss="dlr").run(x, y)
    three = LinearClassifier(torch.ones(3, 2), torch.zeros(3))
    with pytest.raises(ConfigError, match="at least 4 classes"):
        APGDT(three, Linf(0.1)).run(x, y)
    with pytest.raises(ConfigError, match="untargeted"):
        APGDT(TinyCNN(), Linf(0.1)).run(torch.rand(2, 1, 4, 4), y, targets=y)


def test_model_mode_and_requires_grad_are_left_alone():
    model = TinyCNN(seed=3).train()
    model.net[0].weight.requires_grad_(False)
    flags = [p.requires_grad for p in model.parameters()]
    x, y = torch.rand(4, 1, 6, 6), torch.arange(4)
    APGDT(model, L2(0.5), steps=3, targets=2).run(x, y)
    assert model.training and all(m.training for m in model.modules())
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())


def test_apgd_t_targets_are_the_top_classes_other_than_the_label():
    # logits = (x₀, x₁, 2·x₂, 0, −1): the clean ranking is known
    weight = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 2.0], [0, 0, 0], [0, 0, 0]])
    model = LinearClassifier(weight, torch.tensor([0.0, 0, 0, 0, -1])).eval()
    x = torch.tensor([[0.9, 0.1, 0.2], [0.1, 0.8, 0.3]]).view(2, 1, 1, 3)
    y = torch.tensor([0, 2])
    # row 0: logits 0.9, 0.1, 0.4, 0, −1 → without class 0: 2, 1, 3, 4
    # row 1: logits 0.1, 0.8, 0.6, 0, −1 → without class 2: 1, 0, 3, 4
    assert APGDT(model, Linf(0.1), targets=9).target_table(x, y).tolist() == [
        [2, 1, 3, 4],
        [1, 0, 3, 4],
    ]
    assert APGDT(model, Linf(0.1), targets=2).target_table(x, y).tolist() == [[2, 1], [1, 0]]


def test_apgd_t_tries_targets_only_on_images_not_yet_broken():
    model = TinyCNN(seed=5).eval()
    gen = torch.Generator().manual_seed(1)
    x, y = torch.rand(24, 1, 8, 8, generator=gen), torch.randint(0, 10, (24,), generator=gen)
    steps, k = 5, 3
    result = APGDT(model, Linf(0.02), steps=steps, targets=k).run(x, y, batch_size=7)
    # A broken image stopped within the run that broke it; a robust one spent all k runs.
    assert bool((result.iterations[~result.success] == steps * k).all())
    assert bool((result.iterations[result.success] < steps * k).all())
    assert bool(result.success.any()) and not bool(result.success.all())
    with torch.no_grad():
        assert torch.equal(result.success, model(result.adversarial).argmax(1) != y)


def test_empty_batch():
    model = TinyCNN()
    for attack in (APGD(model, Linf(0.1)), APGDT(model, Linf(0.1))):
        result = attack.run(torch.zeros(0, 1, 4, 4), torch.zeros(0, dtype=torch.long))
        assert len(result) == 0


def test_describe_names_the_settings():
    d = APGDT(TinyCNN(), L2(0.5), steps=50, targets=3, seed=4).describe()
    assert d == d | {"attack": "apgd-t", "norm": "l2", "eps": 0.5, "steps": 50, "targets": 3}
    assert d["loss"] == "dlr-targeted" and d["rho"] == 0.75 and d["momentum"] == 0.75


# ------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("text", "cls", "loss", "steps"),
    [
        ("apgd linf 8/255", APGD, "ce", 100),
        ("APGD-CE linf 8/255 20", APGD, "ce", 20),
        ("apgd-dlr l2 0.5 100", APGD, "dlr", 100),
        ("apgd-t linf 0.1 100", APGDT, "dlr", 100),
    ],
)
def test_settings_build_apgd(text, cls, loss, steps):
    spec = AttackSpec.parse(text)
    attack = spec.build(TinyCNN(), seed=3, early_stop=False)
    assert type(attack) is cls and attack.loss == loss and attack.steps == steps
    assert attack.threat.eps == spec.eps and attack.seed == 3 and not attack.early_stop
    assert AttackSpec.parse(spec.key()) == spec


def test_fractions_and_their_round_trip():
    spec = AttackSpec.parse("apgd linf 8/255")
    assert spec.eps == 8 / 255 and spec.attack == "apgd" and spec.key() == "apgd linf 8/255"
    assert AttackSpec.parse("pgd l2 1/2 10").eps == 0.5
    assert AttackSpec.parse("pgd l2 1/2 10").key() == "pgd l2 0.5 10"
    assert spec.label() == "APGD-CE L∞ ε=0.0314"
    assert AttackSpec.parse("apgd-t l2 0.5 100").label() == "APGD-T-100 L2 ε=0.5"
    # without STEPS an APGD setting is the 100-iteration run
    same = AttackSpec.parse("apgd linf 8/255 100")
    assert spec.identity(784) == same.identity(784)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("apgd linf 8/0", "not a number"),
        ("apgd linf 8/x", "not a number"),
        ("apgd linf -8/255", "ε must be"),
        ("apgd l1 10 0", "steps ≥ 1"),
        ("apgdx linf 0.1", "unknown attack"),
    ],
)
def test_bad_apgd_settings(text, match):
    with pytest.raises(ConfigError, match=match):
        AttackSpec.parse(text)


class Probabilities(nn.Module):
    """A model whose outputs are probabilities, to check DLR reads them without error."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = TinyCNN(seed=7)
        self.num_classes = 10

    def forward(self, x):
        return self.inner(x).softmax(dim=1)


def test_dlr_attack_runs_on_probability_outputs():
    x, y = torch.rand(8, 1, 6, 6), torch.arange(8)
    result = APGD(Probabilities().eval(), Linf(0.3), steps=10, loss="dlr").run(x, y)
    assert bool(torch.isfinite(result.loss).all())
