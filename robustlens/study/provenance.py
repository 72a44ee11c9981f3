"""What it takes to reproduce a study run: code, libraries, machine, inputs and every seed.

Recorded in the store's metadata when a study runs (key ``provenance``), shown first in the
report and printed by ``robustlens study status DIR --provenance``. Seeds are listed as the
run used them: the study seed, the evaluation subset's seed and each trained model's recipe
seed, each marked as derived from the study seed or pinned in the study file
(:mod:`robustlens.study.spec`); every lens run draws from ``derive_seed(study seed, lens,
model)`` (:func:`robustlens.runtime.derive_seed`).
"""

from __future__ import annotations

import hashlib
import platform
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from robustlens.runtime import versions
from robustlens.study.spec import StudySpec

PACKAGE_DIR = Path(__file__).resolve().parents[1]
PROVENANCE_KEY = "provenance"
"""The store's metadata key the provenance is kept under (JSON)."""


def git_commit(where: Path = PACKAGE_DIR) -> str | None:
    """The git commit robustlens runs from (``+dirty`` when its tracked files differ), or
    None outside a git checkout or without git."""
    try:
        head = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if changed else head


def cpu_name() -> str:
    """The CPU model (``/proc/cpuinfo`` on Linux), else what :mod:`platform` says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def effective_seeds(spec: StudySpec) -> dict[str, Any]:
    """Every seed the study's plan fixes, and where each comes from."""
    models = {
        plan.name: {
            "seed": plan.recipe.seed,
            "from": "recipe (pinned)" if plan.seed_pinned else "study seed",
        }
        for plan in spec.models
        if plan.recipe is not None
    }
    return {
        "study": spec.seed,
        "eval_subset": {
            "seed": spec.eval_seed,
            "from": "[data] eval_seed (pinned)" if spec.eval_seed_pinned else "study seed",
        },
        "models": models,
        "lenses": "derive_seed(study seed, lens, model): sha256 of the seed and the names",
    }


def provenance(
    spec: StudySpec,
    *,
    device: torch.device | str,
    data_fingerprint: str,
    argv: list[str] | None = None,
) -> dict[str, Any]:
    """The provenance of a run of ``spec`` on ``device`` over evaluation data
    ``data_fingerprint``; ``argv`` defaults to this process's command line."""
    return {
        "robustlens": versions()["robustlens"],
        "git_commit": git_commit(),
        "versions": versions(),
        "device": str(device),
        "cpu": cpu_name(),
        "threads": torch.get_num_threads(),
        "study_file": str(spec.source),
        "study_file_sha256": hashlib.sha256(spec.text.encode()).hexdigest(),
        "dataset": spec.dataset,
        "eval_n": spec.eval_n,
        "data_fingerprint": data_fingerprint,
        "seeds": effective_seeds(spec),
        "command": shlex.join(sys.argv if argv is None else argv),
        "recorded": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def provenance_rows(record: dict[str, Any]) -> list[tuple[str, str]]:
    """``record`` as (label, text) rows, in reading order, for the report and the CLI."""
    seeds = record.get("seeds", {})
    models = seeds.get("models", {})
    model_text = "; ".join(f"{name} {m['seed']} ({m['from']})" for name, m in models.items())
    lib = record.get("versions", {})
    subset = seeds.get("eval_subset", {})
    rows = [
        ("command", record.get("command", "")),
        ("robustlens", f"{record.get('robustlens', '?')}, commit {record.get('git_commit')}"),
        ("libraries", ", ".join(f"{k} {v}" for k, v in lib.items() if k != "robustlens")),
        (
            "machine",
            f"{record.get('device')}, {record.get('cpu')}, {record.get('threads')} threads",
        ),
        ("study file", f"{record.get('study_file')} (sha256 {record.get('study_file_sha256')})"),
        (
            "data",
            f"{record.get('dataset')}, {record.get('eval_n')} evaluation images, "
            f"fingerprint {record.get('data_fingerprint')}",
        ),
        ("study seed", str(seeds.get("study"))),
        ("evaluation subset seed", f"{subset.get('seed')} ({subset.get('from')})"),
        ("training seeds", model_text or "none (no model trained by a recipe)"),
        ("lens seeds", str(seeds.get("lenses", ""))),
        ("recorded", record.get("recorded", "")),
    ]
    return rows
