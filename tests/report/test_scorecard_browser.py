"""The scorecard and a claim's picture in a real headless browser, at a laptop's width (1280 px)
and a phone's (390 px): the scorecard opens the report (within the first screen), each cell
shows its verdict's colour where the browser put it, a forest plot's markers show theirs, and
nothing is wider than the phone's screen.

Where the browser put things is read by a probe script in a test copy of the report (its hash
replaces the report's own in the Content-Security-Policy) and handed to the page framing it;
the colours are read from a screenshot of the same page.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
from pathlib import Path

import pytest
from PIL import Image

from robustlens.claims import Effect
from robustlens.report.forest import ON, OPPOSITE
from robustlens.report.html import write_report
from robustlens.report.scorecard import PALETTE

from .test_html import parse_html, sample_document
from .test_html_browser import chromium, run_chromium  # noqa: F401 (the fixture)
from .test_scorecard import CLAIMS

LAPTOP, PHONE = (1280, 800), (390, 844)
"""Width and height of the first screen in CSS pixels. Headless chromium's window is at least
500 pixels wide, so the report is shown in a frame of the screen's width (its own viewport:
media queries, ``innerWidth``), made taller than the screen to capture more."""
TALL = 2400
CLAIM = "000-4.1-dense"
PROBE = (
    """window.addEventListener("load", function () {
  function box(el) {
    var r = el.getBoundingClientRect();
    return [r.left, r.top, r.right, r.bottom];
  }
  function all(root, selector) {
    return Array.prototype.map.call(root.querySelectorAll(selector), function (el) {
      return {status: el.getAttribute("data-status") || el.getAttribute("class"), box: box(el)};
    });
  }
  var claim = document.getElementById("claim-CLAIM");
  parent.postMessage(JSON.stringify({
    width: window.innerWidth,
    scroll: document.documentElement.scrollWidth,
    scorecard: box(document.getElementById("scorecard")),
    cells: all(document, "#scorecard a.sc-cell"),
    claim: box(claim),
    figure: box(claim.querySelector("figure.forest")),
    plots: all(claim, "svg.forest-plot"),
    marks: all(claim, ".mark-on, .mark-wrong")
  }), "*");
});
"""
).replace("CLAIM", CLAIM)
"""Reports where the browser put the scorecard, its cells, the claim and its plot's markers."""
FRAME = """<!DOCTYPE html>
<html><head><meta charset="utf-8">
<style>html, body {{ margin: 0; }} iframe {{ border: 0; display: block; }}</style></head>
<body><iframe src="probed.html" width="{width}" height="{height}"></iframe>
<script>
window.addEventListener("message", function (e) {{ document.body.dataset.probe = e.data; }});
</script>
</body></html>
"""
"""The page framing the report at the screen's width; it keeps what the probe reports."""


def hex_rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def nearest(im: Image.Image, x: float, y: float, colour: str) -> float:
    """The smallest distance (max over R, G, B) between ``colour`` and a pixel of the 3 × 3
    block around (x, y): a small marker's centre may fall between pixels."""
    want = hex_rgb(colour)
    best = 255.0
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            px = im.getpixel((int(x) + dx, int(y) + dy))
            best = min(best, max(abs(a - b) for a, b in zip(px[:3], want, strict=True)))
    return best


@pytest.fixture(scope="module")
def probed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of five claims (one per status, one with a three-row forest plot), with the
    probe script in place of its own."""
    effects = [
        Effect("linf-0.05 − natural", "Δ N_k", 3.0, 1.0, 5.0, unit="feature maps"),
        Effect("linf-0.1 − natural", "Δ N_k", -4.0, -6.0, -2.0, unit="feature maps"),
        Effect("l2-1.5 − natural", "Δ N_k", 0.5, -1.0, 2.0, unit="feature maps"),
    ]
    claims = [dataclasses.replace(CLAIMS[0], effects=effects), *CLAIMS[1:]]
    doc = dataclasses.replace(sample_document(), claims=claims)
    folder = tmp_path_factory.mktemp("scorecard")
    html = write_report(doc, folder / "report.html").read_text(encoding="utf-8")
    (own,) = re.findall(r"<script>(.*?)</script>", html, re.S)
    digest = base64.b64encode(hashlib.sha256(own.encode()).digest()).decode()
    probe = base64.b64encode(hashlib.sha256(PROBE.encode()).digest()).decode()
    assert html.count(f"sha256-{digest}") == 1  # in the Content-Security-Policy
    html = html.replace(f"sha256-{digest}", f"sha256-{probe}")
    html = html.replace(f"<script>{own}</script>", f"<script>{PROBE}</script>")
    path = folder / "probed.html"
    path.write_text(html, encoding="utf-8")
    return path


@pytest.mark.parametrize("screen", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_scorecard_and_claim_at_laptop_and_phone_width(
    chromium: str,  # noqa: F811 (the fixture)
    probed: Path,
    tmp_path: Path,
    screen: tuple[int, int],
):
    width, height = screen
    frame = probed.with_name(f"frame-{width}.html")
    frame.write_text(FRAME.format(width=width, height=TALL), encoding="utf-8")
    window = f"--window-size={max(width, 500)},{TALL}"
    shot = tmp_path / "shot.png"  # one run: the DOM after load, and the screenshot
    dom, _ = run_chromium(
        chromium, tmp_path, window, "--dump-dom", f"--screenshot={shot}", frame.as_uri()
    )
    (body,) = parse_html(dom).find("body")
    assert "data-probe" in body, "the probe did not run"
    probe = json.loads(body["data-probe"])
    assert probe["width"] == width
    # nothing wider than the screen: no sideways scrolling of the page
    assert probe["scroll"] <= width, probe["scroll"]
    # the report opens on the scorecard: it starts, and at a laptop's size ends, on screen 1
    top, bottom = probe["scorecard"][1], probe["scorecard"][3]
    assert top < height / 2 and (bottom <= height or screen == PHONE), probe["scorecard"]
    with Image.open(shot) as raw:
        im = raw.convert("RGB")
    assert im.size == (max(width, 500), TALL)
    assert len(probe["cells"]) == len(CLAIMS)
    for cell in probe["cells"]:
        left, top, right, bottom = cell["box"]
        assert left >= 0 and right <= width, cell
        # the cell's right padding, clear of its glyph and text: the verdict's colour
        x, y = right - 4, (top + bottom) / 2
        assert nearest(im, x, y, PALETTE[cell["status"]].colour) <= 8, cell
    # the claim's picture: inside the claim, inside the screen, its markers in their colours
    # (on a phone the plot keeps a legible width and scrolls sideways within its figure)
    left, top, right, bottom = probe["claim"]
    assert right <= width
    figure = probe["figure"]
    assert left <= figure[0] and figure[2] <= right
    (plot,) = probe["plots"]
    assert plot["box"][2] - plot["box"][0] >= min(520, width - 80), plot  # not a thumbnail
    colours = {"mark-on": ON, "mark-wrong": OPPOSITE}
    assert sorted(m["status"] for m in probe["marks"]) == ["mark-on", "mark-wrong"]
    seen = 0
    for mark in probe["marks"]:
        x0, y0, x1, y1 = mark["box"]
        centre = ((x0 + x1) / 2, (y0 + y1) / 2)
        if centre[0] < figure[2]:  # not scrolled out of sight
            assert nearest(im, *centre, colours[mark["status"]]) <= 24, mark
            seen += 1
    assert seen == 2 or (seen >= 1 and screen == PHONE)
