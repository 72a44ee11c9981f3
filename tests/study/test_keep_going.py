"""A study keeps going when one lens fails: the other lenses run, the report lists the failure
and the claims it affects as "not computed", the CLI exits 1, and a rerun retries only the
failed unit. A lens that does not apply to the study's models is recorded as not applicable,
not as a failure. ``--fail-fast`` stops at the first error, as before."""

from __future__ import annotations

import dataclasses
import re

import pytest
from typer.testing import CliRunner

from robustlens.claims import CLAIMS
from robustlens.cli import app
from robustlens.errors import NumericalError
from robustlens.lenses import LENSES
from robustlens.runner import Study
from robustlens.study.store import Store

pytestmark = pytest.mark.slow

STUDY = """
[study]
name = "keep-going"
seed = 0

[data]
dataset = "fashion-mnist"
eval_n = 40
train_n = 300

[[models]]
name = "natural"
arch = "small-cnn"
arch_kwargs = { widths = [4, 8, 8] }
recipe = { method = "natural", epochs = 1, eval_n = 20 }

[[models]]
name = "linf"
arch = "small-cnn"
arch_kwargs = { widths = [4, 8, 8] }
recipe = { method = "fgsm-rs", norm = "linf", eps = [0.1], epochs = 1, eval_n = 20 }

[lenses.activations]

[lenses.color]
thicknesses = [1]

# the small CNN's kernels are 5×5 and 3×3: 7×7 filters do not apply to it
[lenses.filters]
kernel_sizes = [7]
"""


def _broken(model, data, params, ctx):
    if model.name == "linf-0.1":
        raise NumericalError("activations of linf became NaN", fix="check the model")
    return ACTIVATIONS.compute(model, data, params, ctx)


ACTIVATIONS = LENSES.get("activations")


@pytest.fixture
def failing_activations(monkeypatch):
    """The activations lens, failing on the model "linf-0.1" only (as a lens can at run time)."""
    key = LENSES._key("activations")
    monkeypatch.setitem(LENSES._items, key, dataclasses.replace(ACTIVATIONS, compute=_broken))


@pytest.fixture
def study_file(fashion_mnist_root, tmp_path):
    path = tmp_path / "keep-going.toml"
    path.write_text(STUDY)
    return path


def _claims(html: str) -> dict[str, str]:
    rows = re.findall(r'data-claim="([^"]+)" data-status="([^"]+)"', html)
    return dict(rows)


def test_a_failing_lens_leaves_the_others_running_and_is_reported(
    study_file, tmp_path, failing_activations
):
    out = tmp_path / "out"
    summary = Study.from_file(study_file, out, device="cpu").run()
    assert not summary.ok
    assert [f.unit for f in summary.failed] == ["activations:linf-0.1"]
    failure = summary.failed[0]
    assert failure.error == "NumericalError" and "became NaN" in failure.message
    assert failure.fix == "check the model"
    # every unit that does not depend on it ran: activations on the other model, color on both
    assert sorted(summary.computed) == ["activations:natural", "color:linf-0.1", "color:natural"]
    assert sorted(summary.not_applicable) == ["filters:linf-0.1", "filters:natural"]
    store = Store.open_existing(out)
    try:
        kept = {(o.lens, o.scope_model): o for o in store.outcomes()}
    finally:
        store.close()
    assert kept[("activations", "linf-0.1")].status == "failed"
    assert kept[("activations", "linf-0.1")].message == "activations of linf became NaN"
    assert kept[("filters", "natural")].status == "not-applicable"
    assert "no 7×7 convolutions" in kept[("filters", "natural")].message
    html = summary.report.read_text()
    assert 'data-outcome="failed"' in html and "activations of linf became NaN" in html
    assert 'data-outcome="not-applicable"' in html and "no 7×7 convolutions" in html
    claims = _claims(html)
    needs = {c.id: c.needs for c in CLAIMS}
    by_lens = {lens: {c for c, n in needs.items() if lens in n} for lens in ("activations",
               "filters", "color")}  # fmt: skip
    assert by_lens["activations"] and all(
        claims[c] == "not computed" for c in by_lens["activations"]
    )
    assert by_lens["filters"] and all(claims[c] == "not applicable" for c in by_lens["filters"])
    # the colour lens ran: a verdict, except for the claim about colours on this one-channel
    # data, which is not applicable (issue 16)
    colour = {c: claims[c] for c in by_lens["color"]}
    assert colour.pop("000-4.4-contour") == "not applicable"
    assert colour and all(s in ("holds", "fails", "inconclusive") for s in colour.values())


def test_a_rerun_retries_only_the_failed_unit(study_file, tmp_path, monkeypatch):
    out = tmp_path / "out"
    key = LENSES._key("activations")
    with monkeypatch.context() as patch:
        patch.setitem(LENSES._items, key, dataclasses.replace(ACTIVATIONS, compute=_broken))
        first = Study.from_file(study_file, out, device="cpu").run()
    assert [f.unit for f in first.failed] == ["activations:linf-0.1"]
    again = Study.from_file(study_file, out, device="cpu").run()
    assert again.ok
    assert again.computed == ["activations:linf-0.1"]
    assert sorted(again.cached) == ["activations:natural", "color:linf-0.1", "color:natural"]
    assert sorted(again.not_applicable) == ["filters:linf-0.1", "filters:natural"]
    html = again.report.read_text()
    assert 'data-outcome="failed"' not in html
    assert "not computed" not in set(_claims(html).values())
    status = Study.open(out).status()
    activations = next(row for row in status["lenses"] if row["lens"] == "activations")
    assert activations["done"] == activations["total"] == 2 and activations["failed"] == 0


def test_fail_fast_stops_at_the_first_failure(study_file, tmp_path, failing_activations):
    with pytest.raises(NumericalError, match="became NaN"):
        Study.from_file(study_file, tmp_path / "out", device="cpu").run(fail_fast=True)


def test_the_cli_exits_1_and_names_the_failed_unit(study_file, tmp_path, failing_activations):
    result = CliRunner().invoke(
        app, ["study", "run", str(study_file), "--out", str(tmp_path / "out"), "--device", "cpu"]
    )
    assert result.exit_code == 1, result.output
    assert "1 failed" in result.output
    assert "activations:linf-0.1" in result.output and "became NaN" in result.output
    assert (tmp_path / "out" / "report.html").is_file()
