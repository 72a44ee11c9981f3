"""kill -9 at every phase of a training run, then resume: the same model, card and history as
an uninterrupted run, and nothing half-written left behind.

The kills are exact: the child process dies by SIGKILL at a named phase
(robustlens.train.killpoint), not wherever a timer lands.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from robustlens.models import load_checkpoint
from robustlens.train import train_model
from tests.train.helpers import KILLED, killed_run_inputs, small_model

pytestmark = [
    pytest.mark.timing,
    pytest.mark.skipif(not hasattr(os, "fork"), reason="the killed runs are forked processes"),
]

ROOT = Path(__file__).resolve().parents[2]

# Every phase boundary of a 2-epoch run, in order (see robustlens/train/killpoint.py), with
# what the folder must hold right after the kill there (proof that the kill came there).
PHASES = {
    "epoch-1": ["metrics.jsonl!", "state!"],
    "epoch-1-files": ["state/epoch-0001.optimizer.safetensors", "state/progress.json!"],
    "epoch-1-saved": ["state/progress.json", "metrics.jsonl!"],
    "epoch-1-done": ["state/progress.json", "metrics.jsonl"],
    "epoch-2": ["state/epoch-0001.safetensors", "state/epoch-0002.safetensors!"],
    "epoch-2-files": ["state/epoch-0002.optimizer.safetensors", "state/epoch-0001.json"],
    "epoch-2-saved": ["state/epoch-0002.json", "state/epoch-0001.json!"],
    "epoch-2-done": ["state/epoch-0002.json", "model.safetensors!"],
    "before-evaluation": ["state/progress.json", "model.safetensors!"],
    "during-evaluation": ["state/progress.json", "model.safetensors!"],
    "weights-staged": [".model.staging/model.safetensors", ".model.staging/model.json!"],
    "pair-committed": [".model.commit/model.json", "model.json!"],
    "card-in-place": ["model.json", "model.safetensors!", ".model.commit/model.safetensors"],
    "before-cleanup": ["model.safetensors", "model.json", "state/progress.json"],
}
FINISHED = ["metrics.jsonl", "model.json", "model.safetensors"]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted run."""
    data, held_out = killed_run_inputs()
    out = tmp_path_factory.mktemp("straight")
    return train_model(small_model(), data, KILLED, out, eval_set=held_out, device="cpu")


@pytest.fixture(scope="module")
def killed(tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    """One killed run per phase (one child process that forks them all)."""
    root = tmp_path_factory.mktemp("killed")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("ROBUSTLENS_KILL_AT", None)
    threads = str(torch.get_num_threads())  # as here (tests/train/conftest.py: one)
    done = subprocess.run(
        [sys.executable, "-m", "tests.train.killed_run", str(root), threads, *PHASES],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    outcomes = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return root, {o["phase"]: o for o in outcomes}


def files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def without_seconds(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


@pytest.mark.parametrize("phase", list(PHASES))
def test_a_run_killed_at_any_phase_resumes_to_the_uninterrupted_result(
    straight, killed, phase, tmp_path
):
    root, outcomes = killed
    out = tmp_path / phase  # a copy: the killed folder stays for repeated runs of this test
    shutil.copytree(root / phase, out)
    assert outcomes[phase]["signal"] == signal.SIGKILL, f"not killed at {phase}: {outcomes}"
    left = files_in(out)
    for expected in PHASES[phase]:
        if expected.endswith("!"):
            assert expected[:-1] not in left, (phase, left)
        else:
            assert expected in left, (phase, left)

    data, held_out = killed_run_inputs()
    # Once an epoch is saved, a model of another initialisation: all must come from the folder.
    model = small_model(seed=0 if phase in ("epoch-1", "epoch-1-files") else 5)
    resumed = train_model(model, data, KILLED, out, eval_set=held_out, device="cpu")
    assert files_in(out) == FINISHED
    assert resumed.card.weights_sha256 == straight.card.weights_sha256  # weights and BN stats
    assert resumed.card.metrics == straight.card.metrics
    assert resumed.card.recipe == straight.card.recipe
    assert without_seconds(resumed.history) == without_seconds(straight.history)
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert without_seconds(logged) == without_seconds(straight.history)
    saved, card = load_checkpoint(out / "model.safetensors")
    assert card.weights_sha256 == straight.card.weights_sha256
    for (name, a), (_, b) in zip(
        saved.state_dict().items(), straight.model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    assert not resumed.model.training
    again = train_model(small_model(), data, KILLED, out, eval_set=held_out, device="cpu")
    assert again.reused and again.card.weights_sha256 == straight.card.weights_sha256
