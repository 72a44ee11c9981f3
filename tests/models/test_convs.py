"""Convolution layers in depth order, raw and with their BatchNorm folded in."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from robustlens.errors import ConfigError
from robustlens.models.convs import conv_layers, following_batchnorm
from tests.lenses.helpers import make_info, small_cnn


def test_layers_come_in_order_with_relative_depth():
    net = small_cnn(make_info())
    layers = conv_layers(net)
    assert [layer.name for layer in layers] == ["block1.0", "block2.0"]
    assert [layer.relative_depth for layer in layers] == [0.0, 1.0]
    assert not any(layer.folded for layer in layers)
    np.testing.assert_array_equal(layers[1].weight, net.block2[0].weight.detach().double().numpy())


def test_folded_weights_reproduce_batchnorm_of_the_convolution():
    torch.manual_seed(0)
    net = small_cnn(make_info())
    bn = net.block1[1]
    with torch.no_grad():  # non-trivial statistics and affine parameters
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
    assert following_batchnorm(net) == {"block1.0": "block1.1", "block2.0": "block2.1"}
    folded = conv_layers(net, fold_batchnorm=True)[0]
    assert folded.folded
    x = torch.rand(3, 1, 12, 12, dtype=torch.float64)
    conv = net.block1[0].double()
    with torch.no_grad():
        expected = bn.double()(conv(x))
        shift = bn.bias - bn.weight * bn.running_mean / torch.sqrt(bn.running_var + bn.eps)
        got = nn.functional.conv2d(
            x, torch.from_numpy(folded.weight), padding=conv.padding, stride=conv.stride
        ) + shift.view(1, -1, 1, 1)
    torch.testing.assert_close(got, expected)


def test_a_model_without_convolutions_is_refused():
    with pytest.raises(ConfigError, match="no 2-D convolution"):
        conv_layers(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)))


def test_untraceable_model_cannot_be_folded_but_raw_weights_work():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)
            self.bn = nn.BatchNorm2d(2)

        def forward(self, x):
            if x.sum() > 0:  # data-dependent control flow: fx cannot trace it
                return self.bn(self.conv(x))
            return self.conv(x)

    assert len(conv_layers(Branchy())) == 1
    with pytest.raises(ConfigError, match="fold_batchnorm = false"):
        conv_layers(Branchy(), fold_batchnorm=True)
