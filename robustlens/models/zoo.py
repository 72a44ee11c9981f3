"""The registry of architectures and :func:`build_model`, which sizes them for a data set.

>>> model = build_model("resnet18", "cifar10")                  # doctest: +SKIP
>>> model = build_model("small-cnn", "fashion-mnist", widths=(16, 32, 64))  # doctest: +SKIP
>>> same = build_model(model.arch, **model.arch_kwargs)          # doctest: +SKIP
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from robustlens.data import dataset_info
from robustlens.errors import ConfigError
from robustlens.models.base import RobustClassifier, positive_int, to_json_value
from robustlens.models.bottleneck import BottleneckResNet
from robustlens.models.preact_resnet import PreActResNet
from robustlens.models.resnet import CifarResNet, ResNet
from robustlens.models.simple import MLP, LeNet, SmallCNN
from robustlens.models.vgg import VGG
from robustlens.models.wide_resnet import WideResNet
from robustlens.registry import Registry
from robustlens.runtime import check_memory, large_allowed

SHAPE_ARGUMENTS = ("num_classes", "in_channels", "input_size", "mean", "std")


@dataclass(frozen=True)
class ArchSpec:
    """A registered architecture: its class, the arguments the name fixes, a summary."""

    name: str
    cls: type[RobustClassifier]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    summary: str = ""

    def parameters(self) -> list[str]:
        """The keyword arguments ``build_model`` accepts for this architecture."""
        names = [p for p in inspect.signature(self.cls).parameters if p != "self"]
        return [p for p in names if p not in self.fixed]


ARCHITECTURES: Registry[ArchSpec] = Registry("architecture")


def _add(name: str, cls: type[RobustClassifier], summary: str, **fixed: Any) -> None:
    ARCHITECTURES.add(name, ArchSpec(name, cls, to_json_value(fixed), summary))


_add("small-cnn", SmallCNN, "three conv-BN-ReLU blocks, GAP, linear; CPU-friendly")
_add("mlp", MLP, "multilayer perceptron (fixed input size)")
_add("lenet", LeNet, "LeNet-5-style: two conv-ReLU-pool blocks, two FC layers (fixed size)")
_add("resnet18", ResNet, "ResNet-18, CIFAR stem (He et al. 2016)", num_blocks=(2, 2, 2, 2))
_add(
    "preact-resnet18",
    PreActResNet,
    "pre-activation ResNet-18, CIFAR stem (He et al. 2016b)",
    num_blocks=(2, 2, 2, 2),
)
_add(
    "resnet50",
    BottleneckResNet,
    "ResNet-50, CIFAR stem (He et al. 2016; RobustBench's CIFAR-10 ResNet-50s)",
    num_blocks=(3, 4, 6, 3),
    stem="cifar",
)
_add(
    "resnet50-imagenet",
    BottleneckResNet,
    "ResNet-50, ImageNet stem: conv7×7/2 and max-pool (He et al. 2016)",
    num_blocks=(3, 4, 6, 3),
    stem="imagenet",
)
_add("resnet20", CifarResNet, "CIFAR ResNet-20, option-A shortcuts (He et al. 2016)", depth=20)
_add("resnet56", CifarResNet, "CIFAR ResNet-56, option-A shortcuts (He et al. 2016)", depth=56)
_add("cifar-resnet", CifarResNet, "CIFAR ResNet of depth 6n+2 (He et al. 2016)")
_add("wrn-28-10", WideResNet, "WideResNet-28-10 (Zagoruyko & Komodakis 2016)", depth=28,
     widen_factor=10)  # fmt: skip
_add("wrn-34-10", WideResNet, "WideResNet-34-10 (Zagoruyko & Komodakis 2016)", depth=34,
     widen_factor=10)  # fmt: skip
_add("wrn", WideResNet, "WideResNet of any depth 6n+4 and width (Zagoruyko & Komodakis 2016)")
_add("vgg16-bn", VGG, "VGG-16 with batch norm (Simonyan & Zisserman 2015)", depth=16,
     batch_norm=True)  # fmt: skip


def list_architectures() -> list[str]:
    """The registered architecture names, sorted."""
    return ARCHITECTURES.names()


def _dataset_facts(dataset: Any) -> Any:
    """A :class:`~robustlens.data.DatasetInfo` for a name or an info object."""
    if isinstance(dataset, str):
        return dataset_info(dataset)
    if all(hasattr(dataset, a) for a in ("num_classes", "shape", "mean", "std")):
        return dataset
    raise ConfigError(
        f"dataset must be a data set name or a DatasetInfo, got {type(dataset).__name__}",
        fix="e.g. build_model('resnet18', 'cifar10')",
    )


def _statistics_for(values: Sequence[float], channels: int, what: str, dataset: str) -> list[float]:
    """The data set's per-channel ``values`` for ``channels`` channels (1 value is repeated)."""
    values = [float(v) for v in values]
    if len(values) == channels:
        return values
    if len(values) == 1:
        return values * channels
    raise ConfigError(
        f"data set {dataset!r} has {len(values)} channels but the model is built for "
        f"{channels} (in_channels={channels}), so its {what} does not apply",
        fix="pass mean= and std= with one value per channel",
    )


def build_model(
    arch: str,
    dataset: Any = None,
    *,
    num_classes: int | None = None,
    in_channels: int | None = None,
    input_size: int | Sequence[int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    allow_large: bool = False,
    **kwargs: Any,
) -> RobustClassifier:
    """Build architecture ``arch`` (see :func:`list_architectures`) sized for ``dataset``.

    ``dataset`` (a name or a ``DatasetInfo``) supplies the number of classes, the channel
    count, the input size and the normalisation statistics; explicit arguments override it.
    Without a data set, ``num_classes``, ``in_channels`` and ``input_size`` are required and the
    normalisation is the identity unless ``mean``/``std`` are given. Other keyword arguments go
    to the architecture (e.g. ``widths`` for small-cnn, ``dropout`` for wrn). The returned
    model's ``arch`` and ``arch_kwargs`` rebuild it: ``build_model(m.arch, **m.arch_kwargs)``.
    Initialisation draws from torch's global generator, so it is fixed by ``torch.manual_seed``.

    The parameter count is worked out first (on the ``meta`` device, allocating nothing); an
    architecture whose weights, gradients and optimiser state would not fit in the memory
    available is a :class:`ConfigError` unless ``allow_large=True`` (or
    ``ROBUSTLENS_ALLOW_LARGE=1``).
    """
    spec = ARCHITECTURES.get(arch)
    info = None if dataset is None else _dataset_facts(dataset)
    if info is not None:
        num_classes = info.num_classes if num_classes is None else num_classes
        in_channels = info.shape[0] if in_channels is None else in_channels
        input_size = tuple(info.shape[1:]) if input_size is None else input_size
        channels = positive_int(in_channels, "in_channels")
        if mean is None:
            mean = _statistics_for(info.mean, channels, "mean", info.name)
        if std is None:
            std = _statistics_for(info.std, channels, "std", info.name)
    missing = [
        name
        for name, value in (
            ("num_classes", num_classes),
            ("in_channels", in_channels),
            ("input_size", input_size),
        )
        if value is None
    ]
    if missing:
        raise ConfigError(
            f"cannot size {spec.name!r}: no data set given and {', '.join(missing)} missing",
            fix="pass a data set (e.g. build_model(arch, 'cifar10')) or num_classes, "
            "in_channels and input_size",
        )
    for name, value in spec.fixed.items():
        if name in kwargs and to_json_value(kwargs[name]) != value:
            generic = next(
                (s.name for _, s in ARCHITECTURES.items() if s.cls is spec.cls and not s.fixed),
                None,
            )
            raise ConfigError(
                f"architecture {spec.name!r} fixes {name}={value!r}, got {name}={kwargs[name]!r}",
                fix=f"use {generic!r} to choose {name}" if generic else f"leave out {name}",
            )
        kwargs[name] = value
    arguments = dict(
        num_classes=num_classes,
        in_channels=in_channels,
        input_size=input_size,
        mean=mean,
        std=std,
        **kwargs,
    )
    try:
        inspect.signature(spec.cls).bind(**arguments)
    except TypeError as err:
        accepted = ", ".join(p for p in spec.parameters() if p not in SHAPE_ARGUMENTS)
        raise ConfigError(
            f"bad arguments for architecture {spec.name!r}: {err}",
            fix=f"{spec.name!r} accepts {accepted or 'no other arguments'}",
        ) from err
    check_model_size(spec, arguments, allow=allow_large)
    model = spec.cls(**arguments)
    model.arch = spec.name
    return model


BYTES_PER_PARAMETER = 3 * 4
"""Training memory per parameter: float32 weights, gradients and SGD momentum."""


def parameter_count(spec: ArchSpec, arguments: Mapping[str, Any]) -> int:
    """The number of parameters ``spec`` built with ``arguments`` has, allocating nothing."""
    with torch.device("meta"):
        shell = spec.cls(**arguments)
    return sum(p.numel() for p in shell.parameters())


def check_model_size(spec: ArchSpec, arguments: Mapping[str, Any], *, allow: bool = False) -> None:
    """Refuse an architecture whose parameters alone would exhaust the memory available."""
    if allow or large_allowed():
        return
    count = parameter_count(spec, arguments)
    widths = {k: v for k, v in arguments.items() if k not in SHAPE_ARGUMENTS}
    check_memory(
        count * BYTES_PER_PARAMETER,
        f"architecture {spec.name!r} with {widths or 'its defaults'} has {count:,} parameters "
        "and, to train,",
        fix="choose smaller widths or depth",
    )


def check_model_fits(model: Any, num_classes: int, shape: Sequence[int], dataset: str) -> None:
    """Raise a ConfigError when ``model`` declares an input shape or class count other than
    the data set's (models that declare none, such as some adapters, are not checked)."""
    declared = getattr(model, "input_shape", None)
    if declared is not None and tuple(declared) != tuple(shape):
        raise ConfigError(
            f"the model takes inputs of shape {tuple(declared)} but data set {dataset!r} has "
            f"images of shape {tuple(shape)}",
            fix="evaluate it on the data set it was trained for (its card's dataset), or train "
            "a model for this one",
        )
    classes = getattr(model, "num_classes", None)
    if classes is not None and int(classes) != int(num_classes):
        raise ConfigError(
            f"the model has {classes} classes but data set {dataset!r} has {num_classes}",
            fix="evaluate it on the data set it was trained for (its card's dataset)",
        )
