"""The report's scorecard: every claim as a cell coloured by its verdict, one line per paper.

The verdict palette is Okabe & Ito's colour-blind-safe set (bluish green, vermillion, yellow),
with light grey and white for the two statuses that are no verdict; every cell also shows a
glyph and names its verdict in words (title and aria-label), so colour is never the only cue.
Cells are links to the claim (``#claim-<id>``) in an HTML grid, which keeps them working under
the report's Content-Security-Policy (an image loaded from a data: URI cannot carry links).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from robustlens.report.document import ClaimRow


@dataclass(frozen=True)
class Verdict:
    """How the scorecard shows one status: background colour, glyph, and the plural word."""

    colour: str
    glyph: str
    plural: str


PALETTE: dict[str, Verdict] = {
    "holds": Verdict("#009E73", "✓", "hold"),
    "fails": Verdict("#D55E00", "✗", "fail"),
    "inconclusive": Verdict("#F0E442", "?", "inconclusive"),
    "not applicable": Verdict("#D9D9D9", "–", "not applicable"),
    "not computed": Verdict("#FFFFFF", "…", "not computed"),
}
"""Status → colour (Okabe–Ito: bluish green, vermillion, yellow; then light grey, white), glyph
and the word for several. Black text reads on every one of them (contrast ≥ 5.4 : 1)."""
OTHER = Verdict("#FFFFFF", "·", "without a verdict")


@dataclass(frozen=True)
class Cell:
    claim_id: str
    short: str
    """The claim's id without its paper's number: "4.1-dense"."""
    status: str
    css: str
    """The verdict's class: "v-holds", "v-not-computed", "v-other"."""
    glyph: str
    href: str
    label: str
    """What the cell says in words (its title and aria-label)."""


@dataclass(frozen=True)
class PaperLine:
    """One paper's row: its short name, full citation, cells and a line counting verdicts."""

    paper: str
    citation: str
    anchor: str
    cells: list[Cell]
    line: str


def slug(text: str) -> str:
    """An id fragment: runs of characters other than letters, digits, ``_``, ``.`` and ``-``
    as ``-`` (a claim keeps its id: ``claim-000-4.1-dense``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(text)).strip("-.")


def status_class(status: str) -> str:
    return f"v-{slug(status)}" if status in PALETTE else "v-other"


def counts_line(statuses: Sequence[str]) -> str:
    """ "3 hold, 1 fails, 2 inconclusive" (statuses in palette order, absent ones left out)."""
    counts = Counter(statuses)
    parts = []
    for status, v in [*PALETTE.items(), ("", OTHER)]:
        n = counts.pop(status, 0) if status else sum(counts.values())
        if n:
            word = status if n == 1 and status in ("holds", "fails") else v.plural
            parts.append(f"{n} {word}")
    return ", ".join(parts)


def scorecard(claims: Sequence[ClaimRow]) -> list[PaperLine]:
    """The claims grouped by paper (in order of first appearance), one cell each."""
    groups: dict[str, list[ClaimRow]] = {}
    for c in claims:
        groups.setdefault(c.paper, []).append(c)
    lines = []
    for paper, rows in groups.items():
        cells = []
        for c in rows:
            status = (c.status or "").strip().lower()
            v = PALETTE.get(status, OTHER)
            number = c.claim_id.split("-", 1)
            short = number[1] if len(number) == 2 and number[0].isdigit() else c.claim_id
            where = f" ({c.section})" if c.section else ""
            cells.append(
                Cell(
                    claim_id=c.claim_id,
                    short=short,
                    status=status or "unknown",
                    css=status_class(status),
                    glyph=v.glyph,
                    href=f"#claim-{slug(c.claim_id)}",
                    label=f"claim {c.claim_id}{where}: {status or 'unknown'} — {c.statement}",
                )
            )
        lines.append(
            PaperLine(
                paper=paper or "–",
                citation=rows[0].citation or paper,
                anchor=f"paper-{slug(paper) or 'unknown'}",
                cells=cells,
                line=counts_line([c.status for c in cells]),
            )
        )
    return lines


def palette_css() -> str:
    """The verdict classes' colours, for the report's style sheet (one place for them)."""
    rules = [f".v-{slug(s)} {{ background: {v.colour}; }}" for s, v in PALETTE.items()]
    rules.append(f".v-other {{ background: {OTHER.colour}; }}")
    rules += [
        f'article.claim[data-status="{s}"] {{ border-left-color: {v.colour}; }}'
        for s, v in PALETTE.items()
        if s in ("holds", "fails", "inconclusive")
    ]
    return "\n".join(rules)
