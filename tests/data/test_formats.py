"""Readers: exact values on small files in the real formats; corrupt files name themselves."""

from __future__ import annotations

import builtins
import gzip
import os
import pickle
import pickletools
import shlex

import numpy as np
import pytest

from robustlens.data import formats
from robustlens.errors import DataError

from .fakes import cifar_batch, cifar_pickle, idx_bytes, write_idx, write_png, write_svhn

# ------------------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, gz):
    images = np.arange(3 * 28 * 28, dtype=np.int64).reshape(3, 28, 28) % 256
    labels = np.array([3, 0, 9], dtype=np.uint8)
    ip = write_idx(tmp_path / "images", images, gz=gz)
    lp = write_idx(tmp_path / "labels", labels, gz=gz)
    x, y = formats.read_idx_pair(ip, lp, count=3)
    assert x.shape == (3, 1, 28, 28) and x.dtype == np.uint8
    np.testing.assert_array_equal(x[:, 0], images)
    assert y.dtype == np.int64 and y.tolist() == [3, 0, 9]


def test_gzip_detected_by_content_not_name(tmp_path):
    path = tmp_path / "labels.gz"
    path.write_bytes(idx_bytes(np.array([1, 2], dtype=np.uint8)))  # raw bytes under a .gz name
    assert formats.read_idx(path).tolist() == [1, 2]


def test_idx_truncated_payload(tmp_path):
    data = idx_bytes(np.zeros((4, 28, 28), dtype=np.uint8))
    path = tmp_path / "cut-images-idx3-ubyte"
    path.write_bytes(data[:-100])
    with pytest.raises(DataError, match="truncated") as err:
        formats.read_idx(path)
    assert str(path) in str(err.value)
    assert "fetch" in str(err.value)


def test_idx_trailing_bytes(tmp_path):
    path = tmp_path / "long"
    path.write_bytes(idx_bytes(np.zeros(5, dtype=np.uint8)) + b"\0")
    with pytest.raises(DataError, match="trailing") as err:
        formats.read_idx(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("head", [b"\x01\x00\x08\x01", b"\x00\x00\x07\x01", b"PK\x03\x04", b"\0"])
def test_idx_bad_magic(tmp_path, head):
    path = tmp_path / "bad.idx"
    path.write_bytes(head + b"\0\0\0\1x")
    with pytest.raises(DataError) as err:
        formats.read_idx(path)
    assert str(path) in str(err.value)


def test_idx_truncated_header(tmp_path):
    path = tmp_path / "short"
    path.write_bytes(b"\x00\x00\x08\x03\x00\x00")
    with pytest.raises(DataError, match="header truncated"):
        formats.read_idx(path)


def test_gzip_truncated(tmp_path):
    data = gzip.compress(idx_bytes(np.arange(2000, dtype=np.int64).astype(np.uint8)))
    path = tmp_path / "cut.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated") as err:
        formats.read_idx(path)
    assert str(path) in str(err.value)


def test_gzip_bad_crc(tmp_path):
    data = bytearray(gzip.compress(idx_bytes(np.zeros(100, dtype=np.uint8))))
    data[-8] ^= 0xFF  # the CRC32 in the gzip trailer
    path = tmp_path / "crc.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="gzip") as err:
        formats.read_idx(path)
    assert str(path) in str(err.value)


def test_gzip_garbage_after_header(tmp_path):
    path = tmp_path / "garbage.gz"
    path.write_bytes(gzip.compress(b"x" * 100)[:10] + b"\xff" * 50)
    with pytest.raises(DataError) as err:
        formats.read_idx(path)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        formats.read_idx(tmp_path / "nope")


def test_idx_pair_checks(tmp_path):
    ip = write_idx(tmp_path / "i", np.zeros((3, 28, 28), dtype=np.uint8))
    lp = write_idx(tmp_path / "l", np.array([0, 1], dtype=np.uint8))
    with pytest.raises(DataError, match="expected 3 labels, found 2") as err:
        formats.read_idx_pair(ip, lp)
    assert str(lp) in str(err.value)
    with pytest.raises(DataError, match="expected 60000 images"):
        formats.read_idx_pair(ip, lp, count=60000)
    bad = write_idx(tmp_path / "bad", np.array([0, 1, 12], dtype=np.uint8))
    with pytest.raises(DataError, match="labels range"):
        formats.read_idx_pair(ip, bad)
    small = write_idx(tmp_path / "small", np.zeros((3, 8, 8), dtype=np.uint8))
    with pytest.raises(DataError, match="shape"):
        formats.read_idx_pair(small, bad)


# ----------------------------------------------------------------------------------- CIFAR


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar_batch_values_and_channel_order(tmp_path, protocol):
    record = cifar_batch(5, 0)
    path = tmp_path / "data_batch_1"
    path.write_bytes(cifar_pickle(record, protocol))
    x, y = formats.read_cifar_batch(path)
    assert x.shape == (5, 3, 32, 32) and x.dtype == np.uint8
    row = record[b"data"][2]
    np.testing.assert_array_equal(x[2, 0].ravel(), row[:1024])  # red plane first
    np.testing.assert_array_equal(x[2, 2].ravel(), row[2048:])
    assert x[2, 1, 0, 5] == row[1024 + 5]
    assert y.tolist() == record[b"labels"] and y.dtype == np.int64


def test_cifar_str_keys_and_fine_labels(tmp_path):
    record = {"data": np.zeros((2, 3072), np.uint8), "fine_labels": [99, 0]}
    path = tmp_path / "train"
    path.write_bytes(pickle.dumps(record))
    _, y = formats.read_cifar_batch(path, label_key="fine_labels", num_classes=100)
    assert y.tolist() == [99, 0]


def test_cifar_meta_names(tmp_path):
    path = tmp_path / "batches.meta"
    path.write_bytes(cifar_pickle({b"label_names": [b"cat", b"dog"], b"num_vis": 3072}))
    assert formats.read_cifar_names(path, "label_names") == ["cat", "dog"]
    with pytest.raises(DataError, match="no 'fine_label_names'"):
        formats.read_cifar_names(path, "fine_label_names")


def test_cifar_batch_layout_errors(tmp_path):
    path = tmp_path / "b"
    path.write_bytes(cifar_pickle({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(DataError, match="3072"):
        formats.read_cifar_batch(path)
    path.write_bytes(cifar_pickle({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}))
    with pytest.raises(DataError, match="1 labels for 2 images"):
        formats.read_cifar_batch(path)
    path.write_bytes(cifar_pickle([1, 2, 3]))
    with pytest.raises(DataError, match="dict"):
        formats.read_cifar_batch(path)


def test_cifar_truncated_pickle(tmp_path):
    data = cifar_pickle(cifar_batch(3, 0))
    path = tmp_path / "data_batch_1"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as err:
        formats.read_cifar_batch(path)
    assert str(path) in str(err.value)


class _RunsShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


class _RunsEval:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        code = f"open({str(self.marker)!r}, 'w').close()"
        return (builtins.eval, (code,))


@pytest.mark.parametrize("payload", [_RunsShell, _RunsEval])
def test_cifar_pickle_with_forbidden_global_is_refused(tmp_path, payload):
    marker = tmp_path / "pwned"
    data = pickle.dumps({b"data": payload(marker), b"labels": [0]}, protocol=2)
    # The pickle really does call a dangerous global: plain pickle.load would run it.
    globals_used = {arg for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}
    assert globals_used & {"posix system", "nt system", "os system", "__builtin__ eval"}
    path = tmp_path / "data_batch_1"
    path.write_bytes(data)
    with pytest.raises(DataError, match="unsafe") as err:
        formats.read_cifar_batch(path)
    assert str(path) in str(err.value)
    assert not marker.exists()


# ------------------------------------------------------------------------------------ SVHN


def test_svhn_mat(tmp_path):
    x, y = write_svhn(tmp_path / "train_32x32.mat", n=12)
    images, labels = formats.read_svhn_mat(tmp_path / "train_32x32.mat")
    assert images.shape == (12, 3, 32, 32) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[4], x[:, :, :, 4].transpose(2, 0, 1))
    assert images[3, 1, 5, 7] == x[5, 7, 1, 3]
    assert labels.dtype == np.int64
    assert labels.tolist() == [(v % 10) for v in y.ravel().tolist()]
    assert labels[9] == 0 and y[9, 0] == 10  # SVHN's 10 is the digit 0


def test_svhn_corrupt(tmp_path):
    path = tmp_path / "test_32x32.mat"
    write_svhn(path, n=3)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as err:
        formats.read_svhn_mat(path)
    assert str(path) in str(err.value)
    path.write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(DataError, match="MATLAB"):
        formats.read_svhn_mat(path)


def test_svhn_wrong_variables(tmp_path):
    import scipy.io

    path = tmp_path / "odd.mat"
    scipy.io.savemat(str(path), {"X": np.zeros((28, 28, 3, 2), np.uint8), "y": np.ones((2, 1))})
    with pytest.raises(DataError, match="32×32×3×N"):
        formats.read_svhn_mat(path)
    scipy.io.savemat(str(path), {"A": np.zeros(3)})
    with pytest.raises(DataError, match="'X' and 'y'"):
        formats.read_svhn_mat(path)


# ---------------------------------------------------------------------------------- images


def test_read_image_exact_rgb_and_gray(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, size=(5, 6, 3), dtype=np.uint8)
    path = write_png(tmp_path / "a.png", rgb)
    out = formats.read_image(path, (5, 6))
    assert out.shape == (3, 5, 6)
    np.testing.assert_array_equal(out, rgb.transpose(2, 0, 1))
    gray = formats.read_image(path, (5, 6), grayscale=True)
    assert gray.shape == (1, 5, 6)


def test_read_image_resizes_bilinear(tmp_path):
    from PIL import Image

    rgb = np.random.default_rng(1).integers(0, 256, size=(40, 30, 3), dtype=np.uint8)
    path = write_png(tmp_path / "b.png", rgb)
    out = formats.read_image(path, (8, 12))
    expected = np.asarray(Image.fromarray(rgb).resize((12, 8), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(out, expected.transpose(2, 0, 1))


def test_read_image_corrupt(tmp_path):
    path = write_png(tmp_path / "c.png", np.zeros((20, 20, 3), np.uint8))
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataError) as err:
        formats.read_image(path, (20, 20))
    assert str(path) in str(err.value)
    text = tmp_path / "d.jpg"
    text.write_text("not an image")
    with pytest.raises(DataError, match="cannot be read"):
        formats.read_image(text, (4, 4))


def test_image_extensions():
    from pathlib import Path

    assert formats.is_image_file(Path("x/a.PNG"))
    assert not formats.is_image_file(Path("x/a.txt"))
    assert not formats.is_image_file(Path("x/.hidden.png"))
