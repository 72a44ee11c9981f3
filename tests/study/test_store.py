"""The results store: round trips, one transaction per lens run, no partial rows after SIGKILL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from robustlens.study.store import Store, run_key

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
    assert figures[0][1].read_bytes() == b"\x89PNG third"
    assert store.sweep() == 2  # the two replaced files
    assert figures[0][1].exists()


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
