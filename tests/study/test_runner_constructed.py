"""Training on constructed sets within a study (Springer et al. §3.2–3.3): the set is made
against an earlier model, kept in the study directory, reused, and recorded on the card."""

from __future__ import annotations

import json

import pytest

from robustlens.study import Study

pytestmark = pytest.mark.slow

STUDY = """
[study]
name = "constructed"
seed = 0

[data]
dataset = "fashion-mnist"
eval_n = 60
train_n = 200

[[models]]
name = "natural"
arch = "small-cnn"
arch_kwargs = { widths = [4, 8, 16] }
recipe = { method = "natural", epochs = 1, eval_n = 30 }

[[models]]
name = "negative"
arch = "small-cnn"
arch_kwargs = { widths = [4, 8, 16] }
recipe = { method = "natural", epochs = 1, eval_n = 30 }
train_on = { set = "negative", source = "natural", steps = 5 }

[[models]]
name = "robust-data"
arch = "small-cnn"
arch_kwargs = { widths = [4, 8, 16] }
recipe = { method = "natural", epochs = 1, eval_n = 30 }
train_on = { set = "robustified", source = "natural", steps = 5 }

[lenses.activations]
"""


def test_models_train_on_sets_made_against_an_earlier_model(fashion_mnist_root, tmp_path):
    path = tmp_path / "study.toml"
    path.write_text(STUDY)
    study = Study.from_file(path, tmp_path / "out", device="cpu")
    models = {m.name: m for m in study.models()}
    folders = sorted(p.name for p in (tmp_path / "out" / "constructed").iterdir())
    assert [f.split("-")[0] for f in folders] == ["negative", "robustified"]
    negative = models["negative"]
    assert negative.trained_on["set"] == "negative" and negative.trained_on["source"] == "natural"
    assert 0 <= negative.trained_on["statistics"]["attack_success_rate"] <= 1
    assert not negative.is_natural and not negative.is_robust
    assert models["natural"].is_natural
    card = json.loads((tmp_path / "out" / "constructed" / folders[0] / "card.json").read_text())
    assert card["statistics"]["examples"] == 200 and card["model"] == models["natural"].digest
    stats = models["robust-data"].trained_on["statistics"]
    assert stats["relative_distance_mean"] < stats["start_relative_distance_mean"]
    # a second study object reuses the sets and the models
    again = Study.from_file(path, tmp_path / "out", device="cpu")
    assert [m.digest for m in again.models()] == [m.digest for m in models.values()]
    assert sorted(p.name for p in (tmp_path / "out" / "constructed").iterdir()) == folders
    # and so does `study run`, which obtains the models one after the other itself
    summary = Study.from_file(path, tmp_path / "out", device="cpu").run()
    assert summary.reused == ["natural", "negative", "robust-data"]
    assert sorted(summary.computed) == ["activations:natural", "activations:negative",
                                        "activations:robust-data"]  # fmt: skip


def test_study_run_builds_the_sets_from_nothing(fashion_mnist_root, tmp_path):
    path = tmp_path / "study.toml"
    path.write_text(STUDY)
    summary = Study.from_file(path, tmp_path / "out", device="cpu").run()
    assert summary.trained == ["natural", "negative", "robust-data"]
    assert len(list((tmp_path / "out" / "constructed").iterdir())) == 2
    html = summary.report.read_text()
    assert "on the negative-robust set made against natural (" in html
    assert "on the robustified set made against natural</td>" in html
