"""Training on constructed sets within a study (Springer et al. §3.2–3.3): the set is made
against an earlier model, kept in the study directory, reused, and recorded on the card."""

from __future__ import annotations

import json

import pytest
import torch

from robustlens.attacks.evaluate import predict
from robustlens.constructed import load_set
from robustlens.runner import Study

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
name = "linf"
arch = "small-cnn"
arch_kwargs = { widths = [4, 8, 16] }
recipe = { method = "fgsm-rs", norm = "linf", eps = 0.1, epochs = 1, eval_n = 30 }

[[models]]
name = "negative"
arch = "small-cnn"
arch_kwargs = { widths = [4, 8, 16] }
recipe = { method = "natural", epochs = 1, eval_n = 30 }
train_on = { set = "negative", source = "natural", steps = 5, leakage_model = "linf" }

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
    assert models["robust-data"].trained_on["seed_mode"] == "other-image"
    # the leakage check: what the robust model calls the set's images, on the set's card and
    # on the model's card alike
    leak = negative.trained_on["leakage"]
    assert card["leakage"] == leak and leak["model"] == "linf"
    assert leak["digest"] == models["linf"].digest and leak["examples"] == 200
    made = load_set(tmp_path / "out" / "constructed" / folders[0])
    said = predict(models["linf"].model, made.images, 500)
    original = study.split("train", 200).labels[made.seeds]
    assert leak["new_label_fraction"] == pytest.approx(float((said == made.labels).float().mean()))
    assert leak["original_label_fraction"] == pytest.approx(
        float((said == original).float().mean())
    )
    assert torch.equal(made.labels, (original + 1) % 10)
    # a second study object reuses the sets and the models
    again = Study.from_file(path, tmp_path / "out", device="cpu")
    assert [m.digest for m in again.models()] == [m.digest for m in models.values()]
    assert sorted(p.name for p in (tmp_path / "out" / "constructed").iterdir()) == folders
    # and so does `study run`, which obtains the models one after the other itself
    summary = Study.from_file(path, tmp_path / "out", device="cpu").run()
    assert summary.reused == ["natural", "linf", "negative", "robust-data"]
    assert sorted(summary.computed) == ["activations:linf", "activations:natural",
                                        "activations:negative",
                                        "activations:robust-data"]  # fmt: skip
    # the leakage model is a check, not part of the set or of the model trained on it
    path.write_text(STUDY.replace(', leakage_model = "linf"', ""))
    plain = Study.from_file(path, tmp_path / "out", device="cpu")
    plain_models = {m.name: m for m in plain.models()}
    assert plain_models["negative"].digest == negative.digest
    assert "leakage" not in plain_models["negative"].trained_on
    assert sorted(p.name for p in (tmp_path / "out" / "constructed").iterdir()) == folders


def test_study_run_builds_the_sets_from_nothing(fashion_mnist_root, tmp_path):
    path = tmp_path / "study.toml"
    path.write_text(STUDY)
    summary = Study.from_file(path, tmp_path / "out", device="cpu").run()
    assert summary.trained == ["natural", "linf", "negative", "robust-data"]
    assert len(list((tmp_path / "out" / "constructed").iterdir())) == 2
    html = summary.report.read_text()
    assert "on the negative-robust set made against natural (" in html
    assert "leakage check: linf classifies " in html and "% as the new label, " in html
    # the robustified set's checks are in the model table too
    assert "on the robustified set made against natural (other-image seeds; " in html
    assert "relative representation distance reached: mean " in html and ", median " in html
    folder = next((tmp_path / "out" / "constructed").glob("robustified-*"))
    stats = json.loads((folder / "card.json").read_text())["statistics"]
    assert (
        f"mean {stats['relative_distance_mean']:.3g}, median "
        f"{stats['relative_distance_median']:.3g}; natural accuracy on it "
        f"{100 * stats['source_model_accuracy']:.1f} %)" in html
    )
