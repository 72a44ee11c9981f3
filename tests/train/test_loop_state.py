"""The training loop's bookkeeping checked exactly: what decides a run's identity, what an
epoch's checkpoint folder holds, the loss and accuracy an epoch reports, its timing, and the
per-epoch monitor's warning of catastrophic overfitting."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import time

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from robustlens.train import loop as loop_module
from robustlens.train import train_model
from robustlens.train.schedule import learning_rate
from tests.tolerances import close, float_tol
from tests.train.helpers import FAST, small_model, stripes

ONE = dataclasses.replace(FAST, epochs=1, batch_size=64, eval_n=32)


def test_the_identity_names_architecture_data_and_recipe():
    model, data = small_model(), stripes(64, 0)
    identity = loop_module.training_identity(model, data, ONE)
    assert identity == {
        "arch": "small-cnn",
        "arch_kwargs": model.arch_kwargs,
        "dataset": "stripes",
        "split": "train",
        "n": 64,
        "data_fingerprint": data.fingerprint(),
        "recipe": ONE.to_dict(),
    }
    canonical = json.dumps(identity, sort_keys=True)
    assert loop_module.identity_digest(identity) == hashlib.sha256(canonical.encode()).hexdigest()


def test_a_run_stopped_after_two_epochs_keeps_only_its_last_checkpoint(tmp_path, monkeypatch):
    data = stripes(64, 0)
    recipe = dataclasses.replace(ONE, epochs=3, batch_size=32)
    original = loop_module._Trainer.run_epoch

    def stop_in_third_epoch(self):
        if self.epoch == 2:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(loop_module._Trainer, "run_epoch", stop_in_third_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_model(small_model(), data, recipe, tmp_path, device="cpu")
    state = tmp_path / "state"
    assert sorted(p.name for p in state.iterdir()) == [
        "epoch-0002.json",
        "epoch-0002.optimizer.safetensors",
        "epoch-0002.safetensors",
        "progress.json",
    ]
    pointer = json.loads((state / "progress.json").read_text())
    identity = loop_module.training_identity(small_model(), data, recipe)
    assert set(pointer) == {"epoch", "tag", "identity", "history"}
    assert (pointer["epoch"], pointer["tag"], pointer["identity"]) == (2, "epoch-0002", identity)
    assert [h["epoch"] for h in pointer["history"]] == [1, 2]
    # 2 batches an epoch, 6 steps in all: the second epoch ends at step 3
    assert pointer["history"][1]["lr_last"] == learning_rate(recipe, 3, 6)
    card = json.loads((state / "epoch-0002.json").read_text())
    assert card["recipe"]["identity"] == loop_module.identity_digest(identity)
    assert card["recipe"]["data"] == {
        "dataset": "stripes",
        "split": "train",
        "n": 64,
        "data_fingerprint": data.fingerprint(),
    }
    # SGD with momentum keeps a buffer for every parameter after its first step
    buffers = load_file(str(state / "epoch-0002.optimizer.safetensors"))
    assert set(buffers) == {name for name, _ in small_model().named_parameters()}
    assert (tmp_path / "metrics.jsonl").read_text().count("\n") == 2


def test_an_epoch_reports_the_loss_and_accuracy_of_the_weights_it_started_from(tmp_path):
    """One batch holds the whole set: the loss and accuracy are measured before the only step,
    so they are the cross-entropy and accuracy of the initial model (in train mode, as in
    training) on the whole set, in another order."""
    data = stripes(64, 0)
    model = small_model()
    initial = copy.deepcopy(model).train()
    with torch.no_grad():
        logits = initial(data.images)
    loss = float(F.cross_entropy(logits, data.labels))
    acc = float((logits.argmax(1) == data.labels).float().mean())
    before = time.perf_counter()
    result = train_model(model, data, ONE, tmp_path, device="cpu")
    elapsed = time.perf_counter() - before
    (record,) = result.history
    # BatchNorm statistics and the mean loss sum 64 images × 64 pixels in another order
    assert record["train_loss"] == pytest.approx(loss, rel=float_tol(torch.float32, 64 * 64))
    assert record["train_accuracy"] == acc
    assert 0 < record["seconds"] <= result.seconds <= elapsed


def _trainer(tmp_path, recipe, history, seed=0):
    """A trainer on stripes; model seed 4 gives an untrained model that is right on 70 % of
    the held-out images (other seeds predict one class: 50 %, which hides a swapped test)."""
    eval_set = stripes(64, 1)
    trainer = loop_module._Trainer(
        small_model(seed), stripes(64, 0), recipe, tmp_path, eval_set, torch.device("cpu"), False
    )
    trainer.history = history
    return trainer


def test_the_monitor_warns_when_pgd_accuracy_falls_by_more_than_a_fifth(tmp_path, caplog):
    recipe = dataclasses.replace(ONE, method="fgsm-rs", eps=0.3)
    quiet = _trainer(tmp_path, recipe, []).monitor(0.3)
    value = quiet["monitor_pgd10_accuracy"]
    assert set(quiet) == {"monitor_clean_accuracy", "monitor_pgd10_accuracy"}
    assert value <= quiet["monitor_clean_accuracy"]
    assert 0.0 <= value <= 0.75  # an untrained model: a drop of 0.25 from below 1 is possible
    caplog.set_level(logging.WARNING, logger=loop_module.__name__)
    near = _trainer(tmp_path, recipe, [{"monitor_pgd10_accuracy": value + 0.19}]).monitor(0.3)
    assert "catastrophic_overfitting_warning" not in near and not caplog.records
    history = [{"epoch": 1}, {"monitor_pgd10_accuracy": value + 0.25}]
    fell = _trainer(tmp_path, recipe, history).monitor(0.3)
    assert fell["catastrophic_overfitting_warning"] is True
    assert fell["monitor_pgd10_accuracy"] == value
    (warning,) = caplog.records
    assert warning.getMessage() == (
        f"PGD-10 accuracy fell from {value + 0.25:.2f} to {value:.2f}: catastrophic "
        "overfitting? (Wong et al. 2020) Consider a smaller step size or PGD training."
    )


def test_the_monitor_runs_no_attack_at_eps_zero_or_for_natural_training(tmp_path):
    adversarial = dataclasses.replace(ONE, method="pgd", eps=0.3)
    assert set(_trainer(tmp_path, adversarial, []).monitor(0.0)) == {"monitor_clean_accuracy"}
    assert set(_trainer(tmp_path, ONE, []).monitor(0.3)) == {"monitor_clean_accuracy"}


def test_final_metrics_are_pgd_at_the_training_budget_on_eval_n_images(tmp_path):
    """eval_n = 32 of the 64 held-out images (class-balanced, seed 0), PGD with eval_steps
    steps at the training ε; evaluated in eval mode, the model's own mode and BatchNorm
    statistics left as they were."""
    from robustlens.attacks import PGD, Linf, robust_accuracy

    recipe = dataclasses.replace(ONE, method="pgd", eps=0.2, eval_steps=2)
    trainer = _trainer(tmp_path, recipe, [])
    trainer.model.train()
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    metrics = trainer.final_metrics()
    assert trainer.model.training
    after = trainer.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    subset = trainer.eval_set.subset(32, seed=0)
    trainer.model.eval()
    attack = PGD(trainer.model, Linf(0.2), steps=2)
    expected = robust_accuracy(trainer.model, subset, attack).as_metrics()
    assert metrics == expected
    assert [m["n"] for m in metrics] == [32, 32]
    assert metrics[1]["attack"]["steps"] == 2 and metrics[1]["attack"]["eps"] == 0.2


def test_final_metrics_of_natural_training_are_clean_accuracy_only(tmp_path):
    trainer = _trainer(tmp_path, ONE, [], seed=4)
    trainer.model.train()
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    seen = []
    hook = trainer.model.register_forward_hook(lambda m, inp, out: seen.append(inp[0].clone()))
    try:
        metrics = trainer.final_metrics()
    finally:
        hook.remove()
    assert trainer.model.training
    assert all(torch.equal(v, trainer.model.state_dict()[k]) for k, v in before.items())
    assert len(seen) == 1 and torch.equal(seen[0], trainer.eval_set.subset(32, seed=0).images)
    trainer.model.eval()
    subset = trainer.eval_set.subset(32, seed=0)
    with torch.no_grad():
        acc = float((trainer.model(subset.images).argmax(1) == subset.labels).float().mean())
    assert metrics == [{"name": "clean_accuracy", "value": acc, "n": 32, "attack": None}]
    assert acc != 0.5
    trainer.eval_set = None
    assert trainer.final_metrics() == [] and trainer.monitor(0.1) == {}


def test_the_training_attack_follows_the_recipe(tmp_path):
    recipe = dataclasses.replace(ONE, method="pgd", norm="l2", eps=0.5, steps=4)
    attack = _trainer(tmp_path, recipe, []).make_attack(0.25).engine(random_start=True)
    assert (attack.threat.norm, attack.threat.eps, attack.steps) == ("l2", 0.25, 4)
    assert attack.step_size == recipe.attack_step_size(0.25)
    assert (attack.random_start, attack.early_stop, attack.track_best) == (True, False, False)
    fgsm = dataclasses.replace(ONE, method="fgsm-rs", eps=0.1)
    attack = _trainer(tmp_path, fgsm, []).make_attack(0.1).engine()
    assert (attack.threat.norm, attack.steps, attack.step_size) == ("linf", 1, 0.125)


def test_the_optimiser_follows_the_recipe(tmp_path):
    recipe = dataclasses.replace(ONE, lr=0.3, momentum=0.5, weight_decay=1e-3, nesterov=True)
    (group,) = _trainer(tmp_path, recipe, []).optimizer.param_groups
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.3, 0.5, 1e-3)
    assert group["nesterov"] is True
    plain = dataclasses.replace(recipe, momentum=0.0)  # Nesterov needs momentum: off
    assert _trainer(tmp_path, plain, []).optimizer.param_groups[0]["nesterov"] is False
    trainer = _trainer(tmp_path, dataclasses.replace(ONE, batch_size=24, epochs=3), [])
    assert (trainer.batches_per_epoch, trainer.total_steps) == (3, 9)  # ⌈64/24⌉ = 3
    assert trainer.state_dir == tmp_path / "state" and trainer.out_dir == tmp_path
    assert trainer.epoch == 0


def test_the_kill_points_come_in_the_documented_order(tmp_path, monkeypatch):
    """The phases the kill-and-resume tests can stop a run at (robustlens.train.killpoint),
    each named with the run's own folder."""
    phases = []
    monkeypatch.setattr(loop_module, "kill_point", lambda phase, out: phases.append((phase, out)))
    recipe = dataclasses.replace(ONE, epochs=2)
    train_model(small_model(), stripes(64, 0), recipe, tmp_path, eval_set=stripes(32, 1))
    per_epoch = ["epoch-{}", "epoch-{}-files", "epoch-{}-saved", "epoch-{}-done"]
    assert [p for p, _ in phases] == [
        *[p.format(1) for p in per_epoch],
        *[p.format(2) for p in per_epoch],
        "before-evaluation",
        "during-evaluation",
        "weights-staged",
        "pair-committed",
        "card-in-place",
        "before-cleanup",
    ]
    assert {out for _, out in phases} == {tmp_path}


def test_each_batch_uses_the_scheduled_learning_rate(tmp_path):
    """One step in all (t = 1/2): one-cycle with lr 0.3 and warm-up 1/4 steps with
    0.3·(1 − 1/2)/(3/4) = 0.2, exactly as a constant 0.2 does, and unlike a constant 0.3."""
    data = stripes(64, 0)

    def weights(**fields):
        recipe = dataclasses.replace(ONE, **fields)
        out = tmp_path / str(len(list(tmp_path.iterdir())))
        model = train_model(small_model(), data, recipe, out, device="cpu").model
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    cycle = weights(schedule="one-cycle", lr=0.3, warmup_fraction=0.25)
    constant = weights(schedule="constant", lr=0.2)
    larger = weights(schedule="constant", lr=0.3)
    # 0.3·(2/3) and 0.2 differ in the last bit: one rounding per updated weight
    torch.testing.assert_close(cycle, constant, **close(torch.float32, 4))
    assert (larger - constant).abs().max() > 1e-4


@pytest.mark.parametrize("eval_mode", [True, False])
def test_training_attacks_run_in_the_mode_the_recipe_asks(tmp_path, monkeypatch, eval_mode):
    modes = []
    original = loop_module._Trainer.make_attack

    def recording(self, eps):
        attack = original(self, eps)
        perturb = attack.perturb

        def watched(*args, **kwargs):
            modes.append(self.model.training)
            return perturb(*args, **kwargs)

        attack.perturb = watched
        return attack

    monkeypatch.setattr(loop_module._Trainer, "make_attack", recording)
    recipe = dataclasses.replace(
        ONE, method="fgsm-rs", eps=0.1, batch_size=32, attack_in_eval_mode=eval_mode
    )
    result = train_model(small_model(), stripes(64, 0), recipe, tmp_path, device="cpu")
    assert modes == [not eval_mode, not eval_mode]  # two batches, each attacked
    assert not result.model.training


def test_each_epoch_reports_its_progress_when_asked(tmp_path, monkeypatch):
    from contextlib import contextmanager

    bars = []

    @contextmanager
    def fake(enabled, *, total, description):
        bars.append((enabled, total, description, steps := []))
        yield steps.append

    from robustlens.attacks import evaluate as evaluate_module

    monkeypatch.setattr(loop_module, "progress_bar", fake)
    monkeypatch.setattr(evaluate_module, "progress_bar", fake)
    recipe = dataclasses.replace(ONE, method="pgd", eps=0.1, steps=1, epochs=2, batch_size=40)
    held_out = stripes(32, 1)
    train_model(small_model(), stripes(64, 0), recipe, tmp_path, eval_set=held_out, progress=True)
    monitor = (False, 32, "pgd evaluation", [32])  # the per-epoch monitor stays quiet
    assert bars == [
        (True, 64, "epoch 1/2 pgd-linf-0.1", [40, 24]),
        monitor,
        (True, 64, "epoch 2/2 pgd-linf-0.1", [40, 24]),
        monitor,
        (True, 32, "pgd evaluation", [32]),  # the final evaluation reports
    ]


def test_the_monitor_looks_at_256_held_out_images_chosen_with_seed_1(tmp_path):
    """In eval mode whatever the model's mode: BatchNorm statistics stay as they were."""
    trainer = _trainer(tmp_path, ONE, [], seed=4)
    trainer.eval_set = stripes(300, 1)
    trainer.model.train()
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    seen = []
    hook = trainer.model.register_forward_hook(lambda m, inp, out: seen.append(inp[0].clone()))
    try:
        out = trainer.monitor(0.0)
    finally:
        hook.remove()
    expected = trainer.eval_set.subset(256, seed=1)
    assert len(seen) == 1 and torch.equal(seen[0], expected.images)
    assert trainer.model.training
    assert all(torch.equal(v, trainer.model.state_dict()[k]) for k, v in before.items())
    assert not torch.equal(expected.images, trainer.eval_set.subset(256, seed=0).images)
    assert out["monitor_clean_accuracy"] == accuracy_of(trainer.model, expected) != 0.5


def accuracy_of(model, data) -> float:
    with torch.no_grad():
        model.eval()
        return float((model(data.images).argmax(1) == data.labels).float().mean())


def test_the_monitor_attacks_with_pgd_10_and_warns_only_beyond_a_drop_of_0_2(tmp_path, monkeypatch):
    import math

    built = []

    class RecordingPGD(loop_module.PGD):
        def __init__(self, model, threat, **kwargs):
            super().__init__(model, threat, **kwargs)
            built.append((threat, self.steps))

    monkeypatch.setattr(loop_module, "PGD", RecordingPGD)
    recipe = dataclasses.replace(ONE, method="pgd", norm="l2", eps=1.0)
    value = _trainer(tmp_path, recipe, [], seed=4).monitor(0.5)["monitor_pgd10_accuracy"]
    assert [(t.norm, t.eps, steps) for t, steps in built] == [("l2", 0.5, 10)]
    best = value + 0.2
    while best - value > 0.2:  # a drop of exactly 0.2 in floating point
        best = math.nextafter(best, 0.0)
    assert best - value == 0.2
    edge = _trainer(tmp_path, recipe, [{"monitor_pgd10_accuracy": best}], seed=4)
    assert "catastrophic_overfitting_warning" not in edge.monitor(0.5)
    beyond = _trainer(tmp_path, recipe, [{"monitor_pgd10_accuracy": value + 0.2001}], seed=4)
    assert beyond.monitor(0.5)["catastrophic_overfitting_warning"] is True
