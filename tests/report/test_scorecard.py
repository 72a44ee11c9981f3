"""The scorecard under the report's title: a cell per claim, grouped by paper, coloured by
verdict from a colour-blind-safe palette and named in words, each a link to its claim; and
each claim with its forest plot, its reading and its evidence folded away."""

from __future__ import annotations

import dataclasses
from html import escape

import pytest

from robustlens.claims import Effect
from robustlens.papers import CARLETTI, GARAEV
from robustlens.report.document import ClaimRow, ReportDocument
from robustlens.report.html import render_report
from robustlens.report.scorecard import PALETTE, counts_line, palette_css, scorecard

from .test_html import parse_html, sample_document

OKABE_ITO = {"#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"}
STATUSES = ("holds", "fails", "inconclusive", "not applicable", "not computed")


def claim(claim_id: str, status: str, paper=CARLETTI, effects=()) -> ClaimRow:
    return ClaimRow(
        claim_id,
        paper.label,
        "§4.1",
        f"Statement of {claim_id}.",
        status,
        f"evidence of {claim_id}",
        citation=paper.citation,
        effects=list(effects),
    )


CLAIMS = [
    claim("000-4.1-dense", "holds", effects=[Effect("linf-0.1 − natural", "Δ N", 3, 1, 5)]),
    claim("000-4.2-redundancy", "fails"),
    claim("000-4.4-contour", "not applicable", effects=[Effect("linf-0.1", "Δ drop", 1, 0, 2)]),
    claim("004-3.1-linf", "inconclusive", GARAEV),
    claim("004-5-boundary", "not computed", GARAEV),
]


def document(claims: list[ClaimRow]) -> ReportDocument:
    return dataclasses.replace(sample_document(), claims=claims)


def contrast(hex_colour: str) -> float:
    """WCAG contrast ratio of black text on ``hex_colour``."""

    def linear(c: int) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(int(hex_colour[i : i + 2], 16)) for i in (1, 3, 5))
    return (0.2126 * r + 0.7152 * g + 0.0722 * b + 0.05) / 0.05


def test_verdicts_are_okabe_ito_colours_with_glyphs_and_readable_black_text():
    assert set(PALETTE) == set(STATUSES)
    verdicts = [PALETTE[s].colour for s in ("holds", "fails", "inconclusive")]
    assert set(verdicts) <= OKABE_ITO and len(set(verdicts)) == 3
    assert len({v.glyph for v in PALETTE.values()}) == len(PALETTE)  # never colour alone
    assert all(contrast(v.colour) >= 4.5 for v in PALETTE.values())  # WCAG AA
    css = palette_css()
    assert ".v-holds { background: #009E73; }" in css
    assert ".v-not-computed { background: #FFFFFF; }" in css


def test_cells_are_grouped_by_paper_and_say_their_verdict_in_words():
    lines = scorecard(CLAIMS)
    assert [p.paper for p in lines] == ["Carletti et al. 2022", "Garaev et al. 2024"]
    carletti = lines[0]
    assert (
        carletti.citation == CARLETTI.citation and carletti.anchor == "paper-Carletti-et-al.-2022"
    )
    assert [c.short for c in carletti.cells] == ["4.1-dense", "4.2-redundancy", "4.4-contour"]
    assert [c.css for c in carletti.cells] == ["v-holds", "v-fails", "v-not-applicable"]
    dense = carletti.cells[0]
    assert dense.href == "#claim-000-4.1-dense" and dense.glyph == "✓"
    assert dense.label == "claim 000-4.1-dense (§4.1): holds — Statement of 000-4.1-dense."
    assert carletti.line == "1 holds, 1 fails, 1 not applicable"
    assert lines[1].line == "1 inconclusive, 1 not computed"


def test_counts_line_puts_statuses_in_palette_order():
    line = counts_line(["fails", "holds", "holds", "odd", "inconclusive", "fails"])
    assert line == "2 hold, 2 fail, 1 inconclusive, 1 without a verdict"
    assert counts_line([]) == ""


@pytest.fixture(scope="module")
def html() -> str:
    return render_report(document(CLAIMS))


def test_the_scorecard_comes_first_and_every_cell_links_to_its_claim(html: str):
    parsed = parse_html(html)
    assert len(parsed.find("section", id="scorecard")) == 1
    assert html.index("</header>") < html.index('id="scorecard"') < html.index('id="models"')
    cells = parsed.find("a", **{"class": "sc-cell v-holds"})
    assert len(cells) == 1 and cells[0]["href"] == "#claim-000-4.1-dense"
    ids = {a["id"] for _, a in parsed.elements if "id" in a}
    hrefs = [
        a["href"] for tag, a in parsed.elements if tag == "a" and "sc-cell" in a.get("class", "")
    ]
    assert len(hrefs) == len(CLAIMS) and {h[1:] for h in hrefs} <= ids
    for status in STATUSES:
        (cell,) = [a for tag, a in parsed.elements if a.get("data-status") == status and
                   tag == "a"]  # fmt: skip
        assert f": {status} — " in cell["aria-label"] and cell["aria-label"] == cell["title"]
    # the papers' anchors resolve to their heading in the claims section
    for anchor in ("paper-Carletti-et-al.-2022", "paper-Garaev-et-al.-2024"):
        assert f'href="#{anchor}"' in html and f'id="{anchor}"' in html
    assert "5 claims of 2 papers" in html


def test_each_claim_has_its_picture_reading_and_collapsed_evidence(html: str):
    parsed = parse_html(html)
    articles = [a for tag, a in parsed.elements if tag == "article" and a.get("class") == "claim"]
    assert [a["id"] for a in articles] == [f"claim-{c.claim_id}" for c in CLAIMS]
    dense = html[html.index('id="claim-000-4.1-dense"') :]
    dense = dense[: dense.index("</article>")]
    assert (
        dense.index('<p class="reading">Δ N: 3 [1, 5], on the claimed side')
        < dense.index("<svg")
        < dense.index('<details class="evidence">')
        < dense.index("evidence of 000-4.1-dense")
    )
    assert "<details open" not in html
    other = html[html.index('id="claim-000-4.2-redundancy"') :]
    other = other[: other.index("</article>")]
    assert "<svg" not in other and "No interval to draw for this claim" in other
    contour = html[html.index('id="claim-000-4.4-contour"') :]
    assert (
        '<p class="reading">For information only, no verdict (not applicable): Δ drop'
        in (contour[: contour.index("</article>")])
    )


def test_papers_are_cited_by_authors_year_title_and_arxiv_never_by_file_id(html: str):
    assert CARLETTI.id not in html and GARAEV.id not in html
    heading = f'<h3 class="paper-head" id="paper-Carletti-et-al.-2022">{escape(CARLETTI.citation)}'
    assert heading in html
    assert "arXiv:2203.09243" in html and "doi:10.3390/a17040162" in html
    assert "Carletti et al. 2022 §4.1" in html  # the section of the claim beside its paper
