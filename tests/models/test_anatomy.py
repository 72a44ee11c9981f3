"""Tap modules and activation reading through forward hooks."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from robustlens.errors import ConfigError
from robustlens.models import (
    RobustClassifier,
    build_model,
    capture_activations,
    read_activations,
    tap_modules,
)

from .helpers import DIGITS, FMNIST, images


def _no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks for m in model.modules())


@pytest.fixture(scope="module")
def small_cnn() -> RobustClassifier:
    torch.manual_seed(0)
    return build_model("small-cnn", FMNIST, widths=(8, 16, 32)).eval()


@pytest.fixture(scope="module")
def resnet() -> RobustClassifier:
    torch.manual_seed(0)
    return build_model("resnet20", DIGITS).eval()


def test_tap_modules_follow_the_taps(resnet: RobustClassifier) -> None:
    modules = tap_modules(resnet)
    assert list(modules) == list(resnet.taps)
    assert modules["layer1.0"] is resnet.layer1[0]
    assert modules["relu"] is resnet.relu


def test_values_equal_a_manual_forward(small_cnn: RobustClassifier) -> None:
    x = images(small_cnn, 3)
    acts = read_activations(small_cnn, x)
    with torch.no_grad():
        z = small_cnn.normalize(x)
        b1 = small_cnn.block1(z)
        b2 = small_cnn.block2(b1)
        b3 = small_cnn.block3(b2)
    assert torch.equal(acts["block1"], b1)
    assert torch.equal(acts["block2"], b2)
    assert torch.equal(acts["block3"], b3)
    assert not any(t.requires_grad for t in acts.values())


def test_residual_taps_equal_a_manual_forward(resnet: RobustClassifier) -> None:
    x = images(resnet, 2)
    acts = read_activations(resnet, x, ["relu", "layer1.0", "layer3.2"])
    with torch.no_grad():
        stem = resnet.relu(resnet.bn1(resnet.conv1(resnet.normalize(x))))
        last = resnet.layer3(resnet.layer2(resnet.layer1(stem)))
    assert list(acts) == ["relu", "layer1.0", "layer3.2"]
    assert torch.equal(acts["relu"], stem)
    assert torch.equal(acts["layer1.0"], resnet.layer1[0](stem))
    assert torch.equal(acts["layer3.2"], last)


def test_any_module_name_and_a_single_string_work(resnet: RobustClassifier) -> None:
    acts = read_activations(resnet, images(resnet), "layer2.0.conv1")
    assert list(acts) == ["layer2.0.conv1"] and acts["layer2.0.conv1"].shape[1] == 32


def test_hooks_are_removed_also_after_errors(resnet: RobustClassifier) -> None:
    read_activations(resnet, images(resnet))
    assert _no_hooks(resnet)
    with pytest.raises(ConfigError):
        read_activations(resnet, torch.rand(1, 3, 8, 8))  # wrong channel count
    assert _no_hooks(resnet)


def test_unknown_taps_list_the_model_taps(resnet: RobustClassifier) -> None:
    with pytest.raises(ConfigError, match=r"layer1\.0, layer1\.1") as info:
        read_activations(resnet, images(resnet), ["layer9"])
    assert "'layer9'" in str(info.value)
    assert _no_hooks(resnet)


def test_training_mode_and_running_statistics_are_untouched() -> None:
    model = build_model("small-cnn", FMNIST, widths=(4, 8, 8))
    model.train()
    model.block2.eval()  # a mixed state is restored module by module
    before = {k: v.clone() for k, v in model.state_dict().items()}
    read_activations(model, images(model, 4))
    assert model.training and model.block1.training and not model.block2.training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # In the model's own (training) mode, batch norm updates its statistics.
    read_activations(model, images(model, 4), eval_mode=False)
    assert not torch.equal(before["block1.1.running_mean"], model.block1[1].running_mean)


class InPlaceAfterTap(RobustClassifier):
    """A model that changes its tap's output in place later in the forward pass."""

    def __init__(self) -> None:
        super().__init__(1, 2, input_size=4)
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.linear = nn.Linear(3, 2)
        self.taps = ("conv",)

    def forward_features(self, z: Tensor) -> Tensor:
        y = self.conv(z)
        self.relu(y)  # overwrites the conv output in place
        y.mul_(10.0)
        return self.flatten(self.pool(y))


def test_activations_are_cloned_before_in_place_changes() -> None:
    model = InPlaceAfterTap().eval()
    x = torch.rand(2, 1, 4, 4)
    acts = read_activations(model, x)
    with torch.no_grad():
        expected = model.conv(model.normalize(x))
    assert (expected < 0).any()  # the in-place ReLU would have zeroed these
    assert torch.equal(acts["conv"], expected)


def test_capture_streams_over_batches(small_cnn: RobustClassifier) -> None:
    seen: list[Tensor] = []
    with torch.no_grad(), capture_activations(small_cnn, ["block3"]) as acts:
        for seed in range(3):
            small_cnn(images(small_cnn, 2, seed=seed))
            seen.append(acts["block3"])
    assert _no_hooks(small_cnn)
    assert len(seen) == 3 and not torch.equal(seen[0], seen[1])
    expected = read_activations(small_cnn, images(small_cnn, 2, seed=2), "block3")["block3"]
    assert torch.equal(seen[2], expected)


def test_capture_can_keep_the_graph(small_cnn: RobustClassifier) -> None:
    x = images(small_cnn, 1).requires_grad_(True)
    with capture_activations(small_cnn, "block2", detach=False) as acts:
        small_cnn(x)
    acts["block2"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_taps_not_run_are_reported() -> None:
    class Skips(InPlaceAfterTap):
        def __init__(self) -> None:
            super().__init__()
            self.unused = nn.ReLU()

    with pytest.raises(ConfigError, match="not run"):
        read_activations(Skips().eval(), torch.rand(1, 1, 4, 4), ["unused"])
