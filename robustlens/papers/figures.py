"""The papers' own figures for each claim: one data file per paper (``data/<number>.toml``),
each entry citing the table, figure or section its numbers come from, the row and column
(model, ε, data set) they sit in, the numbers as the paper prints them, and the direction
of the effect the paper reports.

A claim whose evidence in the paper is a plot only has no numbers ("figure only": figures do
not survive in the papers' texts and we read no values off plots); its entry still gives the
reference and the direction. A ``quote`` is a sentence of the paper's text, word for word, so
that a reader (and ``tests/papers``) can find it.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from robustlens.errors import ConfigError

KINDS = ("table", "figure", "text")
"""Where an entry's evidence stands in the paper: a table (numbers), a figure (no numbers
survive: "figure only") or the running text (numbers stated in a sentence, quoted)."""

REFERENCE = re.compile(r"^(Table (A?\d+)|Fig\. \d+(–\d+)?|§\d+(\.\d+)*|App\. [A-Z])$")
"""A well-formed reference: "Table 3", "Table A3", "Fig. 6", "Fig. 1–3", "§4.2", "App. B"."""

NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")
"""A value as the paper prints it: "80.14", "+2.39", "-4.67", "0.1018"."""

FIELDS = {"reference", "kind", "setting", "direction", "values", "quote", "also"}
VALUE_FIELDS = {"what", "value", "unit", "reference"}


@dataclass(frozen=True)
class PaperValue:
    """One number of the paper: what it measures (row and column), as printed, its unit."""

    what: str
    text: str
    unit: str = ""
    reference: str = ""
    """The table it stands in when not the entry's own."""

    @property
    def value(self) -> float:
        return float(self.text)

    def __str__(self) -> str:
        return f"{self.what} {self.text} {self.unit}".rstrip()


@dataclass(frozen=True)
class PaperFigure:
    """What the paper itself reports for one claim."""

    claim: str
    paper: str
    """The paper's number ("004")."""
    reference: str
    kind: str
    setting: str
    direction: str
    values: tuple[PaperValue, ...] = ()
    quote: str = ""
    also: str = ""
    """Further places in the paper showing the same effect (figures, other tables)."""

    @property
    def figure_only(self) -> bool:
        """True when the paper shows the effect in a plot only: no number to compare."""
        return not self.values

    @property
    def cite(self) -> str:
        """ "paper 004 Table 7"."""
        return f"paper {self.paper} {self.reference}"

    def figure_text(self) -> str:
        """ "paper 004 Table 7 (CIFAR-10, ResNet50, …): regular, PGD L2 ε = 0.25 0.686; …", or
        "…: figure only" when the paper shows a plot only."""
        if self.figure_only:
            body = "figure only"
        else:
            body = "; ".join(f"{v} ({v.reference})" if v.reference else str(v) for v in self.values)
        return f"{self.cite} ({self.setting}): {body}"

    def summary(self) -> str:
        """One line: the figure and the direction of the effect the paper reports."""
        return f"{self.figure_text()} — {self.direction}"


def _entry(paper: str, claim: str, raw: dict[str, Any], source: str) -> PaperFigure:
    where = f"{source} [claims.{claim!r}]"
    unknown = set(raw) - FIELDS
    missing = {"reference", "kind", "setting", "direction"} - set(raw)
    if unknown or missing:
        raise ConfigError(
            f"{where}: unknown fields {sorted(unknown)}, missing fields {sorted(missing)}",
            fix=f"an entry has the fields {sorted(FIELDS)}",
        )
    values = []
    for item in raw.get("values", []):
        if set(item) - VALUE_FIELDS or not {"what", "value"} <= set(item):
            raise ConfigError(f"{where}: bad value {item!r}", fix="a value has what and value")
        values.append(
            PaperValue(item["what"], item["value"], item.get("unit", ""), item.get("reference", ""))
        )
    figure = PaperFigure(
        claim,
        paper,
        raw["reference"],
        raw["kind"],
        raw["setting"],
        raw["direction"],
        tuple(values),
        raw.get("quote", ""),
        raw.get("also", ""),
    )
    problems = figure_problems(figure)
    if problems:
        raise ConfigError(f"{where}: " + "; ".join(problems), fix="see robustlens/papers/data")
    return figure


def figure_problems(figure: PaperFigure) -> list[str]:
    """What is wrong with an entry's form (empty when nothing is)."""
    problems = []
    if figure.kind not in KINDS:
        problems.append(f"kind {figure.kind!r} is not one of {KINDS}")
    if not figure.claim.startswith(figure.paper + "-"):
        problems.append(f"claim {figure.claim!r} is not a claim of paper {figure.paper}")
    for ref in (figure.reference, *(v.reference for v in figure.values if v.reference)):
        if not REFERENCE.match(ref):
            problems.append(f"reference {ref!r} is not like 'Table 3', 'Fig. 6' or '§4.2'")
    if figure.kind == "figure" and figure.values:
        problems.append("a figure-only entry has no values")
    if figure.kind != "figure" and not figure.values:
        problems.append(f"a {figure.kind} entry needs values")
    if figure.kind == "text" and not figure.quote:
        problems.append("a text entry quotes the sentence its numbers stand in")
    for v in figure.values:
        if not isinstance(v.text, str) or not NUMBER.match(v.text):
            problems.append(f"value {v.text!r} is not a number as printed (a string)")
    if not figure.direction.strip() or not figure.setting.strip():
        problems.append("the setting and the direction are not empty")
    return problems


def load_figures(number: str, text: str | None = None) -> dict[str, PaperFigure]:
    """The entries of paper ``number``'s data file (or of the TOML ``text``), by claim id."""
    source = f"robustlens/papers/data/{number}.toml"
    if text is None:
        text = (
            resources.files("robustlens.papers")
            .joinpath("data", f"{number}.toml")
            .read_text(encoding="utf-8")
        )
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    if data.get("paper") != number:
        raise ConfigError(f"{source}: paper = {data.get('paper')!r}, expected {number!r}")
    claims = data.get("claims", {})
    return {cid: _entry(number, cid, raw, source) for cid, raw in claims.items()}


@cache
def all_figures() -> dict[str, PaperFigure]:
    """Every paper's figures, by claim id."""
    out: dict[str, PaperFigure] = {}
    for number in data_files():
        out.update(load_figures(number))
    return out


def data_files() -> list[str]:
    """The papers with a data file, by number ("000" …)."""
    folder = resources.files("robustlens.papers").joinpath("data")
    return sorted(
        f.name.removesuffix(".toml") for f in folder.iterdir() if f.name.endswith(".toml")
    )


def paper_figure(claim_id: str) -> PaperFigure | None:
    """The paper's own figure for ``claim_id``, or None when its data file has none."""
    return all_figures().get(claim_id)
