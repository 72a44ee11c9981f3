"""Small data files in the real on-disk formats, written by the tests."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np

from robustlens.data.catalog import CIFAR10_CLASSES

IDX_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX encoding of a uint8 array."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_idx(path: Path, array: np.ndarray, *, gz: bool | None = None) -> Path:
    """Write ``array`` as IDX, gzip-compressed when ``gz`` (default: name ends in .gz)."""
    data = idx_bytes(array)
    if gz if gz is not None else path.name.endswith(".gz"):
        data = gzip.compress(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def mnist_arrays(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    return images, labels


def write_mnist(
    folder: Path, *, n_train: int = 30, n_test: int = 20, gz: bool = True
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Write a small MNIST-layout data set into ``folder``; return the arrays per split."""
    arrays = {"train": mnist_arrays(n_train, 1), "test": mnist_arrays(n_test, 2)}
    suffix = ".gz" if gz else ""
    for split, (images, labels) in arrays.items():
        write_idx(folder / (IDX_NAMES[split][0] + suffix), images)
        write_idx(folder / (IDX_NAMES[split][1] + suffix), labels)
    return arrays


def touch_mnist(folder: Path) -> None:
    """Create empty files with the MNIST names (enough for locating, not for loading)."""
    folder.mkdir(parents=True, exist_ok=True)
    for names in IDX_NAMES.values():
        for name in names:
            (folder / f"{name}.gz").touch()


# ---------------------------------------------------------------------------------- CIFAR


def cifar_pickle(record: dict, protocol: int = 2) -> bytes:
    return pickle.dumps(record, protocol=protocol)


def cifar_batch(n: int, seed: int, num_classes: int = 10, label_key: bytes = b"labels") -> dict:
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": b"fake batch",
        b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
        label_key: [int(v) for v in rng.integers(0, num_classes, size=n)],
        b"filenames": [f"img_{i}.png".encode() for i in range(n)],
    }


def write_cifar10_tree(folder: Path, per_batch: int = 4) -> dict[str, dict]:
    """A cifar-10-batches-py folder with 5 train batches, a test batch and batches.meta."""
    sub = folder / "cifar-10-batches-py"
    sub.mkdir(parents=True, exist_ok=True)
    batches = {}
    for i in range(1, 6):
        batches[f"data_batch_{i}"] = cifar_batch(per_batch, i)
    batches["test_batch"] = cifar_batch(per_batch, 99)
    for name, record in batches.items():
        (sub / name).write_bytes(cifar_pickle(record))
    meta = {
        b"label_names": [n.encode() for n in CIFAR10_CLASSES],
        b"num_cases_per_batch": per_batch,
        b"num_vis": 3072,
    }
    (sub / "batches.meta").write_bytes(cifar_pickle(meta))
    return batches


def write_cifar100_tree(folder: Path, n: int = 6, names: list[str] | None = None) -> dict:
    sub = folder / "cifar-100-python"
    sub.mkdir(parents=True, exist_ok=True)
    records = {
        "train": cifar_batch(n, 5, 100, b"fine_labels"),
        "test": cifar_batch(n, 6, 100, b"fine_labels"),
    }
    for name, record in records.items():
        record[b"coarse_labels"] = [0] * n
        (sub / name).write_bytes(cifar_pickle(record))
    names = names or [f"class_{i:03d}" for i in range(100)]
    meta = {b"fine_label_names": [n.encode() for n in names], b"coarse_label_names": [b"x"] * 20}
    (sub / "meta").write_bytes(cifar_pickle(meta))
    return records


def tar_gz(source: Path, archive: Path) -> Path:
    """Pack the entries of ``source`` (relative names) into ``archive``."""
    with tarfile.open(archive, "w:gz") as tar:
        for entry in sorted(source.iterdir()):
            tar.add(entry, arcname=entry.name)
    return archive


def tar_with_member(archive: Path, name: str, data: bytes = b"x", kind: bytes | None = None):
    """A tar.gz with one member called ``name`` (a link when ``kind`` is a link type)."""
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo(name)
        if kind is not None:
            info.type = kind
            info.linkname = "/etc/passwd"
            tar.addfile(info)
        else:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


# ----------------------------------------------------------------------------------- SVHN


def write_svhn(path: Path, n: int = 7, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An SVHN-layout .mat file: X is 32×32×3×N uint8, y is N×1 in 1..10."""
    import scipy.io

    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
    y = (np.arange(n) % 10 + 1).astype(np.uint8).reshape(n, 1)  # 1..10; 10 means digit 0
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), {"X": x, "y": y})
    return x, y


# ---------------------------------------------------------------------------------- images


def write_png(path: Path, array: np.ndarray) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)
    return path
