"""The five papers robustlens implements: who wrote them, what they are called, where they
appeared, and how the report names them; and (``figures``, with one data file per paper in
``data/``) the paper's own numbers for each claim, with the table or figure they stand in.

Pure data, read from each paper's text (``../shared/papers/<id>.txt`` beside the checkout):
title and authors from its head; year, venue, DOI from the text where it states them (004), else
from the paper's own arXiv listing or proceedings page (000–003). A field neither states is None
rather than a guess. The report cites a paper only through these records (:attr:`Paper.label`,
:attr:`Paper.citation`), never by its file id.
"""

from __future__ import annotations

from dataclasses import dataclass

from robustlens.errors import ConfigError
from robustlens.papers.figures import PaperFigure, PaperValue, paper_figure


@dataclass(frozen=True)
class Paper:
    """One paper. ``id`` is the file id of its text (``"002_cb5dd505beb7dee8"``)."""

    id: str
    authors: tuple[str, ...]
    title: str
    year: int | None = None
    venue: str | None = None
    arxiv: str | None = None
    doi: str | None = None
    listed: tuple[str, ...] = ()
    """The fields (``"year"``, ``"venue"``, ``"arxiv"``) taken from the paper's own arXiv
    listing or proceedings page because its text does not state them; every other field is
    stated in the text."""

    @property
    def number(self) -> str:
        """The paper's number in the project (``"002"``)."""
        return self.id.split("_", 1)[0]

    @property
    def short_authors(self) -> str:
        """ "Itazuri et al." (three or more authors), "Gavrikov & Keuper" (two)."""
        surnames = [name.split()[-1] for name in self.authors]
        if len(surnames) > 2:
            return f"{surnames[0]} et al."
        return " & ".join(surnames)

    @property
    def cite(self) -> str:
        """A short citation: "Garaev et al. 2024" (the year only where the text gives it)."""
        return f"{self.short_authors} {self.year}" if self.year else self.short_authors

    @property
    def label(self) -> str:
        """How the report names the paper in short: "Itazuri et al. 2019"."""
        return self.cite

    @property
    def where(self) -> str:
        """Where it appeared: "Algorithms, doi:10.3390/a17040162", "arXiv:1905.07666",
        "CVPR 2022 Workshops, arXiv:2204.02481" ("" when nothing is known)."""
        parts = [self.venue or ""]
        if self.arxiv:
            parts.append(f"arXiv:{self.arxiv}")
        if self.doi:
            parts.append(f"doi:{self.doi}")
        return ", ".join(p for p in parts if p)

    @property
    def citation(self) -> str:
        """The full reference: "Itazuri, Fukuhara, Kataoka & Morishima (2019). What Do
        Adversarially Robust Models Look At? arXiv:1905.07666"."""
        surnames = [name.split()[-1] for name in self.authors]
        names = surnames[0] if len(surnames) == 1 else ", ".join(surnames[:-1])
        if len(surnames) > 1:
            names += f" & {surnames[-1]}"
        year = f" ({self.year})" if self.year else ""
        title = self.title if self.title.endswith(("?", "!", ".")) else self.title + "."
        return f"{names}{year}. {title} {self.where}".strip()

    def __str__(self) -> str:
        return self.label


CARLETTI = Paper(
    "000_623867b7a7f4c6d9",
    ("Mattia Carletti", "Matteo Terzi", "Gian Antonio Susto"),
    "On the Properties of Adversarially-Trained CNNs",
    year=2022,
    arxiv="2203.09243",
    listed=("year", "arxiv"),
)
SPRINGER = Paper(
    "001_3364f971c200652f",
    ("Jacob M. Springer", "Melanie Mitchell", "Garrett T. Kenyon"),
    "Adversarial Perturbations Are Not So Weird: Entanglement of Robust and Non-Robust "
    "Features in Neural Network Classifiers",
    year=2021,
    arxiv="2102.05110",
    listed=("year", "arxiv"),
)
ITAZURI = Paper(
    "002_cb5dd505beb7dee8",
    ("Takahiro Itazuri", "Yoshihiro Fukuhara", "Hirokatsu Kataoka", "Shigeo Morishima"),
    "What Do Adversarially Robust Models Look At?",
    year=2019,
    arxiv="1905.07666",
    listed=("year", "arxiv"),
)
GAVRIKOV = Paper(
    "003_d3114563f2aadf8a",
    ("Paul Gavrikov", "Janis Keuper"),
    "Adversarial Robustness through the Lens of Convolutional Filters",
    year=2022,
    venue="CVPR 2022 Workshops (The Art of Robustness)",
    arxiv="2204.02481",
    listed=("year", "venue", "arxiv"),
)
GARAEV = Paper(
    "004_34ba3a310e26400d",
    ("Roman Garaev", "Bader Rasheed", "Adil Mehmood Khan"),
    "Not So Robust after All: Evaluating the Robustness of Deep Neural Networks to Unseen "
    "Adversarial Attacks",
    year=2024,
    venue="Algorithms",
    doi="10.3390/a17040162",
)

PAPERS: dict[str, Paper] = {p.number: p for p in (CARLETTI, SPRINGER, ITAZURI, GAVRIKOV, GARAEV)}
"""By number ("000" … "004"), in the project's order."""


def get_paper(key: str) -> Paper:
    """The paper with number ``key`` ("002") or file id ("002_cb5dd505beb7dee8")."""
    for paper in PAPERS.values():
        if key in (paper.number, paper.id):
            return paper
    known = ", ".join(f"{p.number} ({p.short_authors})" for p in PAPERS.values())
    raise ConfigError(f"unknown paper {key!r}", fix=f"known papers: {known}")


__all__ = [
    "CARLETTI",
    "GARAEV",
    "GAVRIKOV",
    "ITAZURI",
    "PAPERS",
    "SPRINGER",
    "Paper",
    "PaperFigure",
    "PaperValue",
    "get_paper",
    "paper_figure",
]
