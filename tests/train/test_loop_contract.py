"""What a training run promises its caller: the exact history and metric records, the exact
refusals of folders it cannot use, reuse of a finished model (and the clean-up a kill after
saving left), and the kill hook of the kill-and-resume tests."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
from pathlib import Path

import pytest
import torch

from robustlens.errors import CheckpointError, ConfigError, NumericalError
from robustlens.models import save_checkpoint
from robustlens.train import loop as loop_module
from robustlens.train import train_model
from robustlens.train.killpoint import ENV, kill_point
from robustlens.train.schedule import learning_rate
from tests.train.helpers import FAST, small_model, stripes

ONE = dataclasses.replace(FAST, epochs=1, batch_size=64, eval_n=32)


def accuracy(model, data) -> float:
    with torch.no_grad():
        return float((model(data.images).argmax(1) == data.labels).float().mean())


def test_a_natural_run_records_exactly_its_history_and_clean_accuracy(tmp_path, caplog):
    data, held_out = stripes(128, 0), stripes(64, 1)
    out = tmp_path / "runs" / "natural"  # folders are made as needed
    caplog.set_level(logging.INFO, logger=loop_module.__name__)
    result = train_model(small_model(), data, ONE, out, eval_set=held_out, device="cpu")
    assert not result.model.training
    (record,) = result.history
    assert set(record) == {
        "epoch",
        "lr_last",
        "eps",
        "train_loss",
        "train_accuracy",
        "seconds",
        "monitor_clean_accuracy",
    }
    assert record["epoch"] == 1 and record["eps"] == 0.0
    assert record["lr_last"] == learning_rate(ONE, 1, 2)  # the second of two batches
    assert 0.0 <= record["train_accuracy"] <= 1.0 and record["train_loss"] > 0
    # the monitor sees the held-out set (64 < 256 images: all of it) with the final weights
    assert record["monitor_clean_accuracy"] == accuracy(result.model, held_out)
    evaluated = held_out.subset(32, seed=0)
    assert result.card.metrics == [
        {
            "name": "clean_accuracy",
            "value": accuracy(result.model, evaluated),
            "n": 32,
            "attack": None,
        }
    ]
    assert json.loads((out / "metrics.jsonl").read_text()) == record
    assert sorted(p.name for p in out.iterdir()) == [
        "metrics.jsonl",
        "model.json",
        "model.safetensors",
    ]
    assert [r.getMessage() for r in caplog.records] == [f"epoch 1: {record}"]


def test_without_a_held_out_set_there_is_no_monitor_and_no_metric(tmp_path):
    result = train_model(small_model(), stripes(64, 0), ONE, tmp_path, device="cpu")
    assert result.card.metrics == []
    assert "monitor_clean_accuracy" not in result.history[0]


def test_a_diverging_loss_names_its_epoch_and_batch(tmp_path, monkeypatch):
    model = small_model()
    monkeypatch.setattr(model.linear, "forward", lambda z: z[:, :2] * float("nan"))
    with pytest.raises(NumericalError) as caught:
        train_model(model, stripes(64, 0), ONE, tmp_path, device="cpu")
    assert caught.value.problem == "training loss became nan in epoch 1, batch 0"
    assert caught.value.fix == (
        "lower the learning rate (lr) or add an ε warm-up (eps_warmup_epochs)"
    )


def _identity(data, recipe=ONE):
    return loop_module.training_identity(small_model(), data, recipe)


def _write_pointer(out: Path, identity) -> Path:
    state = out / "state"
    state.mkdir(parents=True)
    pointer = state / "progress.json"
    pointer.write_text(json.dumps({"identity": identity, "epoch": 0, "tag": "epoch-0000"}))
    return pointer


def test_an_unfinished_run_of_another_recipe_is_refused(tmp_path):
    data = stripes(64, 0)
    _write_pointer(tmp_path, {"recipe": "another"})
    with pytest.raises(ConfigError) as caught:
        train_model(small_model(), data, ONE, tmp_path, device="cpu")
    assert caught.value.problem == (
        f"{tmp_path} holds an unfinished run with another recipe, model or data"
    )
    assert caught.value.fix == "use another output folder, or delete it to start afresh"


def test_an_unreadable_progress_file_is_refused(tmp_path):
    data = stripes(64, 0)
    pointer = _write_pointer(tmp_path, None)
    pointer.write_text("not json")
    with pytest.raises(CheckpointError) as caught:
        train_model(small_model(), data, ONE, tmp_path, device="cpu")
    assert caught.value.problem == (
        f"cannot read the training progress file {pointer}: "
        "Expecting value: line 1 column 1 (char 0)"
    )
    assert caught.value.fix == f"delete {tmp_path / 'state'} to start this training run afresh"


def _finished_model(out: Path, data, recipe=ONE) -> None:
    """A saved model whose card carries the identity digest of (small_model, data, recipe)."""
    digest = loop_module.identity_digest(_identity(data, recipe))
    save_checkpoint(small_model(seed=3), out / "model", recipe={"identity": digest})
    (out / "metrics.jsonl").write_text('{"epoch": 1}\n{"epoch": 2}\n')


def test_a_finished_model_of_another_recipe_is_refused(tmp_path):
    data = stripes(64, 0)
    _finished_model(tmp_path, data, dataclasses.replace(ONE, lr=0.01))
    with pytest.raises(ConfigError) as caught:
        train_model(small_model(), data, ONE, tmp_path, device="cpu")
    assert caught.value.problem == (
        f"{tmp_path} already holds a model trained with another recipe, model or data"
    )
    assert caught.value.fix == "choose another output folder, or delete that one"


def test_a_finished_model_is_reused_with_its_history(tmp_path):
    data = stripes(64, 0)
    _finished_model(tmp_path, data)
    result = train_model(small_model(), data, ONE, tmp_path, device="cpu")
    assert result.reused and result.seconds == 0.0
    assert result.history == [{"epoch": 1}, {"epoch": 2}]
    assert result.checkpoint == tmp_path / "model.safetensors"
    reference = small_model(seed=3)
    for (name, a), (_, b) in zip(
        reference.state_dict().items(), result.model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_reuse_removes_the_state_a_kill_after_saving_left(tmp_path):
    """A kill between the final save and the clean-up leaves the run's own state folder: the
    reuse removes it. A state folder of another run (or unreadable) is not this run's: kept."""
    data = stripes(64, 0)
    ours, theirs, unreadable = tmp_path / "ours", tmp_path / "theirs", tmp_path / "unreadable"
    for out in (ours, theirs, unreadable):
        _finished_model(out, data)
    _write_pointer(ours, _identity(data))
    (ours / "state" / ".epoch-0001.safetensors.tmp-99").write_text("half a save")
    (ours / ".metrics.jsonl.tmp-99").write_text("half a log")
    _write_pointer(theirs, {"recipe": "another"})
    _write_pointer(unreadable, None).write_text("{")
    for out in (ours, theirs, unreadable):
        assert train_model(small_model(), data, ONE, out, device="cpu").reused
    assert not (ours / "state").exists()
    assert sorted(p.name for p in ours.iterdir()) == [
        "metrics.jsonl",
        "model.json",
        "model.safetensors",
    ]
    assert (theirs / "state" / "progress.json").exists()
    assert (unreadable / "state" / "progress.json").read_text() == "{"


def _dies_of_sigkill(phase: str, folder: str, wanted: str | None) -> bool:
    """Call kill_point(phase, folder) in a forked child with ROBUSTLENS_KILL_AT = wanted."""
    pid = os.fork()
    if pid == 0:  # the child: exits 0 unless kill_point kills it, 3 on any error
        try:
            if wanted is None:
                os.environ.pop(ENV, None)
            else:
                os.environ[ENV] = wanted
            kill_point(phase, Path("/somewhere") / folder)
        except BaseException:
            os._exit(3)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return True
    assert os.WEXITSTATUS(status) == 0
    return False


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_the_kill_hook_kills_at_the_named_phase_only():
    assert _dies_of_sigkill("epoch-2", "model-a", "epoch-2")
    assert _dies_of_sigkill("epoch-2", "model-a", "model-a:epoch-2")
    assert not _dies_of_sigkill("epoch-2", "model-a", "model-b:epoch-2")
    assert not _dies_of_sigkill("epoch-2", "model-a", "epoch-1")
    assert not _dies_of_sigkill("epoch-2", "model-a", "")
    assert not _dies_of_sigkill("epoch-2", "model-a", None)
    assert ENV == "ROBUSTLENS_KILL_AT"


def test_replacing_a_model_of_another_recipe_says_so(tmp_path, caplog):
    data = stripes(64, 0)
    _finished_model(tmp_path, data, dataclasses.replace(ONE, lr=0.01))
    caplog.set_level(logging.WARNING, logger=loop_module.__name__)
    result = train_model(small_model(), data, ONE, tmp_path, device="cpu", replace=True)
    assert not result.reused and result.card.recipe["lr"] == ONE.lr
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path} holds a model of another recipe, model or data: retraining"
    ]


def test_replacing_an_unfinished_run_of_another_recipe_says_so(tmp_path, caplog):
    data = stripes(64, 0)
    _write_pointer(tmp_path, {"recipe": "another"})
    caplog.set_level(logging.WARNING, logger=loop_module.__name__)
    result = train_model(small_model(), data, ONE, tmp_path, device="cpu", replace=True)
    assert [h["epoch"] for h in result.history] == [1]
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path} holds an unfinished run of another recipe: starting afresh"
    ]
    assert not (tmp_path / "state").exists()


def test_a_resumed_run_says_where_it_resumes(tmp_path, monkeypatch, caplog):
    data = stripes(64, 0)
    recipe = dataclasses.replace(ONE, epochs=2)
    original = loop_module._Trainer.run_epoch

    def stop_in_second_epoch(self):
        if self.epoch == 1:
            raise KeyboardInterrupt
        return original(self)

    with monkeypatch.context() as patch:
        patch.setattr(loop_module._Trainer, "run_epoch", stop_in_second_epoch)
        with pytest.raises(KeyboardInterrupt):
            train_model(small_model(), data, recipe, tmp_path, device="cpu")
    caplog.set_level(logging.INFO, logger=loop_module.__name__)
    resumed = train_model(small_model(), data, recipe, tmp_path, device="cpu")
    assert caplog.records[0].getMessage() == f"resuming {tmp_path} after epoch 1"
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    fresh = train_model(small_model(), data, recipe, tmp_path / "again", device="cpu")
    assert fresh.history[0]["train_loss"] == resumed.history[0]["train_loss"]
