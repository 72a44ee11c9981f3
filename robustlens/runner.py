"""Run a study: train or load its models, run each lens (cached), check claims, write the report.

``Study.from_file("studies/quickstart.toml").run()`` does it all;
``Study.open("runs/quickstart").table("activations")`` reads results back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch

from robustlens.data import ImageSet, load_dataset
from robustlens.errors import ConfigError, RobustlensError
from robustlens.lenses import LENSES, LensContext, LensSpec, StudyModel
from robustlens.lenses.base import LensNotApplicable
from robustlens.models import (
    load_adapter,
    load_checkpoint,
    load_foreign_weights,
    model_digest,
)
from robustlens.progress import progress_bar
from robustlens.report.builder import ReportInputs, build_report
from robustlens.runtime import default_device, seed_everything, versions
from robustlens.study.lock import writes_study_folder
from robustlens.study.spec import LensPlan, ModelPlan, StudySpec, load_spec, parse_spec
from robustlens.study.store import LensOutcome, LensRun, Store, run_key
from robustlens.study.validate import validate_study

if TYPE_CHECKING:
    from robustlens.constructed import ConstructedSet

log = logging.getLogger(__name__)

REPORT_NAME = "report.html"


def evaluation_split(splits: tuple[str, ...]) -> str:
    """The held-out split lenses look at: test, else val, else the only one."""
    for name in ("test", "val", "valid", "all"):
        if name in splits:
            return name
    return splits[-1]


def lens_seed(seed: int, *parts: str) -> int:
    """A seed for one lens computation that does not depend on what else runs."""
    digest = hashlib.sha256("|".join((str(seed), *parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little")


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
    report: Path | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether every lens unit ran, was cached or does not apply."""
        return not self.failed


@dataclass
class UnitFailure:
    """A lens unit that failed: ``unit`` is ``lens:model`` (``lens:all`` for study scope)."""

    unit: str
    error: str
    message: str
    fix: str = ""

    def text(self) -> str:
        return f"{self.unit}: {self.error}: {self.message}" + (
            f" (fix: {self.fix})" if self.fix else ""
        )


class Study:
    """A study file bound to its output directory."""

    def __init__(self, spec: StudySpec, out_dir: str | Path, *, device: str | None = None) -> None:
        self.spec = spec
        self.dir = Path(out_dir)
        self.device = torch.device(device) if device else default_device()
        self._data: ImageSet | None = None
        self._models: list[StudyModel] | None = None
        self._splits: dict[tuple[str, int | None], ImageSet] = {}

    # -------------------------------------------------------------------------- building

    @classmethod
    def from_file(
        cls, path: str | Path, out_dir: str | Path | None = None, *, device: str | None = None
    ) -> Study:
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
        import tomllib

        spec = parse_spec(tomllib.loads(text), Path(source), text)
        return cls(spec, out_dir, device=device)

    # --------------------------------------------------------------------------- inputs

    def data(self) -> ImageSet:
        """The evaluation subset every lens looks at (class-balanced, seeded)."""
        if self._data is None:
            from robustlens.data import dataset_info

            info = dataset_info(self.spec.dataset, root=self.spec.data_root)
            split = evaluation_split(info.splits)
            self._data = load_dataset(
                self.spec.dataset,
                split,
                n=self.spec.eval_n,
                seed=self.spec.eval_seed,
                root=self.spec.data_root,
            )
        return self._data

    def split(self, name: str, n: int | None = None) -> ImageSet:
        """Another split of the study's data set (a seeded subset of ``n``), loaded once."""
        key = (name, n)
        if key not in self._splits:
            spec = self.spec
            self._splits[key] = load_dataset(
                spec.dataset, name, n=n, seed=spec.seed, root=spec.data_root
            )
        return self._splits[key]

    def context(self) -> LensContext:
        return LensContext(
            info=self.data().info,
            seed=self.spec.seed,
            device=self.device,
            load_split=self.split,
            sets=self.dir / "constructed",
        )

    @writes_study_folder
    def models(self, *, train: bool = True, progress: bool = False) -> list[StudyModel]:
        """Every model of the study, trained (or reused) or loaded."""
        if self._models is None:
            obtained: list[StudyModel] = []
            for plan in self.spec.models:  # in order: a train_on source comes first
                obtained.append(self._obtain(plan, train, progress, obtained)[0])
            self._models = obtained
        return self._models

    def _obtain(
        self,
        plan: ModelPlan,
        train: bool,
        progress: bool,
        earlier: list[StudyModel] | None = None,
    ) -> tuple[StudyModel, str]:
        """The model of ``plan`` and how it was obtained: "trained", "reused" or "loaded"."""
        from robustlens.models import build_model
        from robustlens.train import train_model

        if plan.source == "train":
            folder = self.dir / "models" / plan.name
            final = folder / "model.safetensors"
            if not train and not final.exists():
                raise ConfigError(
                    f"model {plan.name} has not been trained yet", fix="run the study"
                )
            train_set = self.split("train", plan.train_n or self.spec.train_n)
            trained_on = None
            if plan.train_on is not None:
                train_set, trained_on = self._constructed(plan, train_set, earlier or [], train)
            seed_everything(plan.recipe.seed)
            net = build_model(plan.arch, train_set.info, **plan.arch_kwargs)
            result = train_model(
                net,
                train_set,
                plan.recipe,
                folder,
                eval_set=self.data(),
                device=self.device,
                progress=progress,
                replace=True,  # the study owns its model folders: an edited recipe retrains
            )
            model, card = result.model, result.card
            if trained_on is not None:
                card.source = {"train_on": trained_on}
            how = "reused" if result.reused else "trained"
        elif plan.source == "checkpoint":
            model, card = load_checkpoint(plan.path)
        elif plan.source == "foreign":
            model, card = load_foreign_weights(
                plan.path, plan.arch, self.spec.dataset, **plan.arch_kwargs
            )
        else:
            model = load_adapter(plan.adapter)
            card = _adapter_card(model, plan.adapter, self.spec.dataset)
        if plan.source != "train":
            how = "loaded"
        digest = card.weights_sha256 or model_digest(model)
        model = model.to(self.device).eval()
        return StudyModel(plan.name, model, card, digest), how

    def _constructed(
        self, plan: ModelPlan, train_set: ImageSet, earlier: list[StudyModel], build: bool
    ) -> tuple[ImageSet, dict[str, Any]]:
        """The constructed training set ``plan.train_on`` asks for, made from ``train_set``
        against an earlier model and kept (resumably) in ``<study>/constructed/``, and what
        the model's card records of it: the set's checks, and for a targeted set with a
        ``leakage_model`` the robust feature leakage that model measures (§3.2)."""
        from robustlens.constructed import build_robustified, build_targeted, load_set

        spec = dict(plan.train_on or {})
        kind, source_name = spec.pop("set"), spec.pop("source")
        leakage_name = spec.pop("leakage_model", None)  # a check: not part of the set's key
        source = self._earlier(plan, source_name, earlier, "trains on a set made against")
        key = hashlib.sha256(
            json.dumps(
                [kind, source.digest, train_set.fingerprint(), spec], sort_keys=True
            ).encode()
        ).hexdigest()[:12]
        folder = self.dir / "constructed" / f"{kind}-{source_name}-{key}"
        info = train_set.info
        if (folder / "card.json").is_file():
            made = load_set(folder, dataset=info.name, shape=tuple(info.shape))
        elif not build:
            raise ConfigError(
                f"the {kind} set for model {plan.name} is not built yet", fix="run the study"
            )
        elif kind == "robustified":
            log.info("robustifying %d training images against %s", len(train_set), source_name)
            made = build_robustified(
                folder, source.model, train_set, model_digest=source.digest, seed=self.spec.seed,
                **spec,
            )  # fmt: skip
        else:
            log.info(
                "building the %s set from %d images against %s", kind, len(train_set), source_name
            )
            made = build_targeted(
                folder, source.model, train_set, kind, model_digest=source.digest,
                seed=self.spec.seed, **spec,
            )  # fmt: skip
        record: dict[str, Any] = {
            "set": kind,
            "source": source_name,
            "folder": str(folder.relative_to(self.dir)),
            "statistics": made.card.get("statistics", {}),
        }
        if kind == "robustified":
            record["seed_mode"] = made.card.get("seed_mode", "other-image")
        if leakage_name is not None:
            checker = self._earlier(plan, leakage_name, earlier, "checks its set for leakage with")
            record["leakage"] = self._leakage(folder, made, train_set, checker)
        return made.as_imageset(info), record

    @staticmethod
    def _earlier(plan: ModelPlan, name: str, earlier: list[StudyModel], role: str) -> StudyModel:
        """The already obtained model ``name`` that ``plan``'s training set needs."""
        found = next((m for m in earlier if m.name == name), None)
        if found is None:
            raise ConfigError(
                f"model {plan.name} {role} {name!r}, which is not obtained before it",
                fix=f"list {name} before {plan.name}",
            )
        return found

    @staticmethod
    def _leakage(
        folder: Path, made: ConstructedSet, train_set: ImageSet, checker: StudyModel
    ) -> dict[str, Any]:
        """Robust feature leakage of a targeted set (Springer et al. §3.2): the share of it a
        robust model calls ŷ (its new label) and y (its source image's label). Measured once
        per robust model and kept on the set's card; the set itself is not touched."""
        from robustlens.constructed.sets import update_card
        from robustlens.constructed.targeted import leakage

        kept = made.card.get("leakage") or {}
        if kept.get("digest") == checker.digest and kept.get("model") == checker.name:
            return kept
        if not checker.is_robust:
            log.warning(
                "leakage model %s is not recorded as adversarially trained: its leakage "
                "numbers may not isolate robust features",
                checker.name,
            )
        original = train_set.labels.cpu()[made.seeds.long()]
        measured = {
            "model": checker.name,
            "digest": checker.digest,
            **leakage(checker.model, made.images, made.labels, original),
        }
        made.card = update_card(folder, {"leakage": measured})
        return measured

    # ------------------------------------------------------------------------------ run

    def run(
        self, *, force: tuple[str, ...] = (), progress: bool = False, fail_fast: bool = False
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
        filter lens on an MLP) is not a failure: it is recorded as not applicable."""
        for name in force:
            if self.spec.lens(name) is None:
                raise ConfigError(
                    f"--force {name}: the study has no lens {name!r}",
                    fix=f"its lenses: {', '.join(p.name for p in self.spec.lenses) or 'none'}",
                )
        validate_study(self.spec)  # fails in seconds, before the first model trains
        return self._run_locked(force=force, progress=progress, fail_fast=fail_fast)

    @writes_study_folder
    def _run_locked(self, *, force: tuple[str, ...], progress: bool, fail_fast: bool) -> RunSummary:
        start = time.perf_counter()
        summary = RunSummary()
        store = Store(self.dir)
        try:
            store.sweep()
            store.set_meta("spec", self.spec.text)
            store.set_meta("spec_path", str(self.spec.source.resolve()))
            store.set_meta("versions", _json(versions()))
            models = []
            for plan in self.spec.models:
                m, how = self._obtain(plan, True, progress, models)
                models.append(m)
                getattr(summary, how).append(plan.name)
                store.put_model(
                    m.name,
                    m.digest,
                    m.card.to_json(),
                    str(plan.path or ""),
                    plan.source,
                    sum(p.numel() for p in m.model.parameters()),
                )
            self._models = models
            data = self.data()
            ctx = self.context()
            units = self._units(models)
            with progress_bar(progress, total=len(units), description="lenses") as advance:
                for plan, spec, group in units:
                    label = f"{plan.name}:{group[0].name if spec.scope == 'model' else 'all'}"
                    how = self._keep_going(
                        store, plan, spec, group, data, ctx, plan.name in force, fail_fast, label
                    )
                    if isinstance(how, UnitFailure):
                        summary.failed.append(how)
                    else:
                        getattr(summary, how).append(label)
                    advance(1)
            summary.report = build_report(self._report_inputs(store), store, self.report_path)
        finally:
            store.close()
        summary.seconds = time.perf_counter() - start
        return summary

    def _units(self, models: list[StudyModel]) -> list[tuple[LensPlan, LensSpec, list[StudyModel]]]:
        units = []
        for plan in self.spec.lenses:
            spec = LENSES.get(plan.name)
            chosen = [m for m in models if plan.covers(m.name)]
            if spec.scope == "model":
                units += [(plan, spec, [m]) for m in chosen]
            elif chosen:
                units.append((plan, spec, chosen))
        return units

    def unit_key(self, plan: LensPlan, spec: LensSpec, group: list[StudyModel]) -> str:
        return run_key(
            spec.name,
            spec.version,
            params_dict(plan.params),
            {m.name: m.digest for m in group},
            self.data().fingerprint(),
        )

    def _keep_going(
        self,
        store: Store,
        plan: LensPlan,
        spec: LensSpec,
        group: list[StudyModel],
        data: ImageSet,
        ctx: LensContext,
        force: bool,
        fail_fast: bool,
        label: str,
    ) -> str | UnitFailure:
        """Run one unit and say how it went: "computed", "cached", "not_applicable", or the
        failure (recorded in the store) unless ``fail_fast``, where errors propagate."""
        key = self.unit_key(plan, spec, group)
        scope_model = group[0].name if spec.scope == "model" else None
        kept = store.outcome(key)
        if kept is not None and kept.status == "not-applicable" and not force:
            return "not_applicable"
        try:
            if spec.scope == "model":
                spec.check_applicable(group[0], plan.params)
            done = self._run_unit(store, plan, spec, group, data, ctx, force)
        except LensNotApplicable as exc:
            log.info("lens %s does not apply to %s: %s", spec.name, scope_model, exc.problem)
            store.record_outcome(
                key=key, lens=spec.name, scope_model=scope_model, status="not-applicable",
                error=type(exc).__name__, message=exc.problem, fix=exc.fix or "",
            )  # fmt: skip
            return "not_applicable"
        except Exception as exc:  # keep going: record it and run the other units
            if fail_fast:
                raise
            problem = exc.problem if isinstance(exc, RobustlensError) else str(exc)
            fix = (exc.fix or "") if isinstance(exc, RobustlensError) else ""
            log.error("lens %s failed: %s: %s", label, type(exc).__name__, problem,
                      exc_info=not isinstance(exc, RobustlensError))  # fmt: skip
            store.record_outcome(
                key=key, lens=spec.name, scope_model=scope_model, status="failed",
                error=type(exc).__name__, message=problem or repr(exc), fix=fix,
            )  # fmt: skip
            return UnitFailure(label, type(exc).__name__, problem or repr(exc), fix)
        if kept is not None:
            store.clear_outcome(key)
        return "computed" if done else "cached"

    def _run_unit(
        self,
        store: Store,
        plan: LensPlan,
        spec: LensSpec,
        group: list[StudyModel],
        data: ImageSet,
        ctx: LensContext,
        force: bool,
    ) -> bool:
        """Run one lens on one model (or on all, for study-scope lenses) unless cached."""
        key = self.unit_key(plan, spec, group)
        if not force and store.find_run(key) is not None:
            return False
        scope_model = group[0].name if spec.scope == "model" else None
        seed_everything(lens_seed(self.spec.seed, spec.name, scope_model or "all"))
        started = time.time()
        t0 = time.perf_counter()
        target = group[0] if spec.scope == "model" else group
        result = spec.run(target, data, plan.params, ctx)
        seconds = time.perf_counter() - t0
        store.write_run(
            key=key,
            lens=spec.name,
            scope_model=scope_model,
            params=params_dict(plan.params),
            model_digests={m.name: m.digest for m in group},
            data_fingerprint=data.fingerprint(),
            versions=versions(),
            notes=result.notes,
            started=started,
            seconds=seconds,
            tables=result.tables,
            arrays=result.arrays,
        )
        log.info("lens %s on %s: %.1f s", spec.name, scope_model or "all models", seconds)
        return True

    # --------------------------------------------------------------------------- reading

    def current_runs(self, store: Store, lens: str) -> list[LensRun]:
        """The stored runs of ``lens`` that belong to the study's current models and data."""
        plan = self.spec.lens(lens)
        if plan is None:
            raise ConfigError(
                f"the study has no lens {lens!r}",
                fix=f"its lenses: {', '.join(p.name for p in self.spec.lenses) or 'none'}",
            )
        spec = LENSES.get(lens)
        runs = []
        for _, _, group in (
            u for u in self._units(self._stored_models(store)) if u[0].name == lens
        ):
            run = store.find_run(self.unit_key(plan, spec, group))
            if run is not None:
                runs.append(run)
        return runs

    @property
    def report_path(self) -> Path:
        """Where the study's HTML report is written."""
        return self.dir / REPORT_NAME

    def _report_inputs(self, store: Store) -> ReportInputs:
        """What the report is built from: the stored models and, per lens, the current runs and
        the current units that failed or do not apply."""
        models = self._stored_models(store)
        runs = {plan.name: self.current_runs(store, plan.name) for plan in self.spec.lenses}
        outcomes: dict[str, list[LensOutcome]] = {}
        for plan, spec, group in self._units(models):
            found = store.outcome(self.unit_key(plan, spec, group))
            if found is not None and store.find_run(found.key) is None:
                outcomes.setdefault(plan.name, []).append(found)
        data = self.data()
        return ReportInputs(self.spec, models, runs, outcomes, len(data), data.info.num_classes)

    def _stored_models(self, store: Store) -> list[StudyModel]:
        """Models as recorded in the store (no weights needed for reading tables)."""
        if self._models is not None:
            return self._models
        from robustlens.models import ModelCard

        rows = {row["name"]: row for row in store.models()}
        out = []
        for plan in self.spec.models:
            if plan.name in rows:
                row = rows[plan.name]
                card = ModelCard.from_dict(row["card"])
                out.append(StudyModel(plan.name, None, card, row["digest"]))  # type: ignore[arg-type]
        return out

    def table(self, lens: str, name: str | None = None) -> pd.DataFrame:
        """A lens's tidy table over all current models (``name`` defaults to the lens's own)."""
        store = Store.open_existing(self.dir)
        try:
            runs = self.current_runs(store, lens)
            if not runs:
                raise ConfigError(f"lens {lens!r} has no results yet", fix="run the study")
            wanted = name or lens
            frames = [store.table(run, wanted) for run in runs if wanted in store.table_names(run)]
            if not frames:
                available = sorted({t for run in runs for t in store.table_names(run)})
                raise ConfigError(
                    f"lens {lens!r} has no table {wanted!r}", fix=f"tables: {', '.join(available)}"
                )
            return pd.concat(frames, ignore_index=True)
        finally:
            store.close()

    def write_report(self) -> Path:
        """Write the HTML report from the stored results (no model is trained)."""
        store = Store.open_existing(self.dir)
        try:
            self._models = None
            return build_report(self._report_inputs(store), store, self.report_path)
        finally:
            store.close()

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
            lenses = []
            known = self._stored_models(store)
            data_fp = None
            try:
                data_fp = self.data().fingerprint()
            except RobustlensError:  # data gone: report what the store knows
                data_fp = None
            for plan in self.spec.lenses:
                spec = LENSES.get(plan.name)
                chosen = [m for m in known if plan.covers(m.name)]
                groups = [[m] for m in chosen] if spec.scope == "model" else [chosen]
                done = failed = not_applicable = 0
                for group in groups:
                    if data_fp is None:
                        continue
                    key = self.unit_key(plan, spec, group)
                    outcome = store.outcome(key)
                    if store.find_run(key):
                        done += 1
                    elif outcome is not None and outcome.failed:
                        failed += 1
                    elif outcome is not None:
                        not_applicable += 1
                covered = [m for m in self.spec.models if plan.covers(m.name)]
                expected = (len(covered) if spec.scope == "model" else 1) - not_applicable
                lenses.append(
                    {
                        "lens": plan.name,
                        "done": done,
                        "total": expected,
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


def params_dict(params: Any) -> dict[str, Any]:
    return dataclasses.asdict(params) if dataclasses.is_dataclass(params) else dict(params)


def _json(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True)


def _adapter_card(model, spec: str, dataset: str):
    from robustlens.models import ModelCard

    mean, std = model.normalize.statistics()
    return ModelCard(
        arch="adapter",
        arch_kwargs={},
        num_classes=model.num_classes,
        input_shape=model.input_shape,
        mean=mean,
        std=std,
        dataset=dataset,
        source=spec,
    )
