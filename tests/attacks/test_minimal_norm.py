"""C&W L2 and DeepFool against the exact minimal perturbations of linear models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robustlens.attacks import CarliniWagnerL2, DeepFool
from robustlens.errors import ConfigError
from tests.attacks.tiny_models import LinearClassifier, TinyCNN


def binary_linear(margins: torch.Tensor, d: int = 12, seed: int = 0):
    """Images at 0.5 whose logit gap (class 1 − class 0) is −margin: all predicted 0.

    The smallest perturbation that flips sample i has ‖δ‖₂ = margin_i/‖w‖₂ and
    ‖δ‖∞ = margin_i/‖w‖₁ (distance to the hyperplane w·δ = margin_i).
    """
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(d, generator=gen)
    weight = torch.stack([torch.zeros(d), w])
    bias = torch.tensor([0.0, -float(w.sum()) * 0.5])
    model = LinearClassifier(weight, bias).eval()
    n = margins.numel()
    # Shift each image along −w so its gap is −margin, staying well inside the box.
    x = 0.5 - margins.view(n, 1) * w.view(1, d) / w.pow(2).sum()
    return model, w, x.view(n, 1, 3, 4), torch.zeros(n, dtype=torch.long)


MARGINS = torch.tensor([0.2, 0.5, 1.0, 1.5])


def test_deepfool_l2_finds_the_hyperplane_in_one_step():
    model, w, x, y = binary_linear(MARGINS)
    result = DeepFool(model, "l2", overshoot=0.02).run(x, y)
    exact = (MARGINS + 1e-4) / w.norm()
    assert result.success.all()
    assert result.iterations.tolist() == [1, 1, 1, 1]
    # The overshoot multiplies the total perturbation: ‖δ‖ = 1.02 × the exact distance.
    assert torch.allclose(result.norms, 1.02 * exact, rtol=1e-4)


def test_deepfool_linf_uses_the_dual_norm():
    model, w, x, y = binary_linear(MARGINS)
    result = DeepFool(model, "linf", overshoot=0.0).run(x, y)
    exact = (MARGINS + 1e-4) / w.abs().sum()
    assert result.success.all()
    assert torch.allclose(result.norms, exact, rtol=1e-4)


def test_deepfool_picks_the_closest_of_several_boundaries():
    # Three classes: from the origin region of class 0, class 2's boundary is nearer.
    weight = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    bias = torch.tensor([0.0, -1.0, -1.0])
    model = LinearClassifier(weight, bias).eval()
    x = torch.zeros(1, 1, 1, 2) + 0.0
    result = DeepFool(model, "l2", overshoot=0.0, candidates=None).run(x, torch.tensor([0]))
    assert model(result.adversarial).argmax(1).item() == 2
    assert result.norms.item() == pytest.approx(0.5, rel=1e-3)


class Ridge(nn.Module):
    """Two classes on 2-pixel images: z₁ − z₀ = g(x) = (x₂ − 0.9) − 4(x₁ − 0.9)², a ridge
    along x₁ = 0.9. From x = (0.8, 0.2) the first DeepFool step pushes x₁ past 1 (clipped);
    beyond the ridge the gradient's x₁ part turns negative and pulls it back."""

    num_classes = 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = x.flatten(1)
        g = (f[:, 1] - 0.9) - 4.0 * (f[:, 0] - 0.9) ** 2
        return torch.stack([torch.zeros_like(g), g], dim=1)


def two_class_deepfool(model, x, label, overshoot, *, on_total, steps=50):
    """Plain L2 DeepFool for two classes, written out: r_i = (|g| + 1e-4)/‖∇g‖² · ∇g at the
    current point, which is clip(x + (1 + η)·Σ r_i) (``on_total``) or clip(x_i + (1 + η)·r_i)
    (overshoot and clip applied to each step). Returns the final point and the steps taken."""
    point, total, taken = x.clone(), torch.zeros_like(x), 0
    while taken < steps:
        p = point.clone().requires_grad_(True)
        z = model(p)[0]
        if int(z.argmax()) != label:
            break
        g = z[1 - label] - z[label]
        (w,) = torch.autograd.grad(g, p)
        r = (g.detach().abs() + 1e-4) / w.pow(2).sum() * w
        if on_total:
            total = total + r
            point = (x + (1 + overshoot) * total).clamp(0, 1)
        else:
            point = (point + (1 + overshoot) * r).clamp(0, 1)
        taken += 1
    return point.detach(), taken


def test_deepfool_overshoots_the_total_perturbation_not_each_step():
    """Where the box clips a step that a later step undoes, the two ways of applying the
    overshoot part: x_adv = clip(x + (1 + η)·Σ r_i) keeps the clipped part of r_1 in the total,
    a per-step clip(x_i + (1 + η)·r_i) loses it. DeepFool must follow the first (its module
    docstring; Foolbox's L2DeepFoolAttack does the same)."""
    model = Ridge().eval()
    x = torch.tensor([0.8, 0.2]).view(1, 1, 1, 2)
    total, total_steps = two_class_deepfool(model, x, 0, 0.02, on_total=True)
    per_step, per_step_steps = two_class_deepfool(model, x, 0, 0.02, on_total=False)
    assert total_steps >= 3 and per_step_steps >= 3  # several iterations, as designed
    assert (total - per_step).abs().max() > 0.05  # the two variants end far apart
    result = DeepFool(model, "l2", overshoot=0.02).run(x, torch.tensor([0]))
    assert result.success.all() and result.iterations.item() == total_steps
    torch.testing.assert_close(result.adversarial, total, rtol=0, atol=1e-5)
    assert result.norms.item() == pytest.approx(float((total - x).norm()), rel=1e-5)
    with torch.no_grad():
        assert model(result.adversarial).argmax(1).item() == 1


def test_cw_l2_reaches_the_minimal_perturbation_but_never_below_it():
    model, w, x, y = binary_linear(MARGINS)
    attack = CarliniWagnerL2(model, binary_search_steps=9, steps=300, learning_rate=0.01)
    result = attack.run(x, y)
    exact = MARGINS / w.norm()
    assert result.success.all()
    assert bool((result.norms >= exact * (1 - 1e-4)).all())  # cannot beat the optimum
    assert bool((result.norms <= exact * 1.05).all())  # and gets within 5 % of it
    with torch.no_grad():
        assert bool((model(result.adversarial).argmax(1) == 1).all())
    assert float(result.adversarial.min()) >= 0 and float(result.adversarial.max()) <= 1


def test_cw_binary_search_grows_c_until_it_succeeds():
    model, _, x, y = binary_linear(torch.tensor([1.0]))
    short = CarliniWagnerL2(model, binary_search_steps=1, steps=50, initial_const=1e-6).run(x, y)
    assert not short.success.any() and torch.isinf(short.norms).all()
    long = CarliniWagnerL2(model, binary_search_steps=9, steps=50, initial_const=1e-6).run(x, y)
    assert long.success.all() and torch.isfinite(long.norms).all()


def test_cw_targeted_reaches_the_target():
    model = TinyCNN(seed=4).eval()
    x = torch.rand(8, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).argmax(1)
    targets = (y + 1) % 10
    result = CarliniWagnerL2(model, steps=100, targeted=True).run(x, y, targets)
    with torch.no_grad():
        pred = model(result.adversarial).argmax(1)
    assert torch.equal(pred[result.success], targets[result.success])


def test_bad_settings():
    model = TinyCNN()
    with pytest.raises(ConfigError):
        DeepFool(model, "l1")
    with pytest.raises(ConfigError):
        CarliniWagnerL2(model, steps=0)
