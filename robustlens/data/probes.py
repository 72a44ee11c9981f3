"""Image transforms used as probes, batched on [0, 1] NCHW tensors.

Carletti et al. (2022), §3.4 and App. B: pixel-averaged images, coloured contours and the
tiled grid. Each function returns a new tensor and leaves its input unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from robustlens.errors import ConfigError

CONTOUR_COLORS: dict[str, tuple[float, float, float]] = {
    "white": (1.0, 1.0, 1.0),
    "red": (1.0, 0.0, 0.0),
    "green": (0.0, 1.0, 0.0),
    "blue": (0.0, 0.0, 1.0),
}
"""The contour colours of Carletti et al. §3.4 (Fig. 4)."""

LUMA = (0.299, 0.587, 0.114)
"""ITU-R BT.601 luma weights: how a colour looks on one-channel images."""


def _check(x: torch.Tensor) -> None:
    if x.ndim != 4:
        raise ConfigError(f"probes take NCHW batches, got shape {tuple(x.shape)}")


def pixel_average(x: torch.Tensor) -> torch.Tensor:
    """Each image replaced by its mean colour (per channel), §3.4 experiment 1 (Fig. 9)."""
    _check(x)
    return x.mean(dim=(2, 3), keepdim=True).expand_as(x).clone()


def color_value(color: str | tuple[float, ...], channels: int) -> torch.Tensor:
    """A named or RGB colour as per-channel values; on one channel, its grey level (luma)."""
    if isinstance(color, str):
        if color not in CONTOUR_COLORS:
            raise ConfigError(
                f"unknown contour colour {color!r}", fix=f"use one of {', '.join(CONTOUR_COLORS)}"
            )
        rgb = CONTOUR_COLORS[color]
    else:
        rgb = tuple(float(c) for c in color)
    if any(not 0.0 <= c <= 1.0 for c in rgb):
        raise ConfigError(f"colour values must lie in [0, 1], got {rgb}")
    if channels == len(rgb):
        return torch.tensor(rgb)
    if channels == 1 and len(rgb) == 3:
        return torch.tensor([sum(w * c for w, c in zip(LUMA, rgb, strict=True))])
    raise ConfigError(f"a colour with {len(rgb)} values does not fit {channels}-channel images")


def colored_contour(
    x: torch.Tensor, color: str | tuple[float, ...], thickness: int
) -> torch.Tensor:
    """A frame of ``thickness`` pixels in ``color`` drawn over the image border (§3.4, Fig. 10)."""
    _check(x)
    _, c, h, w = x.shape
    if not isinstance(thickness, int) or thickness < 0 or 2 * thickness > min(h, w):
        raise ConfigError(
            f"contour thickness must be a whole number in [0, {min(h, w) // 2}], got {thickness}"
        )
    out = x.clone()
    if thickness == 0:
        return out
    value = color_value(color, c).to(x).view(1, c, 1, 1)
    t = thickness
    out[:, :, :t, :] = value
    out[:, :, h - t :, :] = value
    out[:, :, :, :t] = value
    out[:, :, :, w - t :] = value
    return out


def tile_grid(x: torch.Tensor, copies: int = 2) -> torch.Tensor:
    """The image repeated ``copies`` × ``copies`` times at full size (App. B, Fig. 11)."""
    _check(x)
    if copies < 1:
        raise ConfigError(f"grid copies must be at least 1, got {copies}")
    return x.repeat(1, 1, copies, copies)


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear, antialiased resize (for models that only accept their own input size)."""
    _check(x)
    out = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    return out.clamp(0.0, 1.0)
