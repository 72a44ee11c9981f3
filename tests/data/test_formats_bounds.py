"""IDX headers are checked against the bytes behind them before any payload is read: a header
that promises more than the file holds is an error that costs no memory."""

from __future__ import annotations

import gzip
import struct
import tracemalloc

import numpy as np
import pytest

from robustlens import runtime
from robustlens.data import formats
from robustlens.errors import DataError

from .fakes import idx_bytes, write_idx


def header(dims: tuple[int, ...], code: int = 0x08) -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def peak_bytes(call) -> int:
    """The peak Python memory allocated while ``call()`` runs (it may raise DataError)."""
    tracemalloc.start()
    try:
        call()
    except DataError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_a_raw_file_shorter_than_its_header_promises_is_refused_unread(tmp_path):
    path = tmp_path / "images"
    path.write_bytes(header((60000, 28, 28)) + bytes(100))
    with pytest.raises(DataError, match="truncated") as err:
        formats.read_idx(path)
    assert "file has 116 bytes" in str(err.value)
    assert peak_bytes(lambda: formats.read_idx(path)) < 100_000


def test_a_gzip_file_promising_more_than_gzip_can_hold_is_refused(tmp_path):
    path = tmp_path / "images.gz"
    path.write_bytes(gzip.compress(header((4_000_000_000, 1))))  # 4 GB from 40 bytes
    with pytest.raises(DataError, match=r"more than a .*-byte gzip file can hold"):
        formats.read_idx(path)


def test_a_gzip_bomb_is_read_no_further_than_the_header_promises(tmp_path):
    # 2 images promised, 50 MB of zeros behind them: decompressing it all would take 50 MB.
    path = tmp_path / "bomb.gz"
    path.write_bytes(gzip.compress(header((2, 28, 28)) + bytes(50_000_000)))
    with pytest.raises(DataError, match="trailing bytes") as err:
        formats.read_idx(path)
    assert str(path) in str(err.value)
    assert peak_bytes(lambda: formats.read_idx(path)) < 5_000_000


def test_a_header_beyond_the_memory_available_is_refused_unless_allowed(tmp_path, monkeypatch):
    path = write_idx(tmp_path / "images.gz", np.zeros((4, 28, 28), dtype=np.uint8))
    monkeypatch.setattr(runtime, "available_memory", lambda: 1000)
    monkeypatch.delenv(runtime.ENV_ALLOW_LARGE, raising=False)
    with pytest.raises(DataError, match="ROBUSTLENS_ALLOW_LARGE") as err:
        formats.read_idx(path)
    assert "3.1 kB" in str(err.value) and str(path) in str(err.value)
    assert formats.read_idx(path, allow_large=True).shape == (4, 28, 28)
    monkeypatch.setenv(runtime.ENV_ALLOW_LARGE, "1")
    assert formats.read_idx(path).shape == (4, 28, 28)


def test_image_dimensions_are_checked_before_the_payload(tmp_path):
    images = tmp_path / "images"
    images.write_bytes(header((3, 32, 32)))  # payload missing: the shape is refused first
    labels = write_idx(tmp_path / "labels", np.zeros(3, dtype=np.uint8))
    with pytest.raises(DataError, match=r"header says shape \(3, 32, 32\), expected \(N, 28, 28\)"):
        formats.read_idx_pair(images, labels)


@pytest.mark.parametrize("gz", [True, False])
def test_bounded_reading_gives_the_same_array(tmp_path, gz):
    values = (np.arange(5 * 7 * 3) % 256).astype(np.uint8).reshape(5, 7, 3)
    data = idx_bytes(values)
    path = tmp_path / "x"
    path.write_bytes(gzip.compress(data) if gz else data)
    np.testing.assert_array_equal(formats.read_idx(path), values)
    wide = tmp_path / "wide"
    wide.write_bytes(header((2, 3), 0x0C) + np.arange(6, dtype=">i4").tobytes())
    np.testing.assert_array_equal(formats.read_idx(wide), np.arange(6).reshape(2, 3))
