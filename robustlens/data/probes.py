"""Image transforms used as probes, batched on [0, 1] NCHW tensors.

Carletti et al. (2022), §3.4 and App. B: pixel-averaged images, coloured contours and the
tiled grid. Each function returns a new tensor and leaves its input unchanged.
"""

from __future__ import annotations

import math

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


# ----------------------------------------------------------------------------- Itazuri et al.
# §4.1 and Table 2 of paper 002: transforms that remove spatial detail (blur, median), colour
# (reversal) or texture while keeping shape (Fourier amplitude swap, edge map).


PROBE_REFERENCE_SIDE = 224
"""Itazuri et al. §4.1 give the blur and median sizes for ImageNet images of 224 × 224 px."""

Pair = tuple[float, float]


def _pair(value: float | tuple[float, ...]) -> tuple:
    return tuple(value) if isinstance(value, tuple | list) else (value, value)


def relative_sigma(sigma: float, side: int, reference: int = PROBE_REFERENCE_SIDE) -> float:
    """σ written for images of ``reference`` px, moved to images of ``side`` px: σ·side/reference
    (``reference`` 0: as written)."""
    return float(sigma) if reference == 0 else float(sigma) * side / reference


def relative_kernel(kernel: int, side: int, reference: int = PROBE_REFERENCE_SIDE) -> int:
    """A kernel size written for images of ``reference`` px, moved to ``side`` px: the odd size
    nearest to kernel·side/reference (ties upwards), at least 3, since a 1-px kernel leaves
    every image as it is (``reference`` 0: as written). Equals ``kernel`` when side = reference."""
    if reference == 0:
        return int(kernel)
    half = math.floor((kernel * side / reference - 1) / 2 + 0.5)
    return max(3, 2 * half + 1)


def gaussian_blur(
    x: torch.Tensor, sigma: float | Pair, kernel_size: int | tuple[int, int] = 7
) -> torch.Tensor:
    """Gaussian blur with a ``kernel_size`` kernel (7 in §4.1) and standard deviation ``sigma``
    (kornia, reflect padding); a pair gives (rows, columns). ``sigma = 0`` returns the images
    unchanged."""
    _check(x)
    sigmas, kernels = _pair(sigma), _pair(kernel_size)
    if any(s < 0 for s in sigmas) or any(k < 1 or k % 2 == 0 for k in kernels):
        raise ConfigError(
            f"blur needs sigma ≥ 0 and an odd kernel size, got sigma={sigma}, "
            f"kernel_size={kernel_size}"
        )
    if all(s == 0 for s in sigmas):
        return x.clone()
    # heavy: kornia loads only when this probe runs
    import kornia

    k = (int(kernels[0]), int(kernels[1]))
    return kornia.filters.gaussian_blur2d(x, k, (float(sigmas[0]), float(sigmas[1]))).clamp(0, 1)


def median_filter(
    x: torch.Tensor, times: int, kernel_size: int | tuple[int, int] = 5
) -> torch.Tensor:
    """The median filter of a ``kernel_size`` window (5 in §4.1; a pair gives rows, columns)
    applied ``times`` times (kornia; zero padding at the border, as kornia's median_blur
    does)."""
    _check(x)
    kernels = _pair(kernel_size)
    if times < 0 or any(k < 1 or k % 2 == 0 for k in kernels):
        raise ConfigError(
            f"median filtering needs times ≥ 0 and an odd kernel size, got times={times}, "
            f"kernel_size={kernel_size}"
        )
    # heavy: kornia loads only when this probe runs
    import kornia

    out = x.clone()
    for _ in range(times):
        out = kornia.filters.median_blur(out, (int(kernels[0]), int(kernels[1])))
    return out


def reverse_colors(x: torch.Tensor, mean: tuple[float, ...] | list[float]) -> torch.Tensor:
    """Pixel values reflected around the data set's per-channel mean, 2μ − x (Table 2),
    clipped to [0, 1] (values reflected past a bound are lost; see :func:`clipped_fraction`)."""
    _check(x)
    mu = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    if mu.shape[1] != x.shape[1]:
        raise ConfigError(f"{mu.shape[1]} mean values do not fit {x.shape[1]}-channel images")
    return (2 * mu - x).clamp(0, 1)


def clipped_fraction(x: torch.Tensor, mean: tuple[float, ...] | list[float]) -> float:
    """The fraction of pixel values :func:`reverse_colors` has to clip."""
    mu = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    y = 2 * mu - x
    return float(((y < 0) | (y > 1)).float().mean())


def amplitude_swap(x: torch.Tensor, donors: torch.Tensor) -> torch.Tensor:
    """Each image's Fourier phase with the amplitude spectrum of the matching donor image
    (per channel): the layout of edges and shapes stays, the texture statistics come from
    another image. Clipped to [0, 1]."""
    _check(x)
    if donors.shape != x.shape:
        raise ConfigError(f"donor images {tuple(donors.shape)} must match {tuple(x.shape)}")
    spectrum = torch.fft.fft2(x.double())
    amplitude = torch.fft.fft2(donors.double()).abs()
    mixed = torch.polar(amplitude, torch.angle(spectrum))
    return torch.fft.ifft2(mixed).real.clamp(0, 1).to(x.dtype)


def edge_map(x: torch.Tensor) -> torch.Tensor:
    """Sobel gradient magnitude of the grey image, scaled per image to [0, 1] and repeated on
    every channel: edges and silhouette without texture or colour."""
    _check(x)
    # heavy: kornia loads only when this probe runs
    import kornia

    grey = x.mean(dim=1, keepdim=True)
    grad = kornia.filters.spatial_gradient(grey, mode="sobel")  # [N, 1, 2, H, W]
    edges = grad.pow(2).sum(dim=2).sqrt()
    top = edges.flatten(1).amax(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
    return (edges / top).expand_as(x).clone()
