"""The processes of the data-parallel tests, as a child process.

``python -m tests.train.ddp_worker ROOT`` imports torch once, then runs :data:`PLAN`: each
step forks two ranks (nothing computes with torch before a fork) joined in a gloo process
group on 127.0.0.1, runs jobs (functions of this module) on both and saves what each returns
to ``ROOT/FOLDER/JOB-rank-R.pt``; it prints one JSON line per step. One thread per process, as
in the test process (tests/train/conftest.py).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from robustlens.attacks import FGSM, PGD, robust_accuracy, threat_model
from robustlens.models import build_model
from robustlens.train import train_model
from robustlens.train.killpoint import ENV
from tests.train.helpers import FAST, INFO, KILLED, killed_run_inputs, small_model, stripes

TIMEOUT = datetime.timedelta(seconds=60)
"""A rank whose peer died stops waiting after this (mp.spawn ends the others sooner)."""

NATURAL = dataclasses.replace(FAST, batch_size=32, eval_n=32)
TRAIN_N = 129
"""129 = 4 × 32 + 1: the last global batch holds one image, so one rank's share is empty."""


def mlp(seed: int = 0):
    """A model without BatchNorm: its gradient does not depend on how a batch is split."""
    torch.manual_seed(seed)
    return build_model("mlp", INFO, hidden=(32, 16))


def train_mlp(root: Path, rank: int) -> dict[str, Any]:
    """Test (a): natural training of the MLP on TRAIN_N images."""
    result = train_model(mlp(), stripes(TRAIN_N, 0), NATURAL, root / "mlp", device="cpu")
    return {"state": result.model.state_dict(), "history": result.history}


def train_killed(root: Path, rank: int) -> dict[str, Any]:
    """Test (c): the adversarial run of the kill-and-resume tests, in ``root/run``."""
    data, held_out = killed_run_inputs()
    result = train_model(small_model(), data, KILLED, root / "run", eval_set=held_out, device="cpu")
    return {
        "state": result.model.state_dict(),
        "history": result.history,
        "metrics": result.card.metrics,
        "sha": result.card.weights_sha256,
        "recipe": result.card.recipe,
    }


EVAL_N = 300
"""Five chunks of 64 (batch size 8): rank 0 attacks chunks 0, 2 and 4, rank 1 chunks 1 and 3."""


def evaluate(root: Path, rank: int) -> dict[str, Any]:
    """Test (b): PGD (random start, 2 restarts) and targeted FGSM (random targets), sharded
    and, in the same process, unsharded."""
    torch.manual_seed(3)
    model = small_model(seed=3).eval()
    data = stripes(EVAL_N, 7)
    attacks = {
        "pgd": lambda: PGD(model, threat_model("linf", 0.2), steps=5, restarts=2, seed=11),
        "fgsm": lambda: FGSM(model, threat_model("linf", 0.2), targeted=True, seed=12),
    }
    out = {}
    for name, make in attacks.items():
        for sharded in (True, False):
            result = robust_accuracy(model, data, make(), batch_size=8, sharded=sharded)
            fields = (result.clean_correct, result.robust, result.norms, result.iterations)
            out[f"{name}-{'sharded' if sharded else 'single'}"] = fields
    return out


def _entry(rank: int, world: int, port: int, jobs: list[str], root: str, kill: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    if kill and rank == 1:
        os.environ[ENV] = kill
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=TIMEOUT)
    try:
        for job in jobs:
            result = globals()[job](Path(root), rank)
            torch.save(result, Path(root) / f"{job}-rank-{rank}.pt")
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(jobs: list[str], root: Path, kill: str = "") -> str | None:
    """Run ``jobs`` in turn on 2 forked ranks in one process group; with ``kill``, rank 1
    dies by SIGKILL at that phase. None when all ranks finished, else how one ended."""
    root.mkdir(parents=True, exist_ok=True)
    try:
        mp.start_processes(
            _entry,
            args=(2, free_port(), jobs, str(root), kill),
            nprocs=2,
            join=True,
            start_method="fork",
        )
    except mp.ProcessExitedException as exc:
        return f"rank {exc.error_index} exited: signal {exc.signal_name}, code {exc.exit_code}"
    except mp.ProcessRaisedException as exc:
        return f"a rank raised: {exc}"
    return None


PLAN = (
    ("together", ["train_mlp", "evaluate", "train_killed"], ""),
    ("killed", ["train_killed"], "epoch-2"),
)
"""What the launcher runs: (folder, jobs, kill phase); then it copies the killed run's folder
to ``killed-copy`` and resumes the run in ``killed`` on two ranks."""


def main(root: Path) -> None:
    """Torch is imported once here and nothing computes before the forks."""
    for folder, jobs, kill in PLAN:
        start = time.perf_counter()
        failure = launch(jobs, root / folder, kill)
        seconds = time.perf_counter() - start
        print(json.dumps({"run": folder, "failure": failure, "seconds": seconds}), flush=True)
    shutil.copytree(root / "killed", root / "killed-copy")
    start = time.perf_counter()
    failure = launch(["train_killed"], root / "killed")
    seconds = time.perf_counter() - start
    print(json.dumps({"run": "resumed", "failure": failure, "seconds": seconds}), flush=True)


def results(root: Path, job: str) -> list[Any]:
    """What each of the two ranks returned from ``job`` in folder ``root``."""
    return [torch.load(root / f"{job}-rank-{r}.pt", weights_only=False) for r in range(2)]


def single(job: str, root: Path) -> Any:
    """``job`` in this process, without a process group (the unsharded run)."""
    return globals()[job](root, 0)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
