"""Claims are registered by id in the report's order, each names a paper of the one papers
module, and verdicts carry a status of the one enum."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from robustlens.claims import CLAIM_REGISTRY, CLAIMS, Status, Verdict, get_claim
from robustlens.claims.base import Claim, register_claims
from robustlens.claims.verdict import FAILS, HOLDS, INCONCLUSIVE, from_sign
from robustlens.errors import ConfigError
from robustlens.papers import GARAEV, GAVRIKOV, ITAZURI, PAPERS, Paper, get_paper

REPORT_ORDER = [
    "000-4.1-dense",
    "000-4.1-dense-eps",
    "000-4.2-redundancy",
    "000-4.3-latent",
    "000-4.3-latent-eps",
    "000-4.4-average",
    "000-4.4-contour",
    "000-B-grid",
    "001-4-type-b",
    "001-5.1-universality",
    "001-5.2-targeted-transfer",
    "002-3.4-frequency",
    "002-A-guided-sanity",
    "002-4.1-median",
    "002-4.1-texture",
    "002-4.1-blur",
    "002-4.2-fusion",
    "003-4.3-quality",
    "003-4.2-shift",
    "004-3.1-robust-data",
    "004-3.1-linf",
    "004-3.2-ratio",
    "004-3.3-adistance",
    "004-4.1-svcca",
    "004-5-boundary",
]
"""The claims table's order before the claims were registered: it must not change."""

LABELS = {
    "000": "Carletti et al. 2022",
    "001": "Springer et al. 2021",
    "002": "Itazuri et al. 2019",
    "003": "Gavrikov & Keuper 2022",
    "004": "Garaev et al. 2024",
}
"""How the report names each paper in short: authors and year, never the file id."""


def test_claims_keep_the_report_order_and_are_all_registered():
    assert [c.id for c in CLAIMS] == REPORT_ORDER
    assert sorted(CLAIM_REGISTRY.names()) == sorted(i.lower() for i in REPORT_ORDER)
    assert all(get_claim(c.id) is c for c in CLAIMS)


def test_an_unknown_claim_id_is_answered_with_the_closest_one():
    with pytest.raises(ConfigError, match=r"unknown claim '000-4\.1-dens'") as err:
        get_claim("000-4.1-dens")
    assert "did you mean '000-4.1-dense'" in err.value.fix


def test_a_claim_id_is_registered_once():
    twin = CLAIMS[0]
    with pytest.raises(ValueError, match="registered twice"):
        register_claims(Claim(twin.id, twin.paper, "", "", (), twin.check))


def test_every_claim_names_a_paper_of_the_papers_module_by_its_label():
    for claim in CLAIMS:
        assert claim.paper is PAPERS[claim.id[:3]]
        assert claim.paper.label == LABELS[claim.id[:3]]
    assert {p.number: p.label for p in PAPERS.values()} == LABELS


def test_short_citations_and_lookup():
    assert ITAZURI.cite == "Itazuri et al. 2019"
    assert GAVRIKOV.short_authors == "Gavrikov & Keuper"
    assert GARAEV.cite == "Garaev et al. 2024"
    assert str(GARAEV) == GARAEV.label
    assert get_paper("004") is GARAEV and get_paper(GARAEV.id) is GARAEV
    with pytest.raises(ConfigError, match="unknown paper '005'") as err:
        get_paper("005")
    assert "002 (Itazuri et al.)" in err.value.fix
    assert Paper("009_x", ("Ada Lovelace",), "T").cite == "Lovelace"  # no year: none made up


def test_full_citations_give_authors_year_title_and_where_never_the_file_id():
    assert ITAZURI.citation == (
        "Itazuri, Fukuhara, Kataoka & Morishima (2019). What Do Adversarially Robust Models "
        "Look At? arXiv:1905.07666"
    )
    assert GARAEV.citation.endswith("Algorithms, doi:10.3390/a17040162")
    assert GAVRIKOV.where == "CVPR 2022 Workshops (The Art of Robustness), arXiv:2204.02481"
    for paper in PAPERS.values():
        assert paper.year and (paper.arxiv or paper.doi), paper.id
        assert paper.id not in paper.citation and paper.id not in paper.label
        assert paper.title in paper.citation and str(paper.year) in paper.citation
    assert Paper("009_x", ("Ada Lovelace",), "Notes").citation == "Lovelace. Notes."


PAPER_TEXTS = Path(
    os.environ.get("ROBUSTLENS_PAPERS", Path(__file__).parents[2].parent / "shared" / "papers")
)


@pytest.mark.skipif(not PAPER_TEXTS.is_dir(), reason=f"no paper texts at {PAPER_TEXTS}")
@pytest.mark.parametrize("paper", PAPERS.values(), ids=list(PAPERS))
def test_the_papers_facts_are_in_their_texts(paper: Paper):
    """Title and authors stand at the head of the paper's text; a year, venue, DOI or arXiv id
    is stated in the text too, unless the record lists it as taken from the paper's listing
    (the text does not state it). A listed year is no earlier than the latest year the text
    cites, and a listed arXiv id's YYMM agrees with the year."""
    text = (PAPER_TEXTS / f"{paper.id}.txt").read_text(encoding="utf-8")
    head = " ".join(text[:2000].split())
    assert " ".join(paper.title.split()) in head
    for author in paper.authors:
        assert author in head, author
    compact = "".join(text.split())  # the DOI is broken over a space in the text
    facts = {"year": paper.year, "venue": paper.venue, "doi": paper.doi, "arxiv": paper.arxiv}
    assert set(paper.listed) <= set(facts) - {"doi"}
    for name, fact in facts.items():
        if fact is not None and name not in paper.listed:
            assert "".join(str(fact).split()) in compact, fact
        if name in paper.listed:  # (a listed year may well be cited in the references)
            assert fact is not None and (name == "year" or str(fact) not in compact), fact
    if "year" in paper.listed:
        cited = max(int(y) for y in re.findall(r"\b(?:19|20)\d\d\b", text))
        assert paper.year >= cited, (paper.year, cited)
    if paper.arxiv:
        assert 2000 + int(paper.arxiv[:2]) == paper.year, paper.arxiv


def test_statuses_are_one_enum_that_reads_as_its_text():
    assert [str(s) for s in Status] == [
        "holds",
        "fails",
        "inconclusive",
        "not computed",
        "not applicable",
    ]
    assert HOLDS == "holds" and f"{Status.NOT_COMPUTED}" == "not computed"
    assert Verdict("fails", "e").status is FAILS  # a string is taken as its member
    with pytest.raises(ValueError, match="'maybe'"):
        Verdict("maybe", "e")
    assert [from_sign(s) for s in (1, -1, 0)] == [HOLDS, FAILS, INCONCLUSIVE]
