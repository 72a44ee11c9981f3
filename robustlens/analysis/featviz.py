"""Activation maximisation of channels, after Lucid's recipe (Olah et al. 2017; used by
Itazuri et al. 2019, Eq. 10, Fig. 3–4).

The image is parameterised in the Fourier domain with each frequency scaled by 1/f (so the
optimiser does not favour high frequencies), its colours decorrelated with the square root of
the data set's own colour covariance, and squashed into [0, 1] by a sigmoid. Each step applies
random transforms sized to the image (Lucid's for 224 px: pad 12, jitter 8, scale 0.9–1.1,
rotate ±10°, jitter 4; here multiplied by size/224, at least one pixel), crops the result back
to the model's input size and takes an Adam step
(learning rate 0.05) on the channel's mean activation. Nothing is upsampled or normalised
beyond what the model does itself; runs are seeded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from robustlens.errors import ConfigError, NumericalError

LUCID_SIZE = 224
SCALES = tuple(1 + (i - 5) / 50 for i in range(11))
ANGLES = tuple(range(-10, 11))


def color_sqrt(images: torch.Tensor) -> torch.Tensor:
    """[C, C] square root of the pixel colour covariance (by SVD), its columns divided by the
    largest column norm as Lucid does; the identity for one channel."""
    c = images.shape[1]
    if c == 1:
        return torch.eye(1)
    pixels = images.permute(1, 0, 2, 3).reshape(c, -1).double()
    cov = torch.cov(pixels)
    u, s, _ = torch.linalg.svd(cov)
    root = u @ torch.diag(s.sqrt())
    return (root / root.norm(dim=0).max()).float()


@dataclass(frozen=True)
class TransformSizes:
    pad: int
    jitter_first: int
    jitter_last: int

    @classmethod
    def for_image(cls, size: int) -> TransformSizes:
        f = size / LUCID_SIZE
        return cls(max(1, round(12 * f)), max(1, round(8 * f)), max(1, round(4 * f)))


class FourierImage(nn.Module):
    """A batch of images as 1/f-scaled Fourier coefficients, decorrelated colour, sigmoid."""

    def __init__(
        self, n: int, shape: tuple[int, int, int], colors: torch.Tensor, generator
    ) -> None:
        super().__init__()
        c, h, w = shape
        fy = torch.fft.fftfreq(h).view(-1, 1)
        fx = torch.fft.rfftfreq(w).view(1, -1)
        freq = torch.sqrt(fy**2 + fx**2)
        self.register_buffer("scale", 1.0 / torch.clamp(freq, min=1.0 / max(h, w)))
        spec = 0.01 * torch.randn((n, c, h, w // 2 + 1, 2), generator=generator)
        self.spectrum = nn.Parameter(spec)
        self.register_buffer("colors", colors)
        self.size = (h, w)

    def forward(self) -> torch.Tensor:
        spec = torch.view_as_complex(self.spectrum) * self.scale
        x = torch.fft.irfft2(spec, s=self.size, norm="ortho") / 4.0  # Lucid's fft_image scale
        x = torch.einsum("ij,njhw->nihw", self.colors, x)
        return torch.sigmoid(x)


def _crop(x: torch.Tensor, amount: int, generator) -> torch.Tensor:
    """A random crop ``amount`` pixels smaller in each direction (Lucid's jitter)."""
    if amount <= 0:
        return x
    dy, dx = (int(v) for v in torch.randint(0, amount + 1, (2,), generator=generator))
    h, w = x.shape[2:]
    return x[:, :, dy : h - amount + dy, dx : w - amount + dx]


def _scale_rotate(x: torch.Tensor, generator) -> torch.Tensor:
    scale = SCALES[int(torch.randint(len(SCALES), (1,), generator=generator))]
    angle = math.radians(ANGLES[int(torch.randint(len(ANGLES), (1,), generator=generator))])
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    theta = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], dtype=x.dtype, device=x.device)
    grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _fit(x: torch.Tensor, size: tuple[int, int], generator) -> torch.Tensor:
    """``x`` brought back to ``size``: a random crop of what padding left over (one more
    jitter), or a bilinear resize where the image came out smaller."""
    h, w = x.shape[2:]
    if h < size[0] or w < size[1]:
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    dy = int(torch.randint(0, h - size[0] + 1, (1,), generator=generator))
    dx = int(torch.randint(0, w - size[1] + 1, (1,), generator=generator))
    return x[:, :, dy : dy + size[0], dx : dx + size[1]]


def transform(x: torch.Tensor, sizes: TransformSizes, generator) -> torch.Tensor:
    """Lucid's standard transforms, sized to the image: pad (grey), jitter, scale, rotate,
    jitter; then cropped back to the image's own size, so models that take one input size
    only (no global pooling: LeNet, MLPs, VGG's classifier) see the size they were built for."""
    size = (x.shape[2], x.shape[3])
    x = F.pad(x, [sizes.pad] * 4, value=0.5)
    x = _crop(x, sizes.jitter_first, generator)
    x = _scale_rotate(x, generator)
    return _fit(_crop(x, sizes.jitter_last, generator), size, generator)


def visualize_channels(
    model: nn.Module,
    targets: list[tuple[nn.Module, int]],
    shape: tuple[int, int, int],
    colors: torch.Tensor,
    *,
    steps: int = 512,
    lr: float = 0.05,
    seed: int = 0,
) -> torch.Tensor:
    """One image per (module, channel) target maximising the mean activation of that channel
    of the module's output, all optimised in one batch (image i for target i; the objectives
    are independent, so batching changes nothing but speed). Returns [len(targets), C, H, W]
    in [0, 1]."""
    if not targets:
        raise ConfigError("featviz needs at least one channel")
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    image = FourierImage(len(targets), shape, colors, gen).to(device)
    sizes = TransformSizes.for_image(min(shape[1:]))
    optimizer = torch.optim.Adam(image.parameters(), lr=lr)
    modules = list(dict.fromkeys(m for m, _ in targets))
    captured: dict[int, torch.Tensor] = {}
    handles = [
        m.register_forward_hook(lambda mod, i, o, k=k: captured.__setitem__(k, o))
        for k, m in enumerate(modules)
    ]
    which = [modules.index(m) for m, _ in targets]
    requires = [p.requires_grad for p in model.parameters()]
    try:
        for p in model.parameters():
            p.requires_grad_(False)
        for _ in range(steps):
            optimizer.zero_grad()
            model(transform(image(), sizes, gen))
            loss = -sum(
                _activation(captured[k], i, channel)
                for i, (k, (_, channel)) in enumerate(zip(which, targets, strict=True))
            )
            if not torch.isfinite(loss):
                raise NumericalError("featviz: the activation became NaN or infinite")
            loss.backward()
            optimizer.step()
    finally:
        for h in handles:
            h.remove()
        for p, r in zip(model.parameters(), requires, strict=True):
            p.requires_grad_(r)
    with torch.no_grad():
        return image().cpu()


def _activation(out: torch.Tensor, row: int, channel: int) -> torch.Tensor:
    """The mean activation of ``channel`` (a feature map of a [B, C, H, W] output, or a unit
    of a fully connected [B, C] one) for image ``row``."""
    if out.ndim not in (2, 4) or channel >= out.shape[1]:
        raise ConfigError(
            f"featviz needs a tap with at least {channel + 1} channels (or units); this one "
            f"outputs shape {tuple(out.shape)}"
        )
    return out[row, channel].mean()


def spectral_centroid(images: torch.Tensor) -> np.ndarray:
    """Per image, the power-weighted mean radial frequency (fraction of Nyquist, DC left out)
    of the grey image: smaller means larger-scale patterns."""
    x = images.double().mean(dim=1)
    x = x - x.mean(dim=(1, 2), keepdim=True)
    power = torch.fft.fft2(x).abs().pow(2)
    h, w = power.shape[1:]
    fy = torch.fft.fftfreq(h, dtype=torch.float64).view(-1, 1)
    fx = torch.fft.fftfreq(w, dtype=torch.float64).view(1, -1)
    radius = torch.sqrt(fy**2 + fx**2) / 0.5
    total = power.sum(dim=(1, 2))
    centroid = (power * radius).sum(dim=(1, 2)) / total.clamp_min(1e-300)
    return torch.where(total > 0, centroid, torch.nan).numpy()
