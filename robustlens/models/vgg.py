"""VGG networks with batch norm (Simonyan and Zisserman, "Very Deep Convolutional Networks for
Large-Scale Image Recognition", ICLR 2015), CIFAR variant.

Module names follow kuangliu/pytorch-cifar's VGG (a Sequential of conv, BN, ReLU and max-pool
layers, then ``classifier`` = one Linear(512, K)) except that the Sequential is called ``layers``:
``features`` is the :class:`RobustClassifier` method. :func:`load_foreign_weights` maps their
``features.*`` keys to ``layers.*`` (see ``VGG.foreign_aliases``), so state dicts for 32×32
inputs load without manual renaming.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from torch import Tensor, nn

from robustlens.errors import ConfigError
from robustlens.models.base import RobustClassifier, remember_arguments

# Output channels of each 3×3 conv; "M" is a 2×2 max-pool.
CONFIGS: dict[int, tuple[int | str, ...]] = {
    11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    13: (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    19: (
        64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
        512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
    ),
}  # fmt: skip


class VGG(RobustClassifier):
    """VGG-``depth`` (11, 13, 16 or 19) with batch norm, global average pooling and one Linear.

    Each conv block is Conv2d(3×3, padding 1) → BatchNorm2d → ReLU. A max-pool is kept only
    while the spatial size before it (computed from ``input_size`` at build time) is at least 2
    in both dimensions; a dropped pool becomes an ``nn.Identity`` at the same index, so the
    state-dict keys are the same for every input size. 32×32 keeps all five pools, 28×28 the
    first four, 8×8 the first three. Initialisation as in torchvision's VGG: Kaiming-normal
    (fan-out) convs with zero bias, BN weight 1 / bias 0, linear N(0, 0.01) with zero bias.
    Taps: the ReLU of every conv block (``layers.2``, ``layers.5``, ...).
    """

    arch = "vgg"
    head_name = "classifier"
    foreign_aliases: ClassVar[dict[str, str]] = {"features.": "layers."}

    @remember_arguments
    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        input_size: int | Sequence[int] = 32,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        depth: int = 16,
        batch_norm: bool = True,
    ) -> None:
        super().__init__(in_channels, num_classes, input_size=input_size, mean=mean, std=std)
        if depth not in CONFIGS:
            raise ConfigError(
                f"vgg depth must be one of {sorted(CONFIGS)}, got {depth!r}",
            )
        layers: list[nn.Module] = []
        taps: list[str] = []
        previous = self.input_shape[0]
        height, width = self.input_shape[1:]
        for item in CONFIGS[depth]:
            if item == "M":
                if min(height, width) >= 2:
                    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                    height, width = height // 2, width // 2
                else:
                    layers.append(nn.Identity())
                continue
            assert isinstance(item, int)
            layers.append(nn.Conv2d(previous, item, 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(item))
            layers.append(nn.ReLU(inplace=False))
            taps.append(f"layers.{len(layers) - 1}")
            previous = item
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(previous, self.num_classes)
        self.taps = tuple(taps)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    @property
    def pooled(self) -> tuple[bool, ...]:
        """For each "M" of the configuration: whether a max-pool was kept."""
        return tuple(
            isinstance(m, nn.MaxPool2d)
            for m in self.layers
            if isinstance(m, nn.MaxPool2d | nn.Identity)
        )

    def forward_features(self, z: Tensor) -> Tensor:
        return self.flatten(self.pool(self.layers(z)))
