"""The masking audit in the claims table and the report: claims evaluated on a flagged model
say so, and every robustness number of a flagged model carries a badge."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from robustlens.claims import NOT_COMPUTED, ResultsView, evaluate_claims
from robustlens.errors import ConfigError
from robustlens.lenses import masking
from robustlens.report.builder import build_document
from robustlens.report.document import TableBlock
from robustlens.report.html import render_report
from robustlens.runner import Study
from tests.claims.test_paper000 import model
from tests.report.test_html import parse_html, sample_document
from tests.study.test_validate import STUDY, check

MODELS = [model("natural"), model("linf-0.1", "pgd", "linf", 0.1)]
NOTE = "evaluated on a model flagged for gradient masking"


def view(lenses: set[str]) -> ResultsView:
    v = ResultsView(MODELS, lambda lens, m, name: None, lenses, 100, 10)
    v.planned = set(lenses)
    return v


def test_claims_on_a_flagged_model_say_so_and_name_the_flags():
    v = view({"color"})
    v.masking = {"linf-0.1": ["single-step", "unconverged"]}
    verdicts = [vd for c, vd in evaluate_claims(v, resamples=20) if "color" in c.needs]
    assert verdicts
    for vd in verdicts:
        assert vd.masking == {"linf-0.1": ["single-step", "unconverged"]}
        assert vd.masking_text.startswith(NOTE)
        assert "linf-0.1: single-step, unconverged" in vd.masking_text


def test_a_claim_whose_only_flag_is_unconverged_says_the_number_is_loose_not_masked():
    v = view({"color"})
    v.masking = {"linf-0.1": ["unconverged"]}
    verdicts = [vd for c, vd in evaluate_claims(v, resamples=20) if "color" in c.needs]
    assert verdicts
    for vd in verdicts:
        assert not vd.masking_text.startswith(NOTE)
        assert vd.masking_text == (
            "evaluated on a model whose robust accuracy a stronger attack still lowers "
            "(masking audit) — linf-0.1: unconverged"
        )


def test_claims_whose_models_carry_no_flag_say_nothing():
    v = view({"color"})
    v.masking = {"linf-0.1": ["black-box"]}
    v.coverage = {"color": {"natural"}}  # the lens looked at the natural model only
    verdicts = [vd for c, vd in evaluate_claims(v, resamples=20) if "color" in c.needs]
    assert verdicts and all(vd.masking_text == "" for vd in verdicts)
    v = view({"filters"})
    v.masking = {"linf-0.1": ["black-box"]}
    v.failed = {"filters": ["linf-0.1: NumericalError: NaN"]}
    failed = [vd for c, vd in evaluate_claims(v, resamples=20) if "filters" in c.needs]
    assert failed and all(vd.status == NOT_COMPUTED and not vd.masking for vd in failed)


def test_the_report_badges_a_flagged_models_numbers_and_its_claims():
    doc = sample_document()
    flagged = doc.models[0].name
    doc.models[0].masking = ["black-box", "gradients"]
    doc.claims[0].masking = f"{NOTE} — {flagged}: black-box, gradients"
    frame = pd.DataFrame({"setting": ["pgd"], flagged: [0.5], "other": [0.7]})
    doc.sections[0].tables.append(TableBlock("acc", frame, flags={flagged: "black-box"}))
    html = render_report(doc)
    page = parse_html(html)
    badges = page.find("span", **{"class": "badge badge-masking"})
    titles = [b["title"] for b in badges]
    assert "gradient-masking flags: black-box, gradients" in titles  # the models table
    assert "gradient-masking flags: black-box" in titles  # the lens table's column
    assert len(badges) == 2
    assert len(page.find("div", **{"data-masking": "flagged"})) == 1
    note = re.search(r'<div class="masking-note" data-masking="flagged">([^<]*)</div>', html)
    assert note and f"{NOTE} — {flagged}: black-box, gradients" in note.group(1)


@pytest.mark.slow  # trains a tiny model and runs a study (a few seconds)
def test_a_study_hands_the_flags_from_the_lens_to_the_report(tmp_path: Path):
    text = """
[study]
name = "tiny-masking"

[data]
dataset = "digits"
eval_n = 20

[[models]]
name = "a"
arch = "small-cnn"
arch_kwargs = { widths = [4, 8], kernels = [3, 3], strides = [1, 2] }
recipe = { method = "natural", epochs = 1, eval_n = 20 }

[lenses.masking]
n = 20
steps = 2
more_steps = 2
queries = 5
eps_grid = [1.0]
"""
    (tmp_path / "tiny.toml").write_text(text)
    study = Study.from_file(tmp_path / "tiny.toml", tmp_path / "out", device="cpu")
    summary = study.run()
    assert summary.computed == ["masking:all"] and not summary.failed
    with Study.open(tmp_path / "out", device="cpu").read() as results:
        frame = results.table("masking")
        flags = masking.raised_flags(frame)
        assert results.masking_flags() == flags == results.view().masking
        doc = build_document(results)
    assert set(frame[frame.metric == "raised"].setting) == set(masking.FLAGS)
    assert [m.masking for m in doc.models] == [flags.get("a", [])]
    assert any(s.lens == "masking" for s in doc.sections)


def test_a_surrogate_that_is_not_a_model_is_refused_before_anything_runs(tmp_path: Path):
    text = STUDY.replace("NORM", "linf").replace("[EPS]", "[0.1]")
    check(tmp_path, text + '\n[lenses.masking]\nsurrogate = "robust-0.1"\n')  # any model will do
    with pytest.raises(ConfigError, match=r"lenses\.masking\.surrogate.*'nobody'"):
        check(tmp_path, text + '\n[lenses.masking]\nsurrogate = "nobody"\n')
