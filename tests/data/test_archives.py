"""Tar extraction: complete or nothing, and nothing outside the destination."""

from __future__ import annotations

import tarfile

import pytest

from robustlens.data.archives import extract_tar
from robustlens.errors import DataError

from .fakes import tar_gz, tar_with_member, write_cifar10_tree


def test_extracts_tree(tmp_path):
    src = tmp_path / "src"
    write_cifar10_tree(src)
    archive = tar_gz(src, tmp_path / "cifar-10-python.tar.gz")
    dest = tmp_path / "dest"
    entries = extract_tar(archive, dest)
    assert entries == [dest / "cifar-10-batches-py"]
    for name in ("data_batch_1", "data_batch_5", "test_batch", "batches.meta"):
        a = (src / "cifar-10-batches-py" / name).read_bytes()
        assert (dest / "cifar-10-batches-py" / name).read_bytes() == a
    assert sorted(p.name for p in dest.iterdir()) == ["cifar-10-batches-py"]  # no temp left


def test_replaces_previous_extraction(tmp_path):
    src = tmp_path / "src"
    write_cifar10_tree(src)
    archive = tar_gz(src, tmp_path / "a.tar.gz")
    dest = tmp_path / "dest"
    (dest / "cifar-10-batches-py").mkdir(parents=True)
    (dest / "cifar-10-batches-py" / "stale").write_text("old")
    extract_tar(archive, dest)
    assert not (dest / "cifar-10-batches-py" / "stale").exists()
    assert (dest / "cifar-10-batches-py" / "test_batch").is_file()


def test_truncated_archive_leaves_nothing(tmp_path):
    src = tmp_path / "src"
    write_cifar10_tree(src, per_batch=50)
    archive = tar_gz(src, tmp_path / "cifar-10-python.tar.gz")
    data = archive.read_bytes()
    archive.write_bytes(data[: int(len(data) * 0.6)])
    dest = tmp_path / "dest"
    with pytest.raises(DataError, match="corrupt or truncated") as err:
        extract_tar(archive, dest)
    assert str(archive) in str(err.value)
    assert list(dest.iterdir()) == []


def test_not_an_archive(tmp_path):
    archive = tmp_path / "x.tar.gz"
    archive.write_bytes(b"hello" * 100)
    with pytest.raises(DataError) as err:
        extract_tar(archive, tmp_path / "dest")
    assert str(archive) in str(err.value)


@pytest.mark.parametrize("name", ["/tmp/evil", "../evil", "ok/../../evil", "a/../../b"])
def test_rejects_escaping_members(tmp_path, name):
    archive = tar_with_member(tmp_path / "evil.tar.gz", name)
    dest = tmp_path / "dest"
    with pytest.raises(DataError, match="outside the destination") as err:
        extract_tar(archive, dest)
    assert str(archive) in str(err.value)
    assert list(dest.iterdir()) == []
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE])
def test_rejects_links(tmp_path, kind):
    archive = tar_with_member(tmp_path / "link.tar.gz", "data_batch_1", kind=kind)
    dest = tmp_path / "dest"
    with pytest.raises(DataError, match="link"):
        extract_tar(archive, dest)
    assert list(dest.iterdir()) == []
