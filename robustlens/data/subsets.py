"""Deterministic, optionally class-balanced subsets of a labelled set."""

from __future__ import annotations

import torch

from robustlens.errors import ConfigError


def class_quotas(counts: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """How many images to take from each class so that the total is ``n``.

    Every class gets ``n // K`` (or all it has, if fewer); what remains is handed out one at a
    time, in a seeded random class order, to classes that still have images.
    """
    counts = counts.to(torch.long)
    k = counts.numel()
    quotas = torch.minimum(counts, torch.full_like(counts, n // k))
    left = n - int(quotas.sum())
    while left > 0:
        open_classes = torch.nonzero(quotas < counts).flatten()
        if open_classes.numel() == 0:
            break
        order = open_classes[torch.randperm(open_classes.numel(), generator=generator)]
        for c in order[:left].tolist():
            quotas[c] += 1
        left = n - int(quotas.sum())
    return quotas


def choose_subset(
    labels: torch.Tensor, n: int, *, seed: int = 0, balanced: bool = True
) -> torch.Tensor:
    """Positions of ``n`` images chosen from ``labels``, sorted ascending.

    The choice depends only on (labels, n, seed, balanced): the same call gives the same
    subset on every machine.
    """
    if n < 1:
        raise ConfigError(f"subset size must be at least 1, got {n}")
    total = labels.numel()
    if n >= total:
        return torch.arange(total)
    labels = labels.cpu()  # the positions index CPU tensors (ImageSet.indices) too
    gen = torch.Generator().manual_seed(int(seed))
    if not balanced:
        return torch.sort(torch.randperm(total, generator=gen)[:n]).values
    classes, inverse, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    quotas = class_quotas(counts, n, gen)
    chosen = []
    for c in range(classes.numel()):
        members = torch.nonzero(inverse == c).flatten()
        pick = torch.randperm(members.numel(), generator=gen)[: int(quotas[c])]
        chosen.append(members[pick])
    return torch.sort(torch.cat(chosen)).values
