"""Pre-activation ResNet-18 (He, Zhang, Ren and Sun, "Identity Mappings in Deep Residual
Networks", ECCV 2016), CIFAR variant.

Module names follow the PreAct ResNet-18 of Wong, Rice and Kolter's fast adversarial training
code (``conv1``, ``layer1..4`` of blocks with ``bn1, conv1, bn2, conv2, shortcut``, ``bn``,
``linear``), so its state dicts load unchanged. Two options cover RobustBench's two variants
(``models/robustbench.py``): ``shortcut="input"`` takes a projection shortcut from the block's
raw input instead of its pre-activated one, and ``final_bn=False`` drops the final BN → ReLU.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from robustlens.errors import ConfigError
from robustlens.models.base import RobustClassifier, positive_int, remember_arguments
from robustlens.models.resnet import _check_blocks


class PreActBlock(nn.Module):
    """BN → ReLU → conv3×3 → BN → ReLU → conv3×3, plus the shortcut (no ReLU after the sum).

    When the shape changes the shortcut is a 1×1 strided conv applied to the pre-activated
    input ``relu1(bn1(x))`` (or to ``x`` itself with ``from_input``); otherwise it is the
    identity on ``x`` (and ``shortcut`` is None).
    """

    def __init__(
        self, in_planes: int, planes: int, stride: int = 1, from_input: bool = False
    ) -> None:
        super().__init__()
        self.from_input = from_input
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU(inplace=False)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU(inplace=False)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.shortcut: nn.Sequential | None = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu1(self.bn1(x))
        source = x if self.from_input else out
        shortcut = x if self.shortcut is None else self.shortcut(source)
        out = self.conv1(out)
        out = self.conv2(self.relu2(self.bn2(out)))
        return out + shortcut


class PreActResNet(RobustClassifier):
    """Pre-activation ResNet for small images; ``num_blocks=(2, 2, 2, 2)`` is PreAct ResNet-18.

    Stem: a single conv3×3, stride 1 (``conv1``); four stages of pre-activation blocks with
    widths ``width``·(1, 2, 4, 8); final ``bn`` → ReLU (``relu``); global average pooling;
    ``linear``. PyTorch's default initialisation, as in the reference implementation.
    Taps: ``conv1`` (stem), ``layer<s>.<b>`` for every block, and ``relu`` (the final
    activation, since pre-activation blocks output un-normalised sums).
    ``shortcut``: "activated" (projection shortcuts read ``relu(bn1(x))``) or "input" (they
    read ``x``); ``final_bn=False`` pools the last block's output directly (no ``bn``, no
    ``relu`` tap).
    """

    arch = "preact-resnet18"

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
        shortcut: str = "activated",
        final_bn: bool = True,
    ) -> None:
        super().__init__(in_channels, num_classes, input_size=input_size, mean=mean, std=std)
        blocks = _check_blocks(num_blocks, 4, "preact-resnet")
        width = positive_int(width, "preact-resnet width")
        if shortcut not in ("activated", "input"):
            raise ConfigError(
                f"preact-resnet shortcut must be 'activated' or 'input', got {shortcut!r}"
            )
        if not isinstance(final_bn, bool):
            raise ConfigError(f"preact-resnet final_bn must be true or false, got {final_bn!r}")
        self.final_bn = final_bn
        self.conv1 = nn.Conv2d(self.input_shape[0], width, 3, stride=1, padding=1, bias=False)
        taps = ["conv1"]
        planes = width
        for stage, count in enumerate(blocks):
            out = width * 2**stage
            layers = [
                PreActBlock(
                    planes if b == 0 else out,
                    out,
                    2 if (b == 0 and stage) else 1,
                    from_input=shortcut == "input",
                )
                for b in range(count)
            ]
            self.add_module(f"layer{stage + 1}", nn.Sequential(*layers))
            taps += [f"layer{stage + 1}.{b}" for b in range(count)]
            planes = out
        if final_bn:
            self.bn = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=False)
            taps.append("relu")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.linear = nn.Linear(planes, self.num_classes)
        self.taps = tuple(taps)

    def forward_features(self, z: Tensor) -> Tensor:
        out = self.conv1(z)
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        if self.final_bn:
            out = self.relu(self.bn(out))
        return self.flatten(self.pool(out))
