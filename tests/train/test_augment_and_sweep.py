"""The recipe's augmentations pad by an eighth of the image width (4 px at 32 px) and draw from
the one generator in a fixed order; an ε sweep trains one model per ε in folders named by it."""

from __future__ import annotations

import pytest
import torch

from robustlens.errors import ConfigError
from robustlens.train import Recipe
from robustlens.train import run as run_module
from robustlens.train.augment import augment, random_crop, random_flip
from robustlens.train.run import sweep_folder, train_sweep


@pytest.mark.parametrize(("width", "pad"), [(32, 4), (28, 4), (16, 2), (12, 2), (4, 1), (2, 1)])
def test_crop_pads_by_an_eighth_of_the_width(width, pad):
    x = torch.rand(6, 2, width, width, generator=torch.Generator().manual_seed(width))
    out = augment(x, "crop", torch.Generator().manual_seed(1))
    assert torch.equal(out, random_crop(x, pad, torch.Generator().manual_seed(1)))


def test_crop_flip_crops_then_flips_with_the_same_generator():
    x = torch.rand(40, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    out = augment(x, "crop-flip", torch.Generator().manual_seed(2))
    gen = torch.Generator().manual_seed(2)
    expected = random_flip(random_crop(x, 1, gen), gen)
    assert torch.equal(out, expected)
    assert not torch.equal(out, random_crop(x, 1, torch.Generator().manual_seed(2)))


def test_random_flip_mirrors_exactly_the_drawn_images():
    x = torch.arange(5 * 1 * 2 * 3, dtype=torch.float32).reshape(5, 1, 2, 3)
    flip = torch.rand(5, generator=torch.Generator().manual_seed(1)) < 0.5
    out = random_flip(x, torch.Generator().manual_seed(1))
    for i in range(5):
        assert torch.equal(out[i], x[i].flip(dims=(2,)) if flip[i] else x[i])
    assert 0 < int(flip.sum()) < 5  # this seed flips some and keeps some


def test_sweep_folders_name_method_norm_and_budget():
    assert sweep_folder(Recipe()) == "natural"
    assert sweep_folder(Recipe(method="pgd", eps=0.1)) == "pgd-linf-eps0.1"
    assert sweep_folder(Recipe(method="fgsm-rs", norm="l2", eps=1.5)) == "fgsm-rs-l2-eps1.5"


def test_a_sweep_trains_one_model_per_eps_in_its_own_folder(tmp_path, monkeypatch):
    calls = []

    def fake_train(arch, dataset, recipe, out, **kwargs):
        calls.append((arch, dataset, recipe, out, kwargs))
        return recipe.label()

    monkeypatch.setattr(run_module, "train", fake_train)
    base = Recipe(method="pgd", norm="l2", eps=0.3, epochs=2)
    results = train_sweep("small-cnn", "fashion-mnist", base, [0, 0.1, 2], tmp_path, train_n=8)
    assert results == ["natural", "pgd-l2-0.1", "pgd-l2-2"]
    assert [c[3] for c in calls] == [
        tmp_path / "natural",
        tmp_path / "pgd-l2-eps0.1",
        tmp_path / "pgd-l2-eps2",
    ]
    natural, small, big = (c[2] for c in calls)
    assert natural == Recipe(method="natural", norm="l2", eps=0.0, epochs=2)
    assert small == Recipe(method="pgd", norm="l2", eps=0.1, epochs=2)
    assert big.eps == 2.0 and isinstance(big.eps, float)
    assert all(c[:2] == ("small-cnn", "fashion-mnist") and c[4] == {"train_n": 8} for c in calls)


def test_a_sweep_over_no_eps_is_refused():
    with pytest.raises(ConfigError) as caught:
        train_sweep("small-cnn", "fashion-mnist", Recipe(), [], "unused")
    assert caught.value.problem == "an ε sweep needs at least one ε"
    assert caught.value.fix is None


def test_train_by_names_reads_both_splits_and_hands_everything_on(tmp_path, monkeypatch):
    """The train split (train_n images, the recipe's seed) and the held-out test split (eval_n
    class-balanced images, always seed 0), then the named architecture seeded by the recipe."""
    from tests.train.helpers import stripes

    reads, seeds, built, trained = [], [], [], []

    def fake_load(name, split, *, n, seed, root):
        reads.append((name, split, n, seed, root))
        return stripes(8 if split == "train" else 4, 0)

    def fake_build(arch, info, **kwargs):
        built.append((arch, info.name, kwargs))
        return "model"

    def fake_train_model(model, train_set, recipe, out, **kwargs):
        trained.append((model, len(train_set), recipe, out, kwargs))
        return "result"

    monkeypatch.setattr(run_module, "load_dataset", fake_load)
    monkeypatch.setattr(run_module, "seed_everything", seeds.append)
    monkeypatch.setattr(run_module, "build_model", fake_build)
    monkeypatch.setattr(run_module, "train_model", fake_train_model)
    recipe = Recipe(seed=3, eval_n=4)
    result = run_module.train(
        "small-cnn",
        "stripes",
        recipe,
        tmp_path,
        arch_kwargs={"widths": (4, 4)},
        train_n=8,
        data_root="/data",
        device="cpu",
        resume=False,
        progress=True,
    )
    assert result == "result"
    assert reads == [("stripes", "train", 8, 3, "/data"), ("stripes", "test", 4, 0, "/data")]
    assert seeds == [3]
    assert built == [("small-cnn", "stripes", {"widths": (4, 4)})]
    ((model, n, used, out, kwargs),) = trained
    assert (model, n, used, out) == ("model", 8, recipe, tmp_path)
    assert set(kwargs) == {"eval_set", "device", "resume", "progress"}
    assert len(kwargs["eval_set"]) == 4
    assert (kwargs["device"], kwargs["resume"], kwargs["progress"]) == ("cpu", False, True)
    run_module.train("small-cnn", "stripes", recipe, tmp_path)
    assert built[-1] == ("small-cnn", "stripes", {})
    assert trained[-1][4]["resume"] is True and trained[-1][4]["progress"] is False


def test_an_unknown_architecture_fails_before_any_data_is_read(monkeypatch):
    reads = []
    monkeypatch.setattr(run_module, "load_dataset", lambda *a, **k: reads.append(a))
    with pytest.raises(ConfigError, match="architecture"):
        run_module.train("no-such-net", "stripes", Recipe(), "unused")
    assert reads == []
