"""The HTML report: one self-contained, escaped file with every part of the document."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import math
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib import pyplot as plt
from PIL import Image

from robustlens.errors import RobustlensError
from robustlens.plotting import (
    PNG_SIGNATURE,
    figure_to_image,
    figure_to_png,
    model_colors,
    new_figure,
    read_image,
)
from robustlens.report import html as report_mod
from robustlens.report.document import (
    ClaimRow,
    FigureBlock,
    LensSection,
    ModelRow,
    ReportDocument,
    TableBlock,
)
from robustlens.report.html import format_number, render_report, write_report

EVIL = '<script>alert("pwned")</script>'
LENS_NAMES = ("feature-geometry", "probe-accuracy")
IMG_SRC = re.compile(r'src="data:image/(png|svg\+xml);base64,([A-Za-z0-9+/=]+)"')
FOLDED_SENTINEL = "folded-row-sentinel"  # text that lives only in a folded table's last row
FLAT_NOTE = "N_k is 0 in every block for every model."


# --------------------------------------------------------------------------------------------
# A sample document (also used by the browser test)


def _line_figure() -> bytes:
    """A pyplot figure (Agg), converted (to SVG: it is small) and closed."""
    fig, ax = plt.subplots(figsize=(4, 3))
    x = np.linspace(0, 0.3, 20)
    colors = model_colors(["natural", "pgd-0.1"], ["natural"])
    ax.plot(x, np.exp(-20 * x), color=colors["natural"], label="natural")
    ax.plot(x, np.exp(-4 * x), color=colors["pgd-0.1"], label="pgd-0.1")
    ax.set_xlabel("ε")
    ax.set_ylabel("accuracy")
    ax.legend()
    return figure_to_image(fig)


def _image_figure() -> bytes:
    """A pyplot-free figure with an image grid."""
    fig, axes = new_figure(1, 2, figsize=(4, 2))
    rng = np.random.default_rng(0)
    for ax in axes:
        ax.imshow(rng.random((8, 8)), cmap="viridis")
        ax.set_axis_off()
    return figure_to_png(fig, dpi=80)


def sample_document() -> ReportDocument:
    """Two models, three claims (one per verdict), two lens sections, one warning."""
    models = [
        ModelRow(
            name="natural",
            arch="small-cnn",
            how_trained="natural, 10 epochs",
            clean_accuracy=0.912,
            robust_accuracy=0.0,
            robust_attack="PGD-20 L∞ ε=0.1",
            parameters=94_218,
            weights_sha256="a" * 64,
        ),
        ModelRow(
            name="pgd-0.1",
            arch="small-cnn",
            how_trained="PGD-7 L∞ ε=0.1, 10 epochs",
            clean_accuracy=0.853,
            robust_accuracy=0.664,
            robust_attack="PGD-20 L∞ ε=0.1",
            parameters=94_218,
            weights_sha256="b" * 64,
            source="loaded",
        ),
    ]
    claims = [
        ClaimRow(
            claim_id="tsipras-1",
            paper="Tsipras et al. 2019",
            section="4",
            statement="Robust models have lower clean accuracy than natural ones.",
            status="holds",
            evidence="91.2 % vs 85.3 % clean accuracy on 1 000 images.",
            interval="Δ = 5.9 [4.1, 7.6] (95 % bootstrap CI over images)",
            paper_figure="paper 004 Table 2 (CIFAR-10): clean accuracy 41.2 %",
            direction="natural > robust <b>always</b>",
            seeds="3 seeds",
        ),
        ClaimRow(
            claim_id="ilyas-2",
            paper="Ilyas et al. 2019",
            section="§3.2",
            statement=f"A statement with markup {EVIL} & an ampersand.",
            status="fails",
            evidence="Accuracy 12 % on the robustified set (claim: > 50 %).",
        ),
        ClaimRow(
            claim_id="engstrom-3",
            paper="Engstrom et al. 2019",
            section="5.1",
            statement="Robust representations are invertible. " * 12,
            status="inconclusive",
            evidence="Too few images (n = 20) for a verdict.",
            interval="[−0.05, 0.31]",
        ),
    ]
    table = pd.DataFrame(
        {
            "model": ["natural", "pgd-0.1"],
            "layer": ["block3", "block3"],
            "cka": [0.123456, 0.98765],
            "n": [1000, 1000],
        }
    )
    nan_table = pd.DataFrame(
        {"model": ["natural", "pgd-0.1"], "probe": ["blur", "blur"], "accuracy": [0.5, np.nan]}
    )
    long_table = pd.DataFrame(
        {
            "setting": [f"σ = {i}" for i in range(19)] + [FOLDED_SENTINEL],
            "natural": np.linspace(0.9, 0.1, 20),
            "pgd-0.1": np.linspace(0.8, 0.5, 20),
        }
    )
    sections = [
        LensSection(
            lens=LENS_NAMES[0],
            title="Feature geometry",
            paper="Tsipras et al. 2019",
            section="4",
            description="How the penultimate features of the models compare.\n\nSecond paragraph.",
            figures=[
                FigureBlock("Accuracy under attack", _line_figure(), "Robust accuracy vs ε."),
                FigureBlock("Feature maps", _image_figure(), "Two random feature maps."),
            ],
            tables=[TableBlock("CKA per layer", table, "Linear CKA, 1 000 images.")],
            notes=["Features pooled over space."],
            params={"layers": ["block1", "block3"], "eps": 0.1, "kernel": "linear"},
            seconds=12.34,
        ),
        LensSection(
            lens=LENS_NAMES[1],
            title="Probe accuracy",
            paper="Ilyas et al. 2019",
            section="3.2",
            description="Accuracy on transformed images.",
            figures=[FigureBlock("N_k per block", b"", note=FLAT_NOTE)],
            tables=[
                TableBlock("Accuracy per probe", nan_table),
                TableBlock("Accuracy per blur", long_table, "Twenty blur levels."),
            ],
        ),
    ]
    return ReportDocument(
        study_name="quickstart <fmnist>",
        description="Natural vs robust small CNNs on Fashion-MNIST.",
        dataset="fashion-mnist",
        eval_n=1000,
        seed=0,
        created="2025-01-02T03:04:05Z",
        versions={"robustlens": "0.1.0", "torch": "2.13.0", "python": "3.11.2"},
        models=models,
        claims=claims,
        sections=sections,
        warnings=["Only 1 000 evaluation images: intervals are wide."],
    )


class ElementCollector(HTMLParser):
    """Every start tag of a document as (tag, attributes), plus the text of <script> tags."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data

    def find(self, tag: str | None = None, **attrs: str) -> list[dict[str, str]]:
        found = []
        for t, a in self.elements:
            if tag is not None and t != tag:
                continue
            if all(a.get(k.replace("_", "-")) == v for k, v in attrs.items()):
                found.append(a)
        return found


def parse_html(html: str) -> ElementCollector:
    parser = ElementCollector()
    parser.feed(html)
    parser.close()
    return parser


@pytest.fixture(scope="module")
def doc() -> ReportDocument:
    return sample_document()


@pytest.fixture(scope="module")
def html(doc: ReportDocument) -> str:
    return render_report(doc)


# --------------------------------------------------------------------------------------------
# Self-contained, complete, escaped


def test_self_contained(html: str) -> None:
    lowered = html.lower()
    for forbidden in ("http://", "https://", "<link", "@import", "url("):
        assert forbidden not in lowered, forbidden
    srcs = re.findall(r'\bsrc\s*=\s*"([^"]*)"', html)
    assert srcs, "no embedded figures"
    assert all(s.startswith(("data:image/png;base64,", "data:image/svg+xml;base64,")) for s in srcs)
    links = re.findall(r'\bhref\s*=\s*"([^"]*)"', html)
    assert all(h.startswith(("#", "data:text/csv;charset=utf-8;base64,")) for h in links)
    assert "<script src" not in lowered
    parsed = parse_html(html)
    csp = parsed.find("meta", http_equiv="Content-Security-Policy")
    assert len(csp) == 1 and "default-src 'none'" in csp[0]["content"]


def test_every_section_and_hook_present(html: str, doc: ReportDocument) -> None:
    parsed = parse_html(html)
    for name in LENS_NAMES:
        sections = parsed.find("section", id=f"lens-{name}")
        assert len(sections) == 1
        assert sections[0]["data-lens"] == name
        assert parsed.find("a", href=f"#lens-{name}"), "table of contents link missing"
    assert len(parsed.find("div", id="claims")) == 1
    assert parsed.find("section", id="models")
    ids = [a["id"] for _, a in parsed.elements if "id" in a]
    assert len(ids) == len(set(ids)), "duplicate ids"
    # header facts, model cards, section details
    for text in (
        "quickstart &lt;fmnist&gt;",
        "fashion-mnist",
        "2025-01-02T03:04:05Z",
        "torch 2.13.0",
        "91.2 %",
        "66.4 %",
        "PGD-20 L∞ ε=0.1",
        "94.2 k",
        "a" * 12,
        "loaded",
        "Tsipras et al. 2019 §4",
        "Ilyas et al. 2019 §3.2",
        "ran in 12.3 s",
        "Features pooled over space.",
        "Second paragraph.",
        "[block1, block3]",
        "Only 1 000 evaluation images: intervals are wide.",
    ):
        assert text in html, text
    # the short hash, the full one on hover
    assert f'<code class="nowrap" title="{"a" * 64}">{"a" * 12}</code>' in html
    # order: header, warnings, contents, models, claims, lenses
    order = [
        html.index('id="warnings"'),
        html.index('class="toc"'),
        html.index('id="models"'),
        html.index('id="claims"'),
        html.index(f'id="lens-{LENS_NAMES[0]}"'),
        html.index(f'id="lens-{LENS_NAMES[1]}"'),
    ]
    assert order == sorted(order)


def test_figures_are_valid_embedded_images(html: str, doc: ReportDocument) -> None:
    """The line chart is an SVG, the image grid a PNG; each shown at the size it reads back."""
    parsed = parse_html(html)
    imgs = parsed.find("img")
    drawn = [f for s in doc.sections for f in s.figures if not f.note]
    assert len(imgs) == len(drawn) == 2
    kinds = []
    for img in imgs:
        assert img["class"] == "figure"
        match = IMG_SRC.fullmatch(f'src="{img["src"]}"')
        assert match, img["src"][:60]
        data = base64.b64decode(match.group(2), validate=True)
        kinds.append(match.group(1))
        image = read_image(data)
        assert image is not None
        assert (image.width, image.height) == (int(img["width"]), int(img["height"]))
        if match.group(1) == "png":
            assert data.startswith(PNG_SIGNATURE)
            with Image.open(io.BytesIO(data)) as im:
                im.verify()
            with Image.open(io.BytesIO(data)) as im:
                assert (im.width, im.height) == (image.width, image.height)  # 80 dpi: 1×
                assert len(im.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 4
            assert img["alt"] == "Feature maps"  # no alt text in a bare PNG: its title
        else:
            assert data.lstrip().startswith(b"<?xml") and b"<svg" in data[:1000]
            # the alt text says what is plotted against what, for which models
            assert img["alt"] == "accuracy against ε for natural, pgd-0.1."
    assert kinds == ["svg+xml", "png"]
    assert html.count("<figure>") == 2 and html.count("<figcaption>") == 3


def test_a_degenerate_figure_is_a_note_not_a_drawing(html: str) -> None:
    parsed = parse_html(html)
    (note,) = parsed.find("figure", data_figure="not-drawn")
    assert f"<strong>Not drawn.</strong> {FLAT_NOTE}</div>" in html
    assert "<strong>N_k per block.</strong>" in html  # its title stays, as the caption
    assert note["class"] == "not-drawn"


def test_statements_are_escaped(html: str) -> None:
    assert EVIL not in html
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in html
    assert "&amp; an ampersand" in html
    parsed = parse_html(html)
    assert len(parsed.find("script")) == 1, "only the report's own load script"
    assert "pwned" not in parsed.scripts[0]


def test_load_script_is_allowed_by_its_csp_hash(html: str) -> None:
    parsed = parse_html(html)
    (script,) = parsed.scripts
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    (meta,) = parsed.find("meta", http_equiv="Content-Security-Policy")
    assert f"'sha256-{digest}'" in meta["content"]
    assert "naturalWidth" in script and "imagesLoaded" in script and "imagesTotal" in script


def test_claim_badges_and_summary(html: str) -> None:
    parsed = parse_html(html)
    for status in ("holds", "fails", "inconclusive"):
        assert f'<span class="badge badge-{status}">{status}</span>' in html
        assert len(parsed.find("article", data_status=status)) == 1
    summary = parsed.find("p", id="claim-summary")
    assert summary
    assert '<p class="claim-summary" id="claim-summary">1 holds, 1 fails, 1 inconclusive</p>' in (
        html
    )
    assert html.index('id="claim-summary"') < html.index('id="claims"')
    assert "Δ = 5.9 [4.1, 7.6]" in html
    assert 'id="claim-tsipras-1"' in html


def test_the_papers_figure_stands_beside_ours_with_its_direction(html: str) -> None:
    """ "paper: <figure with reference> → ours: <our numbers>", then the paper's direction; a
    claim without a paper figure shows ours alone."""
    row = html[html.index('id="claim-tsipras-1"') :]
    row = row[: row.index("</article>")]
    paper = row.index("paper:</span> paper 004 Table 2 (CIFAR-10): clean accuracy 41.2 %")
    ours = row.index("→ ours:</span> 91.2 % vs 85.3 % clean accuracy")
    direction = row.index("paper's direction:</span> natural &gt; robust &lt;b&gt;always")
    assert paper < ours < direction
    other = html[html.index('id="claim-ilyas-2"') :]
    other = other[: other.index("</article>")]
    assert "paper:" not in other and "→ ours" not in other and "Accuracy 12 %" in other
    # the evidence is folded away (collapsed: no ``open``) under the claim's picture
    assert row.index('<details class="evidence">') < paper
    assert "<summary>Evidence and the paper's own figure</summary>" in row


def test_the_seed_count_stands_under_the_interval(html: str) -> None:
    """ "N seeds" (or "single seed") beside a claim's interval; nothing when it is not known."""
    row = html[html.index('id="claim-tsipras-1"') :]
    row = row[: row.index("</article>")]
    assert (
        '<p class="interval">Δ = 5.9 [4.1, 7.6] (95 % bootstrap CI over images)'
        ' · <span class="seeds">3 seeds</span></p>'
    ) in row
    other = html[html.index('id="claim-engstrom-3"') :]
    assert '<p class="interval">[−0.05, 0.31]</p>' in other[: other.index("</article>")]


def test_summary_counts_many() -> None:
    doc = sample_document()
    base = doc.claims[0]
    doc.claims = [
        *(ClaimRow(f"h{i}", "P", "1", "s", "holds", "e") for i in range(4)),
        ClaimRow("f", "P", "1", "s", "FAILS", "e"),
        ClaimRow("i", "P", "1", "s", "inconclusive", "e"),
        ClaimRow("x", "P", "1", "s", "error", "e"),
        base,
    ]
    html = render_report(doc)
    assert "5 hold, 1 fails, 1 inconclusive, 1 without a verdict" in html
    assert '<span class="badge badge-other">error</span>' in html
    assert '<span class="badge badge-fails">fails</span>' in html


def test_tables_format_numbers_and_nan(html: str) -> None:
    assert "<td>natural</td><td>block3</td>" in html
    assert '<td class="num">0.123</td>' in html
    assert '<td class="num">0.988</td>' in html
    assert '<td class="num">1000</td>' in html
    assert '<td class="num">0.500</td>' in html  # 3 significant digits, even for 0.5
    probe = html[html.index(f'id="lens-{LENS_NAMES[1]}"') :]
    assert '<td class="num">–</td>' in probe
    assert "nan" not in probe.lower().replace("nanmean", "")
    assert "NaN" not in html


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "–"),
        (float("nan"), "–"),
        (np.float32("nan"), "–"),
        (pd.NA, "–"),
        (math.inf, "∞"),
        (-math.inf, "−∞"),
        (0.0, "0"),
        (0.123456, "0.123"),
        (0.98765, "0.988"),
        (1.23456, "1.23"),
        (12.3456, "12.3"),
        (123.456, "123"),
        (12345.6, "12346"),
        (0.00123456, "0.00123"),
        (-0.5, "-0.500"),
        (1.2e-7, "1.20e-07"),
        (3.4e9, "3.40e+09"),
        (np.float64(0.25), "0.250"),
        (7, "7"),
        (np.int64(123456789), "123456789"),
        (True, "yes"),
        ("text", "text"),
    ],
)
def test_format_number(value: object, text: str) -> None:
    assert format_number(value) == text


# --------------------------------------------------------------------------------------------
# Empty and awkward pieces


def test_empty_document_renders() -> None:
    doc = ReportDocument(
        study_name="",
        description="",
        dataset="",
        eval_n=0,
        seed=0,
        created="",
        versions={},
        models=[],
        claims=[],
        sections=[],
    )
    html = render_report(doc)
    assert "No claims were checked" in html
    assert "This study has no models." in html
    assert 'id="warnings"' not in html
    assert "<img" not in html
    assert html.rstrip().endswith("</html>")


def test_awkward_sections() -> None:
    doc = sample_document()
    doc.claims = []
    doc.sections = [
        LensSection("a b/c", "Section without anything", "", "", ""),
        LensSection(
            "zero-rows",
            "",
            "P",
            "",
            "d",
            tables=[
                TableBlock("Empty", pd.DataFrame({"model": [], "value": []})),
                TableBlock("No columns", pd.DataFrame()),
                TableBlock(
                    "Indexed",
                    pd.DataFrame({"v": [1.5]}, index=pd.Index(["m"], name="model")),
                ),
                TableBlock(
                    "Multi",
                    pd.DataFrame(
                        [[1, 2]], columns=pd.MultiIndex.from_tuples([("a", "x"), ("a", "y")])
                    ),
                ),
            ],
        ),
        LensSection("zero-rows", "Same lens again", "P", "", "d"),
        LensSection(
            "broken-figure",
            "Broken figure",
            "P",
            "",
            "d",
            figures=[FigureBlock("not a png", b"GIF89a....")],
        ),
    ]
    html = render_report(doc)
    parsed = parse_html(html)
    assert parsed.find("section", id="lens-a-b-c", data_lens="a b/c")
    assert parsed.find("section", id="lens-zero-rows")
    assert parsed.find("section", id="lens-zero-rows-2", data_lens="zero-rows")
    assert "This lens produced no figures or tables." in html
    assert html.count("No rows.") == 2
    assert '<th scope="col">model</th>' in html  # a named index becomes a column
    assert "a · x" in html
    assert "<img" not in html
    assert "This figure could not be embedded." in html
    assert "&#39;not a png&#39; is neither SVG nor PNG data" in html  # listed among the warnings
    assert not parsed.find("div", id="claims")


def test_long_tables_are_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_mod, "MAX_TABLE_ROWS", 10)
    doc = sample_document()
    doc.sections = [
        LensSection(
            "long", "Long", "P", "1", "d", tables=[TableBlock("t", pd.DataFrame({"i": range(25)}))]
        )
    ]
    html = render_report(doc)
    assert "Showing the first 10 of 25 rows; the CSV has them all." in html
    assert '<td class="num">9</td>' in html and '<td class="num">10</td>' not in html


def test_render_rejects_other_objects() -> None:
    with pytest.raises(TypeError, match="ReportDocument"):
        render_report({"study_name": "x"})  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Atomic writing


def test_write_report_is_atomic(tmp_path: Path, doc: ReportDocument) -> None:
    target = tmp_path / "out" / "report.html"
    written = write_report(doc, target)
    assert written == target
    assert target.read_text(encoding="utf-8") == render_report(doc)
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.html"]
    assert oct(target.stat().st_mode & 0o777) != oct(0o600)  # umask applies, not mkstemp's 0600
    write_report(doc, str(target))  # replaces an existing report
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.html"]


@pytest.mark.parametrize("failing", ["replace", "fsync", "render"])
def test_failed_write_keeps_previous_report(
    tmp_path: Path, doc: ReportDocument, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    target = tmp_path / "report.html"
    target.write_text("previous report", encoding="utf-8")

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    if failing == "render":

        def bad_render(doc: ReportDocument) -> str:
            raise RuntimeError("template bug")

        monkeypatch.setattr(report_mod, "render_report", bad_render)
        expected: type[BaseException] = RuntimeError
    else:
        monkeypatch.setattr(report_mod.os, failing, boom)
        expected = RobustlensError
    with pytest.raises(expected) as info:
        write_report(doc, target)
    if expected is RobustlensError:
        assert "No space left on device" in str(info.value)
        assert str(target) in str(info.value)
    monkeypatch.undo()
    assert target.read_text(encoding="utf-8") == "previous report"
    assert os.listdir(tmp_path) == ["report.html"], "temporary file left behind"


def test_template_is_package_data() -> None:
    from importlib.resources import files

    assert files("robustlens.report").joinpath("templates/report.html.j2").is_file()
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert 'robustlens = ["report/templates/*.j2", "papers/data/*.toml"]' in pyproject
    assert files("robustlens.papers").joinpath("data/004.toml").is_file()


# --------------------------------------------------------------------------------------------
# How a model's constructed training set is described in the model table


def test_constructed_training_sets_show_their_checks() -> None:
    from robustlens.report.builder import _constructed_note

    assert _constructed_note(None) == ""
    robustified = {
        "set": "robustified",
        "source": "l2-0.5",
        "seed_mode": "noise",
        "statistics": {
            "relative_distance_mean": 0.12345,
            "relative_distance_median": 0.1,
            "source_model_accuracy": 0.857,
            "start_relative_distance_mean": 0.9,
        },
    }
    assert _constructed_note(robustified) == (
        ", on the robustified set made against l2-0.5 (noise seeds; relative representation "
        "distance reached: mean 0.123, median 0.1; l2-0.5 accuracy on it 85.7 %)"
    )
    negative = {
        "set": "negative",
        "source": "natural",
        "statistics": {"attack_success_rate": 0.914},
        "leakage": {"model": "linf-0.1", "new_label_fraction": 0.125,
                    "original_label_fraction": 0.4, "examples": 200},
    }  # fmt: skip
    assert _constructed_note(negative) == (
        ", on the negative-robust set made against natural (91 % of targets reached; leakage "
        "check: linf-0.1 classifies 12.5 % as the new label, 40.0 % as the original)"
    )
    # without the leakage check nothing else changes
    del negative["leakage"]
    assert _constructed_note(negative) == (
        ", on the negative-robust set made against natural (91 % of targets reached)"
    )


# --------------------------------------------------------------------------------------------
# Tables fold away and download as CSV


def _csv_rows(href: str) -> list[list[str]]:
    prefix = "data:text/csv;charset=utf-8;base64,"
    assert href.startswith(prefix)
    text = base64.b64decode(href[len(prefix) :], validate=True).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def test_long_tables_fold_and_every_table_downloads_as_csv(html: str, doc: ReportDocument) -> None:
    folded = re.findall(
        r'<details class="table-fold" data-rows="(\d+)">(.*?)</details>', html, re.S
    )
    assert [rows for rows, _ in folded] == ["20"]  # only the table over FOLD_ROWS rows
    assert FOLDED_SENTINEL in folded[0][1]
    assert "20 rows × 3 columns" in folded[0][1]
    links = re.findall(r'<a class="csv" download="([^"]+)" href="([^"]+)">', html)
    n_tables = 1 + sum(len(s.tables) for s in doc.sections)  # the models and every lens table
    assert len(links) == n_tables
    names = [name for name, _ in links]
    assert names[0] == "models.csv" and len(set(names)) == len(names)
    by_name = {name: _csv_rows(href) for name, href in links}
    long = doc.sections[1].tables[1].frame
    rows = by_name["lens-probe-accuracy-accuracy-per-blur.csv"]
    assert rows[0] == list(long.columns)
    assert [r[0] for r in rows[1:]] == list(long["setting"])
    for col in ("natural", "pgd-0.1"):  # full precision: the values themselves
        got = [float(r[rows[0].index(col)]) for r in rows[1:]]
        assert got == list(long[col])
    nan_rows = by_name["lens-probe-accuracy-accuracy-per-probe.csv"]
    assert nan_rows[1:] == [["natural", "blur", "0.5"], ["pgd-0.1", "blur", ""]]
    models = by_name["models.csv"]
    assert [r[0] for r in models[1:]] == ["natural", "pgd-0.1"]
    assert float(models[2][models[0].index("robust accuracy")]) == 0.664


def test_csv_of_estimates_has_their_intervals() -> None:
    frame = pd.DataFrame(
        {"metric": ["acc", "loss"], "m": [report_mod.Estimate(0.5, 0.4, 0.6), 1.25]}, dtype=object
    )
    rows = list(csv.reader(io.StringIO(report_mod.table_csv(frame))))
    assert rows == [
        ["metric", "m", "m (95 % low)", "m (95 % high)"],
        ["acc", "0.5", "0.4", "0.6"],
        ["loss", "1.25", "", ""],
    ]


def test_a_table_of_twelve_rows_stays_open() -> None:
    doc = sample_document()
    doc.sections = [
        LensSection(
            "t", "T", "P", "1", "d", tables=[TableBlock(f"n{n}", pd.DataFrame({"i": range(n)}))]
        )
        for n in (report_mod.FOLD_ROWS, report_mod.FOLD_ROWS + 1)
    ]
    doc.sections[1].lens = "u"
    html = render_report(doc)
    assert html.count('<details class="table-fold"') == 1
    assert f'data-rows="{report_mod.FOLD_ROWS + 1}"' in html


def test_the_models_table_folds_past_twelve_models() -> None:
    """A study of many models folds its models table too (the scorecard stays on top)."""
    from dataclasses import replace

    doc = sample_document()
    assert "table-fold" not in render_report(doc).split('id="models"')[1].split("</section>")[0]
    base = doc.models[0]
    doc.models = [replace(base, name=f"m{i}") for i in range(report_mod.FOLD_ROWS + 2)]
    models = render_report(doc).split('id="models"')[1].split("</section>")[0]
    folded = re.findall(
        r'<details class="table-fold" data-rows="(\d+)">(.*?)</details>', models, re.S
    )
    assert [rows for rows, _ in folded] == [str(report_mod.FOLD_ROWS + 2)]
    assert f"All {report_mod.FOLD_ROWS + 2} models" in folded[0][1]
    assert folded[0][1].count('<tr data-model="') == report_mod.FOLD_ROWS + 2


def test_a_wide_figure_takes_the_whole_row() -> None:
    def chart(width: float) -> bytes:
        fig, ax = new_figure(figsize=(width, 2))
        ax.plot([0, 1], [0, 1])
        return figure_to_image(fig)

    doc = sample_document()
    doc.sections[0].figures = [FigureBlock("wide", chart(9)), FigureBlock("narrow", chart(3))]
    parsed = parse_html(render_report(doc))
    figures = [a for t, a in parsed.elements if t == "figure"]
    widths = [int(a["width"]) for a in parsed.find("img", **{"class": "figure"})]
    assert widths[0] > report_mod.WIDE_FIGURE_PX >= widths[1]
    assert [f.get("class", "") for f in figures[:2]] == ["wide", ""]
