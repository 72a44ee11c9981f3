"""The papers' own figures: one data file per paper, each entry well formed, one per claim,
and every number and quote standing in the paper's text near the table it cites."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from robustlens.claims import CLAIM_REGISTRY, CLAIMS
from robustlens.errors import ConfigError
from robustlens.papers import PAPERS, paper_figure
from robustlens.papers.figures import (
    PaperFigure,
    PaperValue,
    all_figures,
    data_files,
    figure_problems,
    load_figures,
)

PAPER_TEXTS = Path(
    os.environ.get("ROBUSTLENS_PAPERS", Path(__file__).parents[2].parent / "shared" / "papers")
)
WINDOW = 1500
"""How far (characters, either side) from a mention of its table a number may stand: the
longest table of the five papers (004 Table 1) spans about 1,000 characters of text."""


def flat(text: str) -> str:
    return " ".join(text.split())


def label_pattern(reference: str) -> re.Pattern[str]:
    """Mentions of a reference in the text: "Table 1" (not "Table 10"), "Fig. 6" as "Figure 6"
    or "Fig. 6"; a range "Fig. 1–3" by its first figure."""
    kind, number = reference.split(" ", 1)
    number = number.split("–")[0]
    word = {"Table": "Table", "Fig.": r"(?:Figure|Fig\.)"}[kind]
    return re.compile(rf"{word}\W*{re.escape(number)}(?!\d)")


def number_pattern(text: str) -> re.Pattern[str]:
    """A number as printed, not part of a longer one ("0.82" does not match "0.826")."""
    return re.compile(rf"(?<![\d.]){re.escape(text)}(?![\d])")


def stands_near(text: str, reference: str, value: str) -> bool:
    """Whether ``value`` is printed within WINDOW characters of a mention of ``reference``."""
    number = number_pattern(value)
    for mention in label_pattern(reference).finditer(text):
        lo, hi = max(0, mention.start() - WINDOW), mention.end() + WINDOW
        if number.search(text, lo, hi):
            return True
    return False


def test_one_data_file_per_paper_one_entry_per_claim():
    assert data_files() == sorted(PAPERS)
    figures = all_figures()
    assert sorted(figures) == sorted(c.id for c in CLAIMS)
    for claim_id, figure in figures.items():
        assert claim_id.lower() in CLAIM_REGISTRY.names()
        assert figure.paper == CLAIM_REGISTRY.get(claim_id).paper.number
        assert figure_problems(figure) == []
        assert paper_figure(claim_id) is figure
    assert paper_figure("999-nothing") is None


def test_counts_of_entries_with_numbers_and_figure_only():
    figures = all_figures().values()
    with_numbers = [f for f in figures if not f.figure_only]
    assert len(with_numbers) == 12 and len(figures) - len(with_numbers) == 13
    assert all(f.kind == "figure" for f in figures if f.figure_only)


def test_a_summary_cites_table_numbers_and_direction():
    line = paper_figure("004-4.1-svcca").summary()
    assert line.startswith("paper 004 Table 7 (CIFAR-10")
    assert "regular, PGD L2 ε = 0.25 0.686" in line and "lowest under L∞" in line
    only = paper_figure("002-4.1-blur").summary()
    assert "paper 002 Fig. 6" in only and "figure only" in only
    cross = paper_figure("004-3.1-robust-data").summary()
    assert "L∞ data set, PGD L∞ 0.155 (Table 2)" in cross


BAD = [
    ('reference = "Tab 1"', "not like 'Table 3'"),
    ('kind = "plot"', "kind 'plot'"),
    ("values = [{ what = 'x', value = 0.5 }]", "not a number as printed"),
    ('colour = "red"', "unknown fields \\['colour'\\]"),
]


@pytest.mark.parametrize(("line", "message"), BAD, ids=[b[1][:12] for b in BAD])
def test_a_malformed_entry_is_one_clear_error(line: str, message: str):
    fields = {
        "reference": 'reference = "Table 1"',
        "kind": 'kind = "table"',
        "setting": 'setting = "s"',
        "direction": 'direction = "d"',
        "values": "values = [{ what = 'x', value = '0.5' }]",
    }
    key = line.split(" ", 1)[0]
    fields[key] = line
    text = 'paper = "004"\n[claims."004-5-boundary"]\n' + "\n".join(fields.values())
    with pytest.raises(ConfigError, match=message):
        load_figures("004", text)
    with pytest.raises(ConfigError, match="expected '004'"):
        load_figures("004", 'paper = "003"')


def test_the_form_rules_each_catch_their_case():
    v = PaperValue("x", "1.5")
    assert figure_problems(PaperFigure("004-x", "004", "Fig. 2", "figure", "s", "d", (v,)))
    assert figure_problems(PaperFigure("004-x", "004", "Table 2", "table", "s", "d"))
    assert figure_problems(PaperFigure("004-x", "004", "§4.2", "text", "s", "d", (v,)))
    assert figure_problems(PaperFigure("003-x", "004", "Table 2", "table", "s", "d", (v,)))
    assert not figure_problems(PaperFigure("004-x", "004", "§4.2", "text", "s", "d", (v,), "q"))


def test_the_nearness_check_can_fail():
    text = "Table 1: accuracies\nA 80.14 0.826\n" + "x" * (WINDOW + 10) + " 99.5 Table 10 77.7"
    assert stands_near(text, "Table 1", "80.14")
    assert not stands_near(text, "Table 1", "80.15")  # a number the table does not print
    assert not stands_near(text, "Table 1", "0.82")  # only as the head of a longer number
    assert not stands_near(text, "Table 1", "77.7")  # beside Table 10, not Table 1
    assert not stands_near(text, "Table 1", "99.5")  # too far from any mention


@pytest.mark.skipif(not PAPER_TEXTS.is_dir(), reason=f"no paper texts at {PAPER_TEXTS}")
@pytest.mark.parametrize("number", sorted(PAPERS))
def test_every_number_and_quote_is_in_the_papers_text(number: str):
    text = (PAPER_TEXTS / f"{PAPERS[number].id}.txt").read_text(encoding="utf-8")
    for figure in load_figures(number).values():
        if figure.quote:
            assert flat(figure.quote) in flat(text), (figure.claim, figure.quote)
        if figure.kind == "text":
            for v in figure.values:
                assert number_pattern(v.text).search(figure.quote), (figure.claim, v.text)
            continue
        assert label_pattern(figure.reference).search(text), (figure.claim, figure.reference)
        for v in figure.values:
            where = v.reference or figure.reference
            assert stands_near(text, where, v.text), (figure.claim, where, v.text)
