"""Image folders: links stay inside the root, loops end, sizes are checked before decoding."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from robustlens import runtime
from robustlens.data import dataset_info, load_dataset
from robustlens.data.imagefolder import index_folder
from robustlens.errors import ConfigError, DataError

from .fakes import write_png


def two_images(root):
    """root/cat/a.png and root/dog/b.png (2×2 RGB)."""
    write_png(root / "cat" / "a.png", np.full((2, 2, 3), 10))
    write_png(root / "dog" / "b.png", np.full((2, 2, 3), 200))
    return root


def test_a_link_to_a_folder_outside_the_root_is_refused(tmp_path):
    root = two_images(tmp_path / "root")
    write_png(tmp_path / "elsewhere" / "c.png", np.zeros((2, 2, 3)))
    os.symlink(tmp_path / "elsewhere", root / "cat" / "more")
    with pytest.raises(DataError, match="outside the image folder") as err:
        index_folder(root)
    assert str(root / "cat" / "more") in str(err.value)


def test_a_link_to_an_image_outside_the_root_is_refused(tmp_path):
    root = two_images(tmp_path / "root")
    write_png(tmp_path / "secret.png", np.zeros((2, 2, 3)))
    os.symlink(tmp_path / "secret.png", root / "dog" / "c.png")
    with pytest.raises(DataError, match="outside the image folder"):
        load_dataset("imagefolder", "all", root=root, image_size=2)


def test_a_class_folder_linked_from_outside_is_refused(tmp_path):
    root = two_images(tmp_path / "root")
    write_png(tmp_path / "birds" / "c.png", np.zeros((2, 2, 3)))
    os.symlink(tmp_path / "birds", root / "bird")
    with pytest.raises(DataError, match="outside the image folder"):
        index_folder(root)


def test_a_symlink_loop_ends_with_an_error(tmp_path):
    root = two_images(tmp_path / "root")
    os.symlink(root / "cat", root / "cat" / "again")
    start = time.perf_counter()
    with pytest.raises(DataError, match="reached twice") as err:
        index_folder(root)
    assert str(root / "cat" / "again") in str(err.value)
    assert time.perf_counter() - start < 10


def test_links_inside_the_root_are_followed(tmp_path):
    root = two_images(tmp_path / "root")
    write_png(root / ".store" / "c.png", np.zeros((2, 2, 3)))  # hidden: not a class itself
    os.symlink(root / ".store", root / "cat" / "linked")
    index = index_folder(root)
    names = [(p.name, label) for p, label in index.splits["all"]]
    assert names == [("a.png", 0), ("c.png", 0), ("b.png", 1)]  # cat: a, linked/c; dog: b
    assert index.classes == ("cat", "dog")


def test_a_huge_image_size_is_refused_before_any_image_is_decoded(tmp_path, monkeypatch):
    root = two_images(tmp_path / "root")
    monkeypatch.delenv(runtime.ENV_ALLOW_LARGE, raising=False)
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"image_size=.*1000000.*smaller image_size") as err:
        load_dataset("imagefolder", "all", root=root, image_size=10**6, mean=0.5, std=0.5)
    assert "ROBUSTLENS_ALLOW_LARGE" in str(err.value)
    with pytest.raises(ConfigError, match="image_size"):
        dataset_info("imagefolder", root=root, image_size=10**6)  # mean/std not given
    assert time.perf_counter() - start < 10


def test_the_memory_estimate_counts_every_image(tmp_path, monkeypatch):
    root = two_images(tmp_path / "root")
    # 2 images × 3 × 4 × 4 values × (uint8 + float32) = 480 bytes
    monkeypatch.setattr(runtime, "available_memory", lambda: 500)
    monkeypatch.delenv(runtime.ENV_ALLOW_LARGE, raising=False)
    with pytest.raises(ConfigError, match="480 B"):
        load_dataset("imagefolder", "all", root=root, image_size=4, mean=0.5, std=0.5)
    monkeypatch.setattr(runtime, "available_memory", lambda: 601)
    images = load_dataset("imagefolder", "all", root=root, image_size=4, mean=0.5, std=0.5)
    assert images.images.shape == (2, 3, 4, 4)
