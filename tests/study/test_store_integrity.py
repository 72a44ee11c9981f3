"""The store checks every array file against the sha256 recorded with it before using it."""

from __future__ import annotations

import io

import numpy as np
import pytest

from robustlens.errors import ConfigError
from robustlens.study.store import Store


def _write(store: Store, values: np.ndarray) -> None:
    store.write_run(
        key="k",
        lens="demo",
        scope_model="m",
        params={},
        model_digests={"m": "d"},
        data_fingerprint="f",
        versions={},
        notes=[],
        started=0.0,
        seconds=0.0,
        tables={},
        arrays={"per_image": values},
    )


def _npy(values: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, values, allow_pickle=False)
    return buffer.getvalue()


def test_an_array_file_replaced_by_another_valid_array_is_refused(tmp_path):
    store = Store(tmp_path)
    _write(store, np.arange(8, dtype=np.float64))
    run = store.find_run("k")
    assert np.array_equal(store.array(run, "per_image"), np.arange(8, dtype=np.float64))
    (path,) = (tmp_path / "artifacts").rglob("*.npy")
    # Same shape and dtype, a readable .npy file: only the hash can tell it is not the original.
    path.write_bytes(_npy(np.arange(8, dtype=np.float64)[::-1].copy()))
    with pytest.raises(ConfigError, match="corrupt") as info:
        store.array(run, "per_image")
    assert str(path) in str(info.value)


def test_an_intact_array_file_is_read_back_exactly(tmp_path):
    values = np.random.default_rng(0).standard_normal(50)
    store = Store(tmp_path)
    _write(store, values)
    read = store.array(store.find_run("k"), "per_image")
    assert read.dtype == values.dtype and np.array_equal(read, values)
