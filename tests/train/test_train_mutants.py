"""Training details that only a targeted test sees: the ε warm-up advances every batch, and
every epoch draws a new order and new random starts."""

from __future__ import annotations

import pytest
import torch

from robustlens.attacks.threat import Linf
from robustlens.data import DatasetInfo, ImageSet
from robustlens.models import build_model
from robustlens.train import Recipe, train_model
from robustlens.train import loop as loop_module
from robustlens.train.schedule import learning_rate, training_eps

INFO = DatasetInfo(
    name="dots",
    num_classes=2,
    class_names=("dark", "bright"),
    shape=(1, 4, 4),
    mean=(0.5,),
    std=(0.3,),
    splits=("train",),
)


def dots(n: int) -> ImageSet:
    """n distinct images (image i is recognisable by its pixels) with alternating labels."""
    gen = torch.Generator().manual_seed(0)
    images = 0.2 + 0.6 * torch.rand(n, 1, 4, 4, generator=gen)
    return ImageSet(images, torch.arange(n) % 2, INFO, "train", torch.arange(n))


def tiny_model():
    torch.manual_seed(0)
    return build_model("small-cnn", INFO, widths=(4, 4), kernels=(3, 3), strides=(1, 1))


def test_warmup_is_linear_between_whole_epochs():
    recipe = Recipe(method="pgd", eps=0.2, eps_warmup_epochs=2)
    # ε(t) = 0.2 · t / 2 for t ≤ 2, by hand.
    assert training_eps(recipe, 0.25) == pytest.approx(0.025)
    assert training_eps(recipe, 0.5) == pytest.approx(0.05)
    assert training_eps(recipe, 1.5) == pytest.approx(0.15)
    assert training_eps(recipe, 1.999) == pytest.approx(0.1999)


def test_training_eps_grows_every_batch_during_the_warmup(tmp_path, monkeypatch):
    """4 batches per epoch and a 2-epoch warm-up to ε = 0.1 over 2 epochs: batch i of epoch e
    is attacked with ε = 0.1 · (e + i/4)/2, i.e. 0 (not attacked), 0.0125, 0.025, 0.0375, then
    0.05 … 0.0875 (a warm-up longer than the run is refused by the recipe)."""
    asked: list[float] = []
    original = loop_module._Trainer.make_attack

    def recording(self, eps):
        asked.append(eps)
        return original(self, eps)

    monkeypatch.setattr(loop_module._Trainer, "make_attack", recording)
    recipe = Recipe(
        method="pgd", eps=0.1, steps=1, eps_warmup_epochs=2, epochs=2, batch_size=8, eval_n=8
    )
    result = train_model(tiny_model(), dots(32), recipe, tmp_path, device="cpu")
    assert asked == pytest.approx([0.0125 * k for k in range(1, 8)])
    assert [h["eps"] for h in result.history] == pytest.approx([0.0375, 0.0875])


def test_each_epoch_draws_a_new_order_and_new_random_starts(tmp_path, monkeypatch):
    """FGSM-RS training for 2 epochs, one batch of all 16 images per epoch: the order of the
    images and each image's random start must differ between the epochs (a generator seeded
    the same way every epoch would repeat both)."""
    batches: list[torch.Tensor] = []
    starts: list[torch.Tensor] = []
    original_augment = loop_module.augment
    original_init = Linf.random_init

    def recording_augment(x, kind, gen):
        batches.append(x.clone())
        return original_augment(x, kind, gen)

    def recording_init(self, x, generator=None):
        delta = original_init(self, x, generator)
        starts.append(delta.clone())
        return delta

    monkeypatch.setattr(loop_module, "augment", recording_augment)
    monkeypatch.setattr(Linf, "random_init", recording_init)
    data = dots(16)
    # no catastrophic-overfitting check: its PGD would draw random starts too
    recipe = Recipe(method="fgsm-rs", eps=0.05, epochs=2, batch_size=16, eval_n=8, overfit_checks=0)
    train_model(tiny_model(), data, recipe, tmp_path, device="cpu")
    assert len(batches) == 2 and len(starts) == 2

    def order(batch: torch.Tensor) -> list[int]:
        """Which image of the set sits at each position of the batch."""
        same = (batch[:, None] == data.images[None]).flatten(2).all(dim=2)
        assert torch.all(same.sum(dim=1) == 1)
        return same.float().argmax(dim=1).tolist()

    first, second = order(batches[0]), order(batches[1])
    assert sorted(first) == sorted(second) == list(range(16))
    assert first != second
    # Each image's start in epoch 1 against its start in epoch 2 (both put in image order).
    by_image = [torch.empty_like(starts[0]) for _ in range(2)]
    for epoch, positions in enumerate((first, second)):
        by_image[epoch][torch.tensor(positions)] = starts[epoch]
    differs = (by_image[0] != by_image[1]).flatten(1).any(dim=1)
    assert bool(differs.all())


def test_one_cycle_values_by_hand():
    """lr 0.2, peak at 25 % of 100 steps; step s is taken at t = (s + 0.5)/100: rising
    0.2·t/0.25 before the peak, falling 0.2·(1 − t)/0.75 after it."""
    recipe = Recipe(lr=0.2, schedule="one-cycle", warmup_fraction=0.25)
    assert learning_rate(recipe, 12, 100) == pytest.approx(0.2 * 0.125 / 0.25)  # 0.1
    assert learning_rate(recipe, 24, 100) == pytest.approx(0.2 * 0.245 / 0.25)  # 0.196
    assert learning_rate(recipe, 62, 100) == pytest.approx(0.2 * 0.375 / 0.75)  # 0.1
    assert learning_rate(recipe, 99, 100) == pytest.approx(0.2 * 0.005 / 0.75)


def test_a_single_step_is_taken_half_way():
    # With one step in all, t = 0.5: cosine gives lr·(1 + cos(π/2))/2 = lr/2.
    assert learning_rate(Recipe(lr=0.4, schedule="cosine"), 0, 1) == pytest.approx(0.2)


def test_a_warmup_shorter_than_one_epoch_still_ramps():
    recipe = Recipe(method="pgd", eps=0.2, eps_warmup_epochs=0.5)
    assert training_eps(recipe, 0.25) == pytest.approx(0.1)
    assert training_eps(recipe, 0.75) == pytest.approx(0.2)
    one = Recipe(method="pgd", eps=0.2, eps_warmup_epochs=1)
    assert training_eps(one, 0.5) == pytest.approx(0.1)
