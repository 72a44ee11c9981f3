"""ResNet-50 and other bottleneck residual networks (He, Zhang, Ren and Sun, "Deep Residual
Learning for Image Recognition", CVPR 2016, Table 1).

Two stems: ``"cifar"`` (conv3×3 stride 1 → BN → ReLU, no max-pool: the ResNet-50 of the
MadryLab ``robustness`` library and RobustBench's CIFAR-10 entries) and ``"imagenet"`` (conv7×7
stride 2 → BN → ReLU → max-pool 3×3 stride 2: the ImageNet network). Module names are those of
the CIFAR implementations (``conv1, bn1, layer1..4`` of blocks with ``conv1..3, bn1..3,
shortcut``, ``linear``); ``models/robustbench.py`` maps torchvision's ``downsample``/``fc``
names onto them. The stride of a stage's first block sits on its 3×3 conv, as in both.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from robustlens.errors import ConfigError
from robustlens.models.base import RobustClassifier, positive_int, remember_arguments
from robustlens.models.resnet import _check_blocks

EXPANSION = 4


class Bottleneck(nn.Module):
    """conv1×1 → BN → ReLU → conv3×3 (stride) → BN → ReLU → conv1×1 (×4 channels) → BN, plus
    the shortcut (identity, or conv1×1 + BN when the shape changes), then ReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out = planes * EXPANSION
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU(inplace=False)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU(inplace=False)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out)
            )
        self.relu3 = nn.ReLU(inplace=False)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu3(out + self.shortcut(x))


class BottleneckResNet(RobustClassifier):
    """Bottleneck ResNet; ``num_blocks=(3, 4, 6, 3)`` is ResNet-50.

    Stages of widths ``width``·(1, 2, 4, 8) (outputs ×4), the last three starting with
    stride 2; global average pooling; ``linear``. PyTorch's default initialisation.
    Taps: ``relu`` (CIFAR stem) or ``maxpool`` (ImageNet stem), then ``layer<s>.<b>``.
    """

    arch = "resnet50"

    @remember_arguments
    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        input_size: int | Sequence[int] = 32,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        num_blocks: Sequence[int] = (3, 4, 6, 3),
        width: int = 64,
        stem: str = "cifar",
    ) -> None:
        super().__init__(in_channels, num_classes, input_size=input_size, mean=mean, std=std)
        blocks = _check_blocks(num_blocks, 4, "bottleneck resnet")
        width = positive_int(width, "bottleneck resnet width")
        if stem not in ("cifar", "imagenet"):
            raise ConfigError(f"bottleneck resnet stem must be 'cifar' or 'imagenet', got {stem!r}")
        self.stem = stem
        if stem == "cifar":
            self.conv1 = nn.Conv2d(self.input_shape[0], width, 3, padding=1, bias=False)
        else:
            self.conv1 = nn.Conv2d(self.input_shape[0], width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=False)
        taps = ["relu"]
        if stem == "imagenet":
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
            taps = ["maxpool"]
        planes = width
        for stage, count in enumerate(blocks):
            inner = width * 2**stage
            layers = []
            for b in range(count):
                layers.append(Bottleneck(planes, inner, 2 if (b == 0 and stage) else 1))
                planes = inner * EXPANSION
            self.add_module(f"layer{stage + 1}", nn.Sequential(*layers))
            taps += [f"layer{stage + 1}.{b}" for b in range(count)]
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.linear = nn.Linear(planes, self.num_classes)
        self.taps = tuple(taps)

    def forward_features(self, z: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(z)))
        if self.stem == "imagenet":
            out = self.maxpool(out)
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.flatten(self.pool(out))
