"""Batched, seeded training augmentations on [0, 1] tensors (no torchvision)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad by ``padding`` and cut a random window of the original size per image."""
    n, _, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    rows = (dy.view(n, 1) + torch.arange(h).view(1, h)).to(x.device)  # [n, h]
    cols = (dx.view(n, 1) + torch.arange(w).view(1, w)).to(x.device)  # [n, w]
    idx_n = torch.arange(n, device=x.device).view(n, 1, 1)
    out = padded.permute(0, 2, 3, 1)[idx_n, rows.view(n, h, 1), cols.view(n, 1, w)]
    return out.permute(0, 3, 1, 2).contiguous()


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left–right with probability 1/2."""
    flip = torch.rand(x.shape[0], generator=generator) < 0.5
    out = x.clone()
    idx = flip.nonzero().flatten().to(x.device)
    out[idx] = out[idx].flip(dims=(3,))
    return out


def augment(x: torch.Tensor, kind: str, generator: torch.Generator) -> torch.Tensor:
    """Apply the recipe's augmentation: ``none``, ``crop`` (pad 4) or ``crop-flip``."""
    if kind == "none":
        return x
    pad = max(1, round(x.shape[-1] / 8))  # 4 px at 32 px, as in the CIFAR recipes
    x = random_crop(x, pad, generator)
    if kind == "crop-flip":
        x = random_flip(x, generator)
    return x
