"""The killed runs of the kill-and-resume tests, as a child process.

``python -m tests.train.killed_run ROOT THREADS PHASE...`` imports torch once, then for each
PHASE forks a process that trains the run of tests/train/helpers.py (KILLED) into ROOT/PHASE
with ROBUSTLENS_KILL_AT=PHASE, so it dies by SIGKILL exactly there, and prints one JSON line
per phase: {"phase": ..., "signal": the signal that ended it, or null, "status": ...}. Nothing
computes with torch before a fork, so the forked processes start clean.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

import torch
import torch._dynamo  # imported lazily by the optimiser: once here, not per fork)

from robustlens.train import train_model
from robustlens.train.killpoint import ENV
from tests.train.helpers import KILLED, killed_run_inputs, small_model


def killed_run(out: str, threads: int) -> None:
    torch.set_num_threads(threads)  # as in the test process, so the numbers are the same
    data, held_out = killed_run_inputs()
    train_model(small_model(), data, KILLED, out, eval_set=held_out, device="cpu")


def main(root: str, threads: int, phases: list[str]) -> None:
    for phase in phases:
        pid = os.fork()
        if pid == 0:
            code = 0  # the run finished: the kill point was never reached
            try:
                os.environ[ENV] = phase
                killed_run(os.path.join(root, phase), threads)
            except BaseException:
                traceback.print_exc()
                code = 1
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        killed_by = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        print(json.dumps({"phase": phase, "signal": killed_by, "status": status}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3:])
