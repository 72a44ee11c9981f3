"""Train from names: load the data, build the architecture, run the loop; sweeps over ε."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from robustlens.data import load_dataset
from robustlens.errors import ConfigError
from robustlens.models import ARCHITECTURES, build_model
from robustlens.runtime import seed_everything
from robustlens.train.loop import TrainResult, train_model
from robustlens.train.recipe import Recipe

EVAL_SEED = 0
"""Every model is evaluated on the same class-balanced test subset (seed 0)."""


def train(
    arch: str,
    dataset: str,
    recipe: Recipe,
    out_dir: str | Path,
    *,
    arch_kwargs: dict[str, Any] | None = None,
    train_n: int | None = None,
    data_root: str | Path | None = None,
    device: torch.device | str | None = None,
    resume: bool = True,
    progress: bool = False,
) -> TrainResult:
    """Train ``arch`` on ``dataset``'s train split (``train_n`` images, all by default)."""
    ARCHITECTURES.get(arch)  # an unknown name fails before any data is read
    train_set = load_dataset(dataset, "train", n=train_n, seed=recipe.seed, root=data_root)
    eval_set = load_dataset(dataset, "test", n=recipe.eval_n, seed=EVAL_SEED, root=data_root)
    seed_everything(recipe.seed)
    model = build_model(arch, train_set.info, **(arch_kwargs or {}))
    return train_model(
        model,
        train_set,
        recipe,
        out_dir,
        eval_set=eval_set,
        device=device,
        resume=resume,
        progress=progress,
    )


def sweep_folder(recipe: Recipe) -> str:
    """Folder name of one model in a sweep, e.g. ``pgd-linf-eps0.1``."""
    if not recipe.adversarial:
        return "natural"
    return f"{recipe.method}-{recipe.norm}-eps{recipe.eps:g}"


def train_sweep(
    arch: str,
    dataset: str,
    recipe: Recipe,
    epsilons: Sequence[float],
    out_root: str | Path,
    **kwargs: Any,
) -> list[TrainResult]:
    """One model per training ε (ε = 0 trains a natural model), each in its own folder."""
    if not epsilons:
        raise ConfigError("an ε sweep needs at least one ε")
    results = []
    for eps in epsilons:
        one = (
            recipe.for_method("natural", eps=0.0)
            if eps == 0
            else dataclasses.replace(recipe, eps=float(eps))
        )
        out = Path(out_root) / sweep_folder(one)
        results.append(train(arch, dataset, one, out, **kwargs))
    return results
