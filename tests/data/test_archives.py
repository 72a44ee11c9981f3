"""Tar extraction: checksum first, complete or nothing, and nothing outside the destination."""

from __future__ import annotations

import errno
import hashlib
import tarfile

import pytest

from robustlens.data import archives
from robustlens.data.archives import extract_tar
from robustlens.errors import DataError

from .fakes import tar_gz, tar_with_member, write_cifar10_tree


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_extracts_tree(tmp_path):
    src = tmp_path / "src"
    write_cifar10_tree(src)
    archive = tar_gz(src, tmp_path / "cifar-10-python.tar.gz")
    dest = tmp_path / "dest"
    entries = extract_tar(archive, dest, sha256=sha256(archive))
    assert entries == [dest / "cifar-10-batches-py"]
    for name in ("data_batch_1", "data_batch_5", "test_batch", "batches.meta"):
        a = (src / "cifar-10-batches-py" / name).read_bytes()
        assert (dest / "cifar-10-batches-py" / name).read_bytes() == a
    assert sorted(p.name for p in dest.iterdir()) == ["cifar-10-batches-py"]  # no temp left


def test_md5_is_accepted_where_no_sha256_is_published(tmp_path):
    src = tmp_path / "src"
    write_cifar10_tree(src)
    archive = tar_gz(src, tmp_path / "a.tar.gz")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    assert extract_tar(archive, tmp_path / "dest", md5=md5) == [
        tmp_path / "dest" / "cifar-10-batches-py"
    ]
    with pytest.raises(ValueError, match="sha256 or md5"):
        extract_tar(archive, tmp_path / "dest")


def test_wrong_checksum_is_refused_before_anything_is_read(tmp_path, monkeypatch):
    src = tmp_path / "src"
    write_cifar10_tree(src)
    archive = tar_gz(src, tmp_path / "cifar-10-python.tar.gz")
    actual = sha256(archive)

    def no_tar(*args, **kwargs):
        raise AssertionError("the archive was opened for extraction")

    monkeypatch.setattr(archives.tarfile, "open", no_tar)
    dest = tmp_path / "dest"
    with pytest.raises(DataError, match="failed verification") as err:
        extract_tar(archive, dest, sha256="ab" * 32, fix="fetch it again")
    message = str(err.value)
    assert str(archive) in message and actual in message and "ab" * 32 in message
    assert message.endswith("fetch it again")
    assert not dest.exists()


def test_replaces_previous_extraction(tmp_path):
    src = tmp_path / "src"
    write_cifar10_tree(src)
    archive = tar_gz(src, tmp_path / "a.tar.gz")
    dest = tmp_path / "dest"
    (dest / "cifar-10-batches-py").mkdir(parents=True)
    (dest / "cifar-10-batches-py" / "stale").write_text("old")
    extract_tar(archive, dest, sha256=sha256(archive))
    assert not (dest / "cifar-10-batches-py" / "stale").exists()
    assert (dest / "cifar-10-batches-py" / "test_batch").is_file()
    assert sorted(p.name for p in dest.iterdir()) == ["cifar-10-batches-py"]


def test_a_failure_mid_extraction_leaves_the_previous_state(tmp_path, monkeypatch):
    src = tmp_path / "src"
    write_cifar10_tree(src)
    archive = tar_gz(src, tmp_path / "a.tar.gz")
    dest = tmp_path / "dest"
    (dest / "cifar-10-batches-py").mkdir(parents=True)
    (dest / "cifar-10-batches-py" / "previous").write_text("kept")
    real = tarfile.TarFile.extract
    calls = []

    def extract(self, member, path="", **kwargs):
        calls.append(member.name)
        if len(calls) == 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, member, path, **kwargs)

    monkeypatch.setattr(tarfile.TarFile, "extract", extract)
    with pytest.raises(DataError, match="No space left on device") as err:
        extract_tar(archive, dest, sha256=sha256(archive))
    assert "corrupt" not in str(err.value)  # a full disk is not a damaged archive
    assert len(calls) == 4
    assert sorted(p.name for p in dest.iterdir()) == ["cifar-10-batches-py"]
    assert [p.name for p in (dest / "cifar-10-batches-py").iterdir()] == ["previous"]


def test_truncated_archive_leaves_nothing(tmp_path):
    src = tmp_path / "src"
    write_cifar10_tree(src, per_batch=50)
    archive = tar_gz(src, tmp_path / "cifar-10-python.tar.gz")
    data = archive.read_bytes()
    archive.write_bytes(data[: int(len(data) * 0.6)])
    dest = tmp_path / "dest"
    with pytest.raises(DataError, match="corrupt or truncated") as err:
        extract_tar(archive, dest, sha256=sha256(archive))  # checksum of the truncated bytes
    assert str(archive) in str(err.value)
    assert list(dest.iterdir()) == []


def test_not_an_archive(tmp_path):
    archive = tmp_path / "x.tar.gz"
    archive.write_bytes(b"hello" * 100)
    with pytest.raises(DataError) as err:
        extract_tar(archive, tmp_path / "dest", sha256=sha256(archive))
    assert str(archive) in str(err.value)


def test_missing_archive(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        extract_tar(tmp_path / "absent.tar.gz", tmp_path / "dest", sha256="0" * 64)


@pytest.mark.parametrize("name", ["/tmp/evil", "../evil", "ok/../../evil", "a/../../b"])
def test_rejects_escaping_members(tmp_path, name):
    archive = tar_with_member(tmp_path / "evil.tar.gz", name)
    dest = tmp_path / "dest"
    with pytest.raises(DataError, match="outside the destination") as err:
        extract_tar(archive, dest, sha256=sha256(archive))
    assert str(archive) in str(err.value)
    assert list(dest.iterdir()) == []
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE])
def test_rejects_links(tmp_path, kind):
    archive = tar_with_member(tmp_path / "link.tar.gz", "data_batch_1", kind=kind)
    dest = tmp_path / "dest"
    with pytest.raises(DataError, match="link"):
        extract_tar(archive, dest, sha256=sha256(archive))
    assert list(dest.iterdir()) == []
