"""studies/quickstart-lenet.toml (the quickstart with its core models switched to LeNet and
trained with PGD) runs end to end with every lens: checked on a scaled-down copy of it (few
images, one epoch, two attack steps) that keeps its models, lenses and structure."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from robustlens.lenses import LENSES
from robustlens.runner import Study

pytestmark = pytest.mark.slow

STUDY = Path(__file__).parents[2] / "studies" / "quickstart-lenet.toml"

SMALL = {"n": 20, "train_n": 100, "test_n": 20, "steps": 2, "channels": 1, "epochs": 1}
"""Upper bounds for the lenses' sizes (images, steps, epochs)."""


def _scaled(spec: dict[str, Any]) -> dict[str, Any]:
    """The study shrunk to seconds: same models and lenses, tiny sizes."""
    spec["data"].update(eval_n=30, train_n=200)
    for model in spec["models"]:
        recipe = model["recipe"]
        recipe.update(epochs=1, eval_n=20, eval_steps=2)
        if "steps" in recipe:
            recipe["steps"] = 2
        if "train_n" in model:
            model["train_n"] = 200
        if "train_on" in model:
            model["train_on"]["steps"] = 2
    for name, params in spec["lenses"].items():
        fields = {f.name: f.default for f in dataclasses.fields(LENSES.get(name).params)}
        for key, bound in SMALL.items():
            current = params.get(key, fields.get(key))
            if key in fields and (
                current is None or (isinstance(current, int) and current > bound)
            ):
                params[key] = bound
        if "attacks" in fields:  # two settings, each of at most two steps
            params["attacks"] = [
                _two_steps(a) for a in params.get("attacks", fields["attacks"])[:2]
            ]
    spec["lenses"]["saliency"].update(smoothgrad_samples=2, ig_steps=2, sanity_images=0)
    spec["lenses"]["latent"].update(attack_steps=1)
    spec["lenses"]["ensemble"].update(targets=["lowres-7"])
    spec["lenses"]["filters"].update(resamples=2, threshold_images=2)
    spec["lenses"]["attack_grid"].update(cw_binary_steps=1)
    spec["lenses"]["similarity"].update(bootstrap=0, keep=0.5)
    return spec


def _two_steps(attack: str) -> str:
    words = attack.split()
    if words[0] in ("pgd", "cw") and len(words) > 3:
        words[3] = "2"
    return " ".join(words)


def _toml(spec: dict[str, Any]) -> str:
    """TOML for the study's shape: tables of scalars, lists and inline tables."""

    def value(v: Any) -> str:
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        if isinstance(v, list | tuple):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(v)  # str, int, float and bool are written alike

    lines = []
    for section in ("study", "data"):
        lines.append(f"[{section}]")
        lines += [f"{k} = {value(v)}" for k, v in spec[section].items()]
    for model in spec["models"]:
        lines.append("[[models]]")
        lines += [f"{k} = {value(v)}" for k, v in model.items()]
    for name, params in spec["lenses"].items():
        lines.append(f"[lenses.{name}]")
        lines += [f"{k} = {value(v)}" for k, v in params.items()]
    return "\n".join(lines) + "\n"


def test_the_lenet_quickstart_runs_every_lens_end_to_end(fashion_mnist_root, tmp_path):
    full = tomllib.loads(STUDY.read_text())
    assert {m["arch"] for m in full["models"] if not m["name"].startswith("victim")} == {"lenet"}
    assert all(m["recipe"]["method"] == "pgd" for m in full["models"] if m["recipe"].get("eps"))
    small = tmp_path / "quickstart-lenet-small.toml"
    small.write_text(_toml(_scaled(full)))
    summary = Study.from_file(small, tmp_path / "out", device="cpu").run()
    assert summary.failed == [] and summary.not_applicable == []
    study = Study.open(tmp_path / "out")
    with study.read() as results:
        for plan in study.spec.lenses:
            assert results.current_runs(plan.name), f"lens {plan.name} has no results"
        activations = results.current_runs("activations")
    notes = [note for run in activations for note in run.notes]
    assert any("feature maps of conv1, conv2" in note for note in notes), notes
    assert any("left out" in note and "fully connected" in note for note in notes), notes
    html = summary.report.read_text()
    assert 'data-outcome="failed"' not in html and 'data-status="not computed"' not in html
