"""One picture per claim: a forest plot of the effects its verdict rests on, as inline SVG.

One panel per measured quantity (:attr:`Effect.what`), one row per model or comparison: the
point estimate and its 95 % interval, the decision line (zero or the claim's threshold, with
the claimed side shaded), the paper's own value as a diamond where it prints the same quantity,
and an axis label with units. Each row is drawn by where its interval lies: a filled circle on
the claimed side, a filled square on the opposite side, an open circle across the line — shape
as well as colour. The SVG is small text, needs no script and carries its own text
alternative; :func:`reading` says the same in one sentence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from robustlens.claims.verdict import Effect

WIDTH = 640
ROW = 22
TOP = 26
BOTTOM = 44
PAD = 10
CHAR = 6.4
"""Approximate width of a 12 px character, to size the label and number columns."""
ON, OPPOSITE, ACROSS = "#009E73", "#D55E00", "#6B6F76"
"""Okabe–Ito bluish green and vermillion (the verdict palette's holds and fails), and grey."""
TINT = "#E6F4EF"
INK = "#1D2026"
GRID = "#E3E6EA"


@dataclass(frozen=True)
class Panel:
    """One panel of a claim's picture: its SVG markup and its text alternative."""

    what: str
    svg: str
    alt: str


def panels(effects: Sequence[Effect]) -> list[Panel]:
    """The claim's picture, one :class:`Panel` per measured quantity, in the effects' order."""
    return [_panel(rows) for rows in _by_what(effects).values()]


def number(x: float) -> str:
    """3 significant digits with a true minus sign; "–" for NaN."""
    if not math.isfinite(x):
        return "–" if math.isnan(x) else ("∞" if x > 0 else "−∞")
    text = f"{x:.3g}"
    return "0" if float(text) == 0 else text.replace("-", "−")


def interval_text(e: Effect) -> str:
    return f"{number(e.estimate)} [{number(e.low)}, {number(e.high)}]"


def axis_label(e: Effect) -> str:
    return f"{e.what} ({e.unit})" if e.unit else e.what


def claimed_side(e: Effect) -> str:
    """Where the claim wants the interval: "above 0", "below 0.5", "within 0 ± 0.05"."""
    if e.side == 0:
        return f"within {number(e.line)} ± {number(e.margin)}"
    return f"{'above' if e.side > 0 else 'below'} {number(e.line)}"


def reading(effects: Sequence[Effect], direction: str = "") -> str:
    """One sentence on what the picture shows, per quantity: the range of the estimates, how
    many intervals lie on the claimed side of the line, the paper's value where given; then
    the direction the paper reports. "" when there are no effects."""
    if not effects:
        return ""
    parts = [_reading(rows) for rows in _by_what(effects).values()]
    text = "; ".join(parts)
    if text[:1].isascii():  # "increase …" → "Increase …"; a symbol (ρ, Δ) stays as it is
        text = text[:1].upper() + text[1:]
    if direction:
        text += f" — the paper reports: {direction}"
    return text + "."


# --------------------------------------------------------------------------------------------


def _by_what(effects: Sequence[Effect]) -> dict[str, list[Effect]]:
    out: dict[str, list[Effect]] = {}
    for e in effects:
        out.setdefault(axis_label(e), []).append(e)
    return out


def _reading(rows: list[Effect]) -> str:
    first = rows[0]
    unit = f" {first.unit}" if first.unit else ""
    if not any(math.isfinite(e.estimate) for e in rows):
        return (
            f"{first.what}: undefined on {'every one of the ' if len(rows) > 1 else ''}"
            f"{_rows(len(rows))} (no estimate: the measure is constant or missing on these "
            "models)"
        )
    values = {(e.estimate, e.low, e.high) for e in rows}
    if len(values) == 1 and len(set(next(iter(values)))) == 1:
        (v, _, _), = values  # fmt: skip
        return (
            f"{first.what}: {number(v)}{unit} for {'every one of the ' if len(rows) > 1 else ''}"
            f"{_rows(len(rows))}, without any spread: the measure does not vary on these models"
        )
    signs = [e.sign() for e in rows]
    where = claimed_side(first)
    if len(rows) == 1:
        side = {1: f"on the claimed side ({where})", -1: f"on the wrong side ({where} claimed)"}
        text = f"{first.what}: {interval_text(first)}{unit}, " + side.get(
            signs[0], f"across the line ({where} claimed)"
        )
    else:
        finite = [e.estimate for e in rows if math.isfinite(e.estimate)]
        spread = f"from {number(min(finite))} to {number(max(finite))}{unit}" if finite else "–"
        text = (
            f"{first.what}: {spread} over {_rows(len(rows))}, {signs.count(1)} of {len(rows)} "
            f"intervals {where}"
        )
        if signs.count(-1):
            text += f", {signs.count(-1)} on the wrong side"
    papers = [e.paper for e in rows if e.paper is not None]
    if papers:
        text += f" (the paper: {', '.join(number(p) for p in dict.fromkeys(papers))}{unit})"
    return text


def _rows(n: int) -> str:
    return f"{n} row{'s' if n != 1 else ''}"


def _ticks(lo: float, hi: float) -> list[float]:
    span = hi - lo
    raw = span / 5
    step = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * step:
            step *= m
            break
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step + 1e-9) + 1)]


def _domain(rows: list[Effect]) -> tuple[float, float]:
    first = rows[0]
    values = [first.line]
    if first.side == 0:
        values += [first.line - first.margin, first.line + first.margin]
    for e in rows:
        values += [e.estimate, e.low, e.high]
        values += [v for v in (e.paper, e.needs) if v is not None]
    finite = [v for v in values if math.isfinite(v)]
    lo, hi = min(finite), max(finite)
    if hi - lo < 1e-12:
        half = max(abs(hi) * 0.1, 1.0 if hi == 0 else 1e-9)
        lo, hi = lo - half, hi + half
    pad = 0.06 * (hi - lo)
    return lo - pad, hi + pad


def _marker(e: Effect, x: float, y: float) -> str:
    sign = e.sign()
    if sign > 0:
        return f'<circle class="mark-on" cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="{ON}"/>'
    if sign < 0:
        return (
            f'<rect class="mark-wrong" x="{x - 4.5:.1f}" y="{y - 4.5:.1f}" width="9" height="9" '
            f'fill="{OPPOSITE}"/>'
        )
    return (
        f'<circle class="mark-across" cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="#fff" '
        f'stroke="{ACROSS}" stroke-width="2"/>'
    )


def _panel(rows: list[Effect]) -> Panel:
    first = rows[0]
    label_w = min(max(max(len(e.label) for e in rows) * CHAR + 12, 70), 250)
    number_w = min(max(max(len(interval_text(e)) for e in rows) * 6.0 + 14, 90), 170)
    x0, x1 = label_w, WIDTH - number_w
    height = TOP + ROW * len(rows) + BOTTOM
    lo, hi = _domain(rows)

    def sx(v: float) -> float:
        return x0 + (min(max(v, lo), hi) - lo) / (hi - lo) * (x1 - x0)

    plot_bottom = TOP + ROW * len(rows)
    out = []
    # the claimed side, shaded
    if first.side == 0:
        a, b = sx(first.line - first.margin), sx(first.line + first.margin)
    elif first.side > 0:
        a, b = sx(first.line), x1
    else:
        a, b = x0, sx(first.line)
    out.append(f'<rect x="{a:.1f}" y="{TOP - 6}" width="{max(b - a, 0):.1f}" '
               f'height="{plot_bottom - TOP + 6}" fill="{TINT}"/>')  # fmt: skip
    claimed = escape(claimed_side(first))
    out.append(f'<text x="{(a + b) / 2:.1f}" y="{TOP - 10}" text-anchor="middle" '
               f'font-size="11" fill="{ON}">claimed: {claimed}</text>')  # fmt: skip
    for t in _ticks(lo, hi):
        x = sx(t)
        out.append(f'<line x1="{x:.1f}" y1="{TOP - 6}" x2="{x:.1f}" y2="{plot_bottom}" '
                   f'stroke="{GRID}"/>')  # fmt: skip
        out.append(f'<text x="{x:.1f}" y="{plot_bottom + 15}" text-anchor="middle" '
                   f'font-size="11">{number(t)}</text>')  # fmt: skip
    out.append(f'<line x1="{x0}" y1="{plot_bottom}" x2="{x1}" y2="{plot_bottom}" stroke="{INK}"/>')
    lines = [(first.line, "4 3")]
    if first.needs is not None:
        lines.append((first.needs, "1 3"))
    for value, dash in lines:
        x = sx(value)
        out.append(f'<line class="decision" x1="{x:.1f}" y1="{TOP - 6}" x2="{x:.1f}" '
                   f'y2="{plot_bottom}" stroke="{INK}" stroke-width="1.5" '
                   f'stroke-dasharray="{dash}"/>')  # fmt: skip
    for i, e in enumerate(rows):
        y = TOP + ROW * i + ROW / 2
        tip = f"{e.label}: {interval_text(e)}"
        out.append(f"<g><title>{escape(tip)}</title>")
        out.append(f'<text x="{x0 - 8}" y="{y + 4:.1f}" text-anchor="end">'
                   f'{escape(e.label)}</text>')  # fmt: skip
        if math.isfinite(e.low) and math.isfinite(e.high):
            colour = {1: ON, -1: OPPOSITE}.get(e.sign(), ACROSS)
            out.append(f'<line class="ci" x1="{sx(e.low):.1f}" y1="{y:.1f}" '
                       f'x2="{sx(e.high):.1f}" y2="{y:.1f}" stroke="{colour}" '
                       'stroke-width="2.5"/>')  # fmt: skip
        if math.isfinite(e.estimate):
            out.append(_marker(e, sx(e.estimate), y))
        if e.paper is not None and math.isfinite(e.paper):
            x = sx(e.paper)
            out.append(f'<path class="mark-paper" d="M{x:.1f} {y - 6:.1f}l6 6-6 6-6-6z" '
                       f'fill="none" stroke="{INK}" stroke-width="1.5"/>')  # fmt: skip
        out.append(f'<text x="{WIDTH - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="11">'
                   f'{escape(interval_text(e))}</text></g>')  # fmt: skip
    out.append(f'<text x="{(x0 + x1) / 2:.1f}" y="{height - 8}" text-anchor="middle">'
               f'{escape(axis_label(first))}</text>')  # fmt: skip
    alt = _alt(rows)
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="forest-plot" viewBox="0 0 {WIDTH} '
        f'{height}" width="{WIDTH}" height="{height}" font-size="12" fill="{INK}" role="img" '
        f'aria-label="{escape(alt)}">' + "".join(out) + "</svg>"
    )
    return Panel(axis_label(first), svg, alt)


def _alt(rows: list[Effect]) -> str:
    first = rows[0]
    signs = [e.sign() for e in rows]
    listing = "; ".join(f"{e.label} {interval_text(e)}" for e in rows)
    paper = [f"{e.label} {number(e.paper)}" for e in rows if e.paper is not None]
    text = (
        f"Forest plot of {axis_label(first)}, 95 % intervals, claimed {claimed_side(first)}: "
        f"{signs.count(1)} of {len(rows)} on the claimed side, {signs.count(-1)} on the wrong "
        f"side, {signs.count(0)} across the line. {listing}."
    )
    if paper:
        text += f" The paper's values (diamonds): {'; '.join(paper)}."
    return text
