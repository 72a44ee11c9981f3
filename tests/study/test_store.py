"""The results store: round trips, one transaction per lens run, no partial rows after SIGKILL."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from robustlens.errors import ConfigError, StoreError
from robustlens.study import store as store_module
from robustlens.study.store import DB_NAME, LensOutcome, LensRun, Store, run_key, store_error

ROWS = 400


def frame(n: int = ROWS, model: str = "m") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": model,
            "layer": [f"block{i % 3}" for i in range(n)],
            "setting": "",
            "metric": "x",
            "value": np.arange(n, dtype=float),
            "ci_low": np.where(np.arange(n) % 5 == 0, np.nan, 1.0),
        }
    )


def write(store: Store, key: str, n: int = ROWS) -> int:
    return store.write_run(
        key=key,
        lens="demo",
        scope_model="m",
        params={"a": 1},
        model_digests={"m": "d"},
        data_fingerprint="f",
        versions={},
        notes=["hello"],
        started=0.0,
        seconds=1.5,
        tables={"demo": frame(n)},
        arrays={"per_image": np.arange(n, dtype=np.float64), "mask": np.ones((3, 4), bool)},
    )


def test_round_trip_of_tables_arrays_and_notes(tmp_path):
    store = Store(tmp_path)
    write(store, "k1")
    run = store.find_run("k1")
    assert run is not None and run.notes == ["hello"] and run.params == {"a": 1}
    table = store.table(run, "demo")
    expected = frame()
    assert list(table["value"]) == list(expected["value"])
    assert table["ci_low"].isna().sum() == expected["ci_low"].isna().sum()
    assert np.array_equal(store.array(run, "per_image"), np.arange(ROWS, dtype=np.float64))
    assert store.array(run, "mask").dtype == bool
    assert store.find_run("other") is None


def test_rewriting_a_key_replaces_the_run(tmp_path):
    store = Store(tmp_path)
    write(store, "k1", n=10)
    write(store, "k1", n=20)
    assert len(store.runs("demo")) == 1
    assert len(store.table(store.find_run("k1"), "demo")) == 20


def test_a_failure_inside_the_transaction_leaves_nothing(tmp_path, monkeypatch):
    store = Store(tmp_path)
    real = store.db

    class Failing:
        def __init__(self, db):
            self.db = db

        def execute(self, *args):
            return self.db.execute(*args)

        def executemany(self, sql, rows):
            rows = list(rows)
            self.db.executemany(sql, rows[: len(rows) // 2])  # half the rows, then a crash
            raise RuntimeError("disk on fire")

    monkeypatch.setattr(store, "db", Failing(real))
    with pytest.raises(RuntimeError):
        write(store, "k1")
    monkeypatch.setattr(store, "db", real)
    assert store.find_run("k1") is None
    assert real.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 0
    assert store.sweep() == 2  # the two array files written before the transaction


def test_run_keys_change_with_anything_the_results_depend_on():
    base = run_key("activations", 1, {"t": 0.95}, {"a": "1", "b": "2"}, "fp")
    assert base == run_key("activations", 1, {"t": 0.95}, {"b": "2", "a": "1"}, "fp")
    assert base != run_key("activations", 2, {"t": 0.95}, {"a": "1", "b": "2"}, "fp")
    assert base != run_key("activations", 1, {"t": 0.9}, {"a": "1", "b": "2"}, "fp")
    assert base != run_key("activations", 1, {"t": 0.95}, {"a": "1", "b": "3"}, "fp")
    assert base != run_key("activations", 1, {"t": 0.95}, {"a": "1", "b": "2"}, "fp2")


WRITER = textwrap.dedent(
    f"""
    import sys
    sys.path.insert(0, {str(os.getcwd())!r})
    from tests.study.test_store import write
    from robustlens.study.store import Store
    store = Store(sys.argv[1])
    i = 0
    while True:
        write(store, f"key-{{i}}")
        i += 1
    """
)


@pytest.mark.slow
@pytest.mark.timing
@pytest.mark.parametrize("delay", [0.0, 0.013, 0.05, 0.11])
def test_sigkill_at_any_moment_leaves_only_whole_runs(tmp_path, delay):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "db")])
    db_file = tmp_path / "db" / "results.sqlite"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until the writer is in its loop
        if db_file.exists():
            with sqlite3.connect(db_file, timeout=5) as probe:
                try:
                    if probe.execute("SELECT COUNT(*) FROM lens_runs").fetchone()[0] >= 2:
                        break
                except sqlite3.OperationalError:
                    pass
        time.sleep(0.01)
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = Store(tmp_path / "db")
    runs = store.runs()
    assert len(runs) >= 2
    for run in runs:
        assert len(store.table(run, "demo")) == ROWS
        assert store.array(run, "per_image").shape == (ROWS,)  # file exists, hash verified
    orphans = store.sweep()
    assert orphans <= 2  # at most the arrays of the run that was being written
    db = sqlite3.connect(tmp_path / "db" / "results.sqlite")
    (count,) = db.execute(
        "SELECT COUNT(*) FROM results WHERE run_id NOT IN (SELECT id FROM lens_runs)"
    ).fetchone()
    assert count == 0


def test_figures_are_files_referenced_from_the_database(tmp_path):
    store = Store(tmp_path)
    store.put_figures("color", [("a", b"\x89PNG first"), ("b", b"\x89PNG second")])
    store.put_figures("color", [("a", b"\x89PNG third")])
    figures = store.figures("color")
    assert [title for title, _ in figures] == ["a"]
    assert figures[0][1].read_bytes() == b"\x89PNG third" and figures[0][1].suffix == ".png"
    assert store.sweep() == 2  # the two replaced files
    assert figures[0][1].exists()


def test_figures_are_named_by_their_format(tmp_path):
    store = Store(tmp_path)
    svg, note = b'<?xml version="1.0"?>\n<svg width="1pt"></svg>', b"robustlens figure note\nflat"
    store.put_figures("color", [("a", svg), ("b", note), ("c", b"\x89PNG")])
    assert [path.suffix for _, path in store.figures("color")] == [".svg", ".txt", ".png"]


def test_figures_are_reused_only_for_the_same_source_and_intact_files(tmp_path):
    store = Store(tmp_path)
    store.put_figures("color", [("a", b"\x89PNG one"), ("b", b"\x89PNG two")], "key-1")
    assert store.cached_figures("color", "key-1") == [("a", b"\x89PNG one"), ("b", b"\x89PNG two")]
    assert store.cached_figures("color", "key-2") is None
    assert store.cached_figures("color", "") is None
    assert store.cached_figures("latent", "key-1") is None
    path = store.figures("color")[0][1]
    path.write_bytes(b"\x89PNG tampered")
    assert store.cached_figures("color", "key-1") is None


# --------------------------------------------------------------- one clear error per failure

DB = Path("/data/study/results.sqlite")
LOCKED_FIX = (
    "Close the program that has it open (an sqlite3 shell, a database browser) and try again "
    "(a study run resumes where it stopped)"
)
CORRUPT_FIX = (
    "Move it out of the way (e.g. rename it to results.sqlite.broken) and run the study again "
    "into this folder: trained models are reused, lens results are recomputed"
)
FULL_FIX = (
    "Free some space, or choose another --out folder, and run the study again: it resumes "
    "where it stopped"
)
READ_ONLY_FIX = "Make the folder writable, or run the study into another --out folder"
FAILED_FIX = (
    "Check the disk and the folder's permissions, and run the study again: it resumes where "
    "it stopped"
)


def sqlite_error(code: int | None, text: str = "boom") -> sqlite3.Error:
    err = sqlite3.OperationalError(text)
    if code is not None:
        err.sqlite_errorcode = code
    return err


def locked(detail: str) -> str:
    return f"results database {DB} is locked by another program (waited 30 s: {detail})"


def read_only(detail: str) -> str:
    return (
        f"cannot write study folder /data/study ({detail}): it or its results database is read-only"
    )


# (error, message, fix); SQLite codes: https://sqlite.org/rescode.html
STORE_ERRORS = [
    (sqlite_error(5, "database is locked"), locked("database is locked"), LOCKED_FIX),
    (sqlite_error(6), locked("boom"), LOCKED_FIX),
    (sqlite_error(5 | 2 << 8), locked("boom"), LOCKED_FIX),  # SQLITE_BUSY_SNAPSHOT
    (sqlite_error(11, "malformed"), f"results database {DB} is corrupt (malformed)", CORRUPT_FIX),
    (sqlite_error(26), f"results database {DB} is corrupt (boom)", CORRUPT_FIX),
    (sqlite_error(11 | 1 << 8), f"results database {DB} is corrupt (boom)", CORRUPT_FIX),
    (
        sqlite_error(13, "database or disk is full"),
        "no space left on the device of study folder /data/study (database or disk is full)",
        FULL_FIX,
    ),
    (sqlite_error(8), read_only("boom"), READ_ONLY_FIX),
    (sqlite_error(8 | 3 << 8), read_only("boom"), READ_ONLY_FIX),  # SQLITE_READONLY_ROLLBACK
    (sqlite_error(3), read_only("boom"), READ_ONLY_FIX),
    (sqlite_error(14), read_only("boom"), READ_ONLY_FIX),
    (sqlite_error(10), f"results database {DB} failed: boom", FAILED_FIX),
    (sqlite_error(1), f"results database {DB} failed: boom", FAILED_FIX),
    (sqlite_error(None), f"results database {DB} failed: boom", FAILED_FIX),
    (
        OSError(errno.ENOSPC, "No space left on device", "/data/study/artifacts/x.npy"),
        "no space left on the device of study folder /data/study (No space left on device: "
        "/data/study/artifacts/x.npy)",
        FULL_FIX,
    ),
    (
        OSError(errno.EDQUOT, "Disk quota exceeded"),
        "no space left on the device of study folder /data/study (Disk quota exceeded)",
        FULL_FIX,
    ),
    (OSError(errno.EACCES, "Permission denied"), read_only("Permission denied"), READ_ONLY_FIX),
    (
        OSError(errno.EPERM, "Operation not permitted", "f"),
        read_only("Operation not permitted: f"),
        READ_ONLY_FIX,
    ),
    (
        OSError(errno.EROFS, "Read-only file system"),
        read_only("Read-only file system"),
        READ_ONLY_FIX,
    ),
    (
        OSError(errno.EIO, "Input/output error"),
        f"results database {DB} failed: Input/output error",
        FAILED_FIX,
    ),
    (OSError("no errno"), f"results database {DB} failed: no errno", FAILED_FIX),
]


@pytest.mark.parametrize(("error", "message", "fix"), STORE_ERRORS)
def test_every_database_or_disk_failure_is_one_store_error(error, message, fix):
    got = store_error(error, DB)
    assert isinstance(got, StoreError)
    assert got.problem == message
    assert got.fix == fix
    assert got.exit_code == 1


def test_method_failures_become_store_errors(tmp_path):
    store = Store(tmp_path)
    store.db.close()  # any later query fails inside SQLite
    with pytest.raises(StoreError) as err:
        store.get_meta("seed")
    assert err.value.problem == (
        f"results database {tmp_path / DB_NAME} failed: Cannot operate on a closed database."
    )
    assert isinstance(err.value.__cause__, sqlite3.ProgrammingError)


# ------------------------------------------------------------------ opening and schema

SCHEMA_FIX = "run the study into a new --out folder"


def test_a_store_reopened_for_writing_keeps_its_runs(tmp_path):
    store = Store(tmp_path)
    write(store, "k1", n=5)
    store.close()
    again = Store(tmp_path)  # the artifacts folder exists now
    assert again.get_meta("schema_version") == "1"
    assert [r.key for r in again.runs()] == ["k1"]
    assert again.read_only is False and again.path == tmp_path / DB_NAME
    again.close()
    reader = Store(tmp_path, read_only=True)
    assert reader.read_only is True and [r.key for r in reader.runs("demo")] == ["k1"]
    assert reader.runs("other") == []


@pytest.mark.parametrize("version", ["2", "0", "abc", "1.0", "", " 1"])
def test_another_schema_version_is_refused(tmp_path, version):
    Store(tmp_path).set_meta("schema_version", version)
    for read_only in (False, True):
        with pytest.raises(ConfigError) as err:
            Store(tmp_path, read_only=read_only)
        assert err.value.problem == (
            f"{tmp_path / DB_NAME} was written by another robustlens version (schema {version})"
        )
        assert err.value.fix == SCHEMA_FIX


def test_a_reader_of_a_store_without_schema_version_refuses_it(tmp_path):
    store = Store(tmp_path)
    store.db.execute("DELETE FROM meta")
    store.close()
    with pytest.raises(ConfigError) as err:
        Store(tmp_path, read_only=True)
    assert err.value.problem == (
        f"{tmp_path / DB_NAME} was written by another robustlens version (schema None)"
    )
    assert err.value.fix == SCHEMA_FIX
    # a writer stamps it again
    assert Store(tmp_path).get_meta("schema_version") == "1"


def test_a_database_without_a_meta_table_is_not_a_store(tmp_path):
    db = sqlite3.connect(tmp_path / DB_NAME)
    db.execute("CREATE TABLE other (x)")
    db.commit()
    db.close()
    with pytest.raises(StoreError) as err:
        Store(tmp_path, read_only=True)
    assert (
        err.value.problem
        == f"{tmp_path / DB_NAME} holds no robustlens results (it has no meta table)"
    )
    assert err.value.fix == (
        "Give the folder a study was run into (robustlens study run --out DIR)"
    )


def test_open_existing_needs_a_database(tmp_path):
    with pytest.raises(ConfigError) as err:
        Store.open_existing(tmp_path)
    assert err.value.problem == f"{tmp_path} holds no study results (results.sqlite is missing)"
    assert err.value.fix == "run `robustlens study run FILE --out DIR` first"
    Store(tmp_path).close()
    assert Store.open_existing(tmp_path).read_only is True
    assert Store.open_existing(tmp_path, read_only=False).read_only is False


WRITERS = [
    ("set_meta", ("seed", "1")),
    ("put_model", ("m", "d", "{}", "", "train", 1)),
    ("delete_runs", ("demo",)),
    ("clear_outcome", ("k",)),
    ("sweep", ()),
    ("put_figures", ("demo", [])),
]


@pytest.mark.parametrize(("method", "args"), WRITERS)
def test_a_read_only_store_refuses_every_change(tmp_path, method, args):
    Store(tmp_path).close()
    reader = Store(tmp_path, read_only=True)
    with pytest.raises(StoreError) as err:
        getattr(reader, method)(*args)
    assert err.value.problem == f"{tmp_path / DB_NAME} was opened read-only and cannot be changed"
    assert err.value.fix == "open it with Store(folder) while holding the study folder's lock"


# ------------------------------------------------------------------------ what is stored


def test_result_rows_are_stored_tidy_with_only_the_extra_columns_as_json(tmp_path):
    store = Store(tmp_path)
    table = pd.DataFrame(
        {
            "model": ["a", "b", "c"],
            "layer": [1, "conv", "fc"],
            "setting": ["eps=0", "", "x"],
            "metric": ["acc", "acc", "loss"],
            "value": [0.5, np.nan, 3],
            "n": np.array([7, 8, 9], dtype=np.int64),
            "low": [np.nan, 0.25, 1.0],
        }
    )
    plain = pd.DataFrame(
        {"model": ["a"], "layer": ["l"], "setting": [""], "metric": ["m"], "value": [None]}
    )
    run_id = store.write_run(
        key="k", lens="demo", scope_model=None, params={"b": 2, "a": [1, 2]},
        model_digests={"z": "1", "a": "2"}, data_fingerprint="fp",
        versions={"torch": "2", "numpy": "1"},
        notes=["n1", "n2"], started=12.5, seconds=3.25, tables={"t": table, "p": plain},
        arrays={},
    )  # fmt: skip
    rows = store.db.execute("SELECT * FROM results WHERE tbl = 't' ORDER BY row").fetchall()
    assert rows == [
        (run_id, "t", 0, "a", "1", "eps=0", "acc", 0.5, '{"n": 7, "low": null}'),
        (run_id, "t", 1, "b", "conv", "", "acc", None, '{"n": 8, "low": 0.25}'),
        (run_id, "t", 2, "c", "fc", "x", "loss", 3.0, '{"n": 9, "low": 1.0}'),
    ]
    assert store.db.execute("SELECT * FROM results WHERE tbl = 'p'").fetchall() == [
        (run_id, "p", 0, "a", "l", "", "m", None, None)
    ]
    run = store.find_run("k")
    assert store.table_names(run) == ["p", "t"]
    back = store.table(run, "t")
    assert list(back.columns) == ["model", "layer", "setting", "metric", "value", "n", "low"]
    assert back["layer"].tolist() == ["1", "conv", "fc"]
    np.testing.assert_array_equal(back["value"], [0.5, np.nan, 3.0])
    assert back["n"].tolist() == [7, 8, 9]
    np.testing.assert_array_equal(back["low"].astype(float), [np.nan, 0.25, 1.0])
    assert np.isnan(store.table(run, "p")["value"].iloc[0])
    empty = store.table(run, "none")
    assert empty.empty and list(empty.columns) == ["model", "layer", "setting", "metric", "value"]
    stored = store.db.execute(
        "SELECT key, lens, scope_model, params, model_digests, data_fingerprint, versions, "
        "notes, started, seconds, status FROM lens_runs"
    ).fetchall()
    assert stored == [
        (
            "k", "demo", None, '{"a": [1, 2], "b": 2}', '{"a": "2", "z": "1"}', "fp",
            '{"numpy": "1", "torch": "2"}', '["n1", "n2"]', 12.5, 3.25, "done",
        )
    ]  # fmt: skip
    assert run == LensRun(
        id=run_id, key="k", lens="demo", scope_model=None, params={"a": [1, 2], "b": 2},
        model_digests={"a": "2", "z": "1"}, data_fingerprint="fp", notes=["n1", "n2"],
        seconds=3.25,
    )  # fmt: skip


def test_run_key_is_the_sha256_of_what_the_results_depend_on():
    """sha256 of the sorted JSON of lens, version, parameters (non-JSON values as text), model
    digests and data fingerprint: a key must not change between versions of robustlens, or
    every stored result would be recomputed."""
    blob = (
        '{"data": "fp", "lens": "activations", "models": {"a": "1", "b": "2"}, '
        '"params": {"p": "a/b", "t": 0.95}, "version": 3}'
    )
    expected = hashlib.sha256(blob.encode()).hexdigest()
    params = {"t": 0.95, "p": Path("a/b")}
    assert run_key("activations", 3, params, {"b": "2", "a": "1"}, "fp") == expected


def test_models_are_listed_in_the_order_they_were_first_put(tmp_path):
    store = Store(tmp_path)
    store.put_model("b", "d1", '{"arch": "lenet"}', "ck/b.pt", "train", 10)
    store.put_model("a", "d2", "{}", "ck/a.pt", "zoo", 20)
    store.put_model("b", "d3", '{"arch": "vgg"}', "ck/b2.pt", "train", 30)  # replaces b
    assert store.models() == [
        {"name": "a", "digest": "d2", "card": {}, "checkpoint": "ck/a.pt", "source": "zoo",
         "parameters": 20},
        {"name": "b", "digest": "d3", "card": {"arch": "vgg"}, "checkpoint": "ck/b2.pt",
         "source": "train", "parameters": 30},
    ]  # fmt: skip


def outcome(store: Store, key: str, status: str, lens: str = "demo", **kw) -> None:
    store.record_outcome(
        key=key, lens=lens, scope_model=kw.get("scope"), status=status,
        error=kw.get("error", "ConfigError"), message=kw.get("message", "bad"),
        fix=kw.get("fix", ""),
    )  # fmt: skip


def test_outcomes_are_recorded_listed_replaced_and_cleared(tmp_path, monkeypatch):
    store = Store(tmp_path)
    clock = iter(float(t) for t in range(1, 100))
    monkeypatch.setattr(time, "time", lambda: next(clock))
    outcome(store, "k2", "failed", scope="m", message="diverged", fix="lower lr")
    outcome(store, "k1", "not-applicable", lens="other", error="", message="no conv layers")
    outcome(store, "k3", "failed")
    got = store.outcome("k2")
    assert got == LensOutcome("k2", "demo", "m", "failed", "ConfigError", "diverged", "lower lr")
    assert got.failed and not store.outcome("k1").failed
    assert store.outcome("missing") is None
    assert [o.key for o in store.outcomes()] == ["k2", "k1", "k3"]  # by time recorded
    assert [o.key for o in store.outcomes("demo")] == ["k2", "k3"]
    store.clear_outcome("k2")
    assert store.outcome("k2") is None
    outcome(store, "k3", "not-applicable")  # replaces
    assert store.outcome("k3").status == "not-applicable"
    with pytest.raises(ValueError) as err:
        outcome(store, "k4", "crashed")
    assert str(err.value) == (
        "outcome status must be one of ('failed', 'not-applicable'), got 'crashed'"
    )
    # a finished run of the same key replaces its outcome; deleting a lens removes both
    write(store, "k3", n=3)
    assert store.outcome("k3") is None
    write(store, "k5", n=3)
    outcome(store, "k6", "failed")
    assert store.delete_runs("demo") == 2
    assert store.runs() == [] and store.outcomes("demo") == []
    assert [o.key for o in store.outcomes()] == ["k1"]


def test_a_store_older_than_outcomes_reads_as_none_and_gains_the_table_when_written(tmp_path):
    store = Store(tmp_path)
    outcome(store, "k", "failed")
    store.db.execute("DROP TABLE lens_outcomes")
    store.close()
    reader = Store(tmp_path, read_only=True)
    assert reader.outcome("k") is None and reader.outcomes() == [] and reader.outcomes("x") == []
    reader.close()
    writer = Store(tmp_path)
    outcome(writer, "k", "failed")
    assert writer.outcome("k").status == "failed"


def test_arrays_are_listed_and_missing_ones_are_one_clear_error(tmp_path):
    store = Store(tmp_path)
    write(store, "k", n=4)
    run = store.find_run("k")
    assert store.array_names(run) == ["mask", "per_image"]
    with pytest.raises(KeyError) as err:
        store.array(run, "nothing")
    assert err.value.args == ("lens run demo has no array 'nothing'",)
    (path,) = [p for p in (tmp_path / "artifacts").rglob("*.npy") if np.load(p).shape == (4,)]
    path.unlink()
    with pytest.raises(ConfigError) as err:
        store.array(run, "per_image")
    assert err.value.problem == f"artifact {path} is missing"
    assert err.value.fix == "re-run with --force demo"
    path.write_bytes(b"not the array")
    with pytest.raises(ConfigError) as err:
        store.array(run, "per_image")
    assert err.value.problem == f"artifact {path} is corrupt"
    assert err.value.fix == "re-run with --force demo"


def test_array_files_are_content_addressed_and_written_once(tmp_path, monkeypatch):
    store = Store(tmp_path)
    values = np.arange(5.0)
    rel, sha = store._write_array(values)
    data = (tmp_path / rel).read_bytes()
    assert sha == hashlib.sha256(data).hexdigest()
    assert rel == f"artifacts/{sha[:2]}/{sha}.npy"
    np.testing.assert_array_equal(np.load(tmp_path / rel), values)

    def no_write(*args):
        raise AssertionError("an existing file was written again")

    monkeypatch.setattr(os, "replace", no_write)
    assert store._write_array(values) == (rel, sha)


def test_a_failed_artifact_write_leaves_no_partial_file(tmp_path, monkeypatch):
    store = Store(tmp_path)

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(StoreError) as err:
        write(store, "k", n=3)
    assert err.value.problem.startswith("no space left on the device of study folder")
    assert [p for p in (tmp_path / "artifacts").rglob("*") if p.is_file()] == []
    monkeypatch.undo()
    assert store.find_run("k") is None


def test_figures_of_a_lens_and_a_missing_figure_file(tmp_path):
    store = Store(tmp_path)
    rels = store.put_figures("demo", [("one", b"1"), ("two", b"2")], "src")
    assert (
        rels
        == [  # neither PNG nor SVG: kept as text (what a figure's note is)
            f"artifacts/{hashlib.sha256(b).hexdigest()[:2]}/{hashlib.sha256(b).hexdigest()}.txt"
            for b in (b"1", b"2")
        ]
    )
    assert store.figures("demo") == [("one", tmp_path / rels[0]), ("two", tmp_path / rels[1])]
    assert store.figures("other") == []
    assert store.get_meta("figures:demo") == "src"
    (tmp_path / rels[1]).unlink()
    assert store.cached_figures("demo", "src") is None
    assert store.sweep() == 0


# ------------------------------------------------------------------- durability and readers


def test_a_writer_uses_a_write_ahead_log_full_sync_and_foreign_keys(tmp_path):
    store = Store(tmp_path)
    assert store.db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert store.db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    assert store.db.execute("PRAGMA foreign_keys").fetchone() == (1,)
    write(store, "k1", n=5)
    write(store, "k1", n=3)  # replaces the run: its rows and artifacts go with it
    assert store.db.execute("SELECT COUNT(*) FROM results").fetchone() == (3,)
    assert store.db.execute("SELECT COUNT(*) FROM artifacts").fetchone() == (2,)
    write(store, "k2", n=4)
    assert store.delete_runs("demo") == 2
    assert store.db.execute("SELECT COUNT(*) FROM results").fetchone() == (0,)
    assert store.db.execute("SELECT COUNT(*) FROM artifacts").fetchone() == (0,)
    assert store.sweep() == 4  # the four array files nothing references any more


def test_a_reader_cannot_write_even_through_sql(tmp_path):
    write(Store(tmp_path), "k", n=2)
    reader = Store(tmp_path, read_only=True)
    assert reader.db.execute("PRAGMA query_only").fetchone() == (1,)
    with pytest.raises(sqlite3.OperationalError):
        reader.db.execute("DELETE FROM meta")
    assert reader.get_meta("schema_version") == "1"
    assert reader.find_run("k").key == "k"


class _Refusing:
    """A connection whose first query fails as SQLite does for a WAL database whose ``-shm``
    file cannot be created."""

    def __init__(self, code: int) -> None:
        self.code, self.closed = code, False

    def execute(self, sql: str):
        err = sqlite3.OperationalError("attempt to write a readonly database")
        err.sqlite_errorcode = self.code
        raise err

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize(
    ("code", "writable", "wal", "immutable"),
    [
        (8, False, False, True),  # SQLITE_READONLY in an unwritable folder: immutable
        (14, False, False, True),  # SQLITE_CANTOPEN likewise
        (8 | 5 << 8, False, False, True),  # an extended READONLY code
        (8, True, False, False),  # the folder is writable: a real error
        (8, False, True, False),  # a write-ahead log exists: someone may be writing
        (5, False, False, False),  # SQLITE_BUSY: a real error
    ],
)
def test_a_reader_in_an_unwritable_folder_opens_the_database_as_immutable(
    tmp_path, monkeypatch, code, writable, wal, immutable
):
    writer = Store(tmp_path)
    write(writer, "k", n=2)
    writer.close()  # the log is checkpointed into the database
    path = tmp_path / DB_NAME
    if not wal:
        for suffix in ("-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
    else:
        path.with_name(path.name + "-wal").write_bytes(b"")
    real_connect = sqlite3.connect
    uris, refused = [], []

    def connect(database, *args, **kwargs):
        uris.append(database)
        if len(uris) == 1:
            refused.append(_Refusing(code))
            return refused[0]
        return real_connect(database, *args, **kwargs)

    monkeypatch.setattr(store_module.sqlite3, "connect", connect)
    monkeypatch.setattr(store_module.os, "access", lambda p, mode: writable)
    base = f"{path.resolve().as_uri()}?mode=ro"
    if immutable:
        reader = Store(tmp_path, read_only=True)
        assert uris == [base, f"{base}&immutable=1"]
        assert refused[0].closed
        assert reader.find_run("k").key == "k"
        assert reader.db.execute("PRAGMA query_only").fetchone() == (1,)
        reader.close()
    else:
        with pytest.raises(StoreError) as err:
            Store(tmp_path, read_only=True)
        assert uris == [base] and refused[0].closed
        assert "attempt to write a readonly database" in err.value.problem


def test_runs_are_listed_in_the_order_they_were_written_and_arrays_recorded(tmp_path):
    store = Store(tmp_path)
    second = write(store, "zz", n=2)
    first = write(store, "aa", n=3)
    assert [r.key for r in store.runs()] == ["zz", "aa"]
    assert [r.id for r in store.runs("demo")] == [second, first]
    rows = store.db.execute(
        "SELECT run_id, name, kind, path, sha256 FROM artifacts WHERE run_id = ? ORDER BY name",
        (first,),
    ).fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (first, "mask", "array"),
        (first, "per_image", "array"),
    ]
    for _, _, _, path, sha in rows:
        assert hashlib.sha256((tmp_path / path).read_bytes()).hexdigest() == sha


def test_an_interrupt_inside_a_transaction_rolls_it_back(tmp_path):
    store = Store(tmp_path)
    with pytest.raises(KeyboardInterrupt), store.transaction() as db:
        db.execute("INSERT INTO meta VALUES ('half', 'done')")
        raise KeyboardInterrupt
    assert not store.db.in_transaction
    assert store.get_meta("half") is None
    with store.transaction() as db:  # the connection is usable again
        db.execute("INSERT INTO meta VALUES ('whole', 'done')")
    assert store.get_meta("whole") == "done"


def test_object_arrays_are_refused_so_no_artifact_needs_pickle(tmp_path):
    store = Store(tmp_path)
    with pytest.raises(ValueError, match="allow_pickle=False"):
        store._write_array(np.array([{"a": 1}], dtype=object))
    assert [p for p in (tmp_path / "artifacts").rglob("*") if p.is_file()] == []


def test_a_closed_store_is_one_clear_error(tmp_path):
    store = Store(tmp_path)
    store.close()
    with pytest.raises(StoreError, match="Cannot operate on a closed database"):
        store.runs()


def npy_sha(values: np.ndarray) -> str:
    buffer = io.BytesIO()
    np.save(buffer, values, allow_pickle=False)
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def test_arrays_whose_hashes_share_a_folder_are_both_stored(tmp_path):
    """Files go to artifacts/<first two hex digits>/: the second array of a prefix finds its
    folder already there."""
    seen: dict[str, np.ndarray] = {}
    for i in range(300):  # 256 prefixes: a shared one is certain by then
        values = np.array([float(i)])
        prefix = npy_sha(values)[:2]
        if prefix in seen:
            first, second = seen[prefix], values
            break
        seen[prefix] = values
    store = Store(tmp_path)
    rel_a, _ = store._write_array(first)
    rel_b, _ = store._write_array(second)
    assert rel_a != rel_b and rel_a.split("/")[1] == rel_b.split("/")[1] == prefix
    np.testing.assert_array_equal(np.load(tmp_path / rel_a), first)
    np.testing.assert_array_equal(np.load(tmp_path / rel_b), second)


def test_a_writer_creates_the_study_folder_with_its_missing_parents(tmp_path):
    """`Store` of a folder two levels below an existing one makes both levels (a study's
    --out may name a new folder inside a new folder)."""
    folder = tmp_path / "new" / "study"
    store = Store(folder)
    try:
        assert (folder / "results.sqlite").is_file()
        assert (folder / "artifacts").is_dir()
    finally:
        store.close()
