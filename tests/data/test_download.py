"""Checked downloads against a local HTTP server."""

from __future__ import annotations

import hashlib

import pytest

from robustlens.data.download import download, file_digest
from robustlens.errors import DataError


def _serve(file_server, name: str, data: bytes) -> str:
    (file_server.root / name).write_bytes(data)
    return f"{file_server.url}/{name}"


def test_right_checksum_puts_file_in_place(file_server, tmp_path):
    data = b"robustlens" * 5000
    url = _serve(file_server, "blob.bin", data)
    seen = []
    dest = tmp_path / "out" / "blob.bin"
    got = download(
        url,
        dest,
        sha256=hashlib.sha256(data).hexdigest(),
        progress=lambda done, total: seen.append((done, total)),
    )
    assert got == dest and dest.read_bytes() == data
    assert seen[-1] == (len(data), len(data))
    assert sorted(p.name for p in dest.parent.iterdir()) == ["blob.bin"]
    assert file_digest(dest) == hashlib.sha256(data).hexdigest()


def test_md5_accepted(file_server, tmp_path):
    data = b"svhn-like"
    url = _serve(file_server, "m.mat", data)
    download(url, tmp_path / "m.mat", md5=hashlib.md5(data).hexdigest())
    assert (tmp_path / "m.mat").read_bytes() == data


def test_wrong_checksum_leaves_nothing(file_server, tmp_path):
    url = _serve(file_server, "blob.bin", b"tampered")
    dest = tmp_path / "out" / "blob.bin"
    with pytest.raises(DataError, match="failed verification") as err:
        download(url, dest, sha256="0" * 64)
    assert str(dest) in str(err.value)
    assert list(dest.parent.iterdir()) == []  # neither the file nor a temporary one


def test_wrong_checksum_keeps_existing_file(file_server, tmp_path):
    url = _serve(file_server, "blob.bin", b"new")
    dest = tmp_path / "out" / "blob.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"old")
    with pytest.raises(DataError):
        download(url, dest, sha256="0" * 64)
    assert dest.read_bytes() == b"old"
    assert [p.name for p in dest.parent.iterdir()] == ["blob.bin"]


def test_unreachable_says_where_to_put_the_file(dead_url, tmp_path):
    dest = tmp_path / "cache" / "missing.bin"
    with pytest.raises(DataError, match="could not download") as err:
        download(dead_url, dest, sha256="0" * 64, timeout=5)
    message = str(err.value)
    assert dead_url in message and f"save it as {dest}" in message
    assert list(dest.parent.iterdir()) == []


def test_http_404(file_server, tmp_path):
    with pytest.raises(DataError, match="HTTP 404"):
        download(f"{file_server.url}/nope.bin", tmp_path / "out" / "nope.bin", sha256="0" * 64)
    assert list((tmp_path / "out").iterdir()) == []


def test_file_url(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"local copy")
    dest = tmp_path / "dest" / "src.bin"
    download(src.as_uri(), dest, sha256=hashlib.sha256(b"local copy").hexdigest())
    assert dest.read_bytes() == b"local copy"


def test_checksum_required(tmp_path):
    with pytest.raises(ValueError, match="checksum"):
        download("http://127.0.0.1/x", tmp_path / "x")
