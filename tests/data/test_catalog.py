"""The registry: names, facts, file lists and downloads of each data set."""

from __future__ import annotations

import numpy as np
import pytest

from robustlens.data import dataset_info, list_datasets
from robustlens.data.catalog import DATASETS, digits_test_mask
from robustlens.errors import ConfigError


def test_names():
    assert list_datasets() == [
        "cifar10",
        "cifar100",
        "digits",
        "fashion-mnist",
        "imagefolder",
        "mnist",
        "svhn",
    ]


@pytest.mark.parametrize(
    ("name", "classes", "shape"),
    [
        ("fashion-mnist", 10, (1, 28, 28)),
        ("mnist", 10, (1, 28, 28)),
        ("cifar10", 10, (3, 32, 32)),
        ("cifar100", 100, (3, 32, 32)),
        ("svhn", 10, (3, 32, 32)),
        ("digits", 10, (1, 8, 8)),
    ],
)
def test_fixed_infos(name, classes, shape):
    info = dataset_info(name)
    assert info.name == name and info.num_classes == classes and info.shape == shape
    assert info.splits == ("train", "test")
    assert len(set(info.class_names)) == classes
    assert all(0 < m < 1 for m in info.mean) and all(0 < s < 1 for s in info.std)
    assert info.homepage and info.citation


def test_known_class_names():
    assert dataset_info("fashion-mnist").class_names[0] == "T-shirt/top"
    assert dataset_info("fashion-mnist").class_names[9] == "Ankle boot"
    assert dataset_info("mnist").class_names == tuple("0123456789")
    assert dataset_info("cifar10").class_names[:2] == ("airplane", "automobile")
    names = dataset_info("cifar100").class_names
    assert names[0] == "apple" and names[-1] == "worm" and names == tuple(sorted(names))


def test_unknown_name_and_option():
    with pytest.raises(ConfigError, match="did you mean 'mnist'"):
        dataset_info("mnsit")
    with pytest.raises(ConfigError, match="takes no options"):
        dataset_info("mnist", image_size=32)


def test_every_download_has_a_checksum():
    for name, entry in DATASETS.items():
        for remote in entry.downloads:
            digest = remote.sha256 or remote.md5
            assert digest and all(c in "0123456789abcdef" for c in digest), name
            assert len(remote.sha256 or "") == 64 or len(remote.md5 or "") == 32
            assert remote.url.endswith(remote.filename)


def test_idx_entries_accept_both_names():
    entry = DATASETS.get("fashion-mnist")
    assert ("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte") in entry.required()
    assert entry.counts == {"train": 60000, "test": 10000}


def test_digits_split_and_stats():
    from sklearn.datasets import load_digits

    target = load_digits().target
    test = digits_test_mask(target)
    assert test.sum() == 355 and (~test).sum() == 1442
    for c in range(10):  # stratified: a fifth of each class
        assert test[target == c].sum() == (target == c).sum() // 5
    x = load_digits().images[~test] / 16.0
    info = dataset_info("digits")
    assert abs(x.mean() - info.mean[0]) < 1e-3 and abs(x.std() - info.std[0]) < 1e-3
    np.testing.assert_array_equal(test, digits_test_mask(target))
