"""Search order: explicit root, $ROBUSTLENS_DATA, the cache, the system folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from robustlens.data import load_dataset, locate_dataset, sources
from robustlens.errors import DataError

from .fakes import touch_mnist


def test_search_dirs_order(isolated_sources, monkeypatch, tmp_path):
    monkeypatch.setenv("ROBUSTLENS_DATA", str(tmp_path / "env"))
    assert sources.search_dirs("mnist") == [
        tmp_path / "env" / "mnist",
        isolated_sources.cache / "mnist",
        isolated_sources.system / "mnist",
    ]
    (tmp_path / "root").mkdir()
    # a root the user names is the only place looked at: no fall-back to other folders
    assert sources.search_dirs("mnist", tmp_path / "root") == [
        tmp_path / "root",
        tmp_path / "root" / "mnist",
    ]


@pytest.mark.parametrize("make", [None, "file"])
def test_a_root_that_is_not_a_folder_is_an_error_not_a_fall_back(isolated_sources, tmp_path, make):
    touch_mnist(isolated_sources.system / "mnist")  # would be found by a fall-back
    root = tmp_path / "typo"
    if make == "file":
        root.write_text("x")
    with pytest.raises(DataError, match=r"data folder .*typo") as err:
        locate_dataset("mnist", root=root)
    assert ("is not a folder" if make else "does not exist") in str(err.value)
    with pytest.raises(DataError, match="typo"):
        load_dataset("mnist", root=root)
    assert not (root.exists() and root.is_dir())


def test_cache_dir_default_and_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert sources.cache_dir("svhn") == tmp_path / "home" / ".cache" / "robustlens" / "svhn"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert sources.cache_dir("svhn") == tmp_path / "xdg" / "robustlens" / "svhn"


def test_locate_order(isolated_sources, monkeypatch, tmp_path):
    env = tmp_path / "env"
    monkeypatch.setenv("ROBUSTLENS_DATA", str(env))
    places = [env / "mnist", isolated_sources.cache / "mnist", isolated_sources.system / "mnist"]
    for place in places:
        touch_mnist(place)
    for place in places:
        assert locate_dataset("mnist") == place
        shutil.rmtree(place)
    assert locate_dataset("mnist") is None


def test_root_then_root_name_and_nothing_else(isolated_sources, tmp_path):
    root = tmp_path / "root"
    touch_mnist(root)
    touch_mnist(isolated_sources.system / "mnist")
    assert locate_dataset("mnist", root=root) == root
    shutil.rmtree(root)
    touch_mnist(root / "mnist")
    assert locate_dataset("mnist", root=root) == root / "mnist"
    shutil.rmtree(root / "mnist")
    assert locate_dataset("mnist", root=root) is None  # not the system folder's copy


def test_a_folder_counts_only_when_complete(isolated_sources, tmp_path):
    root = tmp_path / "root"
    touch_mnist(root)
    touch_mnist(isolated_sources.system / "mnist")
    (root / "t10k-labels-idx1-ubyte.gz").unlink()
    assert locate_dataset("mnist", root=root) is None
    assert locate_dataset("mnist") == isolated_sources.system / "mnist"
    (root / "t10k-labels-idx1-ubyte").touch()  # the uncompressed name also counts
    assert locate_dataset("mnist", root=root) == root


def test_env_may_list_several_folders(monkeypatch, tmp_path):
    import os

    monkeypatch.setenv(
        "ROBUSTLENS_DATA", os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")])
    )
    touch_mnist(tmp_path / "b" / "mnist")
    assert locate_dataset("mnist") == tmp_path / "b" / "mnist"


def test_names_are_normalised(isolated_sources):
    touch_mnist(isolated_sources.system / "fashion-mnist")
    assert locate_dataset("Fashion_MNIST") == isolated_sources.system / "fashion-mnist"


def test_real_system_folder_is_the_default():
    from .conftest import REAL_SYSTEM_DATA_DIR

    assert Path("/usr/share/datasets") == REAL_SYSTEM_DATA_DIR
