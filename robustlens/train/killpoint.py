"""A test hook: SIGKILL this process at a named phase of a training run.

The kill-and-resume tests set ``ROBUSTLENS_KILL_AT`` to ``PHASE`` (any run) or
``FOLDER:PHASE`` (only the run whose output folder is named FOLDER, e.g. a study's model
name), so the process dies at exactly that point, as a ``kill -9`` would leave it, instead of
wherever a timer happens to land. Unset (always, outside those tests) it does nothing.

Phases of :func:`robustlens.train.train_model`, in order (``N`` is the epoch, from 1):
``epoch-N`` (after the epoch's first step), ``epoch-N-files`` (its checkpoint written, the
progress pointer not yet), ``epoch-N-saved`` (pointer written, metrics log not yet),
``epoch-N-done``, ``before-evaluation``, ``during-evaluation``, ``weights-staged`` (the final
weights written, their card not yet), ``pair-committed``, ``card-in-place`` (see
:func:`robustlens.models.checkpoint.save_checkpoint_unit`) and ``before-cleanup`` (the model
saved, the run's state folder not yet removed).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

ENV = "ROBUSTLENS_KILL_AT"


def kill_point(phase: str, out_dir: Path) -> None:
    """Kill this process with SIGKILL if ``ROBUSTLENS_KILL_AT`` names ``phase`` (in ``out_dir``)."""
    wanted = os.environ.get(ENV)
    if wanted and wanted in (phase, f"{out_dir.name}:{phase}"):
        os.kill(os.getpid(), signal.SIGKILL)
