"""Failed and not-applicable lens units in the store: recorded, read back, cleared by a
finished run of the same unit, and added to stores written before the table existed."""

from __future__ import annotations

import re
import sqlite3

import pytest

from robustlens.study.store import DB_NAME, SCHEMA, Store
from tests.study.test_store import write


def test_an_outcome_is_kept_until_the_unit_finishes(tmp_path):
    store = Store(tmp_path)
    store.record_outcome(
        key="k1", lens="demo", scope_model="m", status="failed", error="NumericalError",
        message="NaN in conv1", fix="lower the learning rate",
    )  # fmt: skip
    store.record_outcome(
        key="k2", lens="demo", scope_model="n", status="not-applicable",
        error="LensNotApplicable", message="no 3×3 convolutions",
    )  # fmt: skip
    failed = store.outcome("k1")
    assert (failed.status, failed.error, failed.message, failed.fix) == (
        "failed", "NumericalError", "NaN in conv1", "lower the learning rate",
    )  # fmt: skip
    assert failed.failed and not store.outcome("k2").failed
    assert [o.key for o in store.outcomes("demo")] == ["k1", "k2"]
    write(store, "k1")  # the unit ran after all: its failure goes with the same transaction
    assert store.outcome("k1") is None and store.outcome("k2") is not None
    store.close()


def test_an_unknown_outcome_status_is_refused(tmp_path):
    store = Store(tmp_path)
    with pytest.raises(ValueError, match="outcome status"):
        store.record_outcome(
            key="k", lens="demo", scope_model=None, status="skipped", error="", message=""
        )
    store.close()


def test_a_store_written_before_outcomes_existed_opens_and_gains_the_table(tmp_path):
    old_schema = re.sub(r"CREATE TABLE IF NOT EXISTS lens_outcomes \(.*?\);\n", "", SCHEMA,
                        flags=re.S)  # fmt: skip
    assert "lens_outcomes" not in old_schema
    db = sqlite3.connect(tmp_path / DB_NAME)
    db.executescript(old_schema)
    db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    db.commit()
    db.close()
    store = Store(tmp_path)
    assert store.outcomes() == []
    store.record_outcome(
        key="k", lens="demo", scope_model="m", status="failed", error="E", message="m"
    )
    assert store.outcome("k").message == "m"
    store.close()
