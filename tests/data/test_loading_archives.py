"""A data set found as an archive: verified first, unpacked into the cache, the user's folder
only read (issue 14 §2)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from robustlens.data import fetch_dataset, load_dataset, locate_dataset
from robustlens.data.catalog import DATASETS
from robustlens.errors import DataError

from .fakes import tar_gz, write_cifar10_tree

ARCHIVE = "cifar-10-python.tar.gz"
TREE = "cifar-10-batches-py"


def publish(monkeypatch, sha256: str) -> None:
    """Make the catalog's cifar10 archive checksum ``sha256`` (and accept any image count)."""
    entry = DATASETS.get("cifar10")
    remote = dataclasses.replace(entry.downloads[0], sha256=sha256)
    patched = dataclasses.replace(entry, downloads=(remote,), counts={})
    monkeypatch.setitem(DATASETS._items, "cifar10", patched)


def user_folder(tmp_path: Path) -> tuple[Path, Path]:
    """A user's folder holding the archive; returns (folder, archive)."""
    src = tmp_path / "src"
    write_cifar10_tree(src)
    root = tmp_path / "mine"
    root.mkdir()
    return root, tar_gz(src, root / ARCHIVE)


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file and folder under ``folder``: bytes (files) and modification time."""
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else b"", p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
    }


def test_archive_is_unpacked_into_the_cache_not_beside_it(tmp_path, monkeypatch, isolated_sources):
    root, archive = user_folder(tmp_path)
    publish(monkeypatch, hashlib.sha256(archive.read_bytes()).hexdigest())
    before = snapshot(root)
    assert locate_dataset("cifar10", root=root) == root
    assert len(load_dataset("cifar10", "test", root=root, download=False)) == 4
    assert snapshot(root) == before
    cache = isolated_sources.cache / "cifar10"
    assert (cache / TREE / "test_batch").is_file()
    assert fetch_dataset("cifar10", root=root) == cache  # the unpacked copy is found again


def test_wrong_checksum_is_refused_before_extracting(tmp_path, monkeypatch, isolated_sources):
    root, archive = user_folder(tmp_path)
    actual = hashlib.sha256(archive.read_bytes()).hexdigest()
    publish(monkeypatch, "0123456789abcdef" * 4)
    before = snapshot(root)
    with pytest.raises(DataError, match="failed verification") as err:
        load_dataset("cifar10", "test", root=root, download=False)
    message = str(err.value)
    assert str(archive) in message
    assert actual in message and "0123456789abcdef" * 4 in message
    assert "fetch_dataset('cifar10')" in message and "cs.toronto.edu" in message
    assert snapshot(root) == before
    cache = isolated_sources.cache / "cifar10"
    assert not (cache / TREE).exists()


def test_users_files_beside_the_archive_are_never_replaced(tmp_path, monkeypatch, isolated_sources):
    root, archive = user_folder(tmp_path)
    publish(monkeypatch, hashlib.sha256(archive.read_bytes()).hexdigest())
    # The user's own, incomplete folder of the same name as the archive's top entry.
    mine = root / TREE
    mine.mkdir()
    (mine / "data_batch_1").write_bytes(b"my own edited batch")
    (mine / "notes.txt").write_text("do not lose me")
    before = snapshot(root)
    assert len(load_dataset("cifar10", "train", root=root, download=False)) == 20
    assert snapshot(root) == before  # bytes and mtimes of every file, and nothing new


@pytest.mark.timing
def test_a_run_killed_mid_extraction_leaves_no_half_folder(tmp_path, monkeypatch, isolated_sources):
    root, archive = user_folder(tmp_path)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    before = snapshot(root)
    script = textwrap.dedent(
        f"""
        import dataclasses, os, signal, tarfile
        from pathlib import Path
        from robustlens.data import load_dataset, sources
        from robustlens.data.catalog import DATASETS

        sources.SYSTEM_DATA_DIR = Path({str(tmp_path / "system")!r})
        entry = DATASETS.get("cifar10")
        remote = dataclasses.replace(entry.downloads[0], sha256={digest!r})
        DATASETS._items["cifar10"] = dataclasses.replace(entry, downloads=(remote,), counts={{}})
        real, done = tarfile.TarFile.extract, []

        def extract(self, member, path="", **kwargs):
            done.append(member.name)
            if len(done) == 4:  # three members are on disk: die as kill -9 would
                os.kill(os.getpid(), signal.SIGKILL)
            return real(self, member, path, **kwargs)

        tarfile.TarFile.extract = extract
        load_dataset("cifar10", "test", root={str(root)!r}, download=False)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run([sys.executable, "-c", script], env=env, timeout=300)
    assert result.returncode == -9
    cache = isolated_sources.cache / "cifar10"
    assert not (cache / TREE).exists()  # no half folder where the data set is looked for
    assert snapshot(root) == before  # and nothing in the user's folder
    left = [p.name for p in cache.iterdir() if p.name.startswith(".extract-")]
    assert len(left) == 1  # the dead process's private folder ...
    publish(monkeypatch, digest)
    assert len(load_dataset("cifar10", "test", root=root, download=False)) == 4
    assert not [p for p in cache.iterdir() if p.name.startswith(".extract-")]  # ... cleaned up
    assert sorted(p.name for p in (cache / TREE).iterdir()) == sorted(
        p.name for p in (tmp_path / "src" / TREE).iterdir()
    )


def test_an_unwritable_cache_is_one_clear_error(tmp_path, monkeypatch, isolated_sources):
    root, archive = user_folder(tmp_path)
    publish(monkeypatch, hashlib.sha256(archive.read_bytes()).hexdigest())
    isolated_sources.cache.parent.mkdir(parents=True, exist_ok=True)
    isolated_sources.cache.write_text("a file where the cache folder should be")
    with pytest.raises(DataError, match="cannot unpack cifar10") as err:
        load_dataset("cifar10", "test", root=root, download=False)
    assert "XDG_CACHE_HOME" in str(err.value)
