"""The report in a real headless browser (Debian's chromium): every section and figure renders,
the page requests nothing from the network (chromium's own net log), every internal link
lands on an element, the HTML parses without a single error (html5lib, strict), and printing
to PDF keeps what is folded away on screen (pdftotext from poppler-utils).

Skips, saying why, where no chromium (or html5lib, or pdftotext) is installed (`make setup`
installs Debian's chromium and poppler-utils where apt is available and it runs as root, and
html5lib with the dev extras).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from robustlens.report.document import ReportDocument
from robustlens.report.html import write_report

from .test_html import FOLDED_SENTINEL, ElementCollector, parse_html, sample_document

TIMEOUT_S = 60
WINDOW = (1280, 3000)
REPO = Path(__file__).resolve().parents[2]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("no chromium: make setup installs Debian's chromium where apt is available")
    return path


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ReportDocument]:
    doc = sample_document()
    path = write_report(doc, tmp_path_factory.mktemp("report") / "report.html")
    return path, doc


def run_chromium(chromium: str, workdir: Path, *args: str) -> tuple[str, float]:
    """Run headless chromium with a throw-away profile; its stdout and the seconds it took.

    Every host name resolves to nothing, so a report that needed the network would show it.
    On a timeout the whole process group (the browser and its helpers) is killed.
    """
    profile = workdir / f"profile-{time.monotonic_ns()}"
    cmd = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--disable-breakpad",
        "--hide-scrollbars",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={profile}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--virtual-time-budget=5000",
        *args,
    ]
    env = {
        **os.environ,
        "HOME": str(workdir),
        "XDG_CONFIG_HOME": str(workdir / "config"),
        "XDG_CACHE_HOME": str(workdir / "cache"),
    }
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=workdir,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"chromium did not finish within {TIMEOUT_S} s: {' '.join(args)}")
    seconds = time.perf_counter() - start
    shutil.rmtree(profile, ignore_errors=True)
    if proc.returncode != 0:
        pytest.fail(f"chromium exited with {proc.returncode}:\n{err[-3000:]}")
    return out, seconds


def test_report_renders_in_chromium(
    chromium: str, report: tuple[Path, ReportDocument], tmp_path: Path
):
    path, doc = report
    dom, seconds = run_chromium(chromium, tmp_path, "--dump-dom", path.as_uri())
    parsed: ElementCollector = parse_html(dom)

    (body,) = parsed.find("body")
    n_figures = sum(1 for s in doc.sections for f in s.figures if not f.note)
    assert n_figures > 0
    assert "data-images-loaded" in body, "the load script did not run (blocked by the CSP?)"
    assert body["data-images-loaded"] == body["data-images-total"] == str(n_figures)
    assert len(parsed.find("img", **{"class": "figure"})) == n_figures
    for section in doc.sections:
        found = parsed.find("section", data_lens=section.lens)
        assert len(found) == 1, section.lens
        assert found[0]["id"] == f"lens-{section.lens}"
    assert len(parsed.find("div", id="claims")) == 1
    assert len(parsed.find("article", data_status="holds")) == 1
    assert parsed.find("section", id="models")
    assert len(parsed.find("script")) == 1
    assert seconds < TIMEOUT_S


def page_requests(chromium: str, html: Path, workdir: Path) -> tuple[list[str], str]:
    """The URLs the page itself asked for, from chromium's net log, and its DOM once loaded.

    The browser's own background requests (component updates, time sync) are initiated by
    no origin and are left out; anything the page loads (an image, a font, a style sheet)
    has the page's origin as its initiator ("null" for a file)."""
    log = workdir / f"net-{time.monotonic_ns()}.json"
    dom, _ = run_chromium(chromium, workdir, f"--log-net-log={log}", "--dump-dom", html.as_uri())
    events = json.loads(log.read_text(encoding="utf-8"))
    start = events["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = [
        e["params"]["url"]
        for e in events["events"]
        if e["type"] == start
        and "url" in e.get("params", {})
        and e["params"].get("initiator") != "not an origin"
    ]
    return urls, dom


def test_the_page_requests_nothing_and_its_links_land(
    chromium: str, report: tuple[Path, ReportDocument], tmp_path: Path
):
    path, _ = report
    requests, dom = page_requests(chromium, path, tmp_path)
    assert requests == [], requests
    parsed = parse_html(dom)
    ids = [a["id"] for _, a in parsed.elements if "id" in a]
    assert len(ids) == len(set(ids)), "duplicate ids"
    internal = [a["href"][1:] for _, a in parsed.elements if a.get("href", "").startswith("#")]
    assert len(internal) >= 4  # the table of contents at least
    assert sorted(set(internal) - set(ids)) == [], "links to no element"
    # the check sees a page that does load something (it resolves to nothing here)
    leaky = tmp_path / "leaky.html"
    leaky.write_text(
        '<!DOCTYPE html><html lang="en"><title>x</title><img alt="" src="http://example.test/a.png">'
    )
    assert page_requests(chromium, leaky, tmp_path)[0] == ["http://example.test/a.png"]


def test_the_html_is_valid(report: tuple[Path, ReportDocument]):
    """Parsed by html5lib (the WHATWG parsing algorithm) in strict mode: any parse error
    (a stray end tag, an unclosed element, a bad attribute, a misnested table) fails."""
    html5lib = pytest.importorskip("html5lib", reason="html5lib comes with the dev extras")
    path, _ = report
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)
    tree = parser.parse(path.read_text(encoding="utf-8"))
    assert tree.find(".//body") is not None and not parser.errors
    with pytest.raises(html5lib.html5parser.ParseError):  # strict mode does raise
        html5lib.HTMLParser(strict=True).parse("<!DOCTYPE html><p>a</div>")


def test_printing_keeps_folded_tables(
    chromium: str, report: tuple[Path, ReportDocument], tmp_path: Path
):
    """The print stylesheet lays every <details> out open: text that lives in a folded table
    is in the PDF; the screen-only links (contents, CSV downloads) are not."""
    pdftotext = shutil.which("pdftotext")
    if pdftotext is None:
        pytest.skip("no pdftotext: make setup installs Debian's poppler-utils where apt is")
    path, _ = report
    assert 'class="table-fold"' in path.read_text(encoding="utf-8")
    pdf = tmp_path / "report.pdf"
    run_chromium(
        chromium, tmp_path, "--no-pdf-header-footer", f"--print-to-pdf={pdf}", path.as_uri()
    )
    text = subprocess.run(
        [pdftotext, "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert FOLDED_SENTINEL in text
    assert "Accuracy per blur" in text and "Feature geometry" in text
    assert "Download CSV" not in text and "Contents" not in text
    assert text.count("\f") >= 3  # a page break before the claims and each lens section


def screenshot(chromium: str, html: Path, workdir: Path) -> Path:
    shot = workdir / f"{html.stem}-screenshot.png"
    run_chromium(chromium, workdir, f"--screenshot={shot}", html.as_uri())
    assert shot.is_file(), "chromium wrote no screenshot"
    return shot


def test_report_screenshot(chromium: str, report: tuple[Path, ReportDocument], tmp_path: Path):
    path, _ = report
    shot = screenshot(chromium, path, tmp_path)
    assert shot.stat().st_size > 20_000
    with Image.open(shot) as im:
        assert im.size == WINDOW
        colors = im.convert("RGB").getcolors(maxcolors=1 << 24)
    assert colors is not None and len(colors) > 50, "the screenshot is (nearly) a single colour"
    background = max(count for count, _ in colors)
    assert background < 0.97 * WINDOW[0] * WINDOW[1], "the page is nearly blank"
    if os.environ.get("ROBUSTLENS_SAVE_SCREENSHOT") == "1":
        (REPO / "docs").mkdir(exist_ok=True)
        shutil.copyfile(shot, REPO / "docs" / "report-screenshot-test.png")


def test_report_reads_the_same_without_its_script(
    chromium: str, report: tuple[Path, ReportDocument], tmp_path: Path
):
    """JavaScript off: the page without its script looks exactly the same.

    (Headless chromium captures nothing with scripting disabled, so the script is removed from
    a copy instead; everything the reader sees is static HTML and CSS.)
    """
    path, _ = report
    html = path.read_text(encoding="utf-8")
    script = re.compile(r"<script>.*?</script>", re.S)
    assert len(script.findall(html)) == 1
    no_script = tmp_path / "no-script.html"
    no_script.write_text(script.sub("", html), encoding="utf-8")
    with_js = screenshot(chromium, path, tmp_path)
    without_js = screenshot(chromium, no_script, tmp_path)
    with Image.open(with_js) as a, Image.open(without_js) as b:
        assert a.size == b.size
        assert ImageChops.difference(a.convert("RGB"), b.convert("RGB")).getbbox() is None
