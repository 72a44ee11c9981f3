"""Every registered architecture against the RobustClassifier contract, for three input shapes."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from robustlens.errors import ConfigError
from robustlens.models import (
    ARCHITECTURES,
    VGG,
    RobustClassifier,
    SmallCNN,
    build_model,
    list_architectures,
    read_activations,
)

from .helpers import CIFAR, DATASETS, DIGITS, FMNIST, SMALL_KWARGS, images

CASES = [(arch, dataset) for arch in list_architectures() for dataset in DATASETS]


@pytest.fixture(scope="module", params=CASES, ids=[f"{a}-{d}" for a, d in CASES])
def case(request: pytest.FixtureRequest) -> tuple[str, str, RobustClassifier]:
    """One architecture built for one data set (pytest runs all tests of a case together)."""
    arch, dataset = request.param
    torch.manual_seed(0)
    model = build_model(arch, DATASETS[dataset], **SMALL_KWARGS.get(arch, {})).eval()
    return arch, dataset, model


def test_registry_lists_the_required_architectures() -> None:
    required = {
        "small-cnn",
        "mlp",
        "lenet",
        "resnet18",
        "preact-resnet18",
        "resnet20",
        "resnet56",
        "wrn-28-10",
        "wrn-34-10",
        "vgg16-bn",
    }
    assert required <= set(list_architectures())
    assert all(isinstance(ARCHITECTURES.get(name).summary, str) for name in required)


def test_forward_contract(case: tuple[str, str, RobustClassifier]) -> None:
    arch, dataset, model = case
    info = DATASETS[dataset]
    assert model.input_shape == info.shape
    assert model.num_classes == info.num_classes
    assert model.arch == arch
    x = images(model, 2)
    seen: dict[str, torch.Tensor] = {}
    handle = model.head.register_forward_hook(lambda m, i, o: seen.update(features=i[0]))
    try:
        with torch.no_grad():
            logits = model(x)
            manual = model.forward_features((x - model.normalize.mean) / model.normalize.std)
    finally:
        handle.remove()
    features = seen["features"]  # what forward fed to the head
    assert logits.shape == (2, info.num_classes)
    assert features.shape == (2, model.feature_dim)
    assert torch.isfinite(logits).all()
    # forward = head(features(x)) with the normalisation inside the model.
    torch.testing.assert_close(manual, features)
    torch.testing.assert_close(model.head(manual), logits)
    # head is the last nn.Linear of the model.
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert linears[-1] is model.head
    assert model.head.out_features == info.num_classes
    assert model.head.in_features == model.feature_dim


def test_features_method_matches_forward() -> None:
    torch.manual_seed(0)
    model = build_model("small-cnn", FMNIST).eval()
    x = images(model, 2)
    with torch.no_grad():
        torch.testing.assert_close(model.head(model.features(x)), model(x))


def test_normalisation_buffers_follow_the_data_set(case: tuple[str, str, RobustClassifier]) -> None:
    _, dataset, model = case
    info = DATASETS[dataset]
    state = model.state_dict()
    c = info.shape[0]
    assert state["normalize.mean"].shape == (c, 1, 1)
    assert state["normalize.std"].shape == (c, 1, 1)
    torch.testing.assert_close(state["normalize.mean"].flatten(), torch.tensor(info.mean))
    torch.testing.assert_close(state["normalize.std"].flatten(), torch.tensor(info.std))
    assert next(iter(dict(model.named_children()))) == "normalize"


def test_twice_larger_input(case: tuple[str, str, RobustClassifier]) -> None:
    _, _, model = case
    x = images(model, 1, scale=2)  # e.g. a tiled 2×2 grid of 28×28 images at 56×56
    if not model.accepts_any_size:
        with pytest.raises(ConfigError, match="takes no other size"):
            model(x)
        return
    with torch.no_grad():
        assert model(x).shape == (1, model.num_classes)
        assert model.features(x).shape == (1, model.feature_dim)


def test_taps_exist_and_are_read(case: tuple[str, str, RobustClassifier]) -> None:
    _, _, model = case
    assert model.taps and len(set(model.taps)) == len(model.taps)
    for tap in model.taps:
        model.get_submodule(tap)  # taps are real module names
    x = images(model, 2)
    acts = read_activations(model, x)
    assert list(acts) == list(model.taps)
    for tensor in acts.values():
        assert tensor.shape[0] == 2
        assert torch.isfinite(tensor).all()


def test_every_module_name_resolves(case: tuple[str, str, RobustClassifier]) -> None:
    """No module is shadowed by a method (e.g. a sub-module called ``features``) or shared."""
    _, _, model = case
    named = list(model.named_modules(remove_duplicate=False))
    assert len(named) == len(list(model.named_modules()))
    for name, module in named:
        assert model.get_submodule(name) is module


ACTIVATION_OPS = {
    torch.ops.aten.relu,
    torch.ops.aten.relu_,
    torch.ops.aten.threshold,
    torch.ops.aten.threshold_,
    torch.ops.aten.clamp_min,
    torch.ops.aten.clamp_min_,
    torch.ops.aten.hardtanh,
    torch.ops.aten.hardtanh_,
}


class CountReLUOps(TorchDispatchMode):
    """Counts the ATen operations that can implement a ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket in ACTIVATION_OPS:
            self.count += 1
        return func(*args, **(kwargs or {}))


def test_every_relu_is_its_own_module_called_once(case: tuple[str, str, RobustClassifier]) -> None:
    """Guided backprop and activation hooks need one nn.ReLU module per application."""
    _, _, model = case
    relus = {name: m for name, m in model.named_modules() if isinstance(m, nn.ReLU)}
    assert relus
    assert all(not m.inplace for m in relus.values())
    calls: Counter[str] = Counter()
    handles = [
        m.register_forward_hook(lambda mod, i, o, name=name: calls.update([name]))
        for name, m in relus.items()
    ]
    counter = CountReLUOps()
    try:
        with torch.no_grad(), counter:
            model(images(model, 1))
    finally:
        for handle in handles:
            handle.remove()
    assert set(calls) == set(relus), f"ReLU modules never called: {set(relus) - set(calls)}"
    assert all(n == 1 for n in calls.values()), calls
    assert counter.count == sum(calls.values())


def test_batch_norm_starts_at_identity(case: tuple[str, str, RobustClassifier]) -> None:
    _, _, model = case
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)


def _build(arch: str, info: object, *, meta: bool = False, **kwargs: object) -> RobustClassifier:
    """Build on the meta device (no memory, no initialisation cost) when only shapes matter."""
    if not meta:
        return build_model(arch, info, **kwargs)
    with torch.device("meta"):
        return build_model(arch, info, **kwargs)


@pytest.mark.parametrize("arch", list_architectures())
def test_rebuild_from_arch_kwargs_is_exact(arch: str) -> None:
    big = arch.startswith("wrn-")  # same class as "wrn", checked exactly at a small size
    torch.manual_seed(3)
    model = _build(arch, DIGITS, meta=big, **SMALL_KWARGS.get(arch, {}))
    kwargs = json.loads(json.dumps(model.arch_kwargs))  # JSON-serialisable
    assert {"num_classes", "in_channels", "input_size", "mean", "std"} <= set(kwargs)
    torch.manual_seed(3)
    again = _build(model.arch, None, meta=big, **kwargs)
    assert again.arch == model.arch and again.arch_kwargs == model.arch_kwargs
    a, b = model.state_dict(), again.state_dict()
    assert list(a) == list(b)
    assert all(a[k].shape == b[k].shape for k in a)
    if not big:
        assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    ("arch", "expected"),
    [
        ("resnet18", 11_173_962),
        ("preact-resnet18", 11_172_170),
        ("wrn-28-10", 36_479_194),
        ("wrn-34-10", 46_160_474),
        ("resnet20", 269_722),
        ("resnet56", 853_018),
        ("vgg16-bn", 14_728_266),
    ],
)
def test_parameter_counts_for_cifar10(arch: str, expected: int) -> None:
    """ResNet-18 ≈ 11.2M, WRN-28-10 ≈ 36.5M, ResNet-20 ≈ 0.27M, as published."""
    model = _build(arch, CIFAR, meta=True)
    assert sum(p.numel() for p in model.parameters()) == expected


def test_construction_is_deterministic_given_the_seed() -> None:
    torch.manual_seed(11)
    a = build_model("resnet20", CIFAR).state_dict()
    torch.manual_seed(11)
    b = build_model("resnet20", CIFAR).state_dict()
    torch.manual_seed(12)
    c = build_model("resnet20", CIFAR).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["conv1.weight"], c["conv1.weight"])


# ------------------------------------------------------------------------------ build_model


def test_build_model_accepts_a_data_set_name() -> None:
    model = build_model("small-cnn", "fashion-mnist")
    assert model.input_shape == (1, 28, 28) and model.num_classes == 10


def test_explicit_arguments_override_the_data_set() -> None:
    model = build_model("small-cnn", CIFAR, num_classes=4, input_size=(16, 24))
    assert model.input_shape == (3, 16, 24) and model.num_classes == 4
    assert model.arch_kwargs["input_size"] == [16, 24]


def test_grey_statistics_repeat_for_more_channels() -> None:
    model = build_model("small-cnn", FMNIST, in_channels=3)
    assert model.normalize.statistics()[0] == pytest.approx((0.286,) * 3)


def test_colour_statistics_do_not_fit_one_channel() -> None:
    with pytest.raises(ConfigError, match="pass mean= and std="):
        build_model("small-cnn", CIFAR, in_channels=1)


def test_without_data_set_the_shape_is_required_and_normalisation_is_identity() -> None:
    with pytest.raises(ConfigError, match="input_size missing"):
        build_model("small-cnn", num_classes=10, in_channels=1)
    model = build_model("small-cnn", num_classes=3, in_channels=2, input_size=12)
    assert model.normalize.is_identity()


def test_unknown_architecture_suggests_a_name() -> None:
    with pytest.raises(ConfigError, match="did you mean 'resnet18'"):
        build_model("resnet-18", CIFAR)


def test_unknown_argument_lists_the_accepted_ones() -> None:
    with pytest.raises(ConfigError, match="widths"):
        build_model("small-cnn", CIFAR, width=3)


def test_preset_arguments_cannot_be_changed() -> None:
    with pytest.raises(ConfigError, match="use 'wrn'"):
        build_model("wrn-28-10", CIFAR, widen_factor=2)
    model = build_model("wrn", CIFAR, depth=10, widen_factor=1)
    assert model.arch == "wrn" and model.arch_kwargs["depth"] == 10


@pytest.mark.parametrize(
    ("arch", "kwargs", "match"),
    [
        ("wrn", {"depth": 27}, "6n\\+4"),
        ("cifar-resnet", {"depth": 21}, "6n\\+2"),
        ("small-cnn", {"widths": (8, 16), "kernels": (3,)}, "one kernel and one stride"),
        ("vgg16-bn", {"num_classes": 0}, "positive integer"),
        ("mlp", {"input_size": (0, 3)}, "positive"),
        ("mlp", {"mean": (0.5,), "std": (0.0,)}, "std must be positive"),
    ],
)
def test_bad_arguments_raise_config_errors(arch: str, kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        build_model(arch, DIGITS, **kwargs)


def test_small_cnn_records_its_widths_and_can_run_without_batch_norm() -> None:
    model = SmallCNN(1, 10, input_size=28, widths=(8, 16), kernels=(3, 3), strides=(2, 1))
    assert model.arch == "small-cnn"
    assert model.arch_kwargs["widths"] == [8, 16]
    assert model.taps == ("block1", "block2")
    plain = build_model("small-cnn", FMNIST, batch_norm=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    assert all(m.bias is not None for m in plain.modules() if isinstance(m, nn.Conv2d))


def test_vgg_keeps_max_pools_while_the_map_is_at_least_two_pixels() -> None:
    pools = {
        name: _build("vgg16-bn", info, meta=True).pooled
        for name, info in (("cifar", CIFAR), ("fmnist", FMNIST), ("digits", DIGITS))
    }
    assert pools["cifar"] == (True,) * 5
    assert pools["fmnist"] == (True,) * 4 + (False,)
    assert pools["digits"] == (True,) * 3 + (False,) * 2
    keys = [list(_build("vgg16-bn", i, meta=True).state_dict()) for i in (CIFAR, DIGITS)]
    assert [k for k in keys[0] if "normalize" not in k] == [
        k for k in keys[1] if "normalize" not in k
    ]
    with torch.device("meta"):
        assert VGG(3, 10).arch == "vgg"


def test_mlp_rejects_another_size_with_a_clear_message() -> None:
    model = build_model("mlp", DIGITS)
    with pytest.raises(ConfigError, match="built for 1×8×8"):
        model(torch.rand(1, 1, 16, 16))


def test_lenet_matches_lenet5_on_28_pixels() -> None:
    """On 28 × 28 × 1 the "same"-padded LeNet has 16 × 7 × 7 features into fc1; its parameter
    count, by hand: conv1 6·25+6, conv2 16·6·25+16, fc1 784·120+120, fc2 120·84+84, head
    84·10+10."""
    model = build_model("lenet", FMNIST)
    expected = (6 * 25 + 6) + (16 * 6 * 25 + 16) + (784 * 120 + 120) + (120 * 84 + 84) + 850
    assert sum(p.numel() for p in model.parameters()) == expected
    acts = read_activations(model, images(model, 2))
    assert acts["conv2"].shape == (2, 16, 7, 7) and acts["fc2"].shape == (2, 84)
    with pytest.raises(ConfigError, match="lenet was built for 1×28×28"):
        model(torch.rand(1, 1, 32, 32))
    with pytest.raises(ConfigError, match="at least 4 × 4"):
        build_model("lenet", in_channels=1, num_classes=2, input_size=3)
    with pytest.raises(ConfigError, match="two convolutions"):
        build_model("lenet", FMNIST, widths=(6,))


def test_direct_construction_records_a_rebuildable_arch() -> None:
    model = SmallCNN(3, 5, widths=(4,), kernels=(3,), strides=(1,))
    again = build_model(model.arch, **model.arch_kwargs)
    assert again.input_shape == model.input_shape == (3, 32, 32)
    assert again.arch_kwargs == model.arch_kwargs


def test_models_copy_and_describe_themselves() -> None:
    import copy

    model = build_model("resnet20", DIGITS).eval()
    clone = copy.deepcopy(model)
    x = images(model, 1)
    with torch.no_grad():
        assert torch.equal(clone(x), model(x))
    assert clone.arch_kwargs == model.arch_kwargs and clone.taps == model.taps
    assert model.describe().startswith('resnet20 {"depth": 20')
    assert "269,434 parameters" in model.describe()


@settings(max_examples=15, deadline=None)
@given(
    layers=st.lists(
        st.tuples(st.integers(1, 6), st.sampled_from([1, 3, 5]), st.integers(1, 3)),
        min_size=1,
        max_size=3,
    ),
    size=st.integers(3, 12),
    channels=st.integers(1, 3),
    batch_norm=st.booleans(),
)
def test_small_cnn_any_configuration_runs_and_rebuilds(
    layers: list[tuple[int, int, int]], size: int, channels: int, batch_norm: bool
) -> None:
    widths, kernels, strides = (list(v) for v in zip(*layers, strict=True))
    model = build_model(
        "small-cnn",
        num_classes=3,
        in_channels=channels,
        input_size=size,
        widths=widths,
        kernels=kernels,
        strides=strides,
        batch_norm=batch_norm,
    ).eval()
    with torch.no_grad():
        assert model(torch.rand(2, channels, size, size)).shape == (2, 3)
    again = build_model(model.arch, **json.loads(json.dumps(model.arch_kwargs)))
    assert [tuple(p.shape) for p in again.parameters()] == [
        tuple(p.shape) for p in model.parameters()
    ]
