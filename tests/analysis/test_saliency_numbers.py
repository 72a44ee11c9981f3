"""The numbers that compare saliency maps (Itazuri et al. 2019; Adebayo et al. 2018) against
numpy/scipy references, and the cascading randomisation step by step."""

from __future__ import annotations

import kornia
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from torch import nn

from robustlens.analysis.saliency import (
    cascading_randomization,
    check_guided_backprop,
    edge_alignment,
    high_frequency_fraction,
    map_similarity,
    randomizable_layers,
    rowwise_spearman,
)
from robustlens.errors import ConfigError


def reference_high_fraction(maps: np.ndarray, cutoff: float) -> np.ndarray:
    x = maps - maps.mean(axis=(2, 3), keepdims=True)
    power = (np.abs(np.fft.fft2(x)) ** 2).sum(axis=1)
    h, w = power.shape[1:]
    radius = np.sqrt(np.fft.fftfreq(h)[:, None] ** 2 + np.fft.fftfreq(w)[None, :] ** 2) / 0.5
    return (power * (radius > cutoff)).sum(axis=(1, 2)) / power.sum(axis=(1, 2))


@pytest.mark.parametrize("cutoff", [0.2, 0.5, 0.8])
def test_high_frequency_fraction_matches_numpy(cutoff):
    maps = np.random.default_rng(0).standard_normal((4, 3, 6, 10))
    got = high_frequency_fraction(torch.from_numpy(maps).float(), cutoff=cutoff)
    want = reference_high_fraction(maps.astype(np.float32).astype(np.float64), cutoff)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_high_frequency_fraction_default_cutoff_is_half_nyquist():
    maps = torch.from_numpy(np.random.default_rng(1).standard_normal((2, 1, 8, 8)))
    np.testing.assert_array_equal(
        high_frequency_fraction(maps), high_frequency_fraction(maps, cutoff=0.5)
    )


def test_rowwise_spearman_with_ties_and_constant_rows():
    a = np.array([[1.0, 2.0, 2.0, 3.0, 5.0], [4.0, 4.0, 4.0, 4.0, 4.0], [3.0, 1.0, 2.0, 5.0, 4.0]])
    b = np.array([[2.0, 1.0, 1.0, 7.0, 9.0], [1.0, 2.0, 3.0, 4.0, 5.0], [5.0, 4.0, 3.0, 2.0, 1.0]])
    got = rowwise_spearman(a, b)
    assert got[0] == pytest.approx(spearmanr(a[0], b[0]).statistic, rel=1e-12)
    assert np.isnan(got[1])
    assert got[2] == pytest.approx(spearmanr(a[2], b[2]).statistic, rel=1e-12)


def reference_similarity(a: torch.Tensor, b: torch.Tensor, window: int):
    ma = a.abs().sum(dim=1).double()
    mb = b.abs().sum(dim=1).double()
    n = a.shape[0]
    rho = [spearmanr(ma[i].ravel(), mb[i].ravel()).statistic for i in range(n)]
    ta = (ma / ma.flatten(1).amax(dim=1).view(-1, 1, 1)).unsqueeze(1)
    tb = (mb / mb.flatten(1).amax(dim=1).view(-1, 1, 1)).unsqueeze(1)
    ssim = kornia.metrics.ssim(ta, tb, window_size=window).flatten(1).mean(dim=1).numpy()
    return np.array(rho), ssim


@pytest.mark.parametrize(
    ("size", "window"), [(8, 3), (12, 3), (20, 5), (28, 7), (40, 11), (44, 11), (50, 11)]
)
def test_map_similarity_is_spearman_and_ssim_of_the_scaled_magnitudes(size, window):
    gen = torch.Generator().manual_seed(size)
    a = torch.randn(2, 3, size, size, generator=gen)
    b = a + 0.8 * torch.randn(2, 3, size, size, generator=gen)
    rho, ssim = map_similarity(a, b)
    want_rho, want_ssim = reference_similarity(a, b, window)
    np.testing.assert_allclose(rho, want_rho, rtol=1e-10)
    np.testing.assert_allclose(ssim, want_ssim, rtol=1e-10)
    # the magnitudes are scaled to [0, 1] first: rescaling a map (by powers of two, exact in
    # floating point) changes nothing
    rho2, ssim2 = map_similarity(a * 1024.0, b / 512.0)
    np.testing.assert_array_equal(rho2, rho)
    np.testing.assert_array_equal(ssim2, ssim)


def test_map_similarity_of_an_all_zero_map_is_finite():
    a = torch.rand(1, 1, 12, 12, generator=torch.Generator().manual_seed(0))
    rho, ssim = map_similarity(a, torch.zeros_like(a))
    assert np.isnan(rho[0])  # a constant map has no ranks to correlate
    assert np.isfinite(ssim[0]) and ssim[0] < 0.1


def test_edge_alignment_is_spearman_of_map_magnitude_and_sobel_edges():
    from robustlens.data.probes import edge_map

    gen = torch.Generator().manual_seed(3)
    images = torch.rand(3, 3, 10, 10, generator=gen)
    maps = torch.randn(3, 3, 10, 10, generator=gen)
    edges = edge_map(images)[:, 0].double().numpy().reshape(3, -1)
    mags = maps.abs().sum(dim=1).double().numpy().reshape(3, -1)
    want = [spearmanr(mags[i], edges[i]).statistic for i in range(3)]
    np.testing.assert_allclose(edge_alignment(maps, images), want, rtol=1e-10)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(4 * 6 * 6, 64)
        self.head = nn.Linear(64, 2)

    def forward(self, x):
        return self.head(self.fc(self.relu(self.conv(x)).flatten(1)))


def test_cascading_randomisation_replaces_one_more_layer_per_step():
    net = Net()
    trained = {k: v.clone() for k, v in net.state_dict().items()}
    seen = []

    def attribute_fn(model):
        seen.append({k: v.clone() for k, v in model.state_dict().items()})
        return model(torch.ones(2, 1, 6, 6)).detach()[:, :, None, None].expand(2, 2, 12, 12)

    x, y = torch.rand(2, 1, 6, 6), torch.tensor([0, 1])
    steps = cascading_randomization(net, x, y, attribute_fn, seed=5)
    assert [name for name, _, _ in steps] == ["head", "fc", "conv"] == randomizable_layers(net)
    assert len(seen) == 4
    for key, value in seen[0].items():
        assert torch.equal(value, trained[key])  # the first maps are the trained model's
    for step, changed in enumerate([["head"], ["head", "fc"], ["head", "fc", "conv"]], start=1):
        for key, value in seen[step].items():
            layer = key.split(".")[0]
            assert torch.equal(value, trained[key]) is (layer not in changed), (step, key)
    for _, rho, ssim in steps:
        assert rho.shape == (2,) and ssim.shape == (2,)
    # re-initialised with standard deviation 1/√fan-in (weights) or 1/√size (biases)
    final = seen[-1]
    assert final["fc.weight"].std().item() == pytest.approx(144**-0.5, rel=0.1)
    assert final["conv.weight"].std().item() == pytest.approx(9**-0.5, rel=0.3)
    assert final["fc.bias"].std().item() == pytest.approx(64**-0.5, rel=0.3)
    assert final["head.weight"].std().item() == pytest.approx(64**-0.5, rel=0.3)
    # seeded: the same seed gives the same re-initialisation, another seed another one
    again = []
    cascading_randomization(
        net, x, y, lambda m: again.append(m.fc.weight.clone()) or attribute_fn(m), seed=5
    )
    assert torch.equal(again[-1], final["fc.weight"])
    other = []
    cascading_randomization(
        net, x, y, lambda m: other.append(m.fc.weight.clone()) or attribute_fn(m), seed=6
    )
    assert not torch.equal(other[-1], final["fc.weight"])
    for key, value in net.state_dict().items():
        assert torch.equal(value, trained[key])


@pytest.mark.parametrize(
    "relu",
    [torch.relu, F.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_,
     lambda h: F.relu(h, inplace=True)],
)  # fmt: skip
def test_every_functional_relu_is_counted(relu):
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.act, self.b = nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)

        def forward(self, x):
            return self.b(relu(self.act(self.a(x.flatten(1))).clone()))

    with pytest.raises(ConfigError) as err:
        check_guided_backprop(Functional(), torch.rand(2, 1, 2, 2))
    assert err.value.problem.endswith("applies 1 ReLU(s) as functions and 1 as modules")


def test_one_relu_module_is_enough_for_guided_backprop():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    assert check_guided_backprop(net, torch.rand(3, 1, 2, 2)) == 1


def test_a_frequency_exactly_at_the_cutoff_is_not_above_it():
    """3×3 maps have frequencies 0 and ±1/3 per axis: radius 2/3 of Nyquist on the axes, 0.94
    on the diagonals. With cutoff 2/3 (computed in float64, as the frequencies are) only the
    diagonals count as high."""
    maps = np.random.default_rng(3).standard_normal((3, 2, 3, 3))
    got = high_frequency_fraction(torch.from_numpy(maps), cutoff=2 / 3)
    np.testing.assert_allclose(got, reference_high_fraction(maps, 2 / 3), rtol=1e-12)
    above = reference_high_fraction(maps, 2 / 3 - 1e-9)  # the axes count once below the cutoff
    assert np.all(above > got)
