"""The inner maximisation and loss of each training method, checked against the papers'
formulas computed here with autograd; TRADES and MART train a step on the CPU."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from robustlens.train import Recipe, train_model
from robustlens.train.losses import kl_per_sample, mart_loss, trades_loss
from robustlens.train.methods import TrainingAttack, batch_loss
from tests.tolerances import close
from tests.train.helpers import FAST, small_model, stripes


def interior_batch(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Stripes images squeezed into [0.3, 0.7]: a noise of 0.2 and a step of 0.1 stay in [0, 1],
    so the box never clips and the expected points are plain sums."""
    data = stripes(n, 3)
    return 0.3 + 0.4 * data.images, data.labels


def boxed(x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """x + δ as the engine forms it: δ kept inside the box, (x + δ).clamp(0, 1) − x, so the
    gradient below is taken at the very same point (a sign never flips on a rounding)."""
    return x + ((x + delta).clamp(0, 1) - x)


def input_gradient(model, x, objective) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(objective(model(x)).sum(), x)
    return grad


def test_n_fgsm_steps_eps_from_noise_of_2_eps_and_does_not_project():
    """de Jorge et al. 2022: x' = x + η + α·sign(∇ CE(x + η)), η ~ U[−kε, kε], α = ε, k = 2,
    no projection onto the ε-ball."""
    model = small_model(4).eval()
    x, y = interior_batch()
    recipe = Recipe(method="n-fgsm", eps=0.1)
    adv = TrainingAttack(model, recipe, 0.1).perturb(x, y, torch.Generator().manual_seed(5))
    u = torch.rand(x.shape, generator=torch.Generator().manual_seed(5))
    eta = (2 * u - 1) * 0.2
    point = boxed(x, boxed(x, eta) - x)  # drawn inside the box, then started from
    grad = input_gradient(model, point, lambda z: F.cross_entropy(z, y, reduction="none"))
    torch.testing.assert_close(adv, point + 0.1 * grad.sign(), **close(torch.float32, 4))
    delta = (adv - x).abs()
    assert float(delta.max()) <= 0.3 * (1 + 1e-6)
    assert float((delta > 0.1 + 1e-6).float().mean()) > 0.25  # far outside the ε-ball


def test_n_fgsm_noise_and_step_follow_the_recipe():
    recipe = Recipe(method="n-fgsm", eps=0.2, noise=0.5, step_size=0.1)
    engine = TrainingAttack(small_model(), recipe, 0.1).engine()
    # the engine's ball holds the noise (0.5·0.1) and the step (0.1·0.1/0.2): k·ε + α
    assert (engine.threat.eps, engine.steps, engine.step_size) == (pytest.approx(0.1), 1, 0.05)
    default = TrainingAttack(small_model(), Recipe(method="n-fgsm", eps=0.1), 0.1).engine()
    assert (default.threat.eps, default.step_size) == (pytest.approx(0.3), 0.1)  # (k + 1)·ε, ε


def test_trades_ascends_the_kl_from_a_small_gaussian_start():
    """Zhang et al. 2019, Alg. 1, one step: x' = Π(x + δ₀ + α·sign(∇ KL(f(x) ‖ f(x + δ₀)))),
    δ₀ = 0.001·N(0, I), α = ε/4; here ε = 0.4, so the step (0.1) stays inside the ball."""
    model = small_model(4).eval()
    x, y = interior_batch()
    recipe = Recipe(method="trades", eps=0.4, steps=1)
    assert recipe.attack_step_size(0.4) == pytest.approx(0.1)
    adv = TrainingAttack(model, recipe, 0.4).perturb(x, y, torch.Generator().manual_seed(2))
    start = 0.001 * torch.randn(x.shape, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        clean = model(x)
    point = boxed(x, start)
    grad = input_gradient(model, point, lambda z: kl_per_sample(clean, z))
    torch.testing.assert_close(adv, point + 0.1 * grad.sign(), **close(torch.float32, 4))


def test_trades_and_mart_take_10_steps_of_a_quarter_eps_and_stay_in_the_ball():
    model = small_model(4).eval()
    x, y = interior_batch()
    for method in ("trades", "mart"):
        recipe = Recipe(method=method, eps=0.1)
        engine = TrainingAttack(model, recipe, 0.1).engine()
        assert (engine.steps, engine.step_size, engine.threat.eps) == (10, 0.025, 0.1)
        adv = TrainingAttack(model, recipe, 0.1).perturb(x, y, torch.Generator().manual_seed(0))
        assert float((adv - x).abs().max()) <= 0.1 * (1 + 1e-6)
        assert float((adv - x).abs().max()) > 0.05  # it moved


def test_mart_attacks_the_cross_entropy_from_a_uniform_start():
    """MART's x' is PGD on the cross-entropy (Wang et al. 2020): the cross-entropy at x' is
    above the clean one for every image (10 steps against an untrained model)."""
    model = small_model(4).eval()
    x, y = interior_batch()
    adv = TrainingAttack(model, Recipe(method="mart", eps=0.1), 0.1).perturb(
        x, y, torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        before = F.cross_entropy(model(x), y, reduction="none")
        after = F.cross_entropy(model(adv), y, reduction="none")
    assert bool((after > before).all())


def test_each_method_minimises_its_own_loss():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2))
    x, y = interior_batch()
    x_adv = (x + 0.05).clamp(0, 1)
    clean, adv = model(x), model(x_adv)
    expected = {
        "pgd": F.cross_entropy(adv, y),
        "fgsm-rs": F.cross_entropy(adv, y),
        "n-fgsm": F.cross_entropy(adv, y),
        "trades": trades_loss(clean, adv, y, 3.0),
        "mart": mart_loss(clean, adv, y, 3.0),
    }
    for method, want in expected.items():
        beta = {"beta": 3.0} if method in ("trades", "mart") else {}
        recipe = Recipe(method=method, eps=0.1, **beta)
        loss, logits = batch_loss(model, recipe, x, x_adv, y)
        assert loss.item() == want.item(), method
        assert torch.equal(logits, adv)
    natural, logits = batch_loss(model, Recipe(method="trades", eps=0.1), x, None, y)
    assert natural.item() == F.cross_entropy(clean, y).item() and torch.equal(logits, clean)


@pytest.mark.parametrize("method", ["trades", "mart"])
def test_trades_and_mart_train_on_the_cpu(tmp_path, method):
    """One epoch of two steps: the weights move, the loss is finite, the card names the method
    and its β, and the final evaluation is PGD at the training ε."""
    recipe = dataclasses.replace(
        FAST, method=method, eps=0.1, steps=2, epochs=1, beta=4.0, eval_n=16, eval_steps=2
    )
    model = small_model()
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    result = train_model(model, stripes(64, 0), recipe, tmp_path, eval_set=stripes(16, 1))
    after = torch.cat([p.detach().flatten() for p in result.model.parameters()])
    assert float((after - before).abs().max()) > 0
    (record,) = result.history
    assert torch.isfinite(torch.tensor(record["train_loss"])) and record["train_loss"] > 0
    assert (result.card.recipe["method"], result.card.recipe["beta"]) == (method, 4.0)
    assert "overfitting" not in result.card.recipe  # multi-step: no collapse check
    robust = result.card.metric("robust_accuracy")
    assert robust["attack"]["steps"] == 2 and robust["attack"]["eps"] == 0.1
