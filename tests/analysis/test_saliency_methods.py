"""Saliency methods against closed forms: integrated gradients with few steps is a
Gauss–Legendre quadrature of the gradient, SmoothGrad of a cubic has a known expectation."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from robustlens.analysis.saliency import attribute
from tests.tolerances import close


def smooth_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double()


def gradient_at(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(net(x).gather(1, y[:, None]).sum(), x)
    return g


# Gauss–Legendre nodes and weights on [0, 1] (Captum's default rule for integrated gradients)
GAUSS = {
    1: ([0.5], [1.0]),
    2: ([0.5 - 0.5 / math.sqrt(3), 0.5 + 0.5 / math.sqrt(3)], [0.5, 0.5]),
}


@pytest.mark.parametrize("multiply", [False, True])
@pytest.mark.parametrize("steps", [1, 2])
def test_integrated_gradients_use_the_requested_number_of_steps(steps, multiply):
    """Eq. 17: IG(x) = Σ_k w_k ∇f(α_k x) from a zero baseline (times x in the multiplied
    form); with 1 or 2 nodes it differs from the 50-step default by far more than rounding."""
    net = smooth_net()
    x = torch.rand(5, 1, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2, 0, 1])
    nodes, weights = GAUSS[steps]
    expected = sum(w * gradient_at(net, a * x, y) for a, w in zip(nodes, weights, strict=True))
    expected = x * expected if multiply else expected
    got = attribute(net, x, y, "integrated", steps=steps, multiply_by_inputs=multiply)
    torch.testing.assert_close(got, expected, **close(torch.float64, 6 * steps, ulps=64))
    default = attribute(net, x, y, "integrated", multiply_by_inputs=multiply)
    assert (default - got).abs().max() > 1e-6


class Quadratic(nn.Module):
    """Logit t is w_t·x + Σ a_t x² (float64): ∇f_t(αx) = w_t + 2α a_t x, so Eq. 17's integral
    from the zero baseline is w_t + a_t x exactly, and the multiplied form x (w_t + a_t x)."""

    def __init__(self, w: torch.Tensor, a: torch.Tensor) -> None:
        super().__init__()
        self.w, self.a = nn.Parameter(w), nn.Parameter(a)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        return flat @ self.w.T + (flat**2) @ self.a.T


def test_integrated_gradients_follow_eq_17_without_the_input_factor():
    gen = torch.Generator().manual_seed(4)
    w = torch.randn(3, 8, dtype=torch.float64, generator=gen)
    x = torch.rand(6, 2, 2, 2, dtype=torch.float64, generator=gen)
    y = torch.tensor([0, 1, 2, 2, 1, 0])
    # a linear model: the map is the label's weight row, whatever the image
    linear = Quadratic(w, torch.zeros_like(w))
    got = attribute(linear, x, y, "integrated", steps=5)
    torch.testing.assert_close(got.flatten(1), w[y], **close(torch.float64, 5))
    # quadratic: w_t + a_t·x (the Gauss–Legendre rule integrates the linear-in-α gradient
    # exactly); the multiplied form is that times x and sums to f_t(x) − f_t(0)
    a = torch.randn(3, 8, dtype=torch.float64, generator=gen)
    quadratic = Quadratic(w, a)
    expected = w[y] + a[y] * x.flatten(1)
    got = attribute(quadratic, x, y, "integrated", steps=5)
    torch.testing.assert_close(got.flatten(1), expected, **close(torch.float64, 10, scale=4))
    usual = attribute(quadratic, x, y, "integrated", steps=5, multiply_by_inputs=True)
    torch.testing.assert_close(
        usual.flatten(1), x.flatten(1) * expected, **close(torch.float64, 10, scale=4)
    )
    with torch.no_grad():
        gap = quadratic(x).gather(1, y[:, None]).squeeze(1)  # f_t(0) = 0
    torch.testing.assert_close(usual.flatten(1).sum(1), gap, **close(torch.float64, 80, scale=8))


class Cubic(nn.Module):
    """Logit 0 is −Σ x³ (gradient −3x²), logit 1 is Σ x."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Linear(1, 1)  # gives the model a parameter (and so a device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        return torch.stack([-(flat**3).sum(1), flat.sum(1)], dim=1)


def test_smoothgrad_averages_gradients_at_noisy_inputs_of_the_given_spread():
    """E[−3(x + ε)²] = −3x² − 3σ² for ε ~ N(0, σ²), σ = noise × the input range 1. With 400
    samples the per-pixel mean has standard error 3·√(4x²σ² + 2σ⁴)/20 ≤ 0.05 and the mean
    over 64 pixels one eighth of that."""
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    y = torch.zeros(2, dtype=torch.long)
    net = Cubic().double()
    sigma = 0.15
    got = attribute(net, x, y, "smoothgrad", samples=400, seed=5)
    residual = got - (-3 * x**2 - 3 * sigma**2)
    assert float(residual.mean()) == pytest.approx(0.0, abs=4 * 0.05 / 8 / math.sqrt(2))
    assert float(residual.std()) < 0.06  # one sample's spread is about 0.5
    wide = attribute(net, x, y, "smoothgrad", samples=400, noise=0.3, seed=5)
    assert float((wide - (-3 * x**2 - 3 * 0.3**2)).mean()) == pytest.approx(0.0, abs=0.04)


def test_batches_give_the_same_maps_and_the_global_generator_is_left_alone():
    net = smooth_net()
    x = torch.rand(5, 1, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    y = torch.tensor([2, 1, 0, 0, 1])
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    for method in ("vanilla", "integrated", "loss"):
        whole = attribute(net, x, y, method, steps=3)
        parts = attribute(net, x, y, method, steps=3, batch=2)
        assert parts.shape == x.shape
        torch.testing.assert_close(parts, whole, **close(torch.float64, 24))
    noisy = attribute(net, x, y, "smoothgrad", samples=3, batch=2, seed=9)
    assert noisy.shape == x.shape
    assert torch.equal(torch.random.get_rng_state(), state)
    np.testing.assert_array_equal(
        attribute(net, x, y, "vanilla").numpy(), gradient_at(net, x, y).numpy()
    )


def relu_net() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3)).double()


@pytest.mark.parametrize("method", ["vanilla", "loss", "guided", "smoothgrad", "integrated"])
def test_methods_run_without_captums_warnings(method):
    """Captum warns about inputs without requires_grad and about module backward hooks; the
    maps are right regardless, so those notes are silenced (and only those)."""
    x = torch.rand(3, 1, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = attribute(relu_net(), x, y, method, samples=2, steps=2)
    assert out.shape == x.shape and out.dtype == torch.float64


def test_documented_defaults():
    """noise 0.15, 50 SmoothGrad samples, 50 integration steps, seed 0."""
    net = smooth_net()
    x = torch.rand(2, 1, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    y = torch.tensor([1, 2])
    smooth = attribute(net, x, y, "smoothgrad", noise=0.15, samples=50, seed=0)
    torch.testing.assert_close(attribute(net, x, y, "smoothgrad"), smooth, rtol=0, atol=0)
    assert not torch.equal(attribute(net, x, y, "smoothgrad", samples=49), smooth)
    assert not torch.equal(attribute(net, x, y, "smoothgrad", noise=0.16), smooth)
    integrated = attribute(net, x, y, "integrated", steps=50)
    torch.testing.assert_close(attribute(net, x, y, "integrated"), integrated, rtol=0, atol=0)
    assert not torch.equal(attribute(net, x, y, "integrated", steps=49), integrated)
