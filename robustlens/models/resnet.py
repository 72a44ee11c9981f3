"""Residual networks for small images (He, Zhang, Ren and Sun, "Deep Residual Learning for
Image Recognition", CVPR 2016).

:class:`ResNet` is the CIFAR variant of ResNet-18 used by the MadryLab ``robustness`` library
and kuangliu/pytorch-cifar (3×3 stride-1 stem, no max-pool, widths 64-512); its module names
match theirs, so their state dicts load unchanged. :class:`CifarResNet` is the 6n+2-layer
network of the paper's CIFAR-10 section (ResNet-20, -56, ...) with the parameter-free "option
A" shortcut, named as in the common akamaster/pytorch_resnet_cifar10 implementation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from robustlens.errors import ConfigError
from robustlens.models.base import RobustClassifier, positive_int, remember_arguments


def _conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """conv3×3 → BN → ReLU → conv3×3 → BN, plus the shortcut, then ReLU.

    The shortcut is empty (identity) or a 1×1 strided conv with BN when the shape changes.
    """

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU(inplace=False)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )
        self.relu2 = nn.ReLU(inplace=False)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


def _check_blocks(num_blocks: Sequence[int], stages: int, arch: str) -> list[int]:
    blocks = [positive_int(n, f"{arch} num_blocks entry") for n in num_blocks]
    if len(blocks) != stages:
        raise ConfigError(f"{arch} needs {stages} num_blocks entries, got {list(num_blocks)}")
    return blocks


class ResNet(RobustClassifier):
    """ResNet with basic blocks for small images; ``num_blocks=(2, 2, 2, 2)`` is ResNet-18.

    Stem: conv3×3 (stride 1) → BN → ReLU (``relu``), no max-pool; four stages of widths
    ``width``·(1, 2, 4, 8), the last three starting with stride 2; global average pooling;
    ``linear``. PyTorch's default initialisation, as in the reference implementations.
    Taps: ``relu`` (stem), then ``layer<s>.<b>`` for every residual block.
    """

    arch = "resnet18"

    @remember_arguments
    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        input_size: int | Sequence[int] = 32,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        num_blocks: Sequence[int] = (2, 2, 2, 2),
        width: int = 64,
    ) -> None:
        super().__init__(in_channels, num_classes, input_size=input_size, mean=mean, std=std)
        blocks = _check_blocks(num_blocks, 4, "resnet")
        width = positive_int(width, "resnet width")
        self.conv1 = _conv3x3(self.input_shape[0], width)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=False)
        taps = ["relu"]
        planes = width
        for stage, count in enumerate(blocks):
            out = width * 2**stage
            layers = [
                BasicBlock(planes if b == 0 else out, out, 1 if (b or not stage) else 2)
                for b in range(count)
            ]
            self.add_module(f"layer{stage + 1}", nn.Sequential(*layers))
            taps += [f"layer{stage + 1}.{b}" for b in range(count)]
            planes = out
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.linear = nn.Linear(planes, self.num_classes)
        self.taps = tuple(taps)

    def forward_features(self, z: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(z)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.flatten(self.pool(out))


class ZeroPadShortcut(nn.Module):
    """Option-A shortcut: subsample by ``stride`` and zero-pad the new channels (no weights)."""

    def __init__(self, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        if out_planes < in_planes:
            raise ValueError("a zero-padding shortcut cannot reduce the channel count")
        self.stride = stride
        self.pad_before = (out_planes - in_planes) // 2
        self.pad_after = out_planes - in_planes - self.pad_before

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, self.pad_before, self.pad_after))

    def extra_repr(self) -> str:
        return f"stride={self.stride}, pad=({self.pad_before}, {self.pad_after})"


class CifarBasicBlock(nn.Module):
    """The CIFAR ResNet block: like :class:`BasicBlock` with a zero-padding shortcut."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU(inplace=False)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = ZeroPadShortcut(in_planes, planes, stride)
        self.relu2 = nn.ReLU(inplace=False)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class CifarResNet(RobustClassifier):
    """He et al.'s (2016, §4.2) CIFAR ResNet of depth 6n+2: ResNet-20 (n=3), ResNet-56 (n=9).

    Stem conv3×3 (16 channels) → BN → ReLU (``relu``); three stages of n blocks with 16, 32,
    64 channels (``width`` scales them), the last two starting with stride 2 and an option-A
    shortcut; global average pooling; ``linear``. Kaiming-normal initialisation of conv and
    linear weights. Taps: ``relu`` (stem), then ``layer<s>.<b>`` for every residual block.
    """

    arch = "cifar-resnet"

    @remember_arguments
    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        input_size: int | Sequence[int] = 32,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        depth: int = 20,
        width: int = 16,
    ) -> None:
        super().__init__(in_channels, num_classes, input_size=input_size, mean=mean, std=std)
        depth = positive_int(depth, "cifar-resnet depth")
        if depth < 8 or (depth - 2) % 6:
            raise ConfigError(
                f"cifar-resnet depth must be 6n+2 with n ≥ 1 (8, 14, 20, 32, 44, 56, 110, ...), "
                f"got {depth}"
            )
        width = positive_int(width, "cifar-resnet width")
        n = (depth - 2) // 6
        self.conv1 = _conv3x3(self.input_shape[0], width)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=False)
        taps = ["relu"]
        planes = width
        for stage in range(3):
            out = width * 2**stage
            layers = [
                CifarBasicBlock(planes if b == 0 else out, out, 2 if (b == 0 and stage) else 1)
                for b in range(n)
            ]
            self.add_module(f"layer{stage + 1}", nn.Sequential(*layers))
            taps += [f"layer{stage + 1}.{b}" for b in range(n)]
            planes = out
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.linear = nn.Linear(planes, self.num_classes)
        self.taps = tuple(taps)
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(m.weight)

    def forward_features(self, z: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(z)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.flatten(self.pool(out))
