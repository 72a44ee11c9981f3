"""Cost of a training epoch by method, relative to a natural epoch, as ratios in one run.

Each variant trains the small CNN for one epoch of the same 40 batches of 128 Fashion-MNIST
images through the real training loop; the variants are interleaved round by round and the
median epoch time is used, so the ratios equal those of full epochs on a quiet machine.
"""

from __future__ import annotations

import tempfile

import torch

from benchmarks.common import median, record
from robustlens.data import load_dataset
from robustlens.models import build_model
from robustlens.train import Recipe, train_model

BATCHES, BATCH = 40, 128
RECIPES = {
    "natural": Recipe(epochs=1, batch_size=BATCH),
    "fgsm-rs": Recipe(method="fgsm-rs", eps=0.1, epochs=1, batch_size=BATCH),
    "pgd-7": Recipe(method="pgd", eps=0.1, steps=7, epochs=1, batch_size=BATCH),
}


def one_epoch(data, recipe: Recipe) -> float:
    """Seconds of one training epoch, by the loop's own timer (checkpointing excluded)."""
    torch.manual_seed(0)
    model = build_model("small-cnn", data.info)
    with tempfile.TemporaryDirectory() as tmp:
        result = train_model(model, data, recipe, tmp, device="cpu")
    return result.history[0]["seconds"]


def main() -> None:
    data = load_dataset("fashion-mnist", "train", n=BATCHES * BATCH, seed=0)
    for recipe in RECIPES.values():  # warm-up
        one_epoch(data, recipe)
    times: dict[str, list[float]] = {name: [] for name in RECIPES}
    for _ in range(5):  # interleaved rounds
        for name, recipe in RECIPES.items():
            times[name].append(one_epoch(data, recipe))
    natural = median(times["natural"])
    ratio = {name: median(t) / natural for name, t in times.items()}
    per_epoch = {name: median(t) * 60000 / (BATCHES * BATCH) for name, t in times.items()}
    markdown = f"""## Training epochs (small CNN, batch {BATCH}, Fashion-MNIST)

| method | epoch time / natural epoch | target | full 60 000-image epoch (extrapolated) |
|---|---|---|---|
| natural | 1.00 × | | {per_epoch["natural"]:.0f} s |
| FGSM-RS (Wong et al. 2020) | {ratio["fgsm-rs"]:.2f} × | ≤ 2.3 × | {per_epoch["fgsm-rs"]:.0f} s |
| PGD-7 (Madry et al. 2018) | {ratio["pgd-7"]:.2f} × | ≤ 8.5 × | {per_epoch["pgd-7"]:.0f} s |
"""
    record("training", markdown, {"ratio": ratio, "seconds_per_full_epoch": per_epoch})


if __name__ == "__main__":
    main()
