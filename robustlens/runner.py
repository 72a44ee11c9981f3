"""Run a study: the facade over its steps, spec → plan → execution → results → report.

``Study.from_file("studies/quickstart.toml").run()`` does it all;
``Study.open("runs/quickstart").table("activations")`` reads results back. Each step is a module
of :mod:`robustlens.study`: :mod:`~robustlens.study.spec` reads the study file,
:mod:`~robustlens.study.plan` expands it into lens units with their cache keys,
:mod:`~robustlens.study.execute` obtains the models and runs the units into the store,
:mod:`~robustlens.study.results` reads the store back for the claims and
:mod:`robustlens.report` writes the report from those results.
"""

from __future__ import annotations

import json
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from robustlens.data import ImageSet
from robustlens.errors import ConfigError, RobustlensError
from robustlens.lenses import LensContext, LensSpec, StudyModel
from robustlens.report.builder import build_report
from robustlens.runtime import default_device, versions
from robustlens.study import cluster
from robustlens.study.execute import (
    UnitFailure,
    obtain_model,
    obtain_models,
    record_model,
    run_units,
)
from robustlens.study.inputs import StudyInputs
from robustlens.study.lock import writes_study_folder
from robustlens.study.plan import StudyPlan, expected_units, unit_key
from robustlens.study.provenance import PROVENANCE_KEY, provenance
from robustlens.study.results import Results
from robustlens.study.spec import LensPlan, StudySpec, load_spec, parse_spec
from robustlens.study.store import Store
from robustlens.study.validate import validate_study

__all__ = ["REPORT_NAME", "RunSummary", "Study", "UnitFailure"]

REPORT_NAME = "report.html"


@dataclass
class RunSummary:
    """What one ``Study.run`` did."""

    trained: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    loaded: list[str] = field(default_factory=list)
    computed: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    not_applicable: list[str] = field(default_factory=list)
    """Units whose lens does not apply to their model (``lens:model``), not failures."""
    failed: list[UnitFailure] = field(default_factory=list)
    """Units that raised an error; the run went on with the others (see ``fail_fast``)."""
    superseded: int = 0
    """Lens results already in the store that this run did not use: made with other settings
    (study seed, data, lens parameters, models or robustlens version). They stay stored."""
    report: Path | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether every lens unit ran, was cached or does not apply."""
        return not self.failed


class Study:
    """A study file bound to its output directory."""

    def __init__(self, spec: StudySpec, out_dir: str | Path, *, device: str | None = None) -> None:
        self.spec = spec
        self.dir = Path(out_dir)
        self.device = torch.device(device) if device else default_device()
        self.inputs = StudyInputs(spec, self.dir, self.device)
        self._models: list[StudyModel] | None = None

    # -------------------------------------------------------------------------- building

    @classmethod
    def from_file(
        cls, path: str | Path, out_dir: str | Path | None = None, *, device: str | None = None
    ) -> Study:
        """The study of a study file, writing to ``out_dir`` (default ``runs/<name>``)."""
        spec = load_spec(path)
        return cls(spec, out_dir or Path("runs") / spec.name, device=device)

    @classmethod
    def open(cls, out_dir: str | Path, *, device: str | None = None) -> Study:
        """A study that has run before, from its directory alone."""
        store = Store.open_existing(out_dir)
        try:
            text, source = store.get_meta("spec"), store.get_meta("spec_path")
        finally:
            store.close()
        if text is None or source is None:
            raise ConfigError(f"{out_dir} holds no study file", fix="run the study again")
        spec = parse_spec(tomllib.loads(text), Path(source), text)
        return cls(spec, out_dir, device=device)

    # --------------------------------------------------------------------------- inputs

    def data(self) -> ImageSet:
        """The evaluation subset every lens looks at (class-balanced, seeded)."""
        return self.inputs.data()

    def split(self, name: str, n: int | None = None) -> ImageSet:
        """Another split of the study's data set (a seeded subset of ``n``), loaded once."""
        return self.inputs.split(name, n)

    def context(self) -> LensContext:
        """The context the study's lenses run in."""
        return self.inputs.context()

    @writes_study_folder
    def models(self, *, train: bool = True, progress: bool = False) -> list[StudyModel]:
        """Every model of the study, trained (or reused) or loaded."""
        if self._models is None:
            obtained = obtain_models(self.inputs, train=train, progress=progress)
            self._models = [m for m, _ in obtained]
        return self._models

    # ------------------------------------------------------------------------------ run

    def run(
        self,
        *,
        force: tuple[str, ...] = (),
        progress: bool = False,
        fail_fast: bool = False,
        workers: int | None = None,
        scheduler: str | None = None,
    ) -> RunSummary:
        """Train or load every model, run every lens not cached, write the report.

        The whole study is checked first, before the study folder is locked or created, so a
        study that would fail leaves nothing behind.

        A lens unit (one lens on one model, or a study-scope lens on all) that raises is
        recorded in the store with its error and the fix it suggests, and the run goes on with
        the other units (no unit depends on another's results); the report lists it and the
        claims that need it read "not computed". ``summary.failed`` names the failed units; a
        rerun retries only them (the others are cached). With ``fail_fast`` the first error
        stops the run instead, as before. A lens that does not apply to a model (e.g. the
        filter lens on an MLP) is not a failure: it is recorded as not applicable.

        With ``workers`` (a local Dask cluster of that many processes) or ``scheduler`` (the
        address of a running one), the lens units run on the cluster and this process writes
        the store (:mod:`robustlens.study.cluster`); the store is the same as a serial run's."""
        for name in force:
            if self.spec.lens(name) is None:
                raise ConfigError(
                    f"--force {name}: the study has no lens {name!r}",
                    fix=f"its lenses: {', '.join(p.name for p in self.spec.lenses) or 'none'}",
                )
        cluster.check_options(workers, scheduler)
        validate_study(self.spec)  # fails in seconds, before the first model trains
        with cluster.connect(
            workers=workers, scheduler=scheduler, device=self.inputs.device
        ) as client:
            return self._run_locked(
                force=force, progress=progress, fail_fast=fail_fast, client=client
            )

    @writes_study_folder
    def _run_locked(
        self, *, force: tuple[str, ...], progress: bool, fail_fast: bool, client: Any = None
    ) -> RunSummary:
        start = time.perf_counter()
        summary = RunSummary()
        store = Store(self.dir)
        try:
            store.sweep()
            store.set_meta("spec", self.spec.text)
            store.set_meta("spec_path", str(self.spec.source.resolve()))
            store.set_meta("versions", json.dumps(versions(), sort_keys=True))
            models: list[StudyModel] = []
            for plan in self.spec.models:  # in order: a train_on source comes first
                m, how = obtain_model(
                    plan, self.inputs, train=True, progress=progress, earlier=models
                )
                models.append(m)
                getattr(summary, how).append(plan.name)
                record_model(store, plan, m)
            self._models = models
            record = provenance(
                self.spec, device=self.inputs.device, data_fingerprint=self.data().fingerprint()
            )
            store.set_meta(PROVENANCE_KEY, json.dumps(record, sort_keys=True))
            plan = StudyPlan.of(self.spec, models, self.data().fingerprint())
            run = run_units if client is None else partial(cluster.run_units_on, client)
            for unit, how in run(
                store, plan, self.inputs, force=force, fail_fast=fail_fast, progress=progress
            ):
                if isinstance(how, UnitFailure):
                    summary.failed.append(how)
                else:
                    getattr(summary, how).append(unit.label)
            wanted = {u.key for u in plan.units}
            summary.superseded = sum(r.key not in wanted for r in store.runs())
            summary.report = build_report(
                self.results(store), self.report_path, keep_figures=store.put_figures
            )
        finally:
            store.close()
        summary.seconds = time.perf_counter() - start
        return summary

    def unit_key(self, plan: LensPlan, spec: LensSpec, group: list[StudyModel]) -> str:
        """The cache key of lens ``plan`` on ``group`` with the study's evaluation data."""
        return unit_key(plan, spec, group, self.data().fingerprint(), self.spec.seed)

    # --------------------------------------------------------------------------- reading

    def results(self, store: Store) -> Results:
        """The study's results in ``store``, for its current models (obtained, else stored)
        and evaluation data."""
        data = self.data()
        return Results(
            store,
            self.spec,
            fingerprint=data.fingerprint(),
            eval_n=len(data),
            num_classes=data.info.num_classes,
            models=self._models,
        )

    @contextmanager
    def read(self) -> Iterator[Results]:
        """The study's results, read from its store opened read-only."""
        store = Store.open_existing(self.dir)
        try:
            yield self.results(store)
        finally:
            store.close()

    @property
    def report_path(self) -> Path:
        """Where the study's HTML report is written."""
        return self.dir / REPORT_NAME

    def table(self, lens: str, name: str | None = None) -> pd.DataFrame:
        """A lens's tidy table over all current models (``name`` defaults to the lens's own)."""
        with self.read() as results:
            return results.table(lens, name)

    def write_report(self) -> Path:
        """Write the HTML report from the stored results (no model is trained)."""
        self._models = None
        with self.read() as results:
            return build_report(results, self.report_path)

    def status(self) -> dict[str, Any]:
        """What is done and what is left, without computing anything."""
        store = Store.open_existing(self.dir)
        try:
            stored = {row["name"]: row for row in store.models()}
            models = []
            for plan in self.spec.models:
                done = plan.name in stored
                if plan.source == "train":
                    done = (self.dir / "models" / plan.name / "model.safetensors").exists()
                models.append({"model": plan.name, "source": plan.source, "done": done})
            try:
                self.data()
                readable = True
            except RobustlensError:  # data gone: report what the store knows
                readable = False
            results = self.results(store) if readable else None
            lenses = []
            for plan in self.spec.lenses:
                done = failed = not_applicable = 0
                if results is not None:
                    done = len(results.runs[plan.name])
                    outcomes = results.outcomes.get(plan.name, [])
                    failed = sum(1 for o in outcomes if o.failed)
                    not_applicable = len(outcomes) - failed
                lenses.append(
                    {
                        "lens": plan.name,
                        "done": done,
                        "total": expected_units(self.spec, plan.name) - not_applicable,
                        "failed": failed,
                        "not_applicable": not_applicable,
                    }
                )
            report = self.report_path
            return {
                "study": self.spec.name,
                "dir": str(self.dir),
                "models": models,
                "lenses": lenses,
                "report": str(report) if report.exists() else None,
            }
        finally:
            store.close()
