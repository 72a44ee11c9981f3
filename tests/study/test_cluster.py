"""A study's lens units on a Dask cluster (issue 18 §2): ``--workers 2`` and ``--scheduler``
give the store a serial run gives, a worker killed mid-unit costs nothing but time, a lens that
raises on a worker is recorded as in a serial run, and options that cannot work fail before any
work starts. Needs the ``cluster`` extra (``make setup`` installs it); without it only the
tests of the missing extra's error run."""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import signal
import sys

import pytest
from typer.testing import CliRunner

from robustlens.cli import app
from robustlens.errors import ConfigError, NumericalError
from robustlens.lenses import LENSES
from robustlens.runner import Study
from robustlens.study import cluster
from robustlens.study.store import Store
from tests.study.test_study_seed import assert_same, stored
from tests.study.tiny_studies import DIGITS_TWO_MODELS

ACTIVATIONS = LENSES.get("activations")


def _dask():
    return pytest.importorskip("distributed", reason="needs the cluster extra (make setup)")


# ------------------------------------------------------------------ options, before any work


@pytest.mark.parametrize(
    ("workers", "scheduler", "says"),
    [
        (2, "tcp://127.0.0.1:8786", "exclude each other"),
        (0, None, "at least 1"),
        (True, None, "at least 1"),
        (None, "  ", "is empty"),
    ],
)
def test_cluster_options_that_cannot_work_fail_before_the_folder_exists(
    tmp_path, workers, scheduler, says
):
    path = tmp_path / "study.toml"
    path.write_text(DIGITS_TWO_MODELS)
    with pytest.raises(ConfigError, match=says):
        Study.from_file(path, tmp_path / "out").run(workers=workers, scheduler=scheduler)
    assert not (tmp_path / "out").exists()


def test_without_the_cluster_extra_workers_ask_for_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    path = tmp_path / "study.toml"
    path.write_text(DIGITS_TWO_MODELS)
    with pytest.raises(ConfigError, match="not installed") as caught:
        Study.from_file(path, tmp_path / "out").run(workers=2)
    assert "robustlens[cluster]" in (caught.value.fix or "")
    assert not (tmp_path / "out").exists()
    result = CliRunner().invoke(app, ["study", "run", str(path), "--workers", "2"])
    assert isinstance(result.exception, ConfigError)  # `main` prints it on one line, exit 2
    assert "robustlens[cluster]" in str(result.exception)


def test_the_cli_refuses_zero_workers_and_both_flags(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text(DIGITS_TWO_MODELS)
    zero = CliRunner().invoke(app, ["study", "run", str(path), "--workers", "0"])
    assert zero.exit_code == 2 and "--workers" in zero.output
    both = ["study", "run", str(path), "--workers", "2", "--scheduler", "tcp://h:8786"]
    result = CliRunner().invoke(app, both)
    assert isinstance(result.exception, ConfigError)
    assert "exclude each other" in str(result.exception)


def test_local_workers_get_one_gpu_each_or_one_cpu_thread():
    _dask()
    gpus = cluster.worker_specs(4, ["3", "5"])
    assert sorted(gpus) == ["gpu-3", "gpu-5"]
    for gpu, spec in zip(["3", "5"], gpus.values(), strict=True):
        assert spec["options"]["resources"] == {"GPU": 1}
        assert spec["options"]["env"] == {"CUDA_VISIBLE_DEVICES": gpu}
        assert spec["options"]["nthreads"] == 1
    assert list(cluster.worker_specs(1, ["3", "5"])) == ["gpu-3"]
    cpus = cluster.worker_specs(3, [])
    assert len(cpus) == 3
    assert all(
        "resources" not in s["options"] and s["options"]["nthreads"] == 1 for s in cpus.values()
    )


def test_a_cpu_study_gets_no_gpu_workers_and_a_cuda_study_one_per_visible_gpu(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert cluster.visible_gpus(torch.device("cpu")) == []
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert cluster.visible_gpus(torch.device("cuda")) == ["0", "1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4, 6")  # the ids this process was given
    assert cluster.visible_gpus(torch.device("cuda")) == ["4", "6"]


def test_an_unreachable_scheduler_is_one_clear_error_before_the_folder_exists(
    tmp_path, monkeypatch
):
    _dask()
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", "1s")
    path = tmp_path / "study.toml"
    path.write_text(DIGITS_TWO_MODELS)
    with pytest.raises(ConfigError, match="cannot reach the Dask scheduler"):
        Study.from_file(path, tmp_path / "out").run(scheduler="tcp://127.0.0.1:9")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------- runs on a cluster


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The tiny two-model study run serially, in this process: the reference store."""
    folder = tmp_path_factory.mktemp("serial")
    path = folder / "study.toml"
    path.write_text(DIGITS_TWO_MODELS)
    summary = Study.from_file(path, folder / "out").run()
    assert summary.computed == ["activations:a", "activations:b"]
    return path, folder / "out"


@pytest.mark.slow  # a local cluster of 2 processes and two tiny trainings
def test_two_workers_give_the_store_of_a_serial_run(serial, tmp_path):
    _dask()
    path, reference = serial
    result = CliRunner().invoke(
        app, ["study", "run", str(path), "--out", str(tmp_path / "out"), "--workers", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "2 trained" in result.output and "2 computed" in result.output
    want, got = stored(reference), stored(tmp_path / "out")
    assert want.keys() == got.keys() and any(":array:" in k for k in want)
    assert_same(want, got)
    again = Study.from_file(path, tmp_path / "out").run(workers=2)
    assert again.cached == ["activations:a", "activations:b"] and not again.computed


def _kill_once(marker, log, guard, model, data, params, ctx):
    """The activations lens, killing its own worker process the first time any unit runs
    (``marker`` is created then); each unit it finishes is logged with its process id."""
    if os.getpid() == guard:
        raise AssertionError("the kill-once lens ran in the test process, not on a worker")
    try:
        with open(marker, "x") as fh:
            fh.write(str(os.getpid()))
    except FileExistsError:
        pass
    else:
        os.kill(os.getpid(), signal.SIGKILL)
    result = ACTIVATIONS.compute(model, data, params, ctx)
    with open(log, "a") as fh:
        fh.write(f"{model.name} {os.getpid()}\n")
    return result


@pytest.mark.slow
@pytest.mark.timing  # kills a worker process
def test_a_worker_killed_mid_unit_is_replaced_and_the_store_is_a_serial_runs(
    serial, tmp_path, monkeypatch
):
    _dask()
    path, reference = serial
    out = tmp_path / "out"
    shutil.copytree(reference / "models", out / "models")  # reused: this test is about units
    marker, log = tmp_path / "killed", tmp_path / "finished"
    kill = functools.partial(_kill_once, str(marker), str(log), os.getpid())
    monkeypatch.setitem(
        LENSES._items, LENSES._key("activations"), dataclasses.replace(ACTIVATIONS, compute=kill)
    )
    summary = Study.from_file(path, out).run(workers=2)
    assert summary.ok and summary.computed == ["activations:a", "activations:b"]
    killed = int(marker.read_text())
    finished = dict(line.split() for line in log.read_text().splitlines())
    assert sorted(finished) == ["a", "b"]  # both units finished, each once
    assert str(killed) not in finished.values()  # ... on processes other than the killed one
    want, got = stored(reference), stored(out)
    assert want.keys() == got.keys()
    assert_same(want, got)


def _fails_on_b(model, data, params, ctx):
    if model.name == "b":
        raise NumericalError("activations of b became NaN", fix="check the model")
    return ACTIVATIONS.compute(model, data, params, ctx)


@pytest.mark.slow
def test_a_lens_failing_on_a_running_scheduler_is_recorded_as_in_a_serial_run(
    serial, tmp_path, monkeypatch
):
    distributed = _dask()
    path, reference = serial
    out = tmp_path / "out"
    shutil.copytree(reference / "models", out / "models")
    broken = dataclasses.replace(ACTIVATIONS, compute=_fails_on_b)
    monkeypatch.setitem(LENSES._items, LENSES._key("activations"), broken)
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, dashboard_address=None, silence_logs=40
    ) as running:
        summary = Study.from_file(path, out).run(scheduler=running.scheduler_address)
    assert summary.computed == ["activations:a"]
    assert [f.text() for f in summary.failed] == [
        "activations:b: NumericalError: activations of b became NaN (fix: check the model)"
    ]
    store = Store.open_existing(out)
    try:
        outcome = store.outcomes()
    finally:
        store.close()
    assert [(o.scope_model, o.status, o.error, o.fix) for o in outcome] == [
        ("b", "failed", "NumericalError", "check the model")
    ]
    want, got = stored(reference), stored(out)
    assert_same(want, got, keys=[k for k in want if not k.startswith("activations:b:")])
    assert not any(k.startswith("activations:b:") for k in got)


# ------------------------------------------------------------- arrays staged by a worker


def test_arrays_a_worker_wrote_are_recorded_and_read_back(tmp_path):
    import numpy as np

    from robustlens.study.store import write_array

    values = np.arange(12, dtype=np.float32).reshape(3, 4)
    staged = {"x": write_array(tmp_path, values)}  # as a worker does, without the database
    store = Store(tmp_path)
    try:
        store.write_run(
            key="k", lens="activations", scope_model="a", params={}, model_digests={"a": "d"},
            data_fingerprint="fp", versions={}, notes=[], started=0.0, seconds=1.0,
            tables={}, arrays={}, staged=staged,
        )  # fmt: skip
        run = store.find_run("k")
        np.testing.assert_array_equal(store.array(run, "x"), values)
        assert store.sweep() == 0  # referenced: kept
    finally:
        store.close()


def test_a_staged_array_missing_from_the_folder_is_a_store_error(tmp_path):
    from robustlens.errors import StoreError

    store = Store(tmp_path)
    try:
        with pytest.raises(StoreError, match="missing"):
            store.write_run(
                key="k", lens="activations", scope_model="a", params={},
                model_digests={"a": "d"}, data_fingerprint="fp", versions={}, notes=[],
                started=0.0, seconds=1.0, tables={}, arrays={},
                staged={"x": ("artifacts/00/none.npy", "0" * 64)},
            )  # fmt: skip
        assert store.find_run("k") is None
    finally:
        store.close()
