"""The results store: one SQLite file per study directory.

Tables: ``meta`` (study file, seed, versions), ``models`` (name, digest, card, checkpoint),
``lens_runs`` (lens, parameters, model digests, data fingerprint, versions, timing),
``lens_outcomes`` (lens units that failed or do not apply to their model, keyed like runs; a
table older stores gain when opened, so the schema version is unchanged), ``results``
(tidy rows: table × model × layer × setting × metric → value) and ``artifacts`` (per-image
arrays and figures kept as files beside the database, referenced by path and sha256).

A lens run is written in one transaction, after its artifact files are complete on disk, so a
study killed at any moment (even by SIGKILL) leaves either the whole run or none of it; files
an interrupted run left behind are unreferenced and removed by :meth:`Store.sweep`.

Readers (``study status``, ``report``, ``Study.table``) open the database read-only
(``Store(..., read_only=True)``, SQLite's ``mode=ro``): they never change it, nor any file of
the store. Only a writer holding the study folder's lock (:mod:`robustlens.study.lock`) opens it
for writing. Every failure of the database or of the disk under it (a corrupt or locked file,
a read-only folder, a full disk) is raised as one :class:`StoreError` saying what to do.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import io
import json
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np
import pandas as pd

from robustlens.errors import ConfigError, StoreError

DB_NAME = "results.sqlite"
ARTIFACTS = "artifacts"
SCHEMA_VERSION = 1
BUSY_TIMEOUT = 30.0
"""Seconds to wait for another connection's write lock before "database is locked"."""

P = ParamSpec("P")
R = TypeVar("R")

# SQLite primary result codes (https://sqlite.org/rescode.html)
_SQLITE_PERM, _SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 3, 5, 6, 8
_SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 10, 11, 13, 14, 26
_RESUME = "run the study again: it resumes where it stopped"


def store_error(err: sqlite3.Error | OSError, path: Path) -> StoreError:
    """One clear error, with what to do, for a failure of the database at ``path`` or of the
    disk under it."""
    folder = path.parent
    if isinstance(err, sqlite3.Error):
        code = (getattr(err, "sqlite_errorcode", None) or 0) & 0xFF
        detail = str(err)
        no_space = code == _SQLITE_FULL
        read_only = code in (_SQLITE_READONLY, _SQLITE_PERM, _SQLITE_CANTOPEN)
    else:
        code = None
        detail = err.strerror or str(err)
        if err.filename:
            detail = f"{detail}: {err.filename}"
        no_space = err.errno in (errno.ENOSPC, errno.EDQUOT)
        read_only = err.errno in (errno.EACCES, errno.EPERM, errno.EROFS)
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return StoreError(
            f"results database {path} is locked by another program (waited {BUSY_TIMEOUT:g} s: "
            f"{detail})",
            fix="Close the program that has it open (an sqlite3 shell, a database browser) and "
            "try again (a study run resumes where it stopped)",
        )
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return StoreError(
            f"results database {path} is corrupt ({detail})",
            fix=f"Move it out of the way (e.g. rename it to {DB_NAME}.broken) and run the study "
            "again into this folder: trained models are reused, lens results are recomputed",
        )
    if no_space:
        return StoreError(
            f"no space left on the device of study folder {folder} ({detail})",
            fix=f"Free some space, or choose another --out folder, and {_RESUME}",
        )
    if read_only:
        return StoreError(
            f"cannot write study folder {folder} ({detail}): it or its results database is "
            "read-only",
            fix="Make the folder writable, or run the study into another --out folder",
        )
    return StoreError(
        f"results database {path} failed: {detail}",
        fix=f"Check the disk and the folder's permissions, and {_RESUME}",
    )


def _guarded(method: Callable[P, R]) -> Callable[P, R]:
    """Turn database and disk failures inside a :class:`Store` method into a StoreError."""

    @functools.wraps(method)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except (sqlite3.Error, OSError) as err:
            raise store_error(err, args[0].path) from err  # type: ignore[attr-defined]

    return guarded


SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS models (
    name TEXT PRIMARY KEY,
    digest TEXT NOT NULL,
    card TEXT NOT NULL,
    checkpoint TEXT NOT NULL,
    source TEXT NOT NULL,
    parameters INTEGER NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS lens_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    lens TEXT NOT NULL,
    scope_model TEXT,
    params TEXT NOT NULL,
    model_digests TEXT NOT NULL,
    data_fingerprint TEXT NOT NULL,
    versions TEXT NOT NULL,
    notes TEXT NOT NULL,
    started REAL NOT NULL,
    seconds REAL NOT NULL,
    status TEXT NOT NULL CHECK (status = 'done')
);
CREATE TABLE IF NOT EXISTS results (
    run_id INTEGER NOT NULL REFERENCES lens_runs(id) ON DELETE CASCADE,
    tbl TEXT NOT NULL,
    row INTEGER NOT NULL,
    model TEXT NOT NULL,
    layer TEXT NOT NULL,
    setting TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL,
    extra TEXT
);
CREATE INDEX IF NOT EXISTS results_run ON results(run_id, tbl);
CREATE TABLE IF NOT EXISTS figures (
    lens TEXT NOT NULL,
    position INTEGER NOT NULL,
    title TEXT NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (lens, position)
);
CREATE TABLE IF NOT EXISTS lens_outcomes (
    key TEXT PRIMARY KEY,
    lens TEXT NOT NULL,
    scope_model TEXT,
    status TEXT NOT NULL CHECK (status IN ('failed', 'not-applicable')),
    error TEXT NOT NULL,
    message TEXT NOT NULL,
    fix TEXT NOT NULL,
    recorded REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS artifacts (
    run_id INTEGER NOT NULL REFERENCES lens_runs(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (run_id, name)
);
"""


@dataclass
class LensRun:
    id: int
    key: str
    lens: str
    scope_model: str | None
    params: dict[str, Any]
    model_digests: dict[str, str]
    data_fingerprint: str
    notes: list[str]
    seconds: float


OUTCOMES = ("failed", "not-applicable")


@dataclass
class LensOutcome:
    """A lens unit that produced no results: it failed, or the lens does not apply."""

    key: str
    lens: str
    scope_model: str | None
    status: str
    error: str
    message: str
    fix: str

    @property
    def failed(self) -> bool:
        return self.status == "failed"


def run_key(
    lens: str,
    version: int,
    params: dict[str, Any],
    model_digests: dict[str, str],
    data_fingerprint: str,
    seed: int | None = None,
) -> str:
    """The cache key of a lens run: what its results depend on (with the study ``seed``, which
    every random choice of the run derives from; left out of the key when None)."""
    parts = {
        "lens": lens,
        "version": version,
        "params": params,
        "models": dict(sorted(model_digests.items())),
        "data": data_fingerprint,
    }
    if seed is not None:
        parts["seed"] = seed
    blob = json.dumps(
        parts,
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class Store:
    """The study directory's SQLite database and its artifact files."""

    def __init__(self, study_dir: str | Path, *, read_only: bool = False) -> None:
        """Open (a writer: create) the store of ``study_dir``.

        ``read_only`` opens an existing database with SQLite's ``mode=ro``: nothing of the
        store is changed, and writing methods raise :class:`StoreError`.
        """
        self.dir = Path(study_dir)
        self.path = self.dir / DB_NAME
        self.read_only = read_only
        try:
            if read_only:
                self.db = _connect_read_only(self.path)
            else:
                self.dir.mkdir(parents=True, exist_ok=True)
                (self.dir / ARTIFACTS).mkdir(exist_ok=True)
                self.db = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT)
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=FULL")
                self.db.execute("PRAGMA foreign_keys=ON")
                self.db.executescript(SCHEMA)
            tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master")}
            # A store written before lens outcomes existed gains the table when a writer opens
            # it; a reader of such a store simply finds no outcomes.
            self._has_outcomes = "lens_outcomes" in tables
            if "meta" not in tables:  # read-only, and not a robustlens database
                self.db.close()
                raise StoreError(
                    f"{self.path} holds no robustlens results (it has no meta table)",
                    fix="Give the folder a study was run into (robustlens study run --out DIR)",
                )
            row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = None if row is None else row[0]
        except (sqlite3.Error, OSError) as err:
            with contextlib.suppress(AttributeError, sqlite3.Error):
                self.db.close()
            raise store_error(err, self.path) from err
        if version is None and not read_only:
            self.set_meta("schema_version", str(SCHEMA_VERSION))
        elif version is None or not version.isdigit() or int(version) != SCHEMA_VERSION:
            self.db.close()
            raise ConfigError(
                f"{self.path} was written by another robustlens version (schema {version})",
                fix="run the study into a new --out folder",
            )

    @classmethod
    def open_existing(cls, study_dir: str | Path, *, read_only: bool = True) -> Store:
        """The store of a study that has run (read-only unless asked otherwise)."""
        if not (Path(study_dir) / DB_NAME).is_file():
            raise ConfigError(
                f"{study_dir} holds no study results ({DB_NAME} is missing)",
                fix="run `robustlens study run FILE --out DIR` first",
            )
        return cls(study_dir, read_only=read_only)

    def close(self) -> None:
        self.db.close()

    def _writable(self) -> None:
        if self.read_only:
            raise StoreError(
                f"{self.path} was opened read-only and cannot be changed",
                fix="open it with Store(folder) while holding the study folder's lock",
            )

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            # SQLite has already rolled back after some errors (a full disk): then ROLLBACK
            # fails, and must not hide the error that matters.
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # ---------------------------------------------------------------------------- meta

    @_guarded
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    @_guarded
    def set_meta(self, key: str, value: str) -> None:
        self._writable()
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # -------------------------------------------------------------------------- models

    @_guarded
    def put_model(
        self, name: str, digest: str, card: str, checkpoint: str, source: str, parameters: int
    ) -> None:
        self._writable()
        self.db.execute(
            "INSERT OR REPLACE INTO models VALUES (?, ?, ?, ?, ?, ?, ?)",
            (name, digest, card, checkpoint, source, parameters, time.time()),
        )

    @_guarded
    def models(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT name, digest, card, checkpoint, source, parameters FROM models ORDER BY rowid"
        ).fetchall()
        keys = ("name", "digest", "card", "checkpoint", "source", "parameters")
        return [{**dict(zip(keys, r, strict=True)), "card": json.loads(r[2])} for r in rows]

    # ------------------------------------------------------------------------ lens runs

    @_guarded
    def find_run(self, key: str) -> LensRun | None:
        row = self.db.execute(
            "SELECT id, key, lens, scope_model, params, model_digests, data_fingerprint, notes, "
            "seconds FROM lens_runs WHERE key = ?",
            (key,),
        ).fetchone()
        return None if row is None else _run_from_row(row)

    @_guarded
    def runs(self, lens: str | None = None) -> list[LensRun]:
        query = (
            "SELECT id, key, lens, scope_model, params, model_digests, data_fingerprint, notes, "
            "seconds FROM lens_runs"
        )
        args: tuple[Any, ...] = ()
        if lens is not None:
            query += " WHERE lens = ?"
            args = (lens,)
        return [_run_from_row(r) for r in self.db.execute(query + " ORDER BY id", args)]

    @_guarded
    def delete_runs(self, lens: str) -> int:
        self._writable()
        with self.transaction() as db:
            cur = db.execute("DELETE FROM lens_runs WHERE lens = ?", (lens,))
            db.execute("DELETE FROM lens_outcomes WHERE lens = ?", (lens,))
        return cur.rowcount

    @_guarded
    def record_outcome(
        self,
        *,
        key: str,
        lens: str,
        scope_model: str | None,
        status: str,
        error: str,
        message: str,
        fix: str = "",
    ) -> None:
        """Record that the lens unit ``key`` failed (``status="failed"``, ``error`` the error's
        type) or does not apply to its model (``"not-applicable"``, ``message`` the reason)."""
        if status not in OUTCOMES:
            raise ValueError(f"outcome status must be one of {OUTCOMES}, got {status!r}")
        self._writable()
        self.db.execute(
            "INSERT OR REPLACE INTO lens_outcomes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (key, lens, scope_model, status, error, message, fix, time.time()),
        )

    @_guarded
    def outcome(self, key: str) -> LensOutcome | None:
        """The recorded failure or not-applicable outcome of the unit ``key``, if any."""
        if not self._has_outcomes:
            return None
        row = self.db.execute(
            "SELECT key, lens, scope_model, status, error, message, fix FROM lens_outcomes "
            "WHERE key = ?",
            (key,),
        ).fetchone()
        return None if row is None else LensOutcome(*row)

    @_guarded
    def outcomes(self, lens: str | None = None) -> list[LensOutcome]:
        """Every recorded outcome (of ``lens``), oldest first."""
        if not self._has_outcomes:
            return []
        query = "SELECT key, lens, scope_model, status, error, message, fix FROM lens_outcomes"
        args: tuple[Any, ...] = ()
        if lens is not None:
            query += " WHERE lens = ?"
            args = (lens,)
        return [LensOutcome(*r) for r in self.db.execute(query + " ORDER BY recorded", args)]

    @_guarded
    def clear_outcome(self, key: str) -> None:
        self._writable()
        self.db.execute("DELETE FROM lens_outcomes WHERE key = ?", (key,))

    @_guarded
    def write_run(
        self,
        *,
        key: str,
        lens: str,
        scope_model: str | None,
        params: dict[str, Any],
        model_digests: dict[str, str],
        data_fingerprint: str,
        versions: dict[str, str],
        notes: list[str],
        started: float,
        seconds: float,
        tables: dict[str, pd.DataFrame],
        arrays: dict[str, np.ndarray],
        staged: dict[str, tuple[str, str]] | None = None,
    ) -> int:
        """Write one finished lens run: artifacts to files first, then everything in one
        transaction (replacing an older run with the same key). ``staged`` names arrays
        another process already wrote into the study folder with :func:`write_array`
        (name → relative path and sha256); each must be there."""
        self._writable()
        for name, (rel, _) in (staged or {}).items():
            if not (self.dir / rel).is_file():
                raise StoreError(
                    f"array {name!r} of lens run {lens} is missing from {self.dir / rel}",
                    fix="run the study again (are the workers writing the same study folder?)",
                )
        staged = {**(staged or {}), **{n: self._write_array(a) for n, a in arrays.items()}}
        with self.transaction() as db:
            db.execute("DELETE FROM lens_runs WHERE key = ?", (key,))
            db.execute("DELETE FROM lens_outcomes WHERE key = ?", (key,))
            cur = db.execute(
                "INSERT INTO lens_runs (key, lens, scope_model, params, model_digests, "
                "data_fingerprint, versions, notes, started, seconds, status) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'done')",
                (
                    key,
                    lens,
                    scope_model,
                    json.dumps(params, sort_keys=True, default=str),
                    json.dumps(model_digests, sort_keys=True),
                    data_fingerprint,
                    json.dumps(versions, sort_keys=True),
                    json.dumps(notes),
                    started,
                    seconds,
                ),
            )
            run_id = int(cur.lastrowid)
            for tbl, frame in tables.items():
                db.executemany(
                    "INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    _result_rows(run_id, tbl, frame),
                )
            db.executemany(
                "INSERT INTO artifacts VALUES (?, ?, 'array', ?, ?)",
                [(run_id, name, path, sha) for name, (path, sha) in staged.items()],
            )
        return run_id

    def _write_array(self, array: np.ndarray) -> tuple[str, str]:
        return write_array(self.dir, array)

    def _write_file(self, rel: str, data: bytes) -> None:
        write_file(self.dir, rel, data)

    @_guarded
    def table(self, run: LensRun, tbl: str) -> pd.DataFrame:
        rows = self.db.execute(
            "SELECT model, layer, setting, metric, value, extra FROM results "
            "WHERE run_id = ? AND tbl = ? ORDER BY row",
            (run.id, tbl),
        ).fetchall()
        records = []
        for model, layer, setting, metric, value, extra in rows:
            record = {"model": model, "layer": layer, "setting": setting, "metric": metric}
            record["value"] = np.nan if value is None else value
            record.update(json.loads(extra) if extra else {})
            records.append(record)
        return pd.DataFrame(
            records, columns=None if records else ["model", "layer", "setting", "metric", "value"]
        )

    @_guarded
    def table_names(self, run: LensRun) -> list[str]:
        rows = self.db.execute(
            "SELECT DISTINCT tbl FROM results WHERE run_id = ? ORDER BY tbl", (run.id,)
        )
        return [r[0] for r in rows]

    @_guarded
    def array(self, run: LensRun, name: str) -> np.ndarray:
        row = self.db.execute(
            "SELECT path, sha256 FROM artifacts WHERE run_id = ? AND name = ?", (run.id, name)
        ).fetchone()
        if row is None:
            raise KeyError(f"lens run {run.lens} has no array {name!r}")
        try:
            data = (self.dir / row[0]).read_bytes()
        except FileNotFoundError:
            raise ConfigError(
                f"artifact {self.dir / row[0]} is missing", fix=f"re-run with --force {run.lens}"
            ) from None
        if hashlib.sha256(data).hexdigest() != row[1]:
            raise ConfigError(
                f"artifact {self.dir / row[0]} is corrupt", fix=f"re-run with --force {run.lens}"
            )
        return np.load(io.BytesIO(data), allow_pickle=False)

    @_guarded
    def array_names(self, run: LensRun) -> list[str]:
        rows = self.db.execute(
            "SELECT name FROM artifacts WHERE run_id = ? ORDER BY name", (run.id,)
        )
        return [r[0] for r in rows]

    @_guarded
    def put_figures(
        self, lens: str, figures: list[tuple[str, bytes]], source_key: str = ""
    ) -> list[str]:
        """Save a lens's report figures as files (.svg, .png, or .txt for a figure the report
        replaces by a note) and record them (replacing older ones),
        with ``source_key`` naming what they were drawn from (see :meth:`cached_figures`)."""
        self._writable()
        staged = []
        for title, png in figures:
            sha = hashlib.sha256(png).hexdigest()
            rel = f"{ARTIFACTS}/{sha[:2]}/{sha}{_figure_suffix(png)}"
            self._write_file(rel, png)
            staged.append((title, rel, sha))
        with self.transaction() as db:
            db.execute("DELETE FROM figures WHERE lens = ?", (lens,))
            db.executemany(
                "INSERT INTO figures VALUES (?, ?, ?, ?, ?)",
                [(lens, i, title, rel, sha) for i, (title, rel, sha) in enumerate(staged)],
            )
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"figures:{lens}", source_key))
        return [rel for _, rel, _ in staged]

    @_guarded
    def cached_figures(self, lens: str, source_key: str) -> list[tuple[str, bytes]] | None:
        """The lens's stored figures as (title, PNG bytes) when they were drawn from
        ``source_key`` and every file is intact; None otherwise (draw them again)."""
        if not source_key or self.get_meta(f"figures:{lens}") != source_key:
            return None
        rows = self.db.execute(
            "SELECT title, path, sha256 FROM figures WHERE lens = ? ORDER BY position", (lens,)
        ).fetchall()
        out = []
        for title, path, sha in rows:
            try:
                data = (self.dir / path).read_bytes()
            except OSError:
                return None
            if hashlib.sha256(data).hexdigest() != sha:
                return None
            out.append((title, data))
        return out

    @_guarded
    def figures(self, lens: str) -> list[tuple[str, Path]]:
        rows = self.db.execute(
            "SELECT title, path FROM figures WHERE lens = ? ORDER BY position", (lens,)
        )
        return [(title, self.dir / path) for title, path in rows]

    @_guarded
    def sweep(self) -> int:
        """Remove artifact files nothing references (left by interrupted runs)."""
        self._writable()
        referenced = {r[0] for r in self.db.execute("SELECT path FROM artifacts")}
        referenced |= {r[0] for r in self.db.execute("SELECT path FROM figures")}
        removed = 0
        for file in (self.dir / ARTIFACTS).rglob("*"):
            if file.is_file() and file.relative_to(self.dir).as_posix() not in referenced:
                file.unlink()
                removed += 1
        return removed


def write_array(study_dir: str | Path, array: np.ndarray) -> tuple[str, str]:
    """Write ``array`` as a content-addressed ``.npy`` artifact of the study folder; its path
    (relative to the folder) and sha256. Needs no database: a worker process writes arrays so,
    and the store's writer records them (``Store.write_run(staged=...)``)."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    data = buffer.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    rel = f"{ARTIFACTS}/{sha[:2]}/{sha}.npy"
    write_file(study_dir, rel, data)
    return rel, sha


def write_file(study_dir: str | Path, rel: str, data: bytes) -> None:
    """Write a content-addressed file atomically (nothing to do if it exists)."""
    final = Path(study_dir) / rel
    if final.exists():
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    # pid and a random tag: workers on several hosts may write the same file at once
    tmp = final.with_name(f".{final.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()  # a full disk must not leave half a file behind
        raise


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to the database at ``path`` (SQLite ``mode=ro``).

    A database in WAL mode needs its ``-shm`` file to be read; in a folder nobody can write,
    where it cannot be created, nobody can be writing the database either, so it is then
    opened as immutable.
    """
    uri = f"{path.resolve().as_uri()}?mode=ro"
    db = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=BUSY_TIMEOUT)
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as err:
        code = (getattr(err, "sqlite_errorcode", None) or 0) & 0xFF
        wal = path.with_name(path.name + "-wal")
        if code not in (_SQLITE_READONLY, _SQLITE_CANTOPEN) or wal.exists():
            db.close()
            raise
        if os.access(path.parent, os.W_OK):
            db.close()
            raise
        db.close()
        db = sqlite3.connect(f"{uri}&immutable=1", uri=True, isolation_level=None)
    db.execute("PRAGMA query_only=ON")
    return db


def _run_from_row(row: tuple) -> LensRun:
    return LensRun(
        id=row[0],
        key=row[1],
        lens=row[2],
        scope_model=row[3],
        params=json.loads(row[4]),
        model_digests=json.loads(row[5]),
        data_fingerprint=row[6],
        notes=json.loads(row[7]),
        seconds=row[8],
    )


def _result_rows(run_id: int, tbl: str, frame: pd.DataFrame) -> Iterator[tuple]:
    core = ("model", "layer", "setting", "metric", "value")
    extra_cols = [c for c in frame.columns if c not in core]
    for i, record in enumerate(frame.to_dict("records")):
        value = record["value"]
        value = (
            None
            if value is None or (isinstance(value, float) and np.isnan(value))
            else float(value)
        )
        extra = {c: _plain(record[c]) for c in extra_cols}
        yield (
            run_id,
            tbl,
            i,
            str(record["model"]),
            str(record["layer"]),
            str(record["setting"]),
            str(record["metric"]),
            value,
            json.dumps(extra) if extra else None,
        )


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def _figure_suffix(data: bytes) -> str:
    """The file ending of a report figure's bytes: SVG, PNG, or text (a note)."""
    if data.startswith(b"\x89PNG"):
        return ".png"
    return ".svg" if data[:200].lstrip().startswith((b"<?xml", b"<svg")) else ".txt"
