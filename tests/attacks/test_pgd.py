"""PGD and FGSM: invariants, known optima on linear models, targets, restarts, hooks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from robustlens.attacks import FGSM, L1, L2, PGD, Linf
from robustlens.attacks.spec import AttackSpec
from robustlens.errors import ConfigError, NumericalError
from tests.attacks.tiny_models import LinearClassifier, NaNModel, TinyCNN
from tests.tolerances import float_tol

THREATS = {"linf": Linf, "l2": L2, "l1": L1}


def binary_linear(d: int = 12, seed: int = 0) -> tuple[LinearClassifier, torch.Tensor]:
    """Two classes; logit₁ − logit₀ = w·x + b. Returns the model and w."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(d, generator=gen)
    weight = torch.stack([torch.zeros(d), w])
    bias = torch.tensor([0.0, -float(w.sum()) * 0.5 - 3.0])  # at x = 0.5: margin −3 → class 0
    return LinearClassifier(weight, bias).eval(), w


@pytest.mark.parametrize(
    ("norm", "expected"),
    [
        ("linf", lambda w, eps: eps * w.sign()),
        ("l2", lambda w, eps: eps * w / w.norm()),
        ("l1", lambda w, eps: eps * w.sign() * (w.abs() == w.abs().max())),
    ],
)
def test_pgd_reaches_the_known_optimum_of_a_linear_model(norm, expected):
    # Maximising CE for label 0 maximises w·δ; the maximiser over the ball is known in closed
    # form for each norm (the box is not binding around x = 0.5 for these budgets).
    model, w = binary_linear()
    eps = {"linf": 0.05, "l2": 0.2, "l1": 0.3}[norm]
    x = torch.full((4, 1, 3, 4), 0.5)
    y = torch.zeros(4, dtype=torch.long)
    attack = PGD(model, THREATS[norm](eps), steps=50, step_size=eps / 5, early_stop=False)
    delta = (attack(x, y) - x).flatten(1)
    target = expected(w, eps).expand_as(delta)
    assert torch.allclose(delta, target, atol=1e-3)


def test_fgsm_is_one_signed_step_of_eps():
    model = TinyCNN().eval()
    x = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    y = torch.randint(0, 10, (16,), generator=torch.Generator().manual_seed(4))
    xr = x.clone().requires_grad_(True)
    grad = torch.autograd.grad(F.cross_entropy(model(xr), y, reduction="sum"), xr)[0]
    manual = (x + 0.1 * grad.sign()).clamp(0, 1)
    ours = FGSM(model, Linf(0.1)).run(x, y)
    with torch.no_grad():
        clean_wrong = model(x).argmax(1) != y
    # Early exit: an already misclassified input is returned unchanged.
    expected = torch.where(clean_wrong.view(-1, 1, 1, 1), x, manual)
    # x + 0.1·sign(g), projected on the ball and box: a few roundings of values in [0, 1]
    torch.testing.assert_close(ours.adversarial, expected, rtol=0, atol=float_tol(torch.float32))


@pytest.mark.parametrize("route", ["class", "spec"])
def test_fgsm_without_early_stop_steps_every_input(route):
    # Garaev et al. §4.1 compare clean and attacked representations for every image, so with
    # early_stop=False an input the model misclassifies already is stepped too. "spec" is the
    # route the lenses take (AttackSpec.build passes early_stop on).
    model = TinyCNN().eval()
    x = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    y = torch.randint(0, 10, (16,), generator=torch.Generator().manual_seed(4))
    xr = x.clone().requires_grad_(True)
    grad = torch.autograd.grad(F.cross_entropy(model(xr), y, reduction="sum"), xr)[0]
    with torch.no_grad():
        clean_wrong = model(x).argmax(1) != y
    assert clean_wrong.sum() >= 4 and (grad.flatten(1).abs().amax(1) > 0).all()
    if route == "class":
        attack = FGSM(model, Linf(0.1), early_stop=False)
    else:
        attack = AttackSpec("fgsm", "linf", 0.1).build(model, early_stop=False)
    assert attack.describe()["early_stop"] is False
    ours = attack.run(x, y)
    delta = (ours.adversarial - x).flatten(1)
    assert (delta.abs().amax(1) > 0).all()
    manual = (x + 0.1 * grad.sign()).clamp(0, 1)
    torch.testing.assert_close(ours.adversarial, manual, rtol=0, atol=float_tol(torch.float32))
    # With early exit (the default) the misclassified inputs stay where they are.
    stopped = AttackSpec("fgsm", "linf", 0.1).build(model).run(x, y).adversarial
    assert torch.equal(stopped[clean_wrong], x[clean_wrong])
    assert (stopped[~clean_wrong] - x[~clean_wrong]).flatten(1).abs().amax(1).gt(0).all()


@settings(max_examples=40, deadline=None)
@given(
    norm=st.sampled_from(list(THREATS)),
    eps=st.floats(0.0, 2.0),
    steps=st.integers(1, 4),
    targeted=st.booleans(),
    mode=st.sampled_from(["random", "next", "least-likely"]),
    restarts=st.integers(1, 2),
    seed=st.integers(0, 1000),
)
def test_pgd_output_obeys_ball_and_box(norm, eps, steps, targeted, mode, restarts, seed):
    model = TinyCNN(seed=1).eval()
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(6, 1, 6, 6, generator=gen)
    x[0] = 0.0  # images at the box corners
    x[1] = 1.0
    y = torch.randint(0, 10, (6,), generator=gen)
    threat = THREATS[norm](eps)
    attack = PGD(
        model,
        threat,
        steps=steps,
        targeted=targeted,
        target_mode=mode,
        restarts=restarts,
        seed=seed,
    )
    result = attack.run(x, y)
    adv = result.adversarial
    assert adv.shape == x.shape
    assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0
    assert bool(threat.contains(adv - x).all())
    assert torch.allclose(result.norms, threat.norms(adv - x))
    with torch.no_grad():
        pred = model(adv).argmax(1)
    if not targeted:
        # Success is exactly "the returned input is misclassified".
        assert torch.equal(result.success, pred != y)


def test_targets_by_mode():
    model = TinyCNN(seed=2).eval()
    x = torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    y = torch.arange(32) % 10
    attack = PGD(model, Linf(0.3), steps=10, targeted=True, target_mode="next")
    result = attack.run(x, y)
    with torch.no_grad():
        pred = model(result.adversarial).argmax(1)
    assert bool(result.success.any())
    assert torch.equal(pred[result.success], ((y + 1) % 10)[result.success])
    explicit = torch.full_like(y, 3)
    result = PGD(model, Linf(0.3), steps=10, targeted=True).run(x, y, explicit)
    with torch.no_grad():
        pred = model(result.adversarial).argmax(1)
    assert torch.equal(result.success, pred == 3)


def test_random_targets_never_equal_the_label():
    from robustlens.attacks.targets import random_targets

    y = torch.arange(1000) % 7
    t = random_targets(y, 7, torch.Generator().manual_seed(0))
    assert not bool((t == y).any())
    assert set(t.tolist()) == set(range(7))


def test_early_stop_spends_no_steps_on_fooled_samples():
    model, _ = binary_linear()
    x = torch.full((4, 1, 3, 4), 0.5)
    y = torch.tensor([1, 1, 0, 0])  # the first two are misclassified already
    result = PGD(model, Linf(0.01), steps=10, random_start=False).run(x, y)
    assert result.iterations[:2].tolist() == [0, 0]
    assert result.iterations[2:].tolist() == [10, 10]  # ε too small to fool these
    assert result.success.tolist() == [True, True, False, False]


def test_restarts_keep_each_samples_worst_case():
    gen = torch.Generator().manual_seed(0)
    model = LinearClassifier(torch.randn(10, 64, generator=gen), torch.zeros(10)).eval()
    x = torch.rand(200, 1, 8, 8, generator=gen)
    with torch.no_grad():
        y = model(x).argmax(1)  # all correctly classified at the start
    # A weak attack (one short step), so the random start matters and restarts help.
    kwargs = dict(steps=1, step_size=0.05, seed=7, early_stop=False)
    one = PGD(model, L2(0.2), restarts=1, **kwargs).run(x, y)
    many = PGD(model, L2(0.2), restarts=8, **kwargs).run(x, y)
    assert bool((many.success | ~one.success).all())  # never loses a success
    assert int(many.success.sum()) > int(one.success.sum())
    neither = ~one.success & ~many.success
    assert bool((many.loss[neither] >= one.loss[neither] - 1e-6).all())  # nor any loss


def test_custom_loss_hook_moves_toward_a_target_point():
    # Targeted with loss ‖x − t‖²: PGD descends it and ends at the projection of t on the ball.
    def distance(model, x, target):
        return (x - target).flatten(1).pow(2).sum(1)

    model = TinyCNN().eval()
    x = torch.full((3, 1, 4, 4), 0.5)
    t = torch.full((3, 1, 4, 4), 0.5)
    t[:, 0, 0, :] = 0.9
    attack = PGD(model, L2(0.2), steps=100, step_size=0.02, targeted=True, loss=distance)
    adv = attack(x, torch.zeros(3, dtype=torch.long), t)
    direction = (t - x) / (t - x).flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    assert torch.allclose(adv, x + 0.2 * direction, atol=2e-3)


def test_custom_loss_must_be_per_sample():
    attack = PGD(TinyCNN(), Linf(0.1), loss=lambda m, x, t: m(x).sum())
    with pytest.raises(ConfigError, match="one value per sample"):
        attack(torch.rand(2, 1, 6, 6), torch.zeros(2, dtype=torch.long))


@pytest.mark.parametrize("training", [True, False])
def test_attack_leaves_model_state_alone(training):
    model = TinyCNN()
    model.train(training)
    model.net[0].weight.requires_grad_(False)
    flags = [p.requires_grad for p in model.parameters()]
    PGD(model, Linf(0.1), steps=3)(torch.rand(4, 1, 6, 6), torch.zeros(4, dtype=torch.long))
    assert model.training is training
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())


def test_same_seed_same_result():
    model = TinyCNN().eval()
    x = torch.rand(8, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    y = torch.zeros(8, dtype=torch.long)
    a = PGD(model, L2(0.5), steps=3, seed=11)(x, y)
    b = PGD(model, L2(0.5), steps=3, seed=11)(x, y)
    assert torch.equal(a, b)


def test_bad_inputs_get_clear_errors():
    model = TinyCNN().eval()
    y = torch.zeros(2, dtype=torch.long)
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        PGD(model, Linf(0.1))(torch.rand(2, 1, 6, 6) * 3 - 1, y)
    with pytest.raises(ConfigError, match="labels"):
        PGD(model, Linf(0.1))(torch.rand(2, 1, 6, 6), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ConfigError, match="at least one step"):
        PGD(model, Linf(0.1), steps=0)
    with pytest.raises(ConfigError, match="Linf"):
        PGD(model, 0.1)  # type: ignore[arg-type]
    with pytest.raises(NumericalError, match="NaN"):
        PGD(NaNModel(), Linf(0.1))(torch.rand(2, 1, 2, 2), y)


def test_attacks_work_inside_a_callers_no_grad_block():
    from robustlens.attacks import DeepFool

    torch.manual_seed(0)
    model = TinyCNN().eval()
    x, y = torch.rand(6, 1, 8, 8), torch.randint(0, 10, (6,))
    expected = PGD(model, Linf(0.1), 3, seed=1).run(x, y).adversarial
    with torch.no_grad():
        inside = PGD(model, Linf(0.1), 3, seed=1).run(x, y).adversarial
        DeepFool(model, "l2", steps=2).run(x, y)
    assert torch.equal(inside, expected)
