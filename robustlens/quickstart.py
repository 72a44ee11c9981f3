"""The quickstart job: a natural and an L∞ adversarially-trained small CNN on Fashion-MNIST.

It trains both (or reuses them when already trained with the same recipe and data),
evaluates each on the same 1 000 class-balanced test images under PGD-20 in L∞ (ε = 0.1) and
L2 (ε = 1.5), and writes ``summary.json``. The study runner will replace this job with the
quickstart study.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from robustlens.attacks import L2, PGD, Linf, robust_accuracy
from robustlens.data import load_dataset
from robustlens.train import Recipe, train
from robustlens.train.run import EVAL_SEED

DATASET = "fashion-mnist"
ARCH = "small-cnn"
EVAL_N = 1000

RECIPES: dict[str, Recipe] = {
    "natural": Recipe(method="natural", epochs=4, lr=0.1),
    "fgsm-rs L∞ ε=0.1": Recipe(method="fgsm-rs", norm="linf", eps=0.1, epochs=6, lr=0.1),
}


def run_quickstart(
    out_dir: str | Path, *, device: str | None = None, progress: bool = False
) -> list[dict[str, Any]]:
    """Train (or reuse) the quickstart models and evaluate them; returns one row per model."""
    out_dir = Path(out_dir)
    test = load_dataset(DATASET, "test", n=EVAL_N, seed=EVAL_SEED)
    rows = []
    for label, recipe in RECIPES.items():
        folder = out_dir / ("natural" if not recipe.adversarial else recipe.label())
        result = train(ARCH, DATASET, recipe, folder, device=device, progress=progress)
        model = result.model.eval()
        row: dict[str, Any] = {"model": label, "checkpoint": str(result.checkpoint)}
        for key, threat in (("pgd_linf_0.1", Linf(0.1)), ("pgd_l2_1.5", L2(1.5))):
            res = robust_accuracy(model, test, PGD(model, threat, steps=20), progress=progress)
            row[key] = res.robust_accuracy
            row["clean_accuracy"] = res.clean_accuracy
        row["train_seconds"] = sum(h["seconds"] for h in result.history)
        row["reused"] = result.reused
        rows.append(row)
    summary = {
        "dataset": DATASET,
        "arch": ARCH,
        "eval_n": EVAL_N,
        "torch": torch.__version__,
        "models": rows,
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return rows
