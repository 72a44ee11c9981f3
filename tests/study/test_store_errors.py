"""The results store under trouble: read-only readers that change nothing, and one clear
StoreError, with what to do, for a corrupt or locked database, a read-only folder and a full
disk (issue 14 §2, §3)."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from robustlens.errors import StoreError
from robustlens.study import store as store_module
from robustlens.study.store import DB_NAME, Store


def write(store: Store, key: str, rows: int = 50, *, seed: int = 0) -> int:
    values = np.random.default_rng(seed).standard_normal(rows)
    return store.write_run(
        key=key,
        lens="demo",
        scope_model="m",
        params={},
        model_digests={"m": "d"},
        data_fingerprint="f",
        versions={},
        notes=[],
        started=0.0,
        seconds=1.0,
        tables={
            "demo": pd.DataFrame(
                {"model": "m", "layer": "l", "setting": "", "metric": "x", "value": values}
            )
        },
        arrays={"per_image": values},
    )


def files(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder`` with its bytes and modification time."""
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def unchanged(before: dict, after: dict) -> None:
    """Every file of ``before`` is byte-identical, with the same mtime; the only new files
    may be SQLite's empty write-ahead log and its shared-memory index of a reader."""
    assert {k: after.get(k) for k in before} == before
    for name in set(after) - set(before):
        assert name in (f"{DB_NAME}-wal", f"{DB_NAME}-shm"), name
        if name.endswith("-wal"):
            assert after[name][0] == b""


@pytest.fixture
def study_dir(tmp_path) -> Path:
    folder = tmp_path / "study"
    store = Store(folder)
    write(store, "k1")
    store.put_model("m", "d", "{}", "", "train", 10)
    store.put_figures("demo", [("a figure", b"\x89PNG a")], "source-1")
    store.close()
    (folder / "artifacts" / "ab").mkdir(exist_ok=True)
    (folder / "artifacts" / "ab" / "orphan.npy").write_bytes(b"left by a killed run")
    return folder


# ------------------------------------------------------------------------------ read-only


def test_a_read_only_store_reads_everything_and_changes_nothing(study_dir):
    before = files(study_dir)
    store = Store(study_dir, read_only=True)
    run = store.find_run("k1")
    assert run is not None and len(store.table(run, "demo")) == 50
    assert store.array(run, "per_image").shape == (50,)
    assert [m["name"] for m in store.models()] == ["m"]
    assert store.cached_figures("demo", "source-1") == [("a figure", b"\x89PNG a")]
    writes = {
        "set_meta": lambda: store.set_meta("a", "b"),
        "put_model": lambda: store.put_model("n", "e", "{}", "", "train", 1),
        "write_run": lambda: write(store, "k2", seed=1),
        "delete_runs": lambda: store.delete_runs("demo"),
        "put_figures": lambda: store.put_figures("demo", [("b", b"\x89PNG b")], "source-2"),
        "sweep": store.sweep,
    }
    for name, attempt in writes.items():
        with pytest.raises(StoreError, match="opened read-only"):
            attempt()
        assert store.find_run("k1") is not None, name
    with pytest.raises(sqlite3.OperationalError, match=r"readonly|read-only|query_only"):
        store.db.execute("INSERT INTO meta VALUES ('x', 'y')")  # SQLite itself refuses too
    store.close()
    unchanged(before, files(study_dir))  # not even the orphan was swept


def test_open_existing_is_read_only(study_dir):
    store = Store.open_existing(study_dir)
    assert store.read_only
    store.close()
    writer = Store.open_existing(study_dir, read_only=False)
    assert not writer.read_only
    writer.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_study_in_a_read_only_folder_can_be_read(study_dir):
    before = files(study_dir)
    os.chmod(study_dir, 0o555)
    try:
        store = Store(study_dir, read_only=True)
        assert store.find_run("k1") is not None
        store.close()
        with pytest.raises(StoreError, match="read-only") as err:
            Store(study_dir).set_meta("a", "b")
        assert "--out" in str(err.value)
    finally:
        os.chmod(study_dir, 0o755)
    unchanged(before, files(study_dir))


# --------------------------------------------------------------------------- clear errors


def test_a_corrupt_database_is_one_clear_error_and_is_left_as_it_is(tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / DB_NAME).write_bytes(b"not an SQLite file, perhaps a half copy " * 200)
    before = files(folder)
    for read_only in (True, False):
        with pytest.raises(StoreError) as err:
            Store(folder, read_only=read_only)
        message = str(err.value)
        assert f"results database {folder / DB_NAME} is corrupt" in message
        assert f"rename it to {DB_NAME}.broken" in message and "models are reused" in message
    assert files(folder) == before


def test_a_database_locked_by_another_program_is_one_clear_error(study_dir, monkeypatch):
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT", 0.05)
    other = sqlite3.connect(study_dir / DB_NAME, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO meta VALUES ('held', 'by a sqlite3 shell')")
    try:
        store = Store(study_dir)
        with pytest.raises(StoreError) as err:
            write(store, "k2", seed=2)
        message = str(err.value)
        assert f"results database {study_dir / DB_NAME} is locked by another program" in message
        assert "database is locked" in message and "Close the program" in message
        store.close()
    finally:
        other.execute("ROLLBACK")
        other.close()
    store = Store(study_dir, read_only=True)
    assert store.find_run("k2") is None and store.find_run("k1") is not None
    store.close()


def test_a_database_locked_against_readers_is_one_clear_error(study_dir, monkeypatch):
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT", 0.05)
    other = sqlite3.connect(study_dir / DB_NAME, isolation_level=None)
    other.execute("PRAGMA locking_mode=EXCLUSIVE")  # as some tools open a database
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO meta VALUES ('held', 'exclusively')")
    other.execute("COMMIT")
    try:
        with pytest.raises(StoreError, match="is locked by another program") as err:
            Store(study_dir, read_only=True)
        assert "try again" in str(err.value)
    finally:
        other.close()
    Store(study_dir, read_only=True).close()  # readable again once the program is gone


def test_a_read_only_database_is_one_clear_error(study_dir, monkeypatch):
    # What SQLite answers when the file or its folder cannot be written (as root cannot be
    # shown with chmod): open the writer's connection read-only.
    real_connect = sqlite3.connect

    def connect(path, *args, **kwargs):
        if str(path).endswith(DB_NAME):
            return real_connect(f"{Path(path).as_uri()}?mode=ro", *args, uri=True, **kwargs)
        return real_connect(path, *args, **kwargs)

    monkeypatch.setattr(store_module.sqlite3, "connect", connect)
    with pytest.raises(StoreError) as err:
        Store(study_dir).set_meta("a", "b")
    message = str(err.value)
    assert f"cannot write study folder {study_dir}" in message and "read-only" in message
    assert "another --out folder" in message


def test_an_unwritable_folder_is_one_clear_error(tmp_path, monkeypatch):
    def refuse(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(StoreError, match="cannot write study folder") as err:
        Store(tmp_path / "study")
    assert "Permission denied" in str(err.value)


def test_a_full_disk_while_writing_an_artifact_is_one_clear_error(study_dir, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    store = Store(study_dir)
    monkeypatch.setattr(store_module.os, "fsync", full)
    with pytest.raises(StoreError) as err:
        write(store, "k2", seed=3)
    monkeypatch.undo()
    message = str(err.value)
    assert f"no space left on the device of study folder {study_dir}" in message
    assert "resumes where it stopped" in message
    assert store.find_run("k2") is None
    assert not [p for p in study_dir.rglob("*.tmp")]  # no half-written file left behind
    store.close()


def test_a_full_disk_inside_sqlite_is_one_clear_error(study_dir):
    store = Store(study_dir)
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count = {pages}")  # the database may not grow
    with pytest.raises(StoreError, match="no space left on the device") as err:
        write(store, "k2", rows=5000, seed=4)
    assert "database or disk is full" in str(err.value)
    assert store.find_run("k2") is None  # the transaction was rolled back whole
    store.close()


def test_not_a_robustlens_database(tmp_path):
    folder = tmp_path / "other"
    folder.mkdir()
    sqlite3.connect(folder / DB_NAME).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(StoreError, match="holds no robustlens results"):
        Store(folder, read_only=True)


# ----------------------------------------------------------------------------- commands


def robustlens(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "robustlens", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        timeout=300,
    )


def test_commands_on_a_corrupt_database_print_one_line(tmp_path):
    from robustlens.runner import Study

    folder = tmp_path / "study"
    folder.mkdir()
    (folder / DB_NAME).write_bytes(b"garbage " * 1000)
    before = files(folder)
    with pytest.raises(StoreError, match="is corrupt"):
        Study.open(folder)  # what `study status` and `report` open first
    result = robustlens("study", "status", str(folder))
    assert result.returncode == 1, result.stderr  # StoreError: the run's folder, not bad input
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "is corrupt" in lines[0] and "broken" in lines[0]
    assert files(folder) == before
