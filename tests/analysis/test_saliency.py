"""Sensitivity maps (Itazuri et al. App. A) against hand-computed gradients and known cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from torch import nn

from robustlens.analysis.saliency import (
    attribute,
    cascading_randomization,
    check_guided_backprop,
    edge_alignment,
    high_frequency_fraction,
    map_similarity,
    randomizable_layers,
    rowwise_spearman,
)
from robustlens.errors import ConfigError
from tests.lenses.helpers import TOY, brightness_images, trained_cnn

INFO = TOY
DATA = brightness_images(INFO, 12, seed=2)


def autograd_gradient(net, x, fn):
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(fn(net(x)).sum(), x)
    return g


def test_vanilla_and_loss_gradients_are_the_autograd_gradients():
    net = trained_cnn(INFO)
    x, y = DATA.images, DATA.labels
    vanilla = attribute(net, x, y, "vanilla")
    expected = autograd_gradient(net, x, lambda z: z.gather(1, y[:, None]))
    torch.testing.assert_close(vanilla, expected)
    loss = attribute(net, x, y, "loss")
    expected = autograd_gradient(net, x, lambda z: F.cross_entropy(z, y, reduction="none"))
    torch.testing.assert_close(loss, expected)


def test_guided_backprop_clips_negative_gradients_at_every_relu():
    # one hidden ReLU layer: guided = W1ᵀ · (1[h > 0] · max(W2ᵀ e_y, 0))
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3)).eval()
    x = torch.rand(5, 1, 2, 2)
    y = torch.tensor([0, 1, 2, 0, 1])
    w1, b1, w2 = net[1].weight, net[1].bias, net[3].weight
    with torch.no_grad():
        active = (x.flatten(1) @ w1.T + b1 > 0).float()
        expected = ((w2[y] * active).clamp_min(0) @ w1).view_as(x)
    torch.testing.assert_close(attribute(net, x, y, "guided"), expected)


def test_integrated_gradients_complete_the_logit_difference():
    net = trained_cnn(INFO)
    x, y = DATA.images[:4], DATA.labels[:4]
    ig = attribute(net, x, y, "integrated", steps=200, multiply_by_inputs=True)
    with torch.no_grad():
        gap = net(x).gather(1, y[:, None]).squeeze(1) - net(torch.zeros_like(x))[:, y].diag()
    torch.testing.assert_close(ig.flatten(1).sum(1), gap, rtol=0.02, atol=0.02)


def test_smoothgrad_is_seeded_and_averages_noisy_gradients():
    net = trained_cnn(INFO)
    x, y = DATA.images[:3], DATA.labels[:3]
    a = attribute(net, x, y, "smoothgrad", samples=20, seed=1)
    torch.testing.assert_close(a, attribute(net, x, y, "smoothgrad", samples=20, seed=1))
    assert not torch.allclose(a, attribute(net, x, y, "smoothgrad", samples=20, seed=2))
    # with almost no noise it is the vanilla gradient
    tiny = attribute(net, x, y, "smoothgrad", samples=4, noise=1e-7)
    torch.testing.assert_close(tiny, attribute(net, x, y, "vanilla"), rtol=1e-3, atol=1e-4)


def test_unknown_method_is_refused():
    with pytest.raises(ConfigError, match="unknown saliency method"):
        attribute(trained_cnn(INFO), DATA.images, DATA.labels, "gradcam")


def test_functional_relus_are_refused_for_guided_backprop():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 2)

        def forward(self, x):
            return self.b(F.relu(self.a(x.flatten(1))))

    with pytest.raises(ConfigError, match="as functions"):
        check_guided_backprop(Functional(), torch.rand(2, 1, 2, 2))
    linear = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(ConfigError, match="0 as modules"):
        check_guided_backprop(linear, torch.rand(2, 1, 2, 2))
    assert check_guided_backprop(trained_cnn(INFO), DATA.images) == 2


def test_high_frequency_fraction_of_known_patterns():
    n = 16
    yy, xx = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    checker = ((yy + xx) % 2).double().view(1, 1, n, n)  # all energy at Nyquist
    slow = torch.cos(2 * torch.pi * xx / n).double().view(1, 1, n, n)  # 1/16 cycle per pixel
    fractions = high_frequency_fraction(torch.cat([checker, slow]), cutoff=0.5)
    np.testing.assert_allclose(fractions, [1.0, 0.0], atol=1e-12)
    assert np.isnan(high_frequency_fraction(torch.ones(1, 1, 4, 4)))[0]


def test_rowwise_spearman_matches_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 30)), rng.normal(size=(4, 30))
    b[1] = a[1] ** 3  # monotone: ρ = 1
    got = rowwise_spearman(a, b)
    for i in range(4):
        assert got[i] == pytest.approx(spearmanr(a[i], b[i]).statistic)
    assert got[1] == pytest.approx(1.0)


def test_edge_alignment_is_high_for_a_map_of_the_edges():
    from robustlens.data.probes import edge_map

    x = DATA.images[:3]
    assert np.all(edge_alignment(edge_map(x), x) > 0.99)


def test_map_similarity_of_identical_and_unrelated_maps():
    torch.manual_seed(0)
    a = torch.rand(3, 1, 12, 12)
    rho, ssim = map_similarity(a, a.clone())
    np.testing.assert_allclose(rho, 1.0)
    np.testing.assert_allclose(ssim, 1.0, atol=1e-5)
    rho, ssim = map_similarity(a, torch.rand(3, 1, 12, 12))
    assert np.all(np.abs(rho) < 0.4) and np.all(ssim < 0.5)


def test_cascading_randomization_goes_top_down_and_leaves_the_model_alone():
    net = trained_cnn(INFO)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x, y = DATA.images[:6], DATA.labels[:6]
    steps = cascading_randomization(net, x, y, lambda m: attribute(m, x, y, "vanilla"))
    assert [s[0] for s in steps] == randomizable_layers(net) == ["linear", "block2.0", "block1.0"]
    # gradient maps depend on the weights: with everything random they no longer match
    assert np.nanmean(steps[-1][1]) < 0.9
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, before[k])
