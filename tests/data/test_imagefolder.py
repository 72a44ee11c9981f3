"""The ``imagefolder`` data set: class-per-folder trees of PNGs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robustlens.data import dataset_info, load_dataset, locate_dataset
from robustlens.data.imagefolder import channel_stats, index_folder
from robustlens.errors import ConfigError, DataError

from .fakes import write_png


def _pixels(seed: int, h: int = 6, w: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


@pytest.fixture
def flat_tree(tmp_path):
    """root/cat/{a,b}.png, root/dog/{c.png, deep/d.png}, plus files that must be ignored."""
    root = tmp_path / "flat"
    pics = {
        "cat/a.png": _pixels(0),
        "cat/b.png": _pixels(1),
        "dog/c.png": _pixels(2),
        "dog/deep/d.png": _pixels(3),
    }
    for rel, arr in pics.items():
        write_png(root / rel, arr)
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / "dog" / ".e.png").write_bytes(b"hidden, ignored")
    write_png(root / ".thumbs" / "x.png", _pixels(9))  # hidden folder: not a class
    (root / "empty").mkdir()  # a folder without images is not a class
    return root, pics


@pytest.fixture
def split_tree(tmp_path):
    """root/train/{ant,bee}, root/val/{ant,cow}: classes are the union (ant, bee, cow)."""
    root = tmp_path / "split"
    pics = {
        "train/ant/1.png": _pixels(10),
        "train/ant/2.png": _pixels(11),
        "train/bee/1.png": _pixels(12),
        "val/ant/1.png": _pixels(13),
        "val/cow/1.png": _pixels(14),
    }
    for rel, arr in pics.items():
        write_png(root / rel, arr)
    return root, pics


def test_flat_tree_is_single_split_all(flat_tree):
    root, pics = flat_tree
    ds = load_dataset("imagefolder", "all", root=root, image_size=(6, 5))
    assert ds.info.class_names == ("cat", "dog") and ds.info.splits == ("all",)
    assert ds.info.shape == (3, 6, 5) and ds.images.shape == (4, 3, 6, 5)
    assert ds.labels.tolist() == [0, 0, 1, 1]
    order = ["cat/a.png", "cat/b.png", "dog/c.png", "dog/deep/d.png"]
    expected = np.stack([pics[k].transpose(2, 0, 1) for k in order]).astype(np.float32) / 255
    assert torch.equal(ds.images, torch.from_numpy(expected))
    assert locate_dataset("imagefolder", root=root) == root


def test_split_folders_share_class_indices(split_tree):
    root, _ = split_tree
    info = dataset_info("imagefolder", root=root, image_size=4)
    assert info.splits == ("train", "val") and info.class_names == ("ant", "bee", "cow")
    train = load_dataset("imagefolder", "train", root=root, image_size=4)
    val = load_dataset("imagefolder", "val", root=root, image_size=4)
    assert train.labels.tolist() == [0, 0, 1] and val.labels.tolist() == [0, 2]
    assert train.info == val.info == info  # mean/std come from the train split for both
    with pytest.raises(ConfigError, match="Use one of: train, val"):
        load_dataset("imagefolder", "test", root=root)


def test_mean_std_computed_from_train_or_given(split_tree):
    root, pics = split_tree
    train = [pics[k] for k in ("train/ant/1.png", "train/ant/2.png", "train/bee/1.png")]
    x = np.stack(train).astype(np.float64) / 255
    info = dataset_info("imagefolder", root=root, image_size=(6, 5))
    np.testing.assert_allclose(info.mean, x.mean(axis=(0, 1, 2)), atol=1e-9)
    np.testing.assert_allclose(info.std, x.std(axis=(0, 1, 2)), atol=1e-9)
    given = load_dataset(
        "imagefolder", "val", root=root, image_size=(6, 5), mean=0.5, std=(0.1, 0.2, 0.3)
    )
    assert given.info.mean == (0.5, 0.5, 0.5) and given.info.std == (0.1, 0.2, 0.3)


def test_channel_stats_matches_numpy():
    x = np.random.default_rng(3).integers(0, 256, size=(7, 3, 4, 5), dtype=np.uint8)
    mean, std = channel_stats([x[:3], x[3:]])
    ref = x.astype(np.float64) / 255
    np.testing.assert_allclose(mean, ref.mean(axis=(0, 2, 3)))
    np.testing.assert_allclose(std, ref.std(axis=(0, 2, 3)))


def test_resize_and_grayscale(flat_tree):
    root, _ = flat_tree
    ds = load_dataset("imagefolder", "all", root=root)  # default image_size 224
    assert ds.images.shape == (4, 3, 224, 224)
    gray = load_dataset("imagefolder", "all", root=root, image_size=(3, 7), grayscale=True)
    assert gray.images.shape == (4, 1, 3, 7) and gray.info.shape == (1, 3, 7)
    assert len(gray.info.mean) == 1
    assert float(gray.images.min()) >= 0 and float(gray.images.max()) <= 1


def test_subset_of_image_folder(flat_tree):
    root, _ = flat_tree
    ds = load_dataset("imagefolder", "all", root=root, image_size=4, n=2, seed=0)
    assert sorted(ds.labels.tolist()) == [0, 1]


def test_root_is_required_and_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="needs root="):
        load_dataset("imagefolder")
    with pytest.raises(ConfigError, match="needs root="):
        dataset_info("imagefolder")
    with pytest.raises(DataError, match="not found") as err:
        load_dataset("imagefolder", "all", root=tmp_path / "missing")
    assert str(tmp_path / "missing") in str(err.value)


def test_corrupt_image_is_named(flat_tree):
    root, _ = flat_tree
    bad = root / "cat" / "b.png"
    bad.write_bytes(bad.read_bytes()[:30])
    with pytest.raises(DataError) as err:
        load_dataset("imagefolder", "all", root=root, image_size=4)
    assert str(bad) in str(err.value)


def test_empty_tree_and_empty_split(tmp_path):
    (tmp_path / "t" / "cls").mkdir(parents=True)
    (tmp_path / "t" / "cls" / "readme.txt").write_text("no images")
    with pytest.raises(DataError, match="no images found"):
        load_dataset("imagefolder", "all", root=tmp_path / "t")
    write_png(tmp_path / "s" / "train" / "a" / "1.png", _pixels(0))
    (tmp_path / "s" / "test" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="holds no images"):
        load_dataset("imagefolder", "test", root=tmp_path / "s", image_size=4)


@pytest.mark.parametrize(
    "options",
    [
        {"image_size": 0},
        {"image_size": (4,)},
        {"image_size": "big"},
        {"image_size": True},
        {"grayscale": "yes"},
        {"mean": (0.1, 0.2)},
        {"std": 0},
        {"resize": 4},
    ],
)
def test_bad_options(flat_tree, options):
    root, _ = flat_tree
    with pytest.raises(ConfigError):
        load_dataset("imagefolder", "all", root=root, **options)


def test_index_is_sorted_and_skips_non_images(flat_tree):
    root, _ = flat_tree
    index = index_folder(root)
    names = [p.relative_to(root).as_posix() for p, _ in index.splits["all"]]
    assert names == ["cat/a.png", "cat/b.png", "dog/c.png", "dog/deep/d.png"]
