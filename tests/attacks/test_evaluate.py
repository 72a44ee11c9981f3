"""Robust accuracy and ε sweeps, checked on linear models with known robustness radii."""

from __future__ import annotations

import pytest
import torch

from robustlens.attacks import L2, PGD, DeepFool, Linf, epsilon_sweep, robust_accuracy
from robustlens.errors import ConfigError
from tests.attacks.test_minimal_norm import binary_linear

MARGINS = torch.tensor([0.1, 0.3, 0.6, 1.0, 1.5, 2.0])


def test_deepfool_sweep_matches_the_exact_radii():
    model, w, x, y = binary_linear(MARGINS)
    radius = MARGINS / w.norm()  # exact L2 distance to the boundary
    epsilons = [0.0, 0.05, 0.1, 0.2, 0.4, 0.8]
    sweep = epsilon_sweep(model, (x, y), DeepFool(model, "l2", overshoot=0.0), epsilons)
    for i, eps in enumerate(epsilons):
        expected = radius > eps * (1 + 1e-3)
        assert torch.equal(sweep.robust[i], expected), eps
    frame = sweep.to_frame()
    assert list(frame["eps"]) == epsilons
    assert list(frame["robust_accuracy"]) == sorted(frame["robust_accuracy"], reverse=True)


def test_pgd_sweep_agrees_with_the_radii_of_a_linear_model():
    # For a linear model PGD-L∞ finds the optimum, so robust ⇔ ℓ∞ radius > ε.
    model, w, x, y = binary_linear(MARGINS)
    radius = MARGINS / w.abs().sum()
    epsilons = [0.01, 0.02, 0.05, 0.1]
    sweep = epsilon_sweep(model, (x, y), lambda e: PGD(model, Linf(e), steps=20), epsilons)
    for i, eps in enumerate(epsilons):
        assert torch.equal(sweep.robust[i], radius > eps), eps
    assert len(sweep.attacks) == len(epsilons)


def test_robust_accuracy_counts_misclassified_inputs_as_not_robust():
    model, _, x, y = binary_linear(MARGINS)
    y = y.clone()
    y[0] = 1  # wrong label for the first sample
    result = robust_accuracy(model, (x, y), PGD(model, L2(1e-6), steps=1), batch_size=4)
    assert result.clean_correct.tolist() == [False] + [True] * 5
    assert result.robust.tolist() == [False] + [True] * 5
    assert result.clean_accuracy == pytest.approx(5 / 6)
    metrics = result.as_metrics()
    assert metrics[1]["attack"]["norm"] == "l2" and metrics[1]["attack"]["steps"] == 1


def test_minimal_norm_attacks_need_a_budget():
    model, _, x, y = binary_linear(MARGINS)
    with pytest.raises(ConfigError, match="budget"):
        robust_accuracy(model, (x, y), DeepFool(model))
    with pytest.raises(ConfigError, match="at least one"):
        epsilon_sweep(model, (x, y), DeepFool(model), [])


def test_within_budget_allows_only_the_rounding_of_a_float32_norm():
    from robustlens.attacks.evaluate import within_budget

    d, eps = 3 * 32 * 32, 0.5
    gen = torch.Generator().manual_seed(0)
    # Perturbations scaled to norm eps in float64, then rounded to float32 and measured there:
    # their float32 norms scatter around eps by rounding alone.
    delta = torch.randn(256, d, generator=gen, dtype=torch.float64)
    delta = (delta * eps / delta.norm(dim=1, keepdim=True)).float()
    norms = delta.norm(dim=1)
    assert bool((norms != eps).any())  # the rounding is really there
    assert bool(within_budget(norms, eps, d).all())
    # A perturbation 0.1 % beyond the budget is never within it, nor is one a hair beyond
    # the slack the rounding can explain.
    assert not bool(within_budget(norms * 1.001, eps, d).any())
    slack = 4 * torch.finfo(torch.float32).eps * d**0.5
    assert not bool(within_budget(torch.tensor([eps * (1 + 2 * slack)]), eps, d).any())
