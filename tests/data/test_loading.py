"""load_dataset / fetch_dataset / dataset_info end to end on small files in the real formats."""

from __future__ import annotations

import dataclasses
import hashlib
import sys

import numpy as np
import pytest
import torch

from robustlens.data import (
    DatasetInfo,
    ImageSet,
    dataset_info,
    fetch_dataset,
    load_dataset,
    locate_dataset,
    sources,
)
from robustlens.data.catalog import DATASETS
from robustlens.data.entry import RemoteFile
from robustlens.errors import ConfigError, DataError

from .conftest import REAL_SYSTEM_DATA_DIR, real_fashion_mnist
from .fakes import (
    IDX_NAMES,
    tar_gz,
    write_cifar10_tree,
    write_cifar100_tree,
    write_mnist,
    write_svhn,
)

# ----------------------------------------------------------------------------- IDX (MNIST)


@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_layout(tmp_path, relaxed_counts, gz):
    arrays = write_mnist(tmp_path, gz=gz)
    ds = load_dataset("mnist", "train", root=tmp_path, download=False)
    assert isinstance(ds, ImageSet) and len(ds) == 30 and ds.split == "train"
    assert ds.images.shape == (30, 1, 28, 28) and ds.images.dtype == torch.float32
    assert ds.labels.dtype == torch.int64
    images, labels = arrays["train"]
    expected = torch.from_numpy(images.astype(np.float32) / 255).unsqueeze(1)
    assert torch.equal(ds.images, expected)
    assert ds.labels.tolist() == labels.tolist()
    assert float(ds.images.min()) >= 0.0 and float(ds.images.max()) <= 1.0
    assert torch.equal(ds.indices, torch.arange(30))
    assert ds.info == dataset_info("mnist")
    test = load_dataset("mnist", root=tmp_path, download=False)  # "test" is the default split
    assert test.split == "test" and len(test) == 20


def test_subset_through_loader(tmp_path, relaxed_counts):
    write_mnist(tmp_path, n_train=100)
    full = load_dataset("mnist", "train", root=tmp_path)
    sub = load_dataset("mnist", "train", n=20, seed=5, root=tmp_path)
    assert len(sub) == 20 and torch.bincount(sub.labels).tolist() == [2] * 10
    assert torch.equal(full.images[sub.indices], sub.images)
    again = load_dataset("mnist", "train", n=20, seed=5, root=tmp_path)
    assert torch.equal(again.indices, sub.indices)
    assert len(load_dataset("mnist", "train", n=1000, root=tmp_path)) == 100
    with pytest.raises(ConfigError, match="n must be"):
        load_dataset("mnist", "train", n=0, root=tmp_path)


def test_unknown_split_lists_splits(tmp_path):
    with pytest.raises(ConfigError, match="no split 'validation'") as err:
        load_dataset("fashion-mnist", "validation", root=tmp_path)
    assert "train, test" in str(err.value)


def test_unknown_dataset_and_options():
    with pytest.raises(ConfigError, match="unknown data set 'cifar-10'"):
        load_dataset("cifar-10")
    with pytest.raises(ConfigError, match="takes no options"):
        load_dataset("mnist", image_size=32)


def test_absent_without_download_lists_places_and_files(isolated_sources, tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset("fashion-mnist", download=False)
    message = str(err.value)
    for place in (
        isolated_sources.cache / "fashion-mnist",
        isolated_sources.system / "fashion-mnist",
    ):
        assert str(place) in message
    for name in ("train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert name in message
    assert "download=False" in message and "fetch_dataset" in message
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as err:
        load_dataset("fashion-mnist", root=tmp_path / "empty", download=False)
    assert str(tmp_path / "empty") in str(err.value)
    assert str(isolated_sources.system) not in str(err.value)  # only the folder named
    assert locate_dataset("fashion-mnist", root=tmp_path / "empty") is None


def test_counts_are_enforced(tmp_path):
    write_mnist(tmp_path)  # 30 / 20 images, far fewer than MNIST's 60000 / 10000
    with pytest.raises(DataError, match="expected 60000 images") as err:
        load_dataset("mnist", "train", root=tmp_path)
    assert str(tmp_path / "train-images-idx3-ubyte.gz") in str(err.value)


def test_corrupt_file_names_itself_and_how_to_refetch(tmp_path, relaxed_counts):
    write_mnist(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(DataError) as err:
        load_dataset("mnist", "test", root=tmp_path)
    message = str(err.value)
    assert str(path) in message and "fetch_dataset('mnist')" in message
    # the other split is fine
    assert len(load_dataset("mnist", "train", root=tmp_path)) == 30


def test_on_disk_files_are_checked_structurally_not_by_download_checksum(tmp_path):
    # Like Debian's re-compressed Fashion-MNIST: different bytes than the official .gz files.
    write_mnist(tmp_path)
    entry = DATASETS.get("fashion-mnist")
    assert (
        entry.downloads[0].sha256
        != hashlib.sha256((tmp_path / "train-images-idx3-ubyte.gz").read_bytes()).hexdigest()
    )
    assert locate_dataset("fashion-mnist", root=tmp_path) == tmp_path


# ---------------------------------------------------------------------------------- CIFAR


def _cifar10_expected(batches, names):
    data = np.concatenate([batches[n][b"data"] for n in names])
    labels = [label for n in names for label in batches[n][b"labels"]]
    return torch.from_numpy(data.reshape(-1, 3, 32, 32).astype(np.float32) / 255), labels


def test_cifar10_extracted_tree(tmp_path, relaxed_counts):
    batches = write_cifar10_tree(tmp_path)
    train = load_dataset("cifar10", "train", root=tmp_path, download=False)
    images, labels = _cifar10_expected(batches, [f"data_batch_{i}" for i in range(1, 6)])
    assert train.images.shape == (20, 3, 32, 32)
    assert torch.equal(train.images, images) and train.labels.tolist() == labels
    test = load_dataset("cifar10", "test", root=tmp_path / "cifar-10-batches-py")
    assert len(test) == 4
    assert train.info.class_names[0] == "airplane"


def _publish_cifar10(monkeypatch, archive) -> None:
    """Make ``archive`` the published cifar10 archive (its checksum in the catalog)."""
    entry = DATASETS.get("cifar10")
    remote = dataclasses.replace(
        entry.downloads[0], sha256=hashlib.sha256(archive.read_bytes()).hexdigest()
    )
    monkeypatch.setitem(DATASETS._items, "cifar10", dataclasses.replace(entry, downloads=(remote,)))


def test_cifar10_archive_only_is_unpacked_into_the_cache(
    isolated_sources, tmp_path, relaxed_counts, monkeypatch
):
    src = tmp_path / "src"
    batches = write_cifar10_tree(src)
    root = tmp_path / "root"
    root.mkdir()
    _publish_cifar10(monkeypatch, tar_gz(src, root / "cifar-10-python.tar.gz"))
    assert locate_dataset("cifar10", root=root) == root
    test = load_dataset("cifar10", "test", root=root, download=False)
    images, labels = _cifar10_expected(batches, ["test_batch"])
    assert torch.equal(test.images, images) and test.labels.tolist() == labels
    assert (isolated_sources.cache / "cifar10" / "cifar-10-batches-py" / "test_batch").is_file()
    assert sorted(p.name for p in root.iterdir()) == ["cifar-10-python.tar.gz"]


def test_cifar10_archive_in_the_system_folder_unpacks_into_cache(
    isolated_sources, relaxed_counts, monkeypatch, tmp_path
):
    src = tmp_path / "src"
    write_cifar10_tree(src)
    system = isolated_sources.system / "cifar10"
    system.mkdir(parents=True)
    _publish_cifar10(monkeypatch, tar_gz(src, system / "cifar-10-python.tar.gz"))
    assert fetch_dataset("cifar10") == isolated_sources.cache / "cifar10"
    assert len(load_dataset("cifar10", "train")) == 20
    assert sorted(p.name for p in system.iterdir()) == ["cifar-10-python.tar.gz"]


def test_truncated_cifar_archive(tmp_path, relaxed_counts):
    src = tmp_path / "src"
    write_cifar10_tree(src, per_batch=40)
    root = tmp_path / "root"
    root.mkdir()
    archive = tar_gz(src, root / "cifar-10-python.tar.gz")
    archive.write_bytes(archive.read_bytes()[:20000])
    with pytest.raises(DataError, match="failed verification") as err:
        load_dataset("cifar10", root=root, download=False)
    assert str(archive) in str(err.value)
    assert sorted(p.name for p in root.iterdir()) == ["cifar-10-python.tar.gz"]


def test_cifar100_fine_labels_and_meta_names(tmp_path, relaxed_counts):
    names = [f"thing_{i:02d}" for i in range(100)]
    records = write_cifar100_tree(tmp_path, names=names)
    ds = load_dataset("cifar100", "train", root=tmp_path)
    assert ds.labels.tolist() == records["train"][b"fine_labels"]
    assert ds.info.num_classes == 100 and ds.info.class_names == tuple(names)
    assert dataset_info("cifar100", root=tmp_path).class_names[5] == "thing_05"
    assert dataset_info("cifar100").class_names[0] == "apple"  # built-in list without files


def test_cifar_meta_with_wrong_class_count(tmp_path, relaxed_counts):
    write_cifar100_tree(tmp_path, names=["a", "b"])
    with pytest.raises(DataError, match="2 class names, expected 100") as err:
        load_dataset("cifar100", root=tmp_path)
    assert "meta" in str(err.value)


# ----------------------------------------------------------------------------- SVHN, digits


def test_svhn(tmp_path, relaxed_counts):
    x, y = write_svhn(tmp_path / "test_32x32.mat", n=11)
    write_svhn(tmp_path / "train_32x32.mat", n=3)
    ds = load_dataset("svhn", "test", root=tmp_path)
    assert ds.images.shape == (11, 3, 32, 32)
    assert ds.labels.tolist() == [v % 10 for v in y.ravel().tolist()]
    assert 0 in ds.labels.tolist() and 10 not in ds.labels.tolist()
    expected = torch.from_numpy(x.transpose(3, 2, 0, 1).astype(np.float32) / 255)
    assert torch.equal(ds.images, expected)


def test_digits():
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert (len(train), len(test)) == (1442, 355)
    assert train.images.shape[1:] == (1, 8, 8)
    assert float(train.images.min()) == 0.0 and float(train.images.max()) == 1.0
    assert torch.bincount(test.labels).min() >= 34
    assert locate_dataset("digits") is not None


# ----------------------------------------------------------------------- downloads, end to end


def _serve_mnist(file_server, monkeypatch):
    arrays = write_mnist(file_server.root)
    entry = DATASETS.get("mnist")
    downloads = tuple(
        RemoteFile(
            r.filename,
            f"{file_server.url}/{r.filename}",
            sha256=hashlib.sha256((file_server.root / r.filename).read_bytes()).hexdigest(),
        )
        for r in entry.downloads
    )
    patched = dataclasses.replace(entry, downloads=downloads, counts={})
    monkeypatch.setitem(DATASETS._items, "mnist", patched)
    return arrays


def test_fetch_and_load_mnist_from_local_server(isolated_sources, file_server, monkeypatch):
    arrays = _serve_mnist(file_server, monkeypatch)
    folder = fetch_dataset("mnist")
    assert folder == isolated_sources.cache / "mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"{n}.gz" for names in IDX_NAMES.values() for n in names
    )
    assert len(file_server.requests) == 4
    ds = load_dataset("mnist", "test", download=False)
    images, labels = arrays["test"]
    assert torch.equal(ds.images[:, 0], torch.from_numpy(images.astype(np.float32) / 255))
    assert ds.labels.tolist() == labels.tolist()
    assert fetch_dataset("mnist") == folder and len(file_server.requests) == 4  # no re-download


def test_load_downloads_when_absent(isolated_sources, file_server, monkeypatch):
    _serve_mnist(file_server, monkeypatch)
    ds = load_dataset("mnist", "train")
    assert len(ds) == 30 and locate_dataset("mnist") == isolated_sources.cache / "mnist"


def test_fetch_into_root_downloads_only_missing(tmp_path, file_server, monkeypatch):
    _serve_mnist(file_server, monkeypatch)
    root = tmp_path / "mine"
    write_mnist(root, gz=False)
    (root / "train-images-idx3-ubyte").unlink()
    assert fetch_dataset("mnist", root=root) == root
    assert file_server.requests == ["/train-images-idx3-ubyte.gz"]
    assert len(load_dataset("mnist", "train", root=root)) == 30


def test_fetch_and_load_cifar10_archive_from_local_server(
    isolated_sources, file_server, relaxed_counts, monkeypatch, tmp_path
):
    src = tmp_path / "src"
    batches = write_cifar10_tree(src)
    archive = tar_gz(src, file_server.root / "cifar-10-python.tar.gz")
    entry = DATASETS.get("cifar10")
    remote = dataclasses.replace(
        entry.downloads[0],
        url=f"{file_server.url}/cifar-10-python.tar.gz",
        sha256=hashlib.sha256(archive.read_bytes()).hexdigest(),
    )
    monkeypatch.setitem(DATASETS._items, "cifar10", dataclasses.replace(entry, downloads=(remote,)))
    ds = load_dataset("cifar10", "test")
    images, labels = _cifar10_expected(batches, ["test_batch"])
    assert torch.equal(ds.images, images) and ds.labels.tolist() == labels
    cache = isolated_sources.cache / "cifar10"
    assert (cache / "cifar-10-batches-py" / "batches.meta").is_file()


def test_fetch_wrong_checksum_leaves_nothing(isolated_sources, file_server, monkeypatch):
    _serve_mnist(file_server, monkeypatch)
    entry = DATASETS.get("mnist")
    bad = (dataclasses.replace(entry.downloads[0], sha256="f" * 64), *entry.downloads[1:])
    monkeypatch.setitem(DATASETS._items, "mnist", dataclasses.replace(entry, downloads=bad))
    with pytest.raises(DataError, match="failed verification"):
        fetch_dataset("mnist")
    cache = isolated_sources.cache / "mnist"
    assert not cache.exists() or list(cache.iterdir()) == []


def test_offline_fetch_says_where_to_put_files(isolated_sources, dead_url, monkeypatch):
    entry = DATASETS.get("svhn")
    dead = tuple(dataclasses.replace(r, url=f"{dead_url}/{r.filename}") for r in entry.downloads)
    monkeypatch.setitem(DATASETS._items, "svhn", dataclasses.replace(entry, downloads=dead))
    with pytest.raises(DataError, match="could not download") as err:
        load_dataset("svhn")
    message = str(err.value)
    cache = isolated_sources.cache / "svhn"
    assert str(cache) in message and "train_32x32.mat" in message and "test_32x32.mat" in message
    assert str(isolated_sources.system / "svhn") in message
    assert not cache.exists() or list(cache.iterdir()) == []


def test_dataset_info_type_and_public_api():
    import robustlens.data as data

    assert isinstance(dataset_info("svhn"), DatasetInfo)
    assert set(data.__all__) >= {
        "DatasetInfo",
        "ImageSet",
        "list_datasets",
        "dataset_info",
        "load_dataset",
        "fetch_dataset",
        "locate_dataset",
    }
    assert "torchvision" not in sys.modules
    assert sources.SYSTEM_DATA_DIR != REAL_SYSTEM_DATA_DIR  # the fixture isolates the tests


# ------------------------------------------------------------------ the real Fashion-MNIST


@pytest.mark.needs_fashion_mnist
@pytest.mark.skipif(
    real_fashion_mnist() is None,
    reason="Fashion-MNIST is not installed in /usr/share/datasets/fashion-mnist "
    "(Debian package dataset-fashion-mnist, or `make setup`)",
)
def test_real_fashion_mnist(monkeypatch):
    monkeypatch.setattr(sources, "SYSTEM_DATA_DIR", REAL_SYSTEM_DATA_DIR)
    assert locate_dataset("fashion-mnist") == REAL_SYSTEM_DATA_DIR / "fashion-mnist"
    # No timed assertion: load varies 2-50x on shared machines (speed belongs in benchmarks/).
    train = load_dataset("fashion-mnist", "train", download=False)
    test = load_dataset("fashion-mnist", "test", download=False)
    assert (len(train), len(test)) == (60000, 10000)
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(train.labels, minlength=10).tolist() == [6000] * 10
    assert torch.bincount(test.labels, minlength=10).tolist() == [1000] * 10
    assert float(train.images.min()) == 0.0 and float(train.images.max()) == 1.0
    info = train.info
    assert abs(float(train.images.mean()) - info.mean[0]) < 1e-3
    assert abs(float(train.images.double().std(unbiased=False)) - info.std[0]) < 1e-3
