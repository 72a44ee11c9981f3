"""Catastrophic overfitting (Wong et al. 2020): the guard on a simulated sequence of PGD
accuracies, and the loop that checks a held-out training batch, keeps the best weights on a
collapse, stops, resumes to the same model and records it all in the card."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from robustlens.attacks import PGD, Linf, robust_accuracy
from robustlens.train import loop as loop_module
from robustlens.train import train_model
from robustlens.train.guard import CollapseGuard
from tests.train.helpers import FAST, small_model, stripes
from tests.train.test_loop import interrupt_in_second_epoch

SINGLE = dataclasses.replace(FAST, method="fgsm-rs", eps=0.1, epochs=3, overfit_checks=2)
"""128 stripes (12 held out, 116 trained on: 4 batches of 32 per epoch), checks every 2."""


def _mark(model: torch.nn.Module, value: float) -> None:
    with torch.no_grad():
        model.linear.bias.fill_(value)


def test_the_guard_keeps_the_best_weights_and_sees_a_fall_beyond_the_threshold():
    """Accuracies 0.5, 0.625, 0.75, 0.5 (a fall of exactly 0.25: not beyond), 0.4375 (0.3125
    below the best): the collapse is the fifth check, the weights kept the third's."""
    model = small_model()
    guard = CollapseGuard(drop=0.25)
    seen = []
    for i, acc in enumerate([0.5, 0.625, 0.75, 0.5, 0.4375]):
        _mark(model, float(i))
        seen.append(guard.observe(acc, epoch=0.5 * (i + 1), step=10 * (i + 1), model=model))
    assert seen == [False, False, False, False, True]
    assert guard.best == {"epoch": 1.5, "step": 30, "accuracy": 0.75}
    assert guard.collapse == {
        "epoch": 2.5,
        "step": 50,
        "accuracy": 0.4375,
        "best_accuracy": 0.75,
        "kept": {"epoch": 1.5, "step": 30},
    }
    assert [c["accuracy"] for c in guard.checks] == [0.5, 0.625, 0.75, 0.5, 0.4375]
    guard.restore_best(model)
    assert torch.equal(model.linear.bias, torch.full_like(model.linear.bias, 2.0))
    again = CollapseGuard.from_json(guard.to_json(), guard.best_state)
    assert again.to_json() == guard.to_json()


def test_a_guard_without_checks_has_nothing_to_restore():
    with pytest.raises(RuntimeError, match="no check"):
        CollapseGuard(drop=0.2).restore_best(small_model())


def test_the_check_batch_is_held_out_class_balanced_and_fixed():
    data = stripes(128, 0)
    train, check = loop_module.hold_out(data, seed=0)
    assert (len(train), len(check)) == (116, 12)  # a tenth, under 256
    assert sorted(check.labels.tolist()) == [0] * 6 + [1] * 6
    assert not set(train.indices.tolist()) & set(check.indices.tolist())
    assert sorted(train.indices.tolist() + check.indices.tolist()) == list(range(128))
    assert torch.equal(loop_module.hold_out(data, seed=0)[1].indices, check.indices)
    assert not torch.equal(loop_module.hold_out(data, seed=1)[1].indices, check.indices)
    big_train, big_check = loop_module.hold_out(stripes(3000, 0), seed=0)
    assert (len(big_train), len(big_check)) == (2744, 256)
    assert loop_module.hold_out(stripes(9, 0), seed=0)[1] is None


def test_the_check_is_pgd_10_at_the_recipe_eps_on_the_held_out_batch(tmp_path):
    trainer = loop_module._Trainer(
        small_model(4), stripes(128, 0), SINGLE, tmp_path, None, torch.device("cpu"), False
    )
    assert len(trainer.train_set) == 116 and trainer.batches_per_epoch == 4
    assert trainer.check_every == 2
    attack = trainer.check_attack()
    assert (attack.threat.eps, attack.steps) == (0.1, 10)
    check = trainer.check_set
    expected = robust_accuracy(trainer.model, check, PGD(trainer.model, Linf(0.1), steps=10))
    assert trainer.check_accuracy() == expected.robust_accuracy


def scripted(monkeypatch, accuracies: list[float], weights: list | None = None) -> None:
    """The loop's checks return ``accuracies`` in turn (by the number of checks made, which a
    resumed run restores), recording the weights each check saw in ``weights``."""

    def check_accuracy(self):
        if weights is not None:
            weights.append({k: v.clone() for k, v in self.model.state_dict().items()})
        return accuracies[len(self.guard.checks)]

    monkeypatch.setattr(loop_module._Trainer, "check_accuracy", check_accuracy)


def test_a_collapse_keeps_the_best_checks_weights_stops_and_is_in_the_card(tmp_path, monkeypatch):
    """Checks after steps 2, 4 (epoch 1), 6, 8 (epoch 2): 0.5, 0.625, 0.75, 0.25. The fall
    of 0.5 at step 8 is a collapse: the model is the one of step 6, training stops after the
    second of three epochs, and the card says when and how far the accuracy fell."""
    weights: list[dict] = []
    scripted(monkeypatch, [0.5, 0.625, 0.75, 0.25], weights)
    result = train_model(small_model(), stripes(128, 0), SINGLE, tmp_path, eval_set=stripes(32, 1))
    assert len(weights) == 4 and len(result.history) == 2
    final = result.model.state_dict()
    assert all(torch.equal(final[k], weights[2][k]) for k in final)
    assert not all(torch.equal(final[k], weights[3][k]) for k in final)
    collapse = {
        "epoch": 2.0,
        "step": 8,
        "accuracy": 0.25,
        "best_accuracy": 0.75,
        "kept": {"epoch": 1.5, "step": 6},
    }
    assert result.history[1]["catastrophic_overfitting"] == collapse
    assert [h["check_pgd10_accuracy"] for h in result.history] == [[0.5, 0.625], [0.75, 0.25]]
    record = result.card.recipe["overfitting"]
    assert record["collapse"] == collapse and record["n"] == 12 and record["drop"] == 0.2
    assert record["attack"]["steps"] == 10 and record["attack"]["eps"] == 0.1
    assert [c["step"] for c in record["checks"]] == [2, 4, 6, 8]
    # the final evaluation measured the kept weights
    robust = result.card.metric("robust_accuracy")
    again = robust_accuracy(
        result.model, stripes(32, 1), PGD(result.model, Linf(0.1), steps=SINGLE.eval_steps)
    )
    assert robust["value"] == again.robust_accuracy


def test_without_a_collapse_training_runs_every_epoch_and_keeps_the_last_weights(
    tmp_path, monkeypatch
):
    weights: list[dict] = []
    scripted(monkeypatch, [0.5, 0.4, 0.35, 0.31, 0.32, 0.33], weights)  # falls, never by 0.2
    result = train_model(small_model(), stripes(128, 0), SINGLE, tmp_path)
    assert len(result.history) == 3 and "catastrophic_overfitting" not in result.history[-1]
    assert result.card.recipe["overfitting"]["collapse"] is None
    assert result.card.recipe["overfitting"]["best"]["accuracy"] == 0.5
    final = result.model.state_dict()
    assert all(torch.equal(final[k], weights[-1][k]) for k in final)


def test_a_run_interrupted_after_its_best_check_resumes_to_the_same_kept_model(
    tmp_path, monkeypatch
):
    """The best check is half-way through epoch 1, the collapse half-way through epoch 3: the
    run resumed after epoch 1 restores the best weights from its state folder."""
    accuracies = [0.75, 0.7, 0.65, 0.6, 0.5, 0.4]
    data, held_out = stripes(128, 0), stripes(32, 1)
    scripted(monkeypatch, accuracies)
    straight = train_model(small_model(), data, SINGLE, tmp_path / "a", eval_set=held_out)
    assert straight.card.recipe["overfitting"]["collapse"]["kept"] == {"epoch": 0.5, "step": 2}
    interrupt_in_second_epoch(
        monkeypatch, small_model(), data, SINGLE, tmp_path / "b", eval_set=held_out
    )
    scripted(monkeypatch, accuracies)
    resumed = train_model(small_model(seed=5), data, SINGLE, tmp_path / "b", eval_set=held_out)
    assert resumed.card.weights_sha256 == straight.card.weights_sha256
    assert resumed.card.recipe["overfitting"] == straight.card.recipe["overfitting"]
    assert resumed.history == [
        {**h, "seconds": r["seconds"]}
        for h, r in zip(straight.history, resumed.history, strict=True)
    ]


def test_the_schedule_counts_the_batches_of_the_images_trained_on(tmp_path):
    """130 stripes, 13 held out: 117 trained on are 4 batches of 32 (130 would be 5), so the
    learning rate reaches its end and the last check comes after the epoch's last batch."""
    trainer = loop_module._Trainer(
        small_model(), stripes(130, 0), SINGLE, tmp_path, None, torch.device("cpu"), False
    )
    assert (len(trainer.train_set), trainer.batches_per_epoch, trainer.total_steps) == (117, 4, 12)


def test_multi_step_methods_and_a_zero_check_count_hold_nothing_out(tmp_path):
    for recipe in (
        dataclasses.replace(FAST, method="pgd", eps=0.1, steps=1),
        dataclasses.replace(SINGLE, overfit_checks=0),
    ):
        trainer = loop_module._Trainer(
            small_model(), stripes(128, 0), recipe, tmp_path, None, torch.device("cpu"), False
        )
        assert trainer.guard is None and len(trainer.train_set) == 128
