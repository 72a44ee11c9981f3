"""Every bad input of the filter statistics, feature visualisation and saliency maps gets one
error with this exact message and fix (issue 14 §3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustlens.analysis.featviz import visualize_channels
from robustlens.analysis.filters import (
    coefficient_divergence,
    filter_basis,
    filter_matrix,
    histogram_pair,
    sparsity,
    variance_entropy,
)
from robustlens.analysis.saliency import (
    METHODS,
    attribute,
    check_guided_backprop,
    randomizable_layers,
)
from robustlens.errors import ConfigError, NumericalError

# ----------------------------------------------------------------------------------- filters

NO_KL = "a KL divergence needs values on both sides"
DIMS = "convolution weights must have 4 dimensions, got shape "
BASIS = "a filter basis needs at least 2 non-sparse filters, got "
MORE = "include more layers or models"
FILTERS = [
    (
        filter_matrix,
        (np.zeros((3, 9)),),
        DIMS + "(3, 9)",
        None,
    ),
    (
        sparsity,
        (np.zeros((2, 2, 3)),),
        DIMS + "(2, 2, 3)",
        None,
    ),
    (
        variance_entropy,
        (np.zeros(9),),
        DIMS + "(9,)",
        None,
    ),
    (
        filter_basis,
        (np.ones((1, 9)),),
        "a filter basis needs at least 2 non-sparse filters, got 1",
        "include more layers or models",
    ),
    (
        filter_basis,
        (np.ones((0, 9)),),
        "a filter basis needs at least 2 non-sparse filters, got 0",
        "include more layers or models",
    ),
    (
        filter_basis,
        (np.ones(5),),
        "a filter basis needs at least 2 non-sparse filters, got 5",
        "include more layers or models",
    ),
    (histogram_pair, (np.array([]), np.ones(3)), NO_KL, None),
    (histogram_pair, (np.ones(3), np.array([])), NO_KL, None),
    (coefficient_divergence, (np.zeros((0, 2)), np.ones((3, 2)), np.ones(2)), NO_KL, None),
    (coefficient_divergence, (np.ones((3, 2)), np.zeros((0, 2)), np.ones(2)), NO_KL, None),
]


@pytest.mark.parametrize(("fn", "args", "message", "fix"), FILTERS)
def test_filter_statistics_bad_inputs_have_one_exact_error(fn, args, message, fix):
    with pytest.raises(ConfigError) as err:
        fn(*args)
    assert err.value.problem == message
    assert err.value.fix == fix
    assert str(err.value) == (message if fix is None else f"{message}. {fix}")


def test_two_filters_are_enough_for_a_basis():
    """Two 2-coefficient filters (1, 0) and (0, 1): one direction, (1, −1)/√2, with all of the
    variance (s² / (n − 1) = 1 / 1)."""
    basis = filter_basis(np.array([[1.0, 0.0], [0.0, 1.0]]))
    np.testing.assert_allclose(basis.explained_variance_ratio, [1.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(np.abs(basis.basis[0]), [2**-0.5, 2**-0.5], rtol=1e-15)
    np.testing.assert_allclose(basis.mean, [0.5, 0.5])


# ----------------------------------------------------------------------------------- featviz


class Bright(nn.Module):
    def __init__(self, weight: float = 1.0):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1)
        with torch.no_grad():
            self.conv.weight.fill_(weight)
            self.conv.bias.zero_()

    def forward(self, x):
        return self.conv(x).mean(dim=(2, 3))


def test_featviz_needs_a_channel():
    net = Bright()
    with pytest.raises(ConfigError) as err:
        visualize_channels(net, [], (1, 8, 8), torch.eye(1), steps=1)
    assert err.value.problem == "featviz needs at least one channel"
    assert err.value.fix is None


TAP = "featviz needs a tap with at least {} channels (or units); this one outputs shape {}"


@pytest.mark.parametrize(
    ("tap", "channel", "message"),
    [
        (
            "conv",
            2,
            TAP.format(3, (1, 2, 4, 4)),
        ),
        (
            "self",
            5,
            TAP.format(6, (1, 2)),
        ),
        (
            "flat",
            0,
            TAP.format(1, (1, 2, 16)),
        ),
    ],
)
def test_featviz_tap_without_the_channel(tap, channel, message):
    class Net(Bright):
        def __init__(self):
            super().__init__()
            self.flat = nn.Flatten(2)

        def forward(self, x):
            self.flat(self.conv(x))
            return super().forward(x)

    net = Net()
    module = {"conv": net.conv, "self": net, "flat": net.flat}[tap]
    with pytest.raises(ConfigError) as err:
        visualize_channels(net, [(module, channel)], (1, 4, 4), torch.eye(1), steps=1)
    assert err.value.problem == message
    assert err.value.fix is None
    assert all(p.requires_grad for p in net.parameters())  # restored after the error
    assert not net.conv._forward_hooks  # hooks removed


def test_featviz_refuses_a_non_finite_activation():
    net = Bright(weight=float("nan"))
    with pytest.raises(NumericalError) as err:
        visualize_channels(net, [(net.conv, 0)], (1, 8, 8), torch.eye(1), steps=3)
    assert str(err.value) == "featviz: the activation became NaN or infinite"
    assert err.value.fix is None
    assert all(p.requires_grad for p in net.parameters())
    assert not net.conv._forward_hooks


# ---------------------------------------------------------------------------------- saliency


@pytest.mark.parametrize("method", ["gradcam", "Vanilla", ""])
def test_unknown_saliency_method(method):
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(ConfigError) as err:
        attribute(net, torch.rand(2, 1, 2, 2), torch.tensor([0, 1]), method)
    assert err.value.problem == f"unknown saliency method {method!r}"
    assert err.value.fix == "use vanilla, loss, guided, smoothgrad, integrated"
    assert METHODS == ("vanilla", "loss", "guided", "smoothgrad", "integrated")


class Functional(nn.Module):
    def __init__(self, modules: int):
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 2)
        self.relus = nn.ModuleList(nn.ReLU() for _ in range(modules))

    def forward(self, x):
        h = torch.relu(F.relu(self.a(x.flatten(1))))
        for r in self.relus:
            h = r(h)
        return self.b(h)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            Functional(0),
            "guided backpropagation can only modify nn.ReLU modules; Functional applies 2 "
            "ReLU(s) as functions and 0 as modules",
        ),
        (
            Functional(3),
            "guided backpropagation can only modify nn.ReLU modules; Functional applies 2 "
            "ReLU(s) as functions and 3 as modules",
        ),
        (
            nn.Sequential(nn.Flatten(), nn.Linear(4, 2)),
            "guided backpropagation can only modify nn.ReLU modules; Sequential applies 0 "
            "ReLU(s) as functions and 0 as modules",
        ),
    ],
)
def test_guided_backprop_needs_relu_modules_only(model, message):
    with pytest.raises(ConfigError) as err:
        check_guided_backprop(model, torch.rand(3, 1, 2, 2))
    assert err.value.problem == message
    assert err.value.fix == (
        "use nn.ReLU modules in the model, or leave 'guided' out of the lens's methods"
    )


def test_guided_backprop_counts_relu_module_calls():
    """One module called twice counts twice; hooks are removed afterwards."""
    relu = nn.ReLU()
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 4), relu, nn.Linear(4, 4), relu)
    assert check_guided_backprop(net, torch.rand(3, 1, 2, 2)) == 2
    assert not relu._forward_hooks


def test_randomisation_check_needs_weight_layers():
    with pytest.raises(ConfigError) as err:
        randomizable_layers(nn.Sequential(nn.Flatten(), nn.ReLU()))
    assert err.value.problem == "the randomisation check needs convolution or linear layers"
    assert err.value.fix is None
