"""What a study report shows, as plain data: built by the runner, rendered by report.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from robustlens.claims.verdict import Effect


@dataclass(frozen=True)
class Estimate:
    """A proportion of n images with its 95 % interval, as a table cell shows it."""

    value: float
    low: float
    high: float


@dataclass
class ModelRow:
    """One model of the study, as its card describes it; the accuracies' 95 % Wilson
    intervals (low, high) over ``n`` images where the card gives n."""

    name: str
    arch: str
    how_trained: str
    clean_accuracy: float | None
    robust_accuracy: float | None
    robust_attack: str
    parameters: int
    weights_sha256: str
    source: str = "trained"
    masking: list[str] = field(default_factory=list)
    """The gradient-masking flags raised on the model (the ``masking`` lens), if any."""
    clean_interval: tuple[float, float] | None = None
    robust_interval: tuple[float, float] | None = None
    n: int | None = None
    of_record: str = ""
    """The card's evaluation of record (``robustlens eval --record``) in one line, or ""."""


@dataclass
class ClaimRow:
    """One published claim and the verdict on the study's models."""

    claim_id: str
    paper: str
    section: str
    statement: str
    status: str  # "holds" | "fails" | "inconclusive" | "not computed" | "not applicable"
    evidence: str  # the numbers behind the verdict, one short paragraph
    interval: str = ""  # e.g. "Δ = 3.1 [1.2, 5.0] (95 % bootstrap CI over images)"
    paper_figure: str = ""  # the paper's own figure, cited: "paper 004 Table 7 (…): … 0.686"
    direction: str = ""  # the direction of the effect the paper reports
    seeds: str = ""  # "single seed" or "N seeds": what the interval is over besides images
    masking: str = ""  # "evaluated on a model flagged for gradient masking — …", or ""
    citation: str = ""  # the paper in full: authors (year). Title. Venue / arXiv id
    effects: list[Effect] = field(default_factory=list)
    """The intervals the verdict rests on (the claim's forest plot); empty when it has none."""


@dataclass
class FigureBlock:
    """A figure of a lens section: ``png`` holds the image bytes (PNG or SVG, as
    :func:`robustlens.plotting.figure_to_image` makes them, their alt text inside); a figure
    not drawn has no bytes and a ``note`` saying why (e.g. its measure is constant)."""

    title: str
    png: bytes
    caption: str = ""
    note: str = ""


@dataclass
class TableBlock:
    title: str
    frame: pd.DataFrame
    caption: str = ""
    flags: dict[str, str] = field(default_factory=dict)
    """Column (a model's name) → its gradient-masking flags, shown as a badge in the header."""


@dataclass
class LensSection:
    lens: str
    title: str
    paper: str
    section: str
    description: str
    figures: list[FigureBlock] = field(default_factory=list)
    tables: list[TableBlock] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    not_applicable: list[str] = field(default_factory=list)
    """Models the lens does not apply to, as "model: reason" lines."""
    failures: list[str] = field(default_factory=list)
    """Units of the lens that failed, as "model: error (fix)" lines."""


@dataclass
class ReportDocument:
    study_name: str
    description: str
    dataset: str
    eval_n: int
    seed: int
    created: str
    versions: dict[str, str]
    models: list[ModelRow]
    claims: list[ClaimRow]
    sections: list[LensSection]
    warnings: list[str] = field(default_factory=list)
    provenance: list[tuple[str, str]] = field(default_factory=list)
    """How to reproduce the run (label, text), first in the report; empty for old stores."""
