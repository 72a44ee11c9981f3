"""Assemble a study's report from its store: model cards, claim verdicts, lens sections.

The runner reads what the report needs from the store into a :class:`ReportInputs` and hands it
over; nothing here imports the runner (the arrow points one way: runner → report builder).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from robustlens.claims import ResultsView, evaluate_claims
from robustlens.lenses import LENSES, StudyModel
from robustlens.report.document import (
    ClaimRow,
    FigureBlock,
    LensSection,
    ModelRow,
    ReportDocument,
    TableBlock,
)
from robustlens.runtime import versions
from robustlens.study.spec import StudySpec
from robustlens.study.store import LensOutcome, LensRun, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportInputs:
    """What a report is built from, read from the store by the runner."""

    spec: StudySpec
    models: list[StudyModel]
    """The study's models as recorded in the store, in the study file's order."""
    runs: dict[str, list[LensRun]]
    """Per lens of the study, its stored runs that belong to the current models and data."""
    outcomes: dict[str, list[LensOutcome]]
    """Per lens, the current units that failed or do not apply (no results)."""
    eval_n: int
    """The number of evaluation images every lens looks at."""
    num_classes: int


def how_trained(card_recipe: dict[str, Any] | None, source: str) -> str:
    """One line on how a model came about, e.g. ``PGD-7 L∞ ε=0.1, 10 epochs``."""
    if not card_recipe:
        return f"loaded ({source})"
    r = card_recipe
    count = r.get("epochs")
    epochs = f"{count} epoch{'s' if count != 1 else ''}, {r.get('schedule', '')} lr {r.get('lr')}"
    data = r.get("data", {})
    n = f", {data['n']} training images" if data.get("n") else ""
    if r.get("method", "natural") == "natural":
        return f"natural, {epochs}{n}"
    norm = {"linf": "L∞", "l2": "L2", "l1": "L1"}.get(r.get("norm"), r.get("norm"))
    method = "FGSM-RS" if r["method"] == "fgsm-rs" else f"PGD-{r.get('steps')}"
    return f"{method} {norm} ε={r.get('eps'):g}, {epochs}{n}"


def _constructed_note(train_on: dict[str, Any] | None) -> str:
    """How a model's constructed training set came out (Springer et al. §3.2–3.3), e.g.
    ``, on the zero-robust set made against natural (91 % of targets reached)`` or, for a
    robustified set, its seed mode, the relative representation distance reached and the
    source model's accuracy on it; with the robust feature leakage check when it was made.
    '' for a model trained on its data set's own split."""
    if not train_on:
        return ""
    names = {"zero": "zero-robust", "zero-all": "zero-robust (every target)",
             "negative": "negative-robust"}  # fmt: skip
    kind = names.get(train_on.get("set"), train_on.get("set"))
    source = train_on.get("source")
    stats = train_on.get("statistics") or {}
    checks = []
    rate = stats.get("attack_success_rate")
    if rate is not None:
        checks.append(f"{100 * rate:.0f} % of targets reached")
    if train_on.get("set") == "robustified":
        if train_on.get("seed_mode"):
            checks.append(f"{train_on['seed_mode']} seeds")
        mean, median = stats.get("relative_distance_mean"), stats.get("relative_distance_median")
        if mean is not None and median is not None:
            checks.append(
                f"relative representation distance reached: mean {mean:.3g}, median {median:.3g}"
            )
        accuracy = stats.get("source_model_accuracy")
        if accuracy is not None:
            checks.append(f"{source} accuracy on it {100 * accuracy:.1f} %")
    leak = train_on.get("leakage")
    if leak:
        from robustlens.constructed.targeted import describe_leakage

        checks.append(f"leakage check: {describe_leakage(leak)}")
    detail = f" ({'; '.join(checks)})" if checks else ""
    return f", on the {kind} set made against {source}{detail}"


def attack_label(attack: dict[str, Any] | None) -> str:
    if not attack:
        return ""
    norm = {"linf": "L∞", "l2": "L2", "l1": "L1"}.get(attack.get("norm"), attack.get("norm", ""))
    steps = f"-{attack['steps']}" if "steps" in attack else ""
    return f"{attack.get('attack', '').upper()}{steps} {norm} ε={attack.get('eps', 0):g}"


def model_rows(models: list[StudyModel], stored: dict[str, dict[str, Any]]) -> list[ModelRow]:
    rows = []
    for m in models:
        clean = m.card.metric("clean_accuracy")
        robust = m.card.metric("robust_accuracy")
        sources = {name: row["source"] for name, row in stored.items()}
        params = int(stored.get(m.name, {}).get("parameters", 0))
        rows.append(
            ModelRow(
                name=m.name,
                arch=m.card.arch,
                how_trained=how_trained(m.card.recipe, sources.get(m.name, ""))
                + _constructed_note(m.trained_on),
                clean_accuracy=clean["value"] if clean else None,
                robust_accuracy=robust["value"] if robust else None,
                robust_attack=attack_label(robust["attack"]) if robust else "",
                parameters=params,
                weights_sha256=m.digest,
                source=sources.get(m.name, "trained"),
            )
        )
    return rows


class _Runs:
    """The current runs of each lens, with their tables and arrays loaded on demand."""

    def __init__(self, inputs: ReportInputs, store: Store) -> None:
        self.store = store
        self.by_lens = inputs.runs
        self.outcomes = inputs.outcomes
        self._arrays: dict[tuple[int, str], np.ndarray] = {}

    def tables(self, lens: str) -> dict[str, pd.DataFrame]:
        frames: dict[str, list[pd.DataFrame]] = {}
        for run in self.by_lens.get(lens, []):
            for name in self.store.table_names(run):
                frames.setdefault(name, []).append(self.store.table(run, name))
        return {name: pd.concat(parts, ignore_index=True) for name, parts in frames.items()}

    def array_names(self, lens: str, model: str) -> list[str]:
        return sorted(
            name
            for run in self.by_lens.get(lens, [])
            if run.scope_model in (model, None)
            for name in self.store.array_names(run)
        )

    def array(self, lens: str, model: str, name: str) -> np.ndarray | None:
        for run in self.by_lens.get(lens, []):
            if run.scope_model not in (model, None):
                continue
            if name not in self.store.array_names(run):
                continue
            key = (run.id, name)
            if key not in self._arrays:
                self._arrays[key] = self.store.array(run, name)
            return self._arrays[key]
        return None


def build_document(inputs: ReportInputs, store: Store) -> ReportDocument:
    """The report as data: model cards, claim verdicts and one section per lens."""
    study_spec = inputs.spec
    models = inputs.models
    stored = {row["name"]: row for row in store.models()}
    runs = _Runs(inputs, store)
    view = ResultsView(
        models,
        runs.array,
        {lens for lens, found in runs.by_lens.items() if found},
        inputs.eval_n,
        inputs.num_classes,
        names=runs.array_names,
        coverage={
            plan.name: {m.name for m in models if plan.covers(m.name)} for plan in study_spec.lenses
        },
    )
    view.planned = {plan.name for plan in study_spec.lenses}
    for lens, found in runs.outcomes.items():
        for o in found:
            where = o.scope_model or "all models"
            if o.failed:
                view.failed.setdefault(lens, []).append(f"{where}: {o.error}: {o.message}")
            else:
                view.not_applicable.setdefault(lens, {})[where] = o.message
                if lens in view.coverage:
                    view.coverage[lens].discard(where)
    claims = [
        ClaimRow(
            c.id, c.paper.label, c.section, c.statement, v.status.value, v.evidence, v.interval
        )
        for c, v in evaluate_claims(view, seed=study_spec.seed)
    ]
    sections = []
    warnings = []
    for plan in study_spec.lenses:
        spec = LENSES.get(plan.name)
        lens_runs = runs.by_lens.get(plan.name, [])
        outcomes = runs.outcomes.get(plan.name, [])
        skipped = {o.scope_model: o.message for o in outcomes if not o.failed}
        failures = [
            f"{o.scope_model or 'all models'}: {o.error}: {o.message}"
            + (f" (fix: {o.fix})" if o.fix else "")
            for o in outcomes
            if o.failed
        ]
        covered = [m for m in models if plan.covers(m.name) and m.name not in skipped]
        expected = len(covered) if spec.scope == "model" else 1
        for line in failures:
            warnings.append(f"lens {plan.name} failed on {line}; its results are not computed")
        if len(lens_runs) + len(failures) < expected:
            warnings.append(f"lens {plan.name}: {len(lens_runs)} of {expected} runs finished")
        tables = runs.tables(plan.name)
        figures = []
        source = _figure_source(spec, plan, lens_runs, covered)
        cached = store.cached_figures(plan.name, source) if tables else None
        if cached is not None:
            figures = [FigureBlock(title, png) for title, png in cached]
        elif spec.plot is not None and tables:
            from robustlens.plotting import figure_to_png

            try:

                def arrays(model: str, name: str, lens: str = plan.name) -> np.ndarray | None:
                    return runs.array(lens, model, name)

                for title, fig in spec.plot(tables, covered, plan.params, arrays=arrays).items():
                    figures.append(FigureBlock(title, figure_to_png(fig)))
            except Exception as exc:  # a broken figure must not hide the numbers
                log.exception("figures of lens %s failed", plan.name)
                warnings.append(f"lens {plan.name}: figures failed ({exc})")
            if not store.read_only:  # `robustlens report` reads the store, never writes it
                store.put_figures(plan.name, [(f.title, f.png) for f in figures], source)
        notes = [note for run in lens_runs for note in run.notes]
        if plan.models is not None:
            notes.insert(0, f"looks at the models {', '.join(m.name for m in covered)} only")
        sections.append(
            LensSection(
                lens=spec.name,
                title=spec.title,
                paper=spec.paper,
                section=spec.section,
                description=spec.description,
                figures=figures,
                tables=[
                    TableBlock(name, summary_table(frame))
                    for name, frame in tables.items()
                    if not name.endswith("_frequency")
                ],
                notes=notes,
                params=_params(plan.params),
                seconds=sum(run.seconds for run in lens_runs),
                not_applicable=[f"{m}: {why}" for m, why in skipped.items()],
                failures=failures,
            )
        )
    return ReportDocument(
        study_name=study_spec.name,
        description=study_spec.description,
        dataset=study_spec.dataset,
        eval_n=inputs.eval_n,
        seed=study_spec.seed,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        versions=versions(),
        models=model_rows(models, stored),
        claims=claims,
        sections=sections,
        warnings=warnings,
    )


def _figure_source(spec, plan, lens_runs, models) -> str:
    """What a lens's figures are drawn from: its runs, the models in order, the parameters,
    the plotting code and the robustlens version. Equal keys give equal figures, so a report
    rebuilt on unchanged results reuses them instead of drawing them again."""
    import hashlib
    import inspect
    import json

    import robustlens

    try:
        code = inspect.getsource(spec.plot) if spec.plot is not None else ""
    except (OSError, TypeError):
        code = ""
    parts = {
        "lens": spec.name,
        "version": spec.version,
        "runs": sorted(run.key for run in lens_runs),
        "models": [(m.name, m.label(), m.digest) for m in models],
        "params": _params(plan.params),
        "code": hashlib.sha256(code.encode()).hexdigest(),
        "robustlens": robustlens.__version__,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def summary_table(frame: pd.DataFrame) -> pd.DataFrame:
    """A tidy table pivoted for reading: one row per layer × setting × metric, one column
    per model (robust and natural side by side)."""
    if frame.empty:
        return frame
    index = ["layer", "setting", "metric"]
    wide = frame.pivot_table(
        index=index, columns="model", values="value", aggfunc="first", sort=False
    )
    order = list(dict.fromkeys(frame["model"]))
    return wide.reindex(columns=order).reset_index()


def _params(params: Any) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(params) if dataclasses.is_dataclass(params) else dict(params)


def build_report(inputs: ReportInputs, store: Store, path: Path) -> Path:
    """Build the report from ``inputs`` and the store and write it to ``path`` as HTML."""
    from robustlens.report.html import write_report

    return write_report(build_document(inputs, store), path)
