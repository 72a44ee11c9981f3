"""eval_mode: every sub-module in eval mode inside, each one's own flag restored after."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robustlens.models import eval_mode


def bn_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5))


def test_inside_everything_is_in_eval_mode_and_batchnorm_statistics_stay():
    net = bn_net().train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.rand(8, 1, 6, 6)
    with eval_mode(net):
        assert not any(m.training for m in net.modules())
        first, second = net(x), net(x)
    assert torch.equal(first, second)  # dropout off, running statistics used and unchanged
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert all(m.training for m in net.modules())


def test_each_sub_module_gets_its_own_mode_back_also_after_an_error():
    net, other = bn_net().train(), bn_net().eval()
    net[1].eval()  # a frozen BatchNorm inside a model in train mode
    flags = [m.training for m in net.modules()]
    with pytest.raises(RuntimeError, match="boom"), eval_mode(net, None, other):
        assert not net.training and not other.training
        raise RuntimeError("boom")
    assert [m.training for m in net.modules()] == flags
    assert not any(m.training for m in other.modules())
