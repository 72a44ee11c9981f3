"""Small networks that train in minutes on a CPU: a plain CNN, a multilayer perceptron and a
LeNet-5-style network."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from robustlens.errors import ConfigError
from robustlens.models.base import RobustClassifier, positive_int, remember_arguments


class SmallCNN(RobustClassifier):
    """Conv blocks (Conv2d → BatchNorm2d → ReLU), global average pooling, one linear layer.

    Block ``i`` has ``widths[i]`` channels, a ``kernels[i]`` square kernel with "same"
    padding (k // 2) and stride ``strides[i]``; convs carry a bias only without batch norm.
    Small enough to adversarially train on Fashion-MNIST with two CPU cores.
    Taps: ``block1``, ``block2``, ...
    """

    arch = "small-cnn"

    @remember_arguments
    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        input_size: int | Sequence[int] = 32,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        widths: Sequence[int] = (32, 64, 128),
        kernels: Sequence[int] = (5, 3, 3),
        strides: Sequence[int] = (2, 2, 1),
        batch_norm: bool = True,
    ) -> None:
        super().__init__(in_channels, num_classes, input_size=input_size, mean=mean, std=std)
        widths, kernels, strides = list(widths), list(kernels), list(strides)
        if not widths or not len(widths) == len(kernels) == len(strides):
            raise ConfigError(
                f"small-cnn needs one kernel and one stride per width, got widths={widths}, "
                f"kernels={kernels}, strides={strides}",
                fix="pass widths, kernels and strides of the same (non-zero) length",
            )
        for name, values in (("widths", widths), ("kernels", kernels), ("strides", strides)):
            for v in values:
                positive_int(v, f"small-cnn {name} entry")
        previous = self.input_shape[0]
        taps = []
        for i, (width, kernel, stride) in enumerate(zip(widths, kernels, strides, strict=True)):
            layers: list[nn.Module] = [
                nn.Conv2d(
                    previous, width, kernel, stride=stride, padding=kernel // 2, bias=not batch_norm
                )
            ]
            if batch_norm:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.ReLU(inplace=False))
            self.add_module(f"block{i + 1}", nn.Sequential(*layers))
            taps.append(f"block{i + 1}")
            previous = width
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.linear = nn.Linear(previous, self.num_classes)
        self.taps = tuple(taps)
        self._blocks = tuple(taps)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward_features(self, z: Tensor) -> Tensor:
        for name in self._blocks:
            z = getattr(self, name)(z)
        return self.flatten(self.pool(z))


class MLP(RobustClassifier):
    """Flatten → (Linear → ReLU) per hidden width → Linear head.

    Has no global pooling, so it takes only the input size it was built for
    (``accepts_any_size`` is False; another size raises :class:`ConfigError`).
    Taps: ``hidden1``, ``hidden2``, ... (each hidden layer's ReLU output).
    """

    arch = "mlp"
    accepts_any_size = False

    @remember_arguments
    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        input_size: int | Sequence[int] = 32,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        hidden: Sequence[int] = (512, 256),
    ) -> None:
        super().__init__(in_channels, num_classes, input_size=input_size, mean=mean, std=std)
        c, h, w = self.input_shape
        previous = c * h * w
        self.flatten = nn.Flatten()
        taps = []
        for i, width in enumerate(hidden):
            width = positive_int(width, "mlp hidden width")
            self.add_module(
                f"hidden{i + 1}", nn.Sequential(nn.Linear(previous, width), nn.ReLU(inplace=False))
            )
            taps.append(f"hidden{i + 1}")
            previous = width
        self.linear = nn.Linear(previous, self.num_classes)
        self.taps = tuple(taps)
        self._hidden = tuple(taps)

    def forward_features(self, z: Tensor) -> Tensor:
        require_built_size(self, z)
        z = self.flatten(z)
        for name in self._hidden:
            z = getattr(self, name)(z)
        return z


def require_built_size(model: RobustClassifier, z: Tensor) -> None:
    """Refuse inputs of another size than a fixed-size model (no global pooling) was built for."""
    if tuple(z.shape[1:]) != model.input_shape:
        c, h, w = model.input_shape
        raise ConfigError(
            f"the {model.arch} was built for {c}×{h}×{w} inputs and takes no other size (it has "
            f"no global pooling), got {'×'.join(str(s) for s in z.shape[1:])}",
            fix="resize the images to the size the model was built for, or use an "
            "architecture with global pooling (small-cnn, the ResNets)",
        )


class LeNet(RobustClassifier):
    """LeNet-5-style network (LeCun et al. 1998) with ReLU and max pooling: two blocks of
    5 × 5 convolution → ReLU → 2 × 2 max pool, then fully connected layers (120, 84) with ReLU
    and a linear head.

    Both convolutions keep the map size ("same" padding), so the flattened features are
    ``widths[1] × ⌊⌊h/2⌋/2⌋ × ⌊⌊w/2⌋/2⌋`` (16 × 7 × 7 on 28 × 28) and inputs down to 4 × 4 work.
    Like the MLP it takes only the input size it was built for. Used as a victim architecture
    other than the small CNN (Springer et al. 2021, §5.2). Taps: ``conv1``, ``conv2``, ``fc1``,
    ``fc2``.
    """

    arch = "lenet"
    accepts_any_size = False

    @remember_arguments
    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        input_size: int | Sequence[int] = 32,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        widths: Sequence[int] = (6, 16),
        hidden: Sequence[int] = (120, 84),
    ) -> None:
        super().__init__(in_channels, num_classes, input_size=input_size, mean=mean, std=std)
        widths, hidden = list(widths), list(hidden)
        if len(widths) != 2:
            raise ConfigError(f"lenet has two convolutions, got widths={widths}",
                              fix="pass two widths, e.g. widths=(6, 16)")  # fmt: skip
        c, h, w = self.input_shape
        if h < 4 or w < 4:
            raise ConfigError(f"lenet needs inputs of at least 4 × 4, got {h} × {w}",
                              fix="use an mlp for smaller images")  # fmt: skip
        previous = c
        for i, width in enumerate(widths):
            width = positive_int(width, "lenet width")
            block = nn.Sequential(
                nn.Conv2d(previous, width, 5, padding=2), nn.ReLU(inplace=False), nn.MaxPool2d(2)
            )
            self.add_module(f"conv{i + 1}", block)
            previous = width
        previous *= (h // 4) * (w // 4)
        self.flatten = nn.Flatten()
        for i, width in enumerate(hidden):
            width = positive_int(width, "lenet hidden width")
            self.add_module(
                f"fc{i + 1}", nn.Sequential(nn.Linear(previous, width), nn.ReLU(inplace=False))
            )
            previous = width
        self.linear = nn.Linear(previous, self.num_classes)
        self._layers = ("conv1", "conv2", *(f"fc{i + 1}" for i in range(len(hidden))))
        self.taps = self._layers

    def forward_features(self, z: Tensor) -> Tensor:
        require_built_size(self, z)
        z = self.conv2(self.conv1(z))
        z = self.flatten(z)
        for name in self._layers[2:]:
            z = getattr(self, name)(z)
        return z
