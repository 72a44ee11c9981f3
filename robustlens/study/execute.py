"""Execute a study: obtain its models, then run its lens units into the results store.

Models are trained by their recipe (or reused when their folder holds the same training),
loaded from a checkpoint, foreign weights or an adapter, or trained on a constructed set made
against an earlier model (:mod:`robustlens.constructed`). Each lens unit of the
:class:`~robustlens.study.plan.StudyPlan` then runs unless the store holds its key; a unit that
raises is recorded with its error and the others go on (unless ``fail_fast``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import robustlens.constructed as constructed
import robustlens.train as training
from robustlens.constructed import ConstructedSet
from robustlens.data import ImageSet
from robustlens.errors import ConfigError, RobustlensError
from robustlens.lenses import LensContext, StudyModel
from robustlens.lenses.base import LensNotApplicable
from robustlens.models import (
    ModelCard,
    build_model,
    load_adapter,
    load_checkpoint,
    load_foreign_weights,
    model_digest,
)
from robustlens.progress import progress_bar
from robustlens.runtime import derive_seed, seed_everything, versions
from robustlens.study.inputs import StudyInputs
from robustlens.study.plan import StudyPlan, Unit, params_dict
from robustlens.study.spec import ModelPlan
from robustlens.study.store import Store

log = logging.getLogger(__name__)

OBTAINED = ("trained", "reused", "loaded")
"""How a model was obtained."""
RAN = ("computed", "cached", "not_applicable")
"""How a lens unit went when it did not fail."""


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


# ------------------------------------------------------------------------------ models


def obtain_models(
    inputs: StudyInputs, *, train: bool = True, progress: bool = False
) -> list[tuple[StudyModel, str]]:
    """Every model of the study in order (a ``train_on`` source comes first), with how it was
    obtained (one of :data:`OBTAINED`). Without ``train``, a model not trained yet is an
    error."""
    obtained: list[tuple[StudyModel, str]] = []
    for plan in inputs.spec.models:
        earlier = [m for m, _ in obtained]
        obtained.append(obtain_model(plan, inputs, train=train, progress=progress, earlier=earlier))
    return obtained


def record_model(store: Store, plan: ModelPlan, model: StudyModel) -> None:
    """Write an obtained model (digest, card, source, size) to the store."""
    store.put_model(
        model.name,
        model.digest,
        model.card.to_json(),
        str(plan.path or ""),
        plan.source,
        sum(p.numel() for p in model.model.parameters()),
    )


def obtain_model(
    plan: ModelPlan,
    inputs: StudyInputs,
    *,
    train: bool,
    progress: bool,
    earlier: list[StudyModel],
) -> tuple[StudyModel, str]:
    """The model of ``plan`` and how it was obtained: "trained", "reused" or "loaded"."""
    spec = inputs.spec
    if plan.source == "train":
        folder = inputs.dir / "models" / plan.name
        final = folder / "model.safetensors"
        if not train and not final.exists():
            raise ConfigError(f"model {plan.name} has not been trained yet", fix="run the study")
        train_set = inputs.split("train", plan.train_n or spec.train_n)
        trained_on = None
        if plan.train_on is not None:
            train_set, trained_on = _constructed(plan, inputs, train_set, earlier, train)
        seed_everything(plan.recipe.seed)
        net = build_model(plan.arch, train_set.info, **plan.arch_kwargs)
        result = training.train_model(
            net,
            train_set,
            plan.recipe,
            folder,
            eval_set=inputs.data(),
            device=inputs.device,
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
        model, card = load_foreign_weights(plan.path, plan.arch, spec.dataset, **plan.arch_kwargs)
    else:
        model = load_adapter(plan.adapter)
        card = _adapter_card(model, plan.adapter, spec.dataset)
    if plan.source != "train":
        how = "loaded"
    digest = card.weights_sha256 or model_digest(model)
    model = model.to(inputs.device).eval()
    return StudyModel(plan.name, model, card, digest, plan.setting), how


def _constructed(
    plan: ModelPlan,
    inputs: StudyInputs,
    train_set: ImageSet,
    earlier: list[StudyModel],
    build: bool,
) -> tuple[ImageSet, dict[str, Any]]:
    """The constructed training set ``plan.train_on`` asks for, made from ``train_set``
    against an earlier model and kept (resumably) in ``<study>/constructed/``, and what
    the model's card records of it: the set's checks, and for a targeted set with a
    ``leakage_model`` the robust feature leakage that model measures (§3.2)."""
    request = plan.train_on
    assert request is not None
    kind, source_name, options = request.set, request.source, request.options
    source = _earlier(plan, source_name, earlier, "trains on a set made against")
    key = hashlib.sha256(  # the leakage model is a check, not part of the set's key
        json.dumps([kind, source.digest, train_set.fingerprint(), options], sort_keys=True).encode()
    ).hexdigest()[:12]
    folder = inputs.dir / "constructed" / f"{kind}-{source_name}-{key}"
    info = train_set.info
    seed = inputs.spec.seed
    if (folder / "card.json").is_file():
        made = constructed.load_set(folder, dataset=info.name, shape=tuple(info.shape))
    elif not build:
        raise ConfigError(
            f"the {kind} set for model {plan.name} is not built yet", fix="run the study"
        )
    elif kind == "robustified":
        log.info("robustifying %d training images against %s", len(train_set), source_name)
        made = constructed.build_robustified(
            folder, source.model, train_set, model_digest=source.digest, seed=seed, **options
        )
    else:
        log.info("building the %s set from %d images against %s", kind, len(train_set), source_name)
        made = constructed.build_targeted(
            folder, source.model, train_set, kind, model_digest=source.digest, seed=seed,
            **options,
        )  # fmt: skip
    record: dict[str, Any] = {
        "set": kind,
        "source": source_name,
        "folder": str(folder.relative_to(inputs.dir)),
        "statistics": made.card.get("statistics", {}),
    }
    if kind == "robustified":
        record["seed_mode"] = made.card.get("seed_mode", "other-image")
    if request.leakage_model is not None:
        checker = _earlier(plan, request.leakage_model, earlier, "checks its set for leakage with")
        record["leakage"] = _leakage(folder, made, train_set, checker)
    return made.as_imageset(info), record


def _earlier(plan: ModelPlan, name: str, earlier: list[StudyModel], role: str) -> StudyModel:
    """The already obtained model ``name`` that ``plan``'s training set needs."""
    found = next((m for m in earlier if m.name == name), None)
    if found is None:
        raise ConfigError(
            f"model {plan.name} {role} {name!r}, which is not obtained before it",
            fix=f"list {name} before {plan.name}",
        )
    return found


def _leakage(
    folder: Path, made: ConstructedSet, train_set: ImageSet, checker: StudyModel
) -> dict[str, Any]:
    """Robust feature leakage of a targeted set (Springer et al. §3.2): the share of it a
    robust model calls ŷ (its new label) and y (its source image's label). Measured once
    per robust model and kept on the set's card; the set itself is not touched."""
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
        **constructed.leakage(checker.model, made.images, made.labels, original),
    }
    made.card = constructed.update_card(folder, {"leakage": measured})
    return measured


def _adapter_card(model: Any, spec: str, dataset: str) -> ModelCard:
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


# ------------------------------------------------------------------------------- units


def run_units(
    store: Store,
    plan: StudyPlan,
    inputs: StudyInputs,
    *,
    force: tuple[str, ...] = (),
    fail_fast: bool = False,
    progress: bool = False,
) -> list[tuple[Unit, str | UnitFailure]]:
    """Run every unit of ``plan`` (lenses named in ``force`` even when cached) and say how
    each went: one of :data:`RAN`, or its failure (recorded in the store)."""
    data, ctx, seed = inputs.data(), inputs.context(), inputs.spec.seed
    done: list[tuple[Unit, str | UnitFailure]] = []
    with progress_bar(progress, total=len(plan.units), description="lenses") as advance:
        for unit in plan.units:
            forced = unit.lens.name in force
            how = keep_going(store, unit, data, ctx, force=forced, fail_fast=fail_fast, seed=seed)
            done.append((unit, how))
            advance(1)
    return done


def keep_going(
    store: Store,
    unit: Unit,
    data: ImageSet,
    ctx: LensContext,
    *,
    force: bool,
    fail_fast: bool,
    seed: int,
) -> str | UnitFailure:
    """Run one unit and say how it went: "computed", "cached", "not_applicable", or the
    failure (recorded in the store) unless ``fail_fast``, where errors propagate."""
    return settle(
        store,
        unit,
        lambda: run_unit(store, unit, data, ctx, force, seed),
        force=force,
        fail_fast=fail_fast,
    )


def settle(
    store: Store, unit: Unit, work: Callable[[], bool], *, force: bool, fail_fast: bool
) -> str | UnitFailure:
    """Check that ``unit``'s lens applies, then do ``work`` (which says whether the unit ran
    or was cached) and say how it went, recording what the store keeps of it. A unit kept as
    not applicable is not tried again unless ``force``."""
    kept = store.outcome(unit.key)
    if kept is not None and kept.status == "not-applicable" and not force:
        return "not_applicable"

    def checked() -> bool:
        if unit.spec.scope == "model":
            unit.spec.check_applicable(unit.models[0], unit.lens.params)
        return work()

    how = guarded(store, unit, checked, fail_fast=fail_fast)
    if kept is not None and how in ("computed", "cached"):
        store.clear_outcome(unit.key)
    return how


def guarded(
    store: Store, unit: Unit, work: Callable[[], bool], *, fail_fast: bool
) -> str | UnitFailure:
    """Do ``work`` for ``unit``: "computed" or "cached" as it says; a lens that does not
    apply is recorded as such ("not_applicable"); any other error is recorded as the unit's
    failure and returned, unless ``fail_fast``, where it propagates."""
    spec, key, scope_model = unit.spec, unit.key, unit.scope_model
    try:
        done = work()
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
        log.error("lens %s failed: %s: %s", unit.label, type(exc).__name__, problem,
                  exc_info=not isinstance(exc, RobustlensError))  # fmt: skip
        store.record_outcome(
            key=key, lens=spec.name, scope_model=scope_model, status="failed",
            error=type(exc).__name__, message=problem or repr(exc), fix=fix,
        )  # fmt: skip
        return UnitFailure(unit.label, type(exc).__name__, problem or repr(exc), fix)
    return "computed" if done else "cached"


@dataclass
class UnitRun:
    """What one lens unit computed, ready for the store: its tables, its arrays (in memory,
    or already written into the study folder by :func:`~robustlens.study.store.write_array`:
    ``staged``, name → path and sha256), its notes and timing."""

    tables: dict[str, pd.DataFrame]
    arrays: dict[str, np.ndarray]
    notes: list[str]
    started: float
    seconds: float
    staged: dict[str, tuple[str, str]] = field(default_factory=dict)


def compute_unit(unit: Unit, data: ImageSet, ctx: LensContext, seed: int) -> UnitRun:
    """Run one unit's lens (seeded by the study seed, the lens and the unit's model, so the
    result depends on nothing else: not the order of units, nor the process running it)."""
    spec, scope_model = unit.spec, unit.scope_model
    seed_everything(derive_seed(seed, spec.name, scope_model or "all"))
    started = time.time()
    t0 = time.perf_counter()
    result = spec.run(unit.target, data, unit.lens.params, ctx)
    seconds = time.perf_counter() - t0
    log.info("lens %s on %s: %.1f s", spec.name, scope_model or "all models", seconds)
    return UnitRun(result.tables, result.arrays, result.notes, started, seconds)


def write_unit(store: Store, unit: Unit, fingerprint: str, run: UnitRun) -> None:
    """Write a computed unit to the store (in one transaction)."""
    store.write_run(
        key=unit.key,
        lens=unit.spec.name,
        scope_model=unit.scope_model,
        params=params_dict(unit.lens.params),
        model_digests=unit.digests,
        data_fingerprint=fingerprint,
        versions=versions(),
        notes=run.notes,
        started=run.started,
        seconds=run.seconds,
        tables=run.tables,
        arrays=run.arrays,
        staged=run.staged,
    )


def run_unit(
    store: Store, unit: Unit, data: ImageSet, ctx: LensContext, force: bool, seed: int
) -> bool:
    """Run one lens on one model (or on all, for study-scope lenses) unless cached; whether
    it ran."""
    if not force and store.find_run(unit.key) is not None:
        return False
    write_unit(store, unit, data.fingerprint(), compute_unit(unit, data, ctx, seed))
    return True
