"""Assemble a study's report from its store: model cards, claim verdicts, lens sections.

The report reads a study's :class:`~robustlens.study.results.Results` (the read-only view of its
store) and nothing else: it never opens the store nor imports the runner.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from robustlens import plotting
from robustlens._version import __version__
from robustlens.claims import evaluate_claims
from robustlens.constructed.targeted import describe_leakage
from robustlens.lenses import LENSES, StudyModel
from robustlens.lenses.output import palette
from robustlens.plotting import (
    close_figure,
    describe_figure,
    figure_to_image,
    flat_series,
    shared_colors,
)
from robustlens.report.document import (
    ClaimRow,
    Estimate,
    FigureBlock,
    LensSection,
    ModelRow,
    ReportDocument,
    TableBlock,
)
from robustlens.runtime import versions
from robustlens.study.plan import params_dict
from robustlens.study.provenance import provenance_rows
from robustlens.study.results import Results
from robustlens.train.recipe import method_name

log = logging.getLogger(__name__)


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
    collapse = (r.get("overfitting") or {}).get("collapse")
    if collapse:
        kept = collapse["kept"]["epoch"]
        epochs += f" (stopped at epoch {collapse['epoch']:.2f}: catastrophic overfitting; "
        epochs += f"weights of epoch {kept:.2f} kept)"
    return f"{method_name(r)} {norm} ε={r.get('eps'):g}, {epochs}{n}"


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
        checks.append(f"leakage check: {describe_leakage(leak)}")
    detail = f" ({'; '.join(checks)})" if checks else ""
    return f", on the {kind} set made against {source}{detail}"


def attack_label(attack: dict[str, Any] | None) -> str:
    if not attack:
        return ""
    norm = {"linf": "L∞", "l2": "L2", "l1": "L1"}.get(attack.get("norm"), attack.get("norm", ""))
    steps = f"-{attack['steps']}" if "steps" in attack else ""
    return f"{attack.get('attack', '').upper()}{steps} {norm} ε={attack.get('eps', 0):g}"


def model_rows(
    models: list[StudyModel],
    stored: dict[str, dict[str, Any]],
    masking: dict[str, list[str]] | None = None,
) -> list[ModelRow]:
    """One row per model; ``masking``: each model's raised gradient-masking flags."""
    rows = []
    for m in models:
        clean = m.card.metric("clean_accuracy")
        robust = m.card.metric("robust_accuracy")
        clean_ci, robust_ci = m.card.interval("clean_accuracy"), m.card.interval("robust_accuracy")
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
                masking=list((masking or {}).get(m.name, [])),
                clean_interval=(clean_ci.low, clean_ci.high) if clean_ci else None,
                robust_interval=(robust_ci.low, robust_ci.high) if robust_ci else None,
                n=(clean_ci or robust_ci).n if clean_ci or robust_ci else None,
                of_record=of_record(m.card.evaluation),
            )
        )
    return rows


def of_record(record: dict[str, Any] | None) -> str:
    """A card's evaluation of record in one line: ``AutoAttack standard, L∞ 0.1: 0.612
    [0.581, 0.642] (n = 1000, 2026-12-05, robustlens 0.1.0)``; "" when it has none."""
    if not record:
        return ""
    low, high = record["robust_ci"]
    when = str(record.get("date", ""))[:10]
    extra = "".join(f", {p}" for p in (when, f"robustlens {record.get('robustlens', '?')}") if p)
    return (
        f"{record.get('label') or attack_label(record.get('settings'))}: "
        f"{record['robust_accuracy']:.3f} [{low:.3f}, {high:.3f}] (n = {record['n']}{extra})"
    )


def claim_rows(results: Results) -> list[ClaimRow]:
    """Every claim the study can check, with its verdict on the study's models and the
    paper's own figure beside it (the report's claims table, and ``study status --claims``)."""
    rows = []
    for c, v in evaluate_claims(results.view(), seed=results.spec.seed):
        figure = v.paper_figure
        rows.append(
            ClaimRow(
                c.id,
                c.paper.label,
                c.section,
                c.statement,
                v.status.value,
                v.evidence,
                v.interval,
                figure.figure_text() if figure else "",
                figure.direction if figure else "",
                v.seeds_text,
                v.masking_text,
                citation=c.paper.citation,
                effects=list(v.effects),
            )
        )
    return rows


FigureKeeper = Callable[[str, list[tuple[str, bytes]], str], None]
"""Stores a lens's freshly drawn figures (lens, [(title, png)], figure source) for reuse."""


def build_document(results: Results, keep_figures: FigureKeeper | None = None) -> ReportDocument:
    """The report as data: model cards, claim verdicts and one section per lens. Figures
    drawn afresh are handed to ``keep_figures`` (when given) so that a later report reuses
    them; the report itself never writes the store."""
    study_spec = results.spec
    models = results.models
    stored = results.model_rows
    claims = claim_rows(results)
    masking = results.masking_flags()
    badges = {name: ", ".join(flags) for name, flags in masking.items()}
    sections = []
    warnings = []
    study_colors = palette(models)  # one colour per model in every lens's figures
    for plan in study_spec.lenses:
        spec = LENSES.get(plan.name)
        lens_runs = results.runs.get(plan.name, [])
        outcomes = results.outcomes.get(plan.name, [])
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
        tables = results.tables(plan.name)
        figures = []
        source = _figure_source(spec, plan, lens_runs, covered, study_colors)
        cached = results.cached_figures(plan.name, source) if tables else None
        if cached is not None:
            figures = [_unpack_figure(title, data) for title, data in cached]
        elif spec.plot is not None and tables:
            try:

                def arrays(model: str, name: str, lens: str = plan.name) -> np.ndarray | None:
                    return results.array(lens, model, name)

                with shared_colors(study_colors):
                    drawn = spec.plot(tables, covered, plan.params, arrays=arrays)
                    figures = [_figure_block(title, fig) for title, fig in drawn.items()]
            except Exception as exc:  # a broken figure must not hide the numbers
                log.exception("figures of lens %s failed", plan.name)
                warnings.append(f"lens {plan.name}: figures failed ({exc})")
            if keep_figures is not None:  # `robustlens report` reads the store, never writes it
                keep_figures(plan.name, [(f.title, _pack_figure(f)) for f in figures], source)
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
                    TableBlock(name, summary_table(frame), flags=badges)
                    for name, frame in tables.items()
                    if not name.endswith("_frequency")
                ],
                notes=notes,
                params=params_dict(plan.params),
                seconds=sum(run.seconds for run in lens_runs),
                not_applicable=[f"{m}: {why}" for m, why in skipped.items()],
                failures=failures,
            )
        )
    return ReportDocument(
        study_name=study_spec.name,
        description=study_spec.description,
        dataset=study_spec.dataset,
        eval_n=results.eval_n,
        seed=study_spec.seed,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        versions=versions(),
        models=model_rows(models, stored, masking),
        claims=claims,
        sections=sections,
        warnings=warnings,
        provenance=provenance_rows(results.provenance) if results.provenance else [],
    )


NOTE_PREFIX = b"robustlens figure note\n"
"""What a figure not drawn is kept as in the store: this line, then why, in UTF-8."""
FIGURE_FORMAT = 2
"""How figures are made (1: PNG at 110 dpi; 2: SVG or PNG at 2×, alt text, flat figures as
notes): part of the figure source, so figures stored in an older format are drawn again."""


def _figure_block(title: str, fig: Any) -> FigureBlock:
    """A lens's figure as the report shows it: drawn, or (for a string from the lens, or a
    figure whose every plotted value is one number or undefined) a note saying why not."""
    if isinstance(fig, str):
        return FigureBlock(title, b"", note=fig)
    flat = flat_series(fig)
    if flat is not None:
        close_figure(fig)
        why = f"{flat[0].upper()}{flat[1:]} for every model: the lines would lie on one another."
        return FigureBlock(title, b"", note=why)
    return FigureBlock(title, figure_to_image(fig, alt=describe_figure(fig, title)))


def _pack_figure(block: FigureBlock) -> bytes:
    return block.png if not block.note else NOTE_PREFIX + block.note.encode()


def _unpack_figure(title: str, data: bytes) -> FigureBlock:
    if data.startswith(NOTE_PREFIX):
        return FigureBlock(title, b"", note=data[len(NOTE_PREFIX) :].decode())
    return FigureBlock(title, data)


def _figure_source(spec, plan, lens_runs, models, colors) -> str:
    """What a lens's figures are drawn from: its runs, the models in order, the study's model
    colours, the parameters, the plotting code (the lens's and robustlens.plotting), the
    figure format and the robustlens version.
    Equal keys give equal figures, so a report rebuilt on unchanged results reuses them instead
    of drawing them again."""
    try:  # the lens's plot function and the plotting service it draws and exports with
        code = inspect.getsource(spec.plot) if spec.plot is not None else ""
        code += inspect.getsource(plotting)
    except (OSError, TypeError):
        code = ""
    parts = {
        "lens": spec.name,
        "version": spec.version,
        "runs": sorted(run.key for run in lens_runs),
        "models": [(m.name, m.label(), m.digest) for m in models],
        "colors": colors,
        "params": params_dict(plan.params),
        "code": hashlib.sha256(code.encode()).hexdigest(),
        "robustlens": __version__,
        "format": FIGURE_FORMAT,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _with_intervals(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with each value that has a ``ci_low``/``ci_high`` turned into an
    :class:`Estimate`, shown as ``0.734 [0.706, 0.760]``."""
    if not {"ci_low", "ci_high"} <= set(frame.columns):
        return frame
    cells = [
        Estimate(float(v), float(lo), float(hi)) if pd.notna(lo) and pd.notna(hi) else v
        for v, lo, hi in zip(frame["value"], frame["ci_low"], frame["ci_high"], strict=True)
    ]
    return frame.assign(value=pd.Series(cells, index=frame.index, dtype=object))


def summary_table(frame: pd.DataFrame) -> pd.DataFrame:
    """A tidy table pivoted for reading: one row per layer × setting × metric, one column
    per model (robust and natural side by side); a proportion with its interval shows it."""
    if frame.empty:
        return frame
    index = ["layer", "setting", "metric"]
    wide = _with_intervals(frame).pivot_table(
        index=index, columns="model", values="value", aggfunc="first", sort=False
    )
    order = list(dict.fromkeys(frame["model"]))
    return wide.reindex(columns=order).reset_index()


def build_report(results: Results, path: Path, keep_figures: FigureKeeper | None = None) -> Path:
    """Build the report from a study's ``results`` and write it to ``path`` as HTML."""
    from robustlens.report.html import write_report  # heavy: jinja2

    return write_report(build_document(results, keep_figures), path)
