"""Wrapping foreign nn.Modules; the optional libraries are mocked or skipped when absent."""

from __future__ import annotations

import importlib
import importlib.util

import pytest
import torch
from torch import Tensor, nn

from robustlens.errors import ConfigError
from robustlens.models import (
    AdaptedClassifier,
    RobustClassifier,
    build_model,
    load_adapter,
    read_activations,
)
from robustlens.models import adapters as adapters_module
from robustlens.models.adapters import find_head, guess_taps, without_head

from .helpers import CIFAR, images


class Disguised(nn.Module):
    """Our ResNet-18 as another library would ship it: no normalisation, plain nn.Module."""

    def __init__(self, model: RobustClassifier) -> None:
        super().__init__()
        for name in ("conv1", "bn1", "relu", "layer1", "layer2", "layer3", "layer4"):
            self.add_module(name, getattr(model, name))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = model.linear

    def forward(self, z: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(z)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.fc(torch.flatten(self.avgpool(out), 1))


@pytest.fixture(scope="module")
def zoo() -> RobustClassifier:
    torch.manual_seed(0)
    return build_model("resnet18", CIFAR, input_size=8, width=8).eval()


@pytest.fixture
def adapted(zoo: RobustClassifier) -> tuple[Disguised, AdaptedClassifier]:
    foreign = Disguised(zoo).eval()
    mean, std = zoo.normalize.statistics()
    return foreign, AdaptedClassifier(
        foreign, input_shape=(3, 8, 8), mean=mean, std=std, spec="test:disguised"
    )


def test_wrapped_model_matches_the_original(zoo, adapted) -> None:
    _, model = adapted
    x = images(zoo, 3)
    with torch.no_grad():
        torch.testing.assert_close(model(x), zoo(x))
        torch.testing.assert_close(model.features(x), zoo.features(x))
    assert model.head is zoo.linear and model.head_path == "fc"
    assert model.num_classes == 10 and model.feature_dim == 64
    assert model.input_shape == (3, 8, 8) and model.arch == "adapter"


def test_the_foreign_module_is_not_changed(adapted) -> None:
    foreign, model = adapted
    assert isinstance(foreign.fc, nn.Linear)
    assert isinstance(model.body.fc, nn.Identity)
    assert model.body is not foreign and model.body.layer1 is foreign.layer1
    model.body.extra = nn.ReLU()  # the copy has its own module table
    assert not hasattr(foreign, "extra")


def test_taps_are_guessed_from_the_structure(zoo, adapted) -> None:
    _, model = adapted
    assert model.taps == tuple(f"body.{t}" for t in zoo.taps)
    x = images(zoo, 2)
    ours, theirs = read_activations(zoo, x), read_activations(model, x)
    for tap in zoo.taps:
        torch.testing.assert_close(theirs[f"body.{tap}"], ours[tap])


def test_state_dict_holds_each_weight_once(adapted) -> None:
    _, model = adapted
    keys = list(model.state_dict())
    assert "linear.weight" in keys and "normalize.mean" in keys
    assert not any(k.startswith("body.fc") for k in keys)


class NestedHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))

    def forward(self, z: Tensor) -> Tensor:
        return self.classifier(self.features(z))


def test_a_head_inside_a_classifier_block() -> None:
    foreign = NestedHead().eval()
    model = AdaptedClassifier(foreign, input_shape=(1, 6, 6))
    assert model.head_path == "classifier.3" and model.feature_dim == 6
    assert isinstance(foreign.classifier[3], nn.Linear)
    x = torch.rand(2, 1, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(model(x), foreign(x))
        torch.testing.assert_close(model.features(x), foreign.classifier[:3](foreign.features(x)))
    assert model.taps == ("body.features.1", "body.classifier.2")
    assert model.normalize.is_identity()


class ScaledLogits(NestedHead):
    def forward(self, z: Tensor) -> Tensor:
        return 2 * super().forward(z)


def test_a_head_that_is_not_last_is_detected() -> None:
    with pytest.raises(ConfigError, match="not the last operation"):
        AdaptedClassifier(ScaledLogits(), input_shape=(1, 6, 6))
    model = AdaptedClassifier(ScaledLogits(), input_shape=(1, 6, 6), verify=False)
    assert model.head_path == "classifier.3"


def test_explicit_head_and_taps() -> None:
    foreign = NestedHead()
    model = AdaptedClassifier(
        foreign, input_shape=(1, 6, 6), head="classifier.3", taps=["body.features.0"]
    )
    assert model.taps == ("body.features.0",)
    with pytest.raises(ConfigError, match=r"not an nn\.Linear"):
        AdaptedClassifier(foreign, input_shape=(1, 6, 6), head="features.0")
    with pytest.raises(ConfigError, match="no sub-module"):
        AdaptedClassifier(foreign, input_shape=(1, 6, 6), head="nothing")


def test_helpers_on_plain_modules() -> None:
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    assert find_head(net) == "2"
    copy = without_head(net, "2")
    assert isinstance(copy[2], nn.Identity) and isinstance(net[2], nn.Linear)
    assert guess_taps(copy) == ["1"]
    blocks = nn.Sequential(
        nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU()),
        nn.Sequential(nn.Conv2d(2, 2, 3), nn.BatchNorm2d(2), nn.ReLU()),
    )
    assert guess_taps(nn.Sequential(blocks, nn.Flatten())) == ["0.0", "0.1"]
    with pytest.raises(ConfigError, match=r"no nn\.Linear"):
        find_head(nn.Sequential(nn.ReLU()))


# ------------------------------------------------------------------------------ load_adapter


def test_unknown_adapter_spec() -> None:
    with pytest.raises(ConfigError, match="unknown model adapter"):
        load_adapter("keras:resnet50")
    with pytest.raises(ConfigError, match="robustbench:<dataset>:<threat>:<model_name>"):
        load_adapter("robustbench:cifar10:Linf")


@pytest.mark.parametrize(
    ("spec", "package"),
    [
        ("torchvision:resnet18", "torchvision"),
        ("timm:resnet18", "timm"),
        ("robustbench:cifar10:Linf:Standard", "robustbench"),
    ],
)
def test_missing_optional_packages_say_how_to_install(
    monkeypatch: pytest.MonkeyPatch, spec: str, package: str
) -> None:
    def refuse(name: str) -> object:
        raise ModuleNotFoundError(f"No module named {name!r}")

    monkeypatch.setattr(adapters_module.importlib, "import_module", refuse)
    with pytest.raises(ConfigError, match=f"needs the optional package {package}") as info:
        load_adapter(spec)
    assert info.value.fix == f"pip install {package}"


def test_a_broken_optional_package_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(name: str) -> object:
        raise RuntimeError("operator torchvision::nms does not exist")

    monkeypatch.setattr(adapters_module.importlib, "import_module", broken)
    with pytest.raises(ConfigError, match="installed but failed to import"):
        load_adapter("torchvision:resnet18")


def _importable(name: str) -> bool:
    if importlib.util.find_spec(name) is None:
        return False
    try:
        importlib.import_module(name)
    except Exception:
        return False
    return True


@pytest.mark.skipif(not _importable("torchvision"), reason="torchvision not usable here")
def test_torchvision_adapter() -> None:
    model = load_adapter("torchvision:resnet18", num_classes=7)
    assert model.head_path == "fc" and model.num_classes == 7
    assert model.taps[0] == "body.relu" and "body.layer4.1" in model.taps


def test_timm_adapter() -> None:
    pytest.importorskip("timm")
    model = load_adapter("timm:resnet18", pretrained=False, num_classes=5)
    assert model.num_classes == 5
    with torch.no_grad():
        assert model(torch.rand(1, 3, 64, 64)).shape == (1, 5)


def test_robustbench_adapter_needs_network_access() -> None:
    pytest.importorskip("robustbench")
    pytest.skip("downloads weights; run by hand")
