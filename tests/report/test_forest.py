"""A claim's forest plot: one panel per measured quantity, one row per effect, markers by where
each interval lies, the decision line where its value is, a text alternative and a reading."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

from robustlens.claims import Effect
from robustlens.report.forest import ON, OPPOSITE, number, panels, reading

SVG = "{http://www.w3.org/2000/svg}"
WHAT = "Δ Σ_k N_k"
EFFECTS = [
    Effect("linf-0.05 − natural", WHAT, 3.0, 1.5, 4.5, unit="feature maps"),
    Effect("linf-0.1 − natural", WHAT, 9.0, 7.0, 11.0, unit="feature maps"),
    Effect("l2-1.5 − natural", WHAT, -2.0, -3.0, -1.0, unit="feature maps"),
    Effect("linf-0.2 − natural", WHAT, 0.5, -1.0, 2.0, unit="feature maps"),
]


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # well-formed XML, or a ParseError


def by_class(root: ET.Element, name: str) -> list[ET.Element]:
    return [el for el in root.iter() if el.get("class") == name]


def test_one_panel_per_quantity_with_a_marker_per_row_by_where_its_interval_lies():
    other = Effect("linf-0.1", "S̄", 0.02, 0.01, 0.03, unit="cosine similarity")
    (maps, similarity) = panels([*EFFECTS, other])
    assert maps.what == "Δ Σ_k N_k (feature maps)" and similarity.what == "S̄ (cosine similarity)"
    root = parse(maps.svg)
    assert root.get("role") == "img" and root.get("aria-label") == maps.alt
    assert root.get("font-size") == "12"  # the text's size and colour, set once
    on, wrong = by_class(root, "mark-on"), by_class(root, "mark-wrong")
    across = by_class(root, "mark-across")
    assert (len(on), len(wrong), len(across)) == (2, 1, 1)
    assert {m.get("fill") for m in on} == {ON} and wrong[0].get("fill") == OPPOSITE
    assert len(by_class(root, "ci")) == 4
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "Δ Σ_k N_k (feature maps)" in texts  # the axis, with its unit
    assert "9 [7, 11]" in texts and "−2 [−3, −1]" in texts
    assert "claimed: above 0" in texts
    assert "2 of 4 on the claimed side, 1 on the wrong side, 1 across the line" in maps.alt


def test_points_and_the_decision_line_sit_where_their_values_are():
    root = parse(panels(EFFECTS)[0].svg)
    (line,) = by_class(root, "decision")
    points = {float(c.get("cx")): None for c in by_class(root, "mark-on")}
    xs = sorted(points)  # estimates 3 and 9
    zero = float(line.get("x1"))
    # a linear scale: 0 → zero, 3 → xs[0], 9 → xs[1]; coordinates are written to 0.1 px, so
    # each is off by ≤ 0.05 and 9 − 0 = 3 · (3 − 0) holds within 0.05 + 3 · 0.1
    assert xs[1] - zero == pytest.approx(3 * (xs[0] - zero), abs=0.35)
    (square,) = by_class(root, "mark-wrong")
    centre = float(square.get("x")) + float(square.get("width")) / 2
    # estimate −2: off by ≤ 0.05 (the square) + 0.05 (the line) + ⅔ · 0.1
    assert zero - centre == pytest.approx(2 / 3 * (xs[0] - zero), abs=0.17)


def test_a_threshold_a_margin_and_the_papers_value_are_drawn():
    below = Effect("robust-data, pgd linf 0.025", "retained", 0.3, 0.2, 0.4, line=0.5, side=-1)
    root = parse(panels([below])[0].svg)
    assert [t.text for t in root.iter(f"{SVG}text") if "claimed" in (t.text or "")] == [
        "claimed: below 0.5"
    ]
    assert len(by_class(root, "mark-on")) == 1
    band = Effect("linf-0.1", "gap change", 0.0, -0.01, 0.02, side=0, margin=0.05)
    assert "claimed: within 0 ± 0.05" in panels([band])[0].svg
    latent = Effect("linf-0.1", "Δ natural acc", 0.1, 0.05, 0.15, paper=0.0239)
    (panel,) = panels([latent])
    assert len(by_class(parse(panel.svg), "mark-paper")) == 1
    assert "The paper's values (diamonds): linf-0.1 0.0239." in panel.alt
    assert not by_class(parse(panels(EFFECTS)[0].svg), "mark-paper")


def test_text_is_escaped_and_an_undefined_interval_draws_no_point():
    evil = Effect('<script>alert("x")</script>', "a & b", math.nan, math.nan, math.nan)
    (panel,) = panels([evil])
    root = parse(panel.svg)  # still well-formed
    assert "<script>" not in panel.svg and "&lt;script&gt;" in panel.svg
    assert not by_class(root, "ci") and not by_class(root, "mark-across")
    assert "– [–, –]" in panel.alt


def test_the_reading_says_how_large_and_on_which_side_then_what_the_paper_reports():
    text = reading(EFFECTS[:2], "robust > natural")
    assert text == (
        "Δ Σ_k N_k: from 3 to 9 feature maps over 2 rows, 2 of 2 intervals above 0 — the paper "
        "reports: robust > natural."
    )
    assert ", 1 on the wrong side" in reading(EFFECTS)
    one = reading([Effect("a", "ratio", 0.7, 0.6, 0.8, line=0.5, side=-1)])
    assert one == "Ratio: 0.7 [0.6, 0.8], on the wrong side (below 0.5 claimed)."
    paper = reading([Effect("a", "Δ acc", 0.1, 0.05, 0.15, unit="fraction", paper=0.0239)])
    assert "(the paper: 0.0239 fraction)" in paper
    assert reading([]) == ""


def test_the_reading_says_when_a_measure_is_constant_or_undefined():
    flat = [Effect(f"m{i}", WHAT, 0.0, 0.0, 0.0, unit="feature maps") for i in range(4)]
    assert reading(flat) == (
        "Δ Σ_k N_k: 0 feature maps for every one of the 4 rows, without any spread: the "
        "measure does not vary on these models."
    )
    nan = [Effect("linf-trained", "ρ", math.nan, math.nan, math.nan, needs=0.8)]
    assert "ρ: undefined on 1 row" in reading(nan)


def test_numbers_use_three_digits_and_a_true_minus():
    assert [number(x) for x in (0.04361, -2.0, -0.0001234, math.nan, math.inf, -0.0)] == [
        "0.0436",
        "−2",
        "−0.000123",
        "–",
        "∞",
        "0",
    ]
