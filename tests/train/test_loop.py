"""The training loop: learns, checkpoints, resumes to identical weights, reuses, refuses."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from robustlens.data import ImageSet
from robustlens.errors import ConfigError, NumericalError
from robustlens.models import build_model, load_checkpoint, save_checkpoint
from robustlens.train import train_model
from tests.train.helpers import FAST, INFO, KILLED, killed_run_inputs, small_model, stripes


def interrupt_in_second_epoch(monkeypatch, *args, **kwargs) -> None:
    """Run train_model(*args, **kwargs) and kill it (KeyboardInterrupt) as its second epoch
    starts, leaving the first epoch's state behind; the loop is restored afterwards."""
    from robustlens.train import loop

    original = loop._Trainer.run_epoch
    calls = {"n": 0}

    def crash_in_second_epoch(self):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(loop._Trainer, "run_epoch", crash_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_model(*args, **kwargs)
    monkeypatch.setattr(loop._Trainer, "run_epoch", original)


def test_natural_training_learns_and_writes_its_files(tmp_path):
    result = train_model(small_model(), stripes(256, 0), FAST, tmp_path, eval_set=stripes(64, 1))
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["metrics.jsonl", "model.json", "model.safetensors"]
    history = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2]
    metrics = {m["name"]: m for m in result.card.metrics}
    assert metrics["clean_accuracy"]["value"] > 0.9
    assert result.card.recipe["method"] == "natural"
    assert result.card.recipe["data"]["n"] == 256
    _, card = load_checkpoint(tmp_path / "model.safetensors")
    assert card.weights_sha256 == result.card.weights_sha256


def test_adversarial_training_records_the_attack_behind_its_metrics(tmp_path):
    recipe = dataclasses.replace(FAST, method="pgd", eps=0.1, steps=2, epochs=1)
    result = train_model(small_model(), stripes(128, 0), recipe, tmp_path, eval_set=stripes(64, 1))
    robust = next(m for m in result.card.metrics if m["name"] == "robust_accuracy")
    assert robust["attack"]["attack"] == "pgd"
    assert robust["attack"]["eps"] == pytest.approx(0.1)
    assert robust["attack"]["steps"] == 3
    assert 0.0 <= robust["value"] <= 1.0
    assert "monitor_pgd10_accuracy" in result.history[0]


def test_interrupted_run_resumes_to_the_same_weights(tmp_path, monkeypatch):
    recipe = dataclasses.replace(FAST, method="fgsm-rs", eps=0.1, epochs=3)
    data, held_out = stripes(192, 0), stripes(64, 1)
    straight = train_model(small_model(), data, recipe, tmp_path / "a", eval_set=held_out)

    interrupt_in_second_epoch(
        monkeypatch, small_model(), data, recipe, tmp_path / "b", eval_set=held_out
    )
    assert (tmp_path / "b" / "state" / "progress.json").exists()
    assert not (tmp_path / "b" / "model.safetensors").exists()
    # A fresh model object: everything must come from the checkpoint.
    resumed = train_model(small_model(seed=5), data, recipe, tmp_path / "b", eval_set=held_out)
    for (name, a), (_, b) in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in straight.history]


def interrupt_before_final_evaluation(monkeypatch, out, **kwargs) -> None:
    """Run the KILLED recipe into ``out`` and stop it (KeyboardInterrupt) as its final
    evaluation starts: every epoch saved, no model yet."""
    from robustlens.train import loop

    def crash(self):
        raise KeyboardInterrupt

    data, held_out = killed_run_inputs()
    with monkeypatch.context() as patch:
        patch.setattr(loop._Trainer, "final_metrics", crash)
        with pytest.raises(KeyboardInterrupt):
            train_model(small_model(), data, KILLED, out, eval_set=held_out)
    assert (out / "state" / "progress.json").exists()


def test_a_run_interrupted_at_its_final_evaluation_resumes_to_the_same_model(tmp_path, monkeypatch):
    """The resumed model was never switched to eval mode by an epoch: its evaluation (PGD)
    must still not move the BatchNorm statistics."""
    data, held_out = killed_run_inputs()
    straight = train_model(small_model(), data, KILLED, tmp_path / "a", eval_set=held_out)
    interrupt_before_final_evaluation(monkeypatch, tmp_path / "b")
    resumed = train_model(small_model(seed=5), data, KILLED, tmp_path / "b", eval_set=held_out)
    assert resumed.card.weights_sha256 == straight.card.weights_sha256
    assert resumed.card.metrics == straight.card.metrics


def test_weights_left_without_their_card_by_a_killed_run_are_redone(tmp_path, monkeypatch):
    """A kill between the weights and the card of an older save left model.safetensors alone
    beside the unfinished run: the run resumes (it used to stop at "no model card" forever)."""
    data, held_out = killed_run_inputs()
    straight = train_model(small_model(), data, KILLED, tmp_path / "a", eval_set=held_out)
    out = tmp_path / "b"
    interrupt_before_final_evaluation(monkeypatch, out)
    save_checkpoint(small_model(seed=3), tmp_path / "half")
    (tmp_path / "half.safetensors").replace(out / "model.safetensors")
    resumed = train_model(small_model(seed=5), data, KILLED, out, eval_set=held_out)
    assert resumed.card.weights_sha256 == straight.card.weights_sha256
    assert sorted(p.name for p in out.iterdir()) == [
        "metrics.jsonl",
        "model.json",
        "model.safetensors",
    ]


def test_finished_model_is_reused_and_other_recipes_are_refused(tmp_path):
    data = stripes(128, 0)
    first = train_model(small_model(), data, FAST, tmp_path, eval_set=stripes(64, 1))
    again = train_model(small_model(), data, FAST, tmp_path, eval_set=stripes(64, 1))
    assert again.reused and again.card.weights_sha256 == first.card.weights_sha256
    with pytest.raises(ConfigError, match="another recipe"):
        train_model(small_model(), data, dataclasses.replace(FAST, lr=0.01), tmp_path)


def test_replace_retrains_a_model_of_another_recipe_and_keeps_a_matching_one(tmp_path, monkeypatch):
    """The study runner owns its folders: an edited recipe retrains in place (files of the old
    model gone, other files left), an unchanged one is still reused, and an interrupted run of
    another recipe is discarded while an interrupted run of the same recipe resumes."""
    data, held_out = stripes(128, 0), stripes(64, 1)
    first = train_model(small_model(), data, FAST, tmp_path, eval_set=held_out)
    (tmp_path / "notes.txt").write_text("mine")
    other = dataclasses.replace(FAST, lr=0.01, epochs=1)
    second = train_model(small_model(), data, other, tmp_path, eval_set=held_out, replace=True)
    assert not second.reused and second.card.weights_sha256 != first.card.weights_sha256
    assert second.card.recipe["lr"] == 0.01 and len(second.history) == 1
    assert (tmp_path / "notes.txt").read_text() == "mine"
    _, card = load_checkpoint(tmp_path / "model.safetensors")
    assert card.weights_sha256 == second.card.weights_sha256
    same = train_model(small_model(), data, other, tmp_path, eval_set=held_out, replace=True)
    assert same.reused

    three = dataclasses.replace(FAST, epochs=3)
    interrupt_in_second_epoch(
        monkeypatch, small_model(), data, three, tmp_path / "b", eval_set=held_out
    )
    with pytest.raises(ConfigError, match="unfinished run"):
        train_model(small_model(), data, FAST, tmp_path / "b")
    pointer = json.loads((tmp_path / "b" / "state" / "progress.json").read_text())
    resumed = train_model(small_model(seed=7), data, three, tmp_path / "b", replace=True)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    assert resumed.history[0] == pointer["history"][0]  # epoch 1 kept, not retrained
    interrupt_in_second_epoch(monkeypatch, small_model(), data, three, tmp_path / "c")
    fresh = train_model(small_model(), data, FAST, tmp_path / "c", replace=True)
    assert [h["epoch"] for h in fresh.history] == [1, 2]
    assert fresh.card.recipe["epochs"] == 2


def test_diverging_training_raises_a_numerical_error(tmp_path, monkeypatch):
    model = small_model()
    monkeypatch.setattr(model.linear, "forward", lambda z: z[:, :2] * float("nan"))
    with pytest.raises(NumericalError, match="learning rate"):
        train_model(model, stripes(64, 0), FAST, tmp_path)


def test_the_final_evaluation_can_be_autoattack(tmp_path):
    """``eval_attack = "autoattack"``: the card's robust accuracy is AutoAttack standard's
    (named with its components), and the recipe's digest changes only when it is set."""
    info = dataclasses.replace(INFO, num_classes=4, class_names=("a", "b", "c", "d"))
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(96) % 4
    images = torch.rand(96, 1, 8, 8, generator=gen) * 0.3
    for c in range(4):  # class c: quadrant c bright
        rows, cols = slice(4 * (c // 2), 4 * (c // 2) + 4), slice(4 * (c % 2), 4 * (c % 2) + 4)
        images[labels == c, :, rows, cols] += 0.6
    data = ImageSet(images.clamp(0, 1), labels, info, "train", torch.arange(96))
    torch.manual_seed(0)
    model = build_model("small-cnn", info, widths=(8, 16), kernels=(3, 3), strides=(2, 1))
    recipe = dataclasses.replace(
        FAST, method="fgsm-rs", eps=0.05, epochs=1, eval_n=16, eval_attack="autoattack"
    )
    assert recipe.digest() != dataclasses.replace(recipe, eval_attack="pgd").digest()
    assert "eval_attack" not in dataclasses.replace(recipe, eval_attack="pgd").to_dict()
    result = train_model(model, data, recipe, tmp_path, eval_set=data)
    robust = {m["name"]: m for m in result.card.metrics}["robust_accuracy"]
    assert robust["attack"]["attack"] == "autoattack", robust["attack"]
    assert robust["attack"]["components"] == ["apgd-ce", "apgd-t", "fab-t", "square"]
    assert robust["ci_low"] <= robust["value"] <= robust["ci_high"]
    with pytest.raises(ConfigError, match="at least 4 classes"):
        train_model(small_model(), stripes(64, 0), recipe, tmp_path / "two")
    assert not (tmp_path / "two").exists()  # refused before any folder was made
