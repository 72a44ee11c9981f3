"""Run a study's lens units on a Dask distributed cluster (the optional ``cluster`` extra).

``Study.run(workers=4)`` (``robustlens study run FILE --workers 4``) starts a local cluster: one
worker process per GPU, each seeing only its GPU and offering the resource ``GPU=1``, when the
study runs on CUDA; else ``workers`` CPU processes; one thread each. ``scheduler="tcp://host:8786"``
uses a cluster that is already running (e.g. started on SLURM by dask-jobqueue).

The models are obtained on the coordinating process, in the study's order, as in a serial run;
each is then sent once to the cluster (a CPU copy, held by the scheduler as a task's argument
so that it can be made again when the worker holding it dies). Each lens unit not
cached is a task: its worker loads the study's evaluation data itself (and checks its
fingerprint), runs the lens, writes the unit's arrays into the study folder as content-addressed
files and returns its tables, notes and those files' names. Only the coordinating process writes
the SQLite store (SQLite over NFS is unsafe), one transaction per unit, as units finish: a run
stopped at any point resumes where it stopped.

A worker that dies mid-unit loses nothing: the scheduler runs its unit again on another worker
(up to ``distributed.scheduler.allowed-failures`` times, 3 by default; then the unit is recorded
as failed with ``KilledWorker``). A lens that raises is not retried: its error is recorded as in
a serial run. Each unit is seeded from the study seed, its lens and its model alone, so the
store is the same as a serial run's whichever worker computes which unit.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
import logging
import os
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from robustlens.errors import ConfigError, DataError
from robustlens.lenses import StudyModel
from robustlens.progress import progress_bar
from robustlens.study.execute import UnitFailure, UnitRun, compute_unit, guarded, settle, write_unit
from robustlens.study.inputs import StudyInputs
from robustlens.study.plan import StudyPlan, Unit
from robustlens.study.spec import StudySpec
from robustlens.study.store import Store, write_array

if TYPE_CHECKING:
    from types import ModuleType

    from distributed import Client, Future

log = logging.getLogger(__name__)

INSTALL = "pip install 'robustlens[cluster]'"
CONNECT_TIMEOUT = "20s"
"""How long to wait for a running scheduler (``--scheduler``) to answer."""


# ---------------------------------------------------------------------------- the cluster


def check_options(workers: int | None, scheduler: str | None) -> None:
    """One clear error for cluster options that cannot work, before any work starts."""
    if workers is not None and scheduler is not None:
        raise ConfigError(
            "--workers and --scheduler exclude each other",
            fix="give --workers N for a local cluster, or --scheduler ADDRESS for a running one",
        )
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise ConfigError(
            f"--workers must be a whole number of at least 1, got {workers!r}",
            fix="give the number of worker processes, e.g. --workers 4",
        )
    if scheduler is not None and not scheduler.strip():
        raise ConfigError(
            "--scheduler is empty", fix="give the scheduler's address, e.g. tcp://host:8786"
        )
    if workers is not None or scheduler is not None:
        _distributed()


def _distributed() -> ModuleType:
    try:
        import distributed
    except ImportError as exc:
        raise ConfigError(
            "running a study on a cluster needs Dask distributed, which is not installed",
            fix=f"{INSTALL}, or run without --workers and --scheduler",
        ) from exc
    return distributed


def visible_gpus(device: torch.device) -> list[str]:
    """The GPUs local workers get, one each: none unless the study runs on CUDA (ids as
    ``CUDA_VISIBLE_DEVICES`` names them, when it is set)."""
    if device.type != "cuda" or not torch.cuda.is_available():
        return []
    count = torch.cuda.device_count()
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is None:
        return [str(i) for i in range(count)]
    return [part.strip() for part in listed.split(",") if part.strip()][:count]


def worker_specs(workers: int, gpus: list[str]) -> dict[str, dict[str, Any]]:
    """The local cluster's workers (a :class:`distributed.SpecCluster` spec): one process per
    GPU (at most ``workers``) that sees only its GPU and offers the resource ``GPU=1``, or
    ``workers`` CPU processes when ``gpus`` is empty; one thread each."""
    nanny = _distributed().Nanny
    quiet = {"nthreads": 1, "dashboard": False, "silence_logs": logging.ERROR}
    if gpus:
        return {
            f"gpu-{gpu}": {
                "cls": nanny,
                "options": {**quiet, "resources": {"GPU": 1}, "env": {"CUDA_VISIBLE_DEVICES": gpu}},
            }
            for gpu in gpus[:workers]
        }
    return {f"cpu-{i}": {"cls": nanny, "options": quiet} for i in range(workers)}


@contextlib.contextmanager
def connect(
    *, workers: int | None, scheduler: str | None, device: torch.device
) -> Iterator[Client | None]:
    """A client of the cluster the options ask for, closed (with a local cluster) after the
    block; None when neither is given (the study runs serially, in this process)."""
    check_options(workers, scheduler)
    if workers is None and scheduler is None:
        yield None
        return
    distributed = _distributed()
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConfigError(
                f"cannot reach the Dask scheduler at {scheduler}: {exc}",
                fix="start it (`dask scheduler`, or a dask-jobqueue cluster) and give its "
                "address, e.g. tcp://host:8786",
            ) from exc
        with client:
            yield client
        return
    assert workers is not None
    gpus = visible_gpus(device)
    if len(gpus) > 0 and workers > len(gpus):
        log.warning("%d workers asked for, %d GPUs: one worker per GPU", workers, len(gpus))
    specs = worker_specs(workers, gpus)
    cluster = distributed.SpecCluster(
        workers=specs,
        scheduler={
            "cls": distributed.Scheduler,
            "options": {"dashboard": False, "dashboard_address": None, "host": "127.0.0.1"},
        },
        silence_logs=logging.ERROR,
    )
    with cluster, distributed.Client(cluster) as client:
        client.wait_for_workers(len(specs))  # their resources decide how units are placed
        yield client


# ------------------------------------------------------------------------------ the units


@dataclass(frozen=True)
class UnitJob:
    """What a worker needs to compute a unit besides its models: the unit (its models left
    out: they travel once each, as futures), the study, its folder, the device kind and the
    fingerprint of the evaluation data the coordinator holds."""

    unit: Unit
    spec: StudySpec
    folder: str
    device: str
    fingerprint: str


def run_units_on(
    client: Client,
    store: Store,
    plan: StudyPlan,
    inputs: StudyInputs,
    *,
    force: tuple[str, ...] = (),
    fail_fast: bool = False,
    progress: bool = False,
) -> list[tuple[Unit, str | UnitFailure]]:
    """Run every unit of ``plan`` on the cluster of ``client`` and say how each went, as
    :func:`~robustlens.study.execute.run_units` does (in the plan's order); the store is
    written here, as units finish."""
    distributed = _distributed()
    fingerprint = inputs.data().fingerprint()
    folder = str(inputs.dir.resolve())
    workers = client.scheduler_info()["workers"].values()
    gpu = any(w.get("resources", {}).get("GPU") for w in workers)  # then one unit per GPU
    shipped: dict[str, Future] = {}
    pending: dict[Future, int] = {}
    submitted: set[int] = set()
    done: list[tuple[Unit, str | UnitFailure] | None] = [None] * len(plan.units)

    def ship(model: StudyModel) -> Future:
        # A task, not scattered data: the scheduler keeps what it needs to make it again on
        # another worker when the one holding it dies (scattered data would be lost with it).
        if model.name not in shipped:
            key = f"model-{model.name}-{model.digest[:16]}"
            shipped[model.name] = client.submit(_sent, _portable(model), key=key, pure=False)
        return shipped[model.name]

    with progress_bar(progress, total=len(plan.units), description="lenses") as advance:
        for i, unit in enumerate(plan.units):
            forced = unit.lens.name in force

            def submit(i: int = i, unit: Unit = unit, forced: bool = forced) -> bool:
                if not forced and store.find_run(unit.key) is not None:
                    return False  # cached
                job = UnitJob(
                    dataclasses.replace(unit, models=()),
                    inputs.spec,
                    folder,
                    inputs.device.type,
                    fingerprint,
                )
                future = client.submit(
                    compute_on_worker,
                    job,
                    [ship(m) for m in unit.models],
                    key=f"lens-{unit.label}-{unit.key[:16]}",
                    pure=False,
                    resources={"GPU": 1} if gpu else None,
                )
                pending[future] = i
                submitted.add(i)
                return True

            how = settle(store, unit, submit, force=forced, fail_fast=fail_fast)
            if i not in submitted:
                done[i] = (unit, how)
                advance(1)
        for future in distributed.as_completed(list(pending)):
            i = pending[future]
            unit = plan.units[i]

            def write(unit: Unit = unit, future: Future = future) -> bool:
                write_unit(store, unit, fingerprint, future.result())
                return True

            done[i] = (unit, guarded(store, unit, write, fail_fast=fail_fast))
            advance(1)
    return [d for d in done if d is not None]


def _sent(model: StudyModel) -> StudyModel:
    """A model sent to the cluster, as it arrives (held by a worker for the units on it)."""
    return model


def _portable(model: StudyModel) -> StudyModel:
    """``model`` with its network on the CPU (a copy when it is elsewhere), to be sent."""
    net = model.model
    tensors = itertools.chain(net.parameters(), net.buffers())
    if any(t.device.type != "cpu" for t in tensors):
        net = copy.deepcopy(net).cpu()
    return dataclasses.replace(model, model=net)


# --------------------------------------------------------------------------- on a worker

_INPUTS: dict[tuple[str, str, str, str], StudyInputs] = {}
"""Per worker process: each study's inputs (its evaluation data is loaded once)."""
_PLACED: OrderedDict[tuple[str, str], torch.nn.Module] = OrderedDict()
"""Per worker process: the last networks moved to a device other than the CPU."""
_PLACED_MAX = 4


def compute_on_worker(job: UnitJob, models: list[StudyModel]) -> UnitRun:
    """Compute one unit on a worker: its arrays are written into the study folder (``staged``)
    and the rest is returned for the coordinator to store."""
    key = (job.spec.text, str(job.spec.source), job.folder, job.device)
    if key not in _INPUTS:
        _INPUTS.clear()  # another study: its data is no longer needed
        _INPUTS[key] = StudyInputs(job.spec, Path(job.folder), torch.device(job.device))
    inputs = _INPUTS[key]
    data = inputs.data()
    if data.fingerprint() != job.fingerprint:
        raise DataError(
            f"the evaluation data a worker loads ({data.fingerprint()[:12]}) differs from the "
            f"coordinator's ({job.fingerprint[:12]})",
            fix="give every worker the same data files (the study's data root on a shared "
            "filesystem) and the same robustlens version",
        )
    placed = tuple(_placed(m, inputs.device) for m in models)
    run = compute_unit(dataclasses.replace(job.unit, models=placed), data, inputs.context(),
                       job.spec.seed)  # fmt: skip
    staged = {name: write_array(job.folder, array) for name, array in run.arrays.items()}
    return dataclasses.replace(run, arrays={}, staged=staged)


def _placed(model: StudyModel, device: torch.device) -> StudyModel:
    """``model`` on ``device``: as sent for the CPU, else a copy kept for the next units."""
    if device.type == "cpu":
        return model
    key = (model.digest, str(device))
    if key not in _PLACED:
        _PLACED[key] = copy.deepcopy(model.model).to(device)
        while len(_PLACED) > _PLACED_MAX:
            _PLACED.popitem(last=False)
    _PLACED.move_to_end(key)
    return dataclasses.replace(model, model=_PLACED[key])
