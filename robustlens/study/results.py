"""A read-only view of one study's results store: what the claims and the report read.

:class:`Results` knows the study's models as stored, the current runs of each lens (those whose
keys match the study's current models and data), the units that failed or do not apply, and
reads tables and arrays of those runs. It has no method that writes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from robustlens.claims import ResultsView
from robustlens.errors import ConfigError
from robustlens.lenses import StudyModel
from robustlens.lenses.masking import TABLE as MASKING_TABLE
from robustlens.lenses.masking import raised_flags
from robustlens.models import ModelCard
from robustlens.study.plan import StudyPlan
from robustlens.study.provenance import PROVENANCE_KEY
from robustlens.study.spec import StudySpec
from robustlens.study.store import LensOutcome, LensRun, Store


def stored_models(store: Store, spec: StudySpec) -> list[StudyModel]:
    """The study's models as recorded in the store, in the study file's order (cards and
    digests only: no weights are needed to read results)."""
    rows = {row["name"]: row for row in store.models()}
    out = []
    for plan in spec.models:
        if plan.name in rows:
            card = ModelCard.from_dict(rows[plan.name]["card"])
            digest = rows[plan.name]["digest"]
            out.append(StudyModel(plan.name, None, card, digest, plan.setting))  # type: ignore[arg-type]
    return out


class Results:
    """The results of one study, read from its store."""

    def __init__(
        self,
        store: Store,
        spec: StudySpec,
        *,
        fingerprint: str,
        eval_n: int,
        num_classes: int,
        models: Sequence[StudyModel] | None = None,
    ) -> None:
        """``models`` are the study's obtained models (default: as stored); ``fingerprint``,
        ``eval_n`` and ``num_classes`` describe the evaluation data every lens looks at."""
        self._store = store
        self.spec = spec
        self.models: list[StudyModel] = (
            list(models) if models is not None else stored_models(store, spec)
        )
        self.plan = StudyPlan.of(spec, self.models, fingerprint)
        self.eval_n = eval_n
        self.num_classes = num_classes
        self.model_rows: dict[str, dict[str, Any]] = {row["name"]: row for row in store.models()}
        """The store's row of each model (source, parameter count, card, digest)."""
        self.runs: dict[str, list[LensRun]] = {}
        """Per lens of the study, its stored runs that belong to the current models and data."""
        for plan in spec.lenses:
            found = (store.find_run(u.key) for u in self.plan.for_lens(plan.name))
            self.runs[plan.name] = [run for run in found if run is not None]
        self.outcomes: dict[str, list[LensOutcome]] = {}
        """Per lens, the current units that failed or do not apply (no results)."""
        for unit in self.plan.units:
            outcome = store.outcome(unit.key)
            if outcome is not None and store.find_run(outcome.key) is None:
                self.outcomes.setdefault(unit.lens.name, []).append(outcome)
        self._arrays: dict[tuple[int, str], np.ndarray] = {}

    @property
    def provenance(self) -> dict[str, Any] | None:
        """What the last run recorded to reproduce it (:mod:`robustlens.study.provenance`);
        None for stores written before it was recorded."""
        text = self._store.get_meta(PROVENANCE_KEY)
        return json.loads(text) if text else None

    # ------------------------------------------------------------------------ per lens

    def current_runs(self, lens: str) -> list[LensRun]:
        """The current runs of ``lens`` (ConfigError if the study has no such lens)."""
        self.plan.lens_plan(lens)
        return list(self.runs[lens])

    def tables(self, lens: str) -> dict[str, pd.DataFrame]:
        """Every table of ``lens`` over its current runs, by name."""
        frames: dict[str, list[pd.DataFrame]] = {}
        for run in self.runs.get(lens, []):
            for name in self._store.table_names(run):
                frames.setdefault(name, []).append(self._store.table(run, name))
        return {name: pd.concat(parts, ignore_index=True) for name, parts in frames.items()}

    def table(self, lens: str, name: str | None = None) -> pd.DataFrame:
        """A lens's tidy table over all current models (``name`` defaults to the lens's own)."""
        runs = self.current_runs(lens)
        if not runs:
            raise ConfigError(f"lens {lens!r} has no results yet", fix="run the study")
        wanted = name or lens
        store = self._store
        frames = [store.table(run, wanted) for run in runs if wanted in store.table_names(run)]
        if not frames:
            available = sorted({t for run in runs for t in store.table_names(run)})
            raise ConfigError(
                f"lens {lens!r} has no table {wanted!r}", fix=f"tables: {', '.join(available)}"
            )
        return pd.concat(frames, ignore_index=True)

    def array_names(self, lens: str, model: str) -> list[str]:
        """Names of the arrays ``lens`` stored for ``model`` (or for all models)."""
        return sorted(
            name
            for run in self.runs.get(lens, [])
            if run.scope_model in (model, None)
            for name in self._store.array_names(run)
        )

    def array(self, lens: str, model: str, name: str) -> np.ndarray | None:
        """An array ``lens`` stored for ``model`` (read once), or None."""
        for run in self.runs.get(lens, []):
            if run.scope_model not in (model, None):
                continue
            if name not in self._store.array_names(run):
                continue
            key = (run.id, name)
            if key not in self._arrays:
                self._arrays[key] = self._store.array(run, name)
            return self._arrays[key]
        return None

    def cached_figures(self, lens: str, source: str) -> list[tuple[str, bytes]] | None:
        """The figures of ``lens`` stored for the figure source ``source``, if any."""
        return self._store.cached_figures(lens, source)

    def coverage(self) -> dict[str, set[str]]:
        """Per lens, the names of the models it looks at."""
        return {
            plan.name: {m.name for m in self.models if plan.covers(m.name)}
            for plan in self.spec.lenses
        }

    def masking_flags(self) -> dict[str, list[str]]:
        """Per model, the gradient-masking flags the ``masking`` lens raised on it (none when
        the study does not run that lens or it has no results yet)."""
        if not self.runs.get("masking"):
            return {}
        frame = self.tables("masking").get(MASKING_TABLE)
        return {} if frame is None else raised_flags(frame)

    # ------------------------------------------------------------------------ for claims

    def view(self) -> ResultsView:
        """The claims' view: per-model arrays, the lenses with results, and per lens its
        failed units and the models it does not apply to."""
        view = ResultsView(
            self.models,
            self.array,
            {lens for lens, found in self.runs.items() if found},
            self.eval_n,
            self.num_classes,
            names=self.array_names,
            coverage=self.coverage(),
        )
        view.planned = {plan.name for plan in self.spec.lenses}
        view.masking = self.masking_flags()
        for lens, found in self.outcomes.items():
            for o in found:
                where = o.scope_model or "all models"
                if o.failed:
                    view.failed.setdefault(lens, []).append(f"{where}: {o.error}: {o.message}")
                else:
                    view.not_applicable.setdefault(lens, {})[where] = o.message
                    if lens in view.coverage:
                        view.coverage[lens].discard(where)
        return view
