"""Data-parallel training and sharded evaluation on the CPU: gloo, two processes started here.

(a) Two ranks sharing each global batch train the same weights as one process, to float
tolerance. The model is an MLP: with BatchNorm each rank normalises by its own share of the
batch, another computation, and SyncBatchNorm, which would make it the same one, runs on GPUs
only (DistributedDataParallel refuses it on CPU modules; see tests/train/test_runtime.py).
(b) A sharded evaluation gives exactly the per-image results of an unsharded one.
(c) A run whose rank 1 is killed (SIGKILL, robustlens.train.killpoint) mid-epoch resumes, with
two ranks again, to exactly the uninterrupted two-rank run; with one rank it is refused.

All the two-rank runs happen in one child process (tests/train/ddp_worker.py) that imports
torch once and forks the ranks of each run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from robustlens.errors import ConfigError
from robustlens.train import train_model
from tests.tolerances import close
from tests.train import ddp_worker
from tests.train.helpers import KILLED, killed_run_inputs, small_model

pytestmark = [
    pytest.mark.timing,
    pytest.mark.skipif(
        not (dist.is_available() and dist.is_gloo_available() and hasattr(os, "fork")),
        reason="needs torch.distributed with gloo, and fork",
    ),
]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The folder of the launcher's runs, with how each ended (None: every rank finished)."""
    root = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("ROBUSTLENS_KILL_AT", None)
    done = subprocess.run(
        [sys.executable, "-m", "tests.train.ddp_worker", str(root)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return root, {line["run"]: line["failure"] for line in lines}


def n_steps(recipe, n: int) -> int:
    return recipe.epochs * -(-n // recipe.batch_size)


def assert_weights_close(got: dict, want: dict, steps: int, batch: int) -> None:
    """Each weight after ``steps`` SGD steps. The runs differ only in how each step's gradient
    is summed (two shares, then the all-reduce): roundings of a sum of ``batch`` float32 terms
    (4·eps·√batch relative), made at every step and carried by the later ones, so at most
    ``steps`` times that; absolute the same times the largest weight (entries near zero)."""
    for name, value in want.items():
        if not value.is_floating_point():
            assert torch.equal(got[name], value), name
            continue
        scale = float(value.abs().max()) or 1.0
        tol = close(torch.float32, batch, ulps=4 * steps, scale=scale)
        torch.testing.assert_close(got[name], value, **tol, msg=name)


def test_two_ranks_train_the_weights_of_one_process(runs, tmp_path):
    root, failures = runs
    assert failures["together"] is None
    one = ddp_worker.single("train_mlp", tmp_path)
    two = ddp_worker.results(root / "together", "train_mlp")
    steps = n_steps(ddp_worker.NATURAL, ddp_worker.TRAIN_N)
    for rank in two:
        assert_weights_close(rank["state"], one["state"], steps, ddp_worker.NATURAL.batch_size)
    # the ranks hold one model, and the epoch's loss and accuracy are the global batch's
    assert all(torch.equal(two[1]["state"][k], v) for k, v in two[0]["state"].items())
    for a, b in zip(two[0]["history"], one["history"], strict=True):
        assert a["train_accuracy"] == b["train_accuracy"]
        assert a["train_loss"] == pytest.approx(
            b["train_loss"], rel=close(torch.float32)["rtol"] * steps
        )
    assert (root / "together" / "mlp" / "model.safetensors").exists()


def test_sharded_evaluation_equals_the_unsharded_one(runs):
    root, _ = runs
    ranks = ddp_worker.results(root / "together", "evaluate")
    for attack in ("pgd", "fgsm"):
        single = ranks[0][f"{attack}-single"]
        assert single[0].numel() == ddp_worker.EVAL_N
        for rank in ranks:
            for got, want in zip(rank[f"{attack}-sharded"], single, strict=True):
                assert torch.equal(got, want), attack


def without_seconds(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def test_a_rank_killed_mid_epoch_resumes_to_the_uninterrupted_run(runs):
    root, failures = runs
    assert "rank 1 exited: signal SIGKILL" in (failures["killed"] or ""), failures
    assert failures["resumed"] is None
    copy = root / "killed-copy" / "run"
    assert (copy / "state" / "progress.json").exists()
    assert not (copy / "model.safetensors").exists()
    data, held_out = killed_run_inputs()
    with pytest.raises(ConfigError, match="2 process"):
        train_model(small_model(), data, KILLED, copy, eval_set=held_out, device="cpu")
    straight = ddp_worker.results(root / "together", "train_killed")[0]
    for rank in ddp_worker.results(root / "killed", "train_killed"):
        assert rank["sha"] == straight["sha"]
        assert rank["metrics"] == straight["metrics"]
        assert rank["recipe"] == straight["recipe"]
        assert without_seconds(rank["history"]) == without_seconds(straight["history"])
        for name, value in straight["state"].items():
            assert torch.equal(rank["state"][name], value), name
