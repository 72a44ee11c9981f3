"""Render a :class:`ReportDocument` as one self-contained HTML file.

The file needs nothing but itself: CSS and the one small script are inline, figures are
``data:`` SVG or PNG URIs, every table's CSV is a ``data:`` link, and a Content-Security-Policy
forbids the page from loading anything else. Tables longer than :data:`FOLD_ROWS` rows fold
into a ``<details>`` (opened for print by the print stylesheet). Everything the document says
is HTML-escaped (Jinja2 autoescaping); numbers are formatted here, not in the template.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import math
import numbers
import os
import re
import secrets
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from robustlens.claims.verdict import Status
from robustlens.errors import RobustlensError
from robustlens.plotting import read_image
from robustlens.report import forest
from robustlens.report.document import (
    ClaimRow,
    Estimate,
    FigureBlock,
    LensSection,
    ModelRow,
    ReportDocument,
    TableBlock,
)
from robustlens.report.scorecard import PALETTE, palette_css, scorecard
from robustlens.report.scorecard import slug as _slug

__all__ = ["format_number", "render_report", "write_report"]

TEMPLATE = "report.html.j2"
TEMPLATE_DIR = Path(__file__).with_name("templates")
MISSING = "–"  # en dash: what a missing number or NaN looks like in the report
MAX_TABLE_ROWS = 500  # longer tables show their first rows and say how many were left out
FOLD_ROWS = 12  # longer tables are folded away (a <details>), with a summary line
WIDE_FIGURE_PX = 560  # figures shown wider than this take a whole row of the figure grid
VERDICTS = (Status.HOLDS, Status.FAILS, Status.INCONCLUSIVE)
STATUSES = tuple(s.value for s in VERDICTS)
NO_VERDICT = (Status.NOT_COMPUTED.value, Status.NOT_APPLICABLE.value)  # a lens failed / no model

# The page's only script: count the figures the browser could decode. Its sha256 goes into the
# Content-Security-Policy, so this exact text (and nothing else) may run.
LOAD_SCRIPT = (
    'window.addEventListener("load", function () {\n'
    '  var imgs = document.querySelectorAll("img");\n'
    "  var loaded = 0;\n"
    "  for (var i = 0; i < imgs.length; i++) {\n"
    "    if (imgs[i].complete && imgs[i].naturalWidth > 0) { loaded += 1; }\n"
    "  }\n"
    "  document.body.dataset.imagesLoaded = String(loaded);\n"
    "  document.body.dataset.imagesTotal = String(imgs.length);\n"
    "});\n"
)


def render_report(doc: ReportDocument) -> str:
    """The HTML text of the report for ``doc``."""
    if not isinstance(doc, ReportDocument):
        raise TypeError(f"render_report needs a ReportDocument, got {type(doc).__name__}")
    context = _context(doc)
    return _environment().get_template(TEMPLATE).render(**context)


def write_report(doc: ReportDocument, path: str | os.PathLike[str]) -> Path:
    """Render ``doc`` and write it to ``path`` atomically; returns the path written.

    The HTML goes to a temporary file beside ``path`` that replaces it only once complete, so a
    reader never sees half a report and a failure leaves any previous report as it was.
    """
    target = Path(path)
    html = render_report(doc)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(html)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise RobustlensError(
            f"cannot write the report to {target}: {exc.strerror or exc}",
            fix="choose an output folder you can write to, with free space",
        ) from exc
    return target


def format_number(value: Any) -> str:
    """A number as the report shows it: floats to 3 significant digits, NaN/None as "–".

    Integers keep every digit; floats use fixed notation between 0.001 and 100 000 (never
    dropping digits before the decimal point) and scientific notation outside it.
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        x = float(value)
        if math.isnan(x):
            return MISSING
        if math.isinf(x):
            return "∞" if x > 0 else "−∞"
        if x == 0:
            return "0"
        magnitude = math.floor(math.log10(abs(x)))
        if magnitude < -3 or magnitude >= 5:
            return f"{x:.2e}"
        decimals = max(0, 2 - magnitude)
        text = f"{x:.{decimals}f}"
        return "0" if float(text) == 0 else text
    if isinstance(value, numbers.Complex):
        return str(value)
    return str(value)


# --------------------------------------------------------------------------------------------
# Template context: plain dicts of strings, everything already formatted.


@dataclass
class _Figure:
    title: str
    caption: str
    alt: str
    src: str | None  # data: URI, or None when the bytes are neither SVG nor PNG
    width: int | None
    height: int | None
    problem: str = ""
    note: str = ""  # why the figure is not drawn (a degenerate measure)

    @property
    def wide(self) -> bool:
        """Wider than a column of the figure grid: it takes the whole row."""
        return (self.width or 0) > WIDE_FIGURE_PX


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env


def _context(doc: ReportDocument) -> dict[str, Any]:
    warnings = [str(w) for w in doc.warnings]
    claims = [_claim(c) for c in doc.claims]
    papers = scorecard(doc.claims)
    by_paper: dict[str, list[dict[str, Any]]] = {}
    for row, claim in zip(doc.claims, claims, strict=True):
        by_paper.setdefault(row.paper or "–", []).append(claim)
    sections = []
    used_ids: set[str] = set()
    for index, section in enumerate(doc.sections):
        sections.append(_section(section, index, used_ids, warnings))
    script_hash = base64.b64encode(hashlib.sha256(LOAD_SCRIPT.encode()).digest()).decode()
    return {
        "doc": doc,
        "title": f"{doc.study_name} · robustlens report" if doc.study_name else "robustlens report",
        "description": _paragraphs(doc.description),
        "facts": _facts(doc),
        "versions": [(k, str(v)) for k, v in doc.versions.items()],
        "provenance": doc.provenance,
        "warnings": warnings,
        "models": [_model(m) for m in doc.models],
        "models_csv": csv_link(models_frame(doc.models)),
        "models_folded": len(doc.models) > FOLD_ROWS,
        "claims": claims,
        "claim_groups": [(p, by_paper[p.paper]) for p in papers],
        "scorecard": papers,
        "palette": PALETTE,
        "palette_css": palette_css(),
        "claim_summary": _claim_summary(doc.claims),
        "sections": sections,
        "n_figures": sum(1 for s in sections for f in s["figures"] if f.src),
        "load_script": LOAD_SCRIPT,
        "csp": (
            "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
            f"script-src 'sha256-{script_hash}'; base-uri 'none'; form-action 'none'"
        ),
        "robustlens_version": doc.versions.get("robustlens", ""),
    }


def _facts(doc: ReportDocument) -> list[tuple[str, str]]:
    return [
        ("Data set", doc.dataset or MISSING),
        ("Evaluation images", _grouped(doc.eval_n)),
        ("Seed", str(doc.seed)),
        ("Created", doc.created or MISSING),
    ]


def _model(m: ModelRow) -> dict[str, str]:
    return {
        "name": m.name,
        "arch": m.arch,
        "how_trained": m.how_trained,
        "clean": _percent(m.clean_accuracy, m.clean_interval),
        "robust": _percent(m.robust_accuracy, m.robust_interval),
        "n": _count(m.n) if m.n is not None else MISSING,
        "attack": (m.robust_attack or "").strip(),
        "parameters": _count(m.parameters),
        "parameters_exact": f"{m.parameters:,}" if isinstance(m.parameters, int) else "",
        "sha_short": (m.weights_sha256 or "")[:12] or MISSING,
        "sha": m.weights_sha256 or "",
        "source": m.source,
        "masking": ", ".join(m.masking),
        "of_record": m.of_record,
    }


def models_frame(models: list[ModelRow]) -> pd.DataFrame:
    """The models table as data (accuracies as fractions with their intervals), for its CSV."""
    rows = []
    for m in models:
        clean, robust = m.clean_interval or (None, None), m.robust_interval or (None, None)
        rows.append(
            {
                "model": m.name,
                "architecture": m.arch,
                "how trained": m.how_trained,
                "clean accuracy": m.clean_accuracy,
                "clean accuracy (95 % low)": clean[0],
                "clean accuracy (95 % high)": clean[1],
                "robust accuracy": m.robust_accuracy,
                "robust accuracy (95 % low)": robust[0],
                "robust accuracy (95 % high)": robust[1],
                "robust attack": m.robust_attack,
                "n": m.n,
                "parameters": m.parameters,
                "weights sha256": m.weights_sha256,
                "source": m.source,
                "gradient-masking flags": ", ".join(m.masking),
            }
        )
    return pd.DataFrame(rows, dtype=object)


def _claim(c: ClaimRow) -> dict[str, str]:
    status = (c.status or "").strip().lower()
    known = status in STATUSES
    return {
        "id": c.claim_id,
        "anchor": "claim-" + _slug(c.claim_id),
        "paper_ref": _paper_ref(c.paper, c.section),
        "statement": c.statement,
        "status": status or "unknown",
        "badge_class": f"badge-{status}" if known else "badge-other",
        "evidence": c.evidence,
        "interval": c.interval,
        "paper_figure": c.paper_figure,
        "direction": c.direction,
        "seeds": c.seeds,
        "masking": c.masking,
        "citation": c.citation or c.paper,
        "reading": _reading(c, status),
        "forest": [
            {"svg": Markup(p.svg), "alt": p.alt, "what": p.what} for p in forest.panels(c.effects)
        ],
    }


def _reading(c: ClaimRow, status: str) -> str:
    """The claim's one-sentence reading; for a claim that is not applicable, marked as being
    there for information only (its effects are drawn, but no verdict rests on them)."""
    text = forest.reading(c.effects, c.direction)
    if text and status == Status.NOT_APPLICABLE.value:
        return f"For information only, no verdict (not applicable): {text}"
    return text


def _claim_summary(claims: list[ClaimRow]) -> str:
    if not claims:
        return ""
    counts = Counter((c.status or "").strip().lower() for c in claims)
    holds, fails = counts.pop("holds", 0), counts.pop("fails", 0)
    parts = [
        f"{holds} {'holds' if holds == 1 else 'hold'}",
        f"{fails} {'fails' if fails == 1 else 'fail'}",
        f"{counts.pop('inconclusive', 0)} inconclusive",
    ]
    for status in NO_VERDICT:
        if counts.get(status):
            parts.append(f"{counts.pop(status)} {status}")
    other = sum(counts.values())
    if other:
        parts.append(f"{other} without a verdict")
    return ", ".join(parts)


def _section(s: LensSection, index: int, used_ids: set[str], warnings: list[str]) -> dict[str, Any]:
    anchor = "lens-" + (_slug(s.lens) or f"section-{index + 1}")
    base, n = anchor, 2
    while anchor in used_ids:
        anchor, n = f"{base}-{n}", n + 1
    used_ids.add(anchor)
    figures = []
    for j, fig in enumerate(s.figures):
        block = _figure(fig, s, j)
        if block.problem:
            warnings.append(block.problem)
        figures.append(block)
    return {
        "id": anchor,
        "lens": s.lens,
        "title": s.title or s.lens,
        "paper_ref": _paper_ref(s.paper, s.section),
        "description": _paragraphs(s.description),
        "params": [(str(k), _param_value(v)) for k, v in s.params.items()],
        "timing": _duration(s.seconds),
        "notes": [str(n) for n in s.notes],
        "not_applicable": [str(n) for n in s.not_applicable],
        "failures": [str(n) for n in s.failures],
        "figures": figures,
        "tables": [_table(t, anchor) for t in s.tables],
    }


def _figure(fig: FigureBlock, section: LensSection, index: int) -> _Figure:
    title = fig.title or ""
    if fig.note:
        return _Figure(title, fig.caption, "", None, None, None, note=fig.note)
    image = read_image(bytes(fig.png or b""))
    if image is None:
        what = f"figure {title!r}" if title else f"figure {index + 1}"
        return _Figure(
            title=title,
            caption=fig.caption,
            alt=title or fig.caption or f"Figure {index + 1} of {section.title or section.lens}",
            src=None,
            width=None,
            height=None,
            problem=(
                f"Lens {section.lens!r}: {what} is neither SVG nor PNG data "
                f"({len(fig.png or b'')} bytes); it is left out of the report"
            ),
        )
    alt = image.alt or title or fig.caption or f"Figure {index + 1} of {section.title}"
    src = f"data:{image.mime};base64," + base64.b64encode(image.data).decode("ascii")
    return _Figure(title, fig.caption, alt, src, image.width, image.height)


def _table(t: TableBlock, prefix: str = "table") -> dict[str, Any]:
    frame = t.frame if isinstance(t.frame, pd.DataFrame) else pd.DataFrame(t.frame)
    if not isinstance(frame.index, pd.RangeIndex) or any(n is not None for n in frame.index.names):
        frame = frame.reset_index()
    total = len(frame)
    shown = frame.iloc[:MAX_TABLE_ROWS]
    columns = [_column_name(c) for c in shown.columns]
    flags = [t.flags.get(name, "") for name in columns]
    numeric = [
        pd.api.types.is_numeric_dtype(shown[c]) or any(isinstance(v, Estimate) for v in shown[c])
        for c in shown.columns
    ]
    rows = []
    for values in shown.itertuples(index=False, name=None):
        rows.append(
            [
                {
                    "text": _cell(v),
                    "num": isinstance(v, Estimate)
                    or (isinstance(v, numbers.Number) and not isinstance(v, bool)),
                }
                for v in values
            ]
        )
    return {
        "title": t.title,
        "caption": t.caption,
        "columns": columns,
        "flags": flags,
        "numeric": numeric,
        "rows": rows,
        "n_rows": total,
        "truncated": total - len(shown),
        "folded": total > FOLD_ROWS,
        "csv": csv_link(frame),
        "csv_name": _slug(f"{prefix}-{t.title or 'table'}").lower() + ".csv",
    }


def table_csv(frame: pd.DataFrame) -> str:
    """``frame`` as CSV text, every row: numbers at full precision, an :class:`Estimate`
    as three columns (value, 95 % low, 95 % high), missing values empty."""
    columns: list[str] = []
    getters = []
    for c in frame.columns:
        name = _column_name(c)
        if any(isinstance(v, Estimate) for v in frame[c]):
            columns += [name, f"{name} (95 % low)", f"{name} (95 % high)"]
            getters.append(_estimate_parts)
        else:
            columns.append(name)
            getters.append(lambda v: [_csv_value(v)])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for values in frame.itertuples(index=False, name=None):
        writer.writerow([x for get, v in zip(getters, values, strict=True) for x in get(v)])
    return buf.getvalue()


def csv_link(frame: pd.DataFrame) -> str:
    """A ``data:`` URI of ``frame``'s CSV (UTF-8 with a byte-order mark, so spreadsheets read
    ε and µ right): the table downloads from the page itself."""
    data = ("\ufeff" + table_csv(frame)).encode("utf-8")
    return "data:text/csv;charset=utf-8;base64," + base64.b64encode(data).decode("ascii")


def _estimate_parts(v: Any) -> list[str]:
    if isinstance(v, Estimate):
        return [_csv_value(v.value), _csv_value(v.low), _csv_value(v.high)]
    return [_csv_value(v), "", ""]


def _csv_value(v: Any) -> str:
    if v is None or v is pd.NA or v is pd.NaT:
        return ""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        x = float(v)
        return "" if math.isnan(x) else repr(x)
    if isinstance(v, list | tuple):
        return "; ".join(_csv_value(x) for x in v)
    return str(v)


def _cell(v: Any) -> str:
    if isinstance(v, Estimate):
        return f"{format_number(v.value)} [{format_number(v.low)}, {format_number(v.high)}]"
    if isinstance(v, numbers.Number) or v is None or v is pd.NA or v is pd.NaT:
        return format_number(v)
    if isinstance(v, list | tuple):
        return ", ".join(_cell(x) for x in v)
    return str(v)


def _column_name(c: Any) -> str:
    if isinstance(c, tuple):
        return " · ".join(str(x) for x in c if str(x))
    return str(c)


def _param_value(v: Any) -> str:
    """A lens parameter as the user would write it (0.1 stays "0.1")."""
    if isinstance(v, numbers.Real) and not isinstance(v, bool | numbers.Integral):
        x = float(v)
        return format_number(x) if not math.isfinite(x) else f"{x:.6g}"
    if isinstance(v, numbers.Number) or v is None:
        return format_number(v)
    if isinstance(v, Mapping):
        return ", ".join(f"{k}={_param_value(x)}" for k, x in v.items())
    if isinstance(v, list | tuple | set | frozenset):
        items = sorted(v, key=str) if isinstance(v, set | frozenset) else v
        return "[" + ", ".join(_param_value(x) for x in items) + "]"
    return str(v)


def _percent(value: float | None, interval: tuple[float, float] | None = None) -> str:
    """An accuracy stored as a fraction in [0, 1], shown as a percentage, with its 95 %
    interval when given: ``73.4 % [70.6, 76.0]``."""
    shown = _percent_alone(value)
    if interval is None or shown == MISSING:
        return shown
    low, high = (100 * float(b) for b in interval)
    return f"{shown} [{low:.1f}, {high:.1f}]"


def _percent_alone(value: float | None) -> str:
    """An accuracy stored as a fraction in [0, 1], shown as a percentage."""
    if value is None:
        return MISSING
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(x):
        return MISSING
    if 0.0 <= x <= 1.0:
        return f"{100 * x:.1f} %"
    return format_number(x)


def _count(n: Any) -> str:
    if not isinstance(n, numbers.Integral) or isinstance(n, bool):
        return format_number(n)
    n = int(n)
    if abs(n) >= 1_000_000:
        return f"{n / 1e6:.2f} M"
    if abs(n) >= 10_000:
        return f"{n / 1e3:.1f} k"
    return str(n)


def _duration(seconds: float) -> str:
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(s) or s <= 0:
        return ""
    if s < 10:
        return f"{s:.2f} s"
    if s < 60:
        return f"{s:.1f} s"
    minutes, rest = divmod(round(s), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _grouped(n: Any) -> str:
    """1000 as "1 000" (a space between thousands, as the rest of the report writes them)."""
    if isinstance(n, numbers.Integral) and not isinstance(n, bool):
        return f"{int(n):,}".replace(",", " ")
    return format_number(n)


def _paper_ref(paper: str, section: str) -> str:
    """ "Ilyas et al. 2019 §3.2": a paper and the section a claim or lens comes from."""
    paper, section = (paper or "").strip(), str(section or "").strip()
    if section[:1].isdigit():  # "4.1" → "§4.1"; "App. A, Fig. 10" stays as it is
        section = "§" + section
    return " ".join(x for x in (paper, section) if x)


def _paragraphs(text: str) -> list[str]:
    """Text split into paragraphs at blank lines, each paragraph's lines joined by spaces."""
    blocks = re.split(r"\n\s*\n", str(text or "").strip())
    return [" ".join(b.split()) for b in blocks if b.strip()]
