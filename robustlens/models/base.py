"""The interface every classifier in robustlens implements, and helpers to build one.

A :class:`RobustClassifier` maps float images in [0, 1] of shape (N, C, H, W) to logits
(N, K). It splits as ``forward(x) = head(features(x))`` with
``features(x) = forward_features(normalize(x))``: ``normalize`` is a layer inside the model, so
attacks perturb pixels; ``forward_features`` ends after global average pooling and flattening
(the penultimate representation, [N, feature_dim]); ``head`` is the final ``nn.Linear``.
``taps`` name the modules whose outputs are the blocks' outputs (stem, each residual or conv
block) for activation lenses.
"""

from __future__ import annotations

import abc
import functools
import inspect
import json
import numbers
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

from torch import Tensor, nn

from robustlens.errors import ConfigError
from robustlens.models.normalize import Normalize

InitT = TypeVar("InitT", bound=Callable[..., None])


def size_pair(input_size: int | Sequence[int]) -> tuple[int, int]:
    """``input_size`` (an int for square images, or (H, W)) as a pair of positive ints."""
    if isinstance(input_size, bool):
        raise ConfigError(f"input_size must be an int or (height, width), got {input_size!r}")
    if isinstance(input_size, numbers.Integral):
        pair: tuple[Any, ...] = (input_size, input_size)
    else:
        try:
            pair = tuple(input_size)
        except TypeError as err:
            raise ConfigError(
                f"input_size must be an int or (height, width), got {input_size!r}"
            ) from err
    if len(pair) != 2 or not all(_is_integer(v) for v in pair):
        raise ConfigError(
            f"input_size must be an int or (height, width), got {input_size!r}",
            fix="e.g. input_size=32 or input_size=(28, 28)",
        )
    if min(pair) < 1:
        raise ConfigError(f"input_size must be positive, got {input_size!r}")
    return int(pair[0]), int(pair[1])


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def positive_int(value: Any, name: str) -> int:
    """``value`` checked to be an integer ≥ 1 (bools refused)."""
    if not _is_integer(value) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def to_json_value(value: Any, name: str = "value") -> Any:
    """``value`` with tuples, tensors and arrays turned into lists, checked to survive JSON."""
    if hasattr(value, "tolist") and not isinstance(value, str):  # tensors, NumPy values
        return to_json_value(value.tolist(), name)
    if isinstance(value, tuple | list):
        return [to_json_value(v, name) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json_value(v, name) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise ConfigError(
        f"{name} must be JSON-serialisable (numbers, strings, lists, dicts), "
        f"got {type(value).__name__}: {value!r}"
    )


def remember_arguments(init: InitT) -> InitT:
    """Decorate an architecture's ``__init__`` so the instance records its arguments.

    After construction ``self.arch_kwargs`` holds every argument, defaults included, as
    JSON values, with ``input_size`` as [H, W]; ``build_model(arch, **arch_kwargs)`` rebuilds
    the same network. The outermost decorated ``__init__`` of a subclass chain wins.
    """
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self: RobustClassifier, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        init(self, *args, **kwargs)
        recorded = {k: v for k, v in bound.arguments.items() if k != "self"}
        if "input_size" in recorded:
            recorded["input_size"] = list(self.input_shape[1:])
        self.arch_kwargs = to_json_value(recorded, f"{type(self).__name__} argument")

    return wrapper  # type: ignore[return-value]


class RobustClassifier(nn.Module, abc.ABC):
    """Base class: normalisation inside, ``forward(x) = head(features(x))``, named taps.

    Subclasses build their layers after calling ``super().__init__`` (so ``normalize`` is the
    first module), set ``self.taps`` and implement :meth:`forward_features`. ``head_name`` is
    the attribute path of the final ``nn.Linear``.
    """

    arch: str = ""
    head_name: str = "linear"
    accepts_any_size: bool = True
    # Key prefixes of well-known foreign implementations → ours, for load_foreign_weights.
    foreign_aliases: ClassVar[dict[str, str]] = {}

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        input_size: int | Sequence[int] = 32,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        channels = positive_int(in_channels, "in_channels")
        self.num_classes = positive_int(num_classes, "num_classes")
        self.input_shape: tuple[int, int, int] = (channels, *size_pair(input_size))
        mean = [0.0] * channels if mean is None else mean
        std = [1.0] * channels if std is None else std
        self.normalize = Normalize(mean, std)
        if self.normalize.channels != channels:
            raise ConfigError(
                f"{self.normalize.channels} normalisation values for {channels} input channels",
                fix="pass one mean and one std per input channel",
            )
        self.taps: tuple[str, ...] = ()
        self.arch_kwargs: dict[str, Any] = {}

    @abc.abstractmethod
    def forward_features(self, z: Tensor) -> Tensor:
        """Normalised images (N, C, H, W) → penultimate representation (N, feature_dim)."""

    @property
    def head(self) -> nn.Linear:
        """The final linear layer g: logits = g(features)."""
        module = self.get_submodule(self.head_name)
        if not isinstance(module, nn.Linear):
            raise TypeError(f"{type(self).__name__}.{self.head_name} is not an nn.Linear")
        return module

    @property
    def feature_dim(self) -> int:
        return int(self.head.in_features)

    @property
    def in_channels(self) -> int:
        return self.input_shape[0]

    def features(self, x: Tensor) -> Tensor:
        """Images in [0, 1] → penultimate representation (N, feature_dim)."""
        return self.forward_features(self.normalize(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))

    def describe(self) -> str:
        """One line: architecture, arguments, input shape, classes, parameter count."""
        params = sum(p.numel() for p in self.parameters())
        kwargs = {k: v for k, v in self.arch_kwargs.items() if k not in ("mean", "std")}
        return (
            f"{self.arch or type(self).__name__} {json.dumps(kwargs, sort_keys=True)} "
            f"input {self.input_shape}, {self.num_classes} classes, {params:,} parameters"
        )
