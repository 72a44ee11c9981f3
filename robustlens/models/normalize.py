"""The normalisation layer every model starts with, so attacks and lenses work in pixel space."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from robustlens.errors import ConfigError


def _statistics(values: Sequence[float] | Tensor, what: str) -> Tensor:
    """``values`` as a float32 tensor of shape (C, 1, 1), checked to be finite."""
    try:
        tensor = torch.as_tensor(values, dtype=torch.float32, device="cpu").detach().clone()
        tensor = tensor.reshape(-1)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ConfigError(
            f"normalisation {what} must be a sequence of numbers, got {values!r}",
            fix=f"pass one {what} per channel, e.g. {what}=(0.5, 0.5, 0.5)",
        ) from err
    if tensor.numel() == 0 or not bool(torch.isfinite(tensor).all()):
        raise ConfigError(
            f"normalisation {what} must be finite and non-empty, got {values!r}",
            fix=f"pass one finite {what} per channel",
        )
    return tensor.reshape(-1, 1, 1)


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel, for float images in [0, 1] of shape (N, C, H, W).

    ``mean`` and ``std`` are buffers of shape (C, 1, 1): they move with the model and are
    saved in its state dict, so a checkpoint carries the statistics it was trained with.
    """

    def __init__(self, mean: Sequence[float] | Tensor, std: Sequence[float] | Tensor) -> None:
        super().__init__()
        mean_t, std_t = _statistics(mean, "mean"), _statistics(std, "std")
        if mean_t.shape != std_t.shape:
            raise ConfigError(
                f"normalisation mean has {mean_t.shape[0]} values but std has {std_t.shape[0]}",
                fix="pass one mean and one std per channel",
            )
        if bool((std_t <= 0).any()):
            raise ConfigError(
                f"normalisation std must be positive, got {std_t.flatten().tolist()}",
                fix="use the per-channel standard deviation of the training images",
            )
        self.register_buffer("mean", mean_t)
        self.register_buffer("std", std_t)

    @property
    def channels(self) -> int:
        return int(self.mean.shape[0])

    def set_statistics(self, mean: Sequence[float] | Tensor, std: Sequence[float] | Tensor) -> None:
        """Replace the statistics in place (same number of channels)."""
        fresh = Normalize(mean, std)
        if fresh.channels != self.channels:
            raise ConfigError(
                f"normalisation has {self.channels} channels, new statistics have {fresh.channels}",
                fix="pass one mean and one std per input channel of the model",
            )
        with torch.no_grad():
            self.mean.copy_(fresh.mean)
            self.std.copy_(fresh.std)

    def statistics(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(mean, std) as tuples of Python floats."""
        return (
            tuple(float(v) for v in self.mean.flatten().tolist()),
            tuple(float(v) for v in self.std.flatten().tolist()),
        )

    def is_identity(self) -> bool:
        mean, std = self.statistics()
        return all(m == 0.0 for m in mean) and all(math.isclose(s, 1.0) for s in std)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            raise ConfigError(
                f"models take a batch of images of shape (N, C, H, W), got shape {tuple(x.shape)}",
                fix="add a batch dimension with x.unsqueeze(0)" if x.dim() == 3 else None,
            )
        if x.shape[1] != self.channels:
            raise ConfigError(
                f"the model takes {self.channels}-channel images, got {x.shape[1]} channels "
                f"(input shape {tuple(x.shape)})",
                fix="pass images with the channel count of the data set the model was built for",
            )
        if not x.is_floating_point():
            raise ConfigError(
                f"models take float images in [0, 1], got dtype {x.dtype}",
                fix="convert with x.float() / 255",
            )
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        mean, std = self.statistics()
        return f"mean={[round(v, 4) for v in mean]}, std={[round(v, 4) for v in std]}"
