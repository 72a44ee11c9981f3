"""Fixtures for the data tests: isolated search folders, relaxed counts, a local file server."""

from __future__ import annotations

import dataclasses
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from robustlens.data import sources
from robustlens.data.catalog import DATASETS

REAL_SYSTEM_DATA_DIR = sources.SYSTEM_DATA_DIR


@pytest.fixture(autouse=True)
def isolated_sources(tmp_path_factory, monkeypatch) -> SimpleNamespace:
    """Point the cache and the system folder at empty temporary folders; no proxies."""
    base = tmp_path_factory.mktemp("sources")
    monkeypatch.setenv("XDG_CACHE_HOME", str(base / "cache"))
    monkeypatch.delenv("ROBUSTLENS_DATA", raising=False)
    monkeypatch.setattr(sources, "SYSTEM_DATA_DIR", base / "system")
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    return SimpleNamespace(cache=base / "cache" / "robustlens", system=base / "system")


@pytest.fixture
def relaxed_counts(monkeypatch) -> None:
    """Let the file-based data sets have any number of images (for small fake files)."""
    for key, entry in DATASETS.items():
        if entry.counts and key != "digits":
            monkeypatch.setitem(DATASETS._items, key, dataclasses.replace(entry, counts={}))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        super().do_GET()


@pytest.fixture
def file_server(tmp_path) -> Iterator[SimpleNamespace]:
    """An HTTP server on 127.0.0.1 serving the folder ``.root``; ``.url`` is its base URL."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(
            root=root,
            url=f"http://127.0.0.1:{server.server_address[1]}",
            requests=server.requests,  # type: ignore[attr-defined]
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def dead_url() -> str:
    """A URL on 127.0.0.1 where nothing listens."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/missing.bin"


def real_fashion_mnist() -> Path | None:
    folder = REAL_SYSTEM_DATA_DIR / "fashion-mnist"
    return folder if (folder / "t10k-labels-idx1-ubyte.gz").is_file() else None
