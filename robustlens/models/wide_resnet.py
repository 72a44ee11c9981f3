"""Wide residual networks (Zagoruyko and Komodakis, "Wide Residual Networks", BMVC 2016).

Module names and the forward pass follow the WideResNet of RobustBench and TRADES (``conv1``,
``block1..3`` each holding ``layer.<i>`` blocks with ``bn1, relu1, conv1, bn2, relu2, conv2,
convShortcut``, then ``bn1``, ``relu``, ``fc``), so their state dicts load unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

from robustlens.errors import ConfigError
from robustlens.models.base import RobustClassifier, positive_int, remember_arguments


class WideBasicBlock(nn.Module):
    """Pre-activation block: BN → ReLU → conv3×3 → BN → ReLU → dropout → conv3×3, plus shortcut.

    When the channel count changes, the shortcut is a 1×1 conv (``convShortcut``) and, as in
    the reference code, both it and ``conv1`` read the pre-activated input; otherwise the
    shortcut is the identity on the raw input.
    """

    def __init__(self, in_planes: int, out_planes: int, stride: int, dropout: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU(inplace=False)
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU(inplace=False)
        self.dropout = nn.Dropout(p=dropout)
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, stride=1, padding=1, bias=False)
        self.equal_in_out = in_planes == out_planes
        if self.equal_in_out and stride != 1:
            raise ValueError("a strided wide block must change the channel count")
        self.convShortcut: nn.Conv2d | None = None
        if not self.equal_in_out:
            self.convShortcut = nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        if self.convShortcut is None:
            out = self.relu1(self.bn1(x))
            shortcut = x
        else:
            out = self.relu1(self.bn1(x))
            shortcut = self.convShortcut(out)
        out = self.relu2(self.bn2(self.conv1(out)))
        out = self.conv2(self.dropout(out))
        return shortcut + out


class NetworkBlock(nn.Module):
    """One stage: ``layer``, a Sequential of wide blocks, the first one possibly strided."""

    def __init__(
        self, count: int, in_planes: int, out_planes: int, stride: int, dropout: float
    ) -> None:
        super().__init__()
        self.layer = nn.Sequential(
            *(
                WideBasicBlock(
                    in_planes if i == 0 else out_planes,
                    out_planes,
                    stride if i == 0 else 1,
                    dropout,
                )
                for i in range(count)
            )
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(x)


class WideResNet(RobustClassifier):
    """WRN-``depth``-``widen_factor``: WRN-28-10 and WRN-34-10 are the usual robust CIFAR models.

    Stem conv3×3 with 16 channels (``conv1``); three stages (``block1..3``) of
    n = (depth − 4) / 6 blocks with 16k, 32k, 64k channels (k = ``widen_factor``), the last
    two starting with stride 2; final ``bn1`` → ReLU (``relu``); global average pooling;
    ``fc``. Dropout between the block's convs (0 by default). Initialisation of the
    reference: conv weights N(0, 2 / (k·k·out_channels)), BN weight 1 / bias 0, ``fc`` bias 0.
    Taps: ``conv1`` (stem), ``block<s>.layer.<i>`` for every block, ``relu`` (final).
    """

    arch = "wrn"
    head_name = "fc"

    @remember_arguments
    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        input_size: int | Sequence[int] = 32,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        depth: int = 28,
        widen_factor: int = 10,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(in_channels, num_classes, input_size=input_size, mean=mean, std=std)
        depth = positive_int(depth, "wrn depth")
        widen_factor = positive_int(widen_factor, "wrn widen_factor")
        if depth < 10 or (depth - 4) % 6:
            raise ConfigError(
                f"wrn depth must be 6n+4 with n ≥ 1 (10, 16, 22, 28, 34, 40, ...), got {depth}"
            )
        if not 0.0 <= float(dropout) < 1.0:
            raise ConfigError(f"wrn dropout must be in [0, 1), got {dropout!r}")
        n = (depth - 4) // 6
        channels = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.conv1 = nn.Conv2d(self.input_shape[0], channels[0], 3, padding=1, bias=False)
        self.block1 = NetworkBlock(n, channels[0], channels[1], 1, float(dropout))
        self.block2 = NetworkBlock(n, channels[1], channels[2], 2, float(dropout))
        self.block3 = NetworkBlock(n, channels[2], channels[3], 2, float(dropout))
        self.bn1 = nn.BatchNorm2d(channels[3])
        self.relu = nn.ReLU(inplace=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(channels[3], self.num_classes)
        self.taps = (
            "conv1",
            *(f"block{s}.layer.{i}" for s in (1, 2, 3) for i in range(n)),
            "relu",
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward_features(self, z: Tensor) -> Tensor:
        out = self.block3(self.block2(self.block1(self.conv1(z))))
        out = self.relu(self.bn1(out))
        return self.flatten(self.pool(out))
