"""The normalisation layer: statistics as buffers, input checks with fixable messages."""

from __future__ import annotations

import pytest
import torch

from robustlens.errors import ConfigError
from robustlens.models import Normalize


def test_normalises_per_channel_and_saves_buffers() -> None:
    layer = Normalize((0.5, 0.25), (0.5, 0.25))
    x = torch.tensor([1.0, 0.5]).reshape(1, 2, 1, 1).expand(1, 2, 2, 2)
    assert torch.equal(layer(x), torch.ones(1, 2, 2, 2))
    state = layer.state_dict()
    assert set(state) == {"mean", "std"}
    assert state["mean"].shape == (2, 1, 1)
    assert layer.statistics() == ((0.5, 0.25), (0.5, 0.25))


def test_set_statistics_and_identity() -> None:
    layer = Normalize((0.0,), (1.0,))
    assert layer.is_identity()
    layer.set_statistics(torch.tensor([[[0.2]]]), [0.3])
    assert layer.statistics()[0] == pytest.approx((0.2,))
    assert not layer.is_identity()
    with pytest.raises(ConfigError, match="1 channels"):
        layer.set_statistics((0.1, 0.2), (0.3, 0.4))


@pytest.mark.parametrize(
    ("mean", "std", "match"),
    [
        ((0.5,), (0.0,), "positive"),
        ((0.5, 0.5), (0.5,), "2 values but std has 1"),
        ((float("nan"),), (1.0,), "finite"),
        ((), (), "non-empty"),
        ("abc", (1.0,), "sequence of numbers"),
    ],
)
def test_bad_statistics(mean: object, std: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Normalize(mean, std)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (torch.rand(3, 8, 8), "unsqueeze"),
        (torch.rand(1, 1, 8, 8), "3-channel images, got 1"),
        (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), r"x.float\(\) / 255"),
    ],
)
def test_bad_inputs_raise_fixable_errors(x: torch.Tensor, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Normalize((0.5,) * 3, (0.5,) * 3)(x)
