"""Results: the read-only view of one study's store that the claims and the report read. It
reads back exactly what the execution wrote, for the study's current models and data, and
has no way to write."""

from __future__ import annotations

import inspect
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from robustlens.errors import ConfigError, StoreError
from robustlens.runner import Study
from robustlens.study.plan import StudyPlan
from robustlens.study.results import Results
from robustlens.study.store import DB_NAME, Store
from tests.study.tiny_studies import DIGITS_ACTIVATIONS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> Path:
    """The tiny study, run once: one natural CNN on digits and the activations lens."""
    folder = Path(tmp_path_factory.mktemp("results"))
    (folder / "tiny.toml").write_text(DIGITS_ACTIVATIONS)
    summary = Study.from_file(folder / "tiny.toml", folder / "out", device="cpu").run()
    assert summary.computed == ["activations:a"] and not summary.failed
    return folder / "out"


def read(out: Path, store: Store) -> Results:
    study = Study.open(out, device="cpu")
    return study.results(store)


def test_results_has_no_method_that_writes():
    public = {name for name, _ in inspect.getmembers(Results) if not name.startswith("_")}
    writers = ("put", "write", "record", "set", "clear", "delete", "sweep", "save", "update")
    assert public and not [n for n in public if n.startswith(writers)]


def test_results_read_what_the_execution_wrote(ran):
    store = Store.open_existing(ran)  # read-only: any write would raise
    try:
        results = read(ran, store)
        (run,) = store.runs("activations")
        (unit,) = results.plan.for_lens("activations")
        assert unit.key == run.key and results.current_runs("activations") == [run]
        assert [m.name for m in results.models] == ["a"]
        assert results.models[0].digest == store.models()[0]["digest"]
        assert results.models[0].model is None  # read from the store: no weights
        pd.testing.assert_frame_equal(results.table("activations"), store.table(run, "activations"))
        assert set(results.tables("activations")) == set(store.table_names(run))
        names = results.array_names("activations", "a")
        assert names == sorted(store.array_names(run)) and names
        np.testing.assert_array_equal(
            results.array("activations", "a", names[0]), store.array(run, names[0])
        )
        assert results.array("activations", "a", "no such array") is None
        assert results.array("activations", "b", names[0]) is None
        assert results.outcomes == {}
        view = results.view()
        assert view.lenses == {"activations"} and view.planned == {"activations"}
        assert view.coverage == {"activations": {"a"}}
        assert view.n == results.eval_n == 40 and view.num_classes == 10
        assert view.has_array("activations", "a", names[0])
    finally:
        store.close()


def test_reading_every_result_leaves_the_store_as_it_was(ran):
    before = {p: p.read_bytes() for p in ran.rglob("*") if p.is_file()}
    store = Store.open_existing(ran)
    try:
        results = read(ran, store)
        for lens in results.runs:
            results.tables(lens)
            for name in results.array_names(lens, "a"):
                results.array(lens, "a", name)
        results.view()
        results.coverage()
        with pytest.raises(StoreError):  # the store under Results is read-only
            store.set_meta("x", "y")
    finally:
        store.close()
    assert {p: p.read_bytes() for p in ran.rglob("*") if p.is_file()} == before


def test_a_unit_without_results_is_listed_by_its_outcome(ran, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(ran, out)
    writer = Store(out)
    try:
        (run,) = writer.runs("activations")
        writer.delete_runs("activations")
        writer.record_outcome(
            key=run.key, lens="activations", scope_model="a", status="failed",
            error="NumericalError", message="NaN", fix="check the model",
        )  # fmt: skip
    finally:
        writer.close()
    store = Store.open_existing(out)
    try:
        results = read(out, store)
        assert results.current_runs("activations") == []
        (outcome,) = results.outcomes["activations"]
        assert outcome.failed and outcome.key == run.key
        view = results.view()
        assert view.lenses == set() and view.failed == {"activations": ["a: NumericalError: NaN"]}
        with pytest.raises(ConfigError, match="has no results yet"):
            results.table("activations")
    finally:
        store.close()
    status = Study.open(out).status()["lenses"]
    assert status == [
        {"lens": "activations", "done": 0, "total": 1, "failed": 1, "not_applicable": 0}
    ]


def test_runs_of_other_data_or_models_are_not_current(ran):
    store = Store.open_existing(ran)
    try:
        study = Study.open(ran, device="cpu")
        data = study.data()
        other = Results(
            store, study.spec, fingerprint="other data", eval_n=len(data),
            num_classes=data.info.num_classes,
        )  # fmt: skip
        assert other.runs == {"activations": []} and other.view().lenses == set()
        same = study.results(store)
        plan = StudyPlan.of(study.spec, same.models, data.fingerprint())
        assert [u.key for u in same.plan.units] == [u.key for u in plan.units]
        with pytest.raises(ConfigError, match="the study has no lens 'color'"):
            same.table("color")
    finally:
        store.close()
    assert (ran / DB_NAME).is_file()
