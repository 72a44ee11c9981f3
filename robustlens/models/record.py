"""The evaluation of record: the one robust-accuracy measurement a model card vouches for.

``robustlens eval MODEL --record`` measures, then writes the result into the card's
``evaluation`` field: the attack (its exact settings and a short label), norm, ε, n, the data
and split, clean and robust accuracy with their 95 % Wilson intervals, the date, the
robustlens version and the sha256 of the weights it was measured on. Only that field changes;
every other field of the card is written back as read. The card is replaced atomically (a
temporary file beside it, fsync, rename), so a crash leaves the old card or the new one.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from robustlens._version import __version__
from robustlens.errors import CheckpointError
from robustlens.models.card import ModelCard
from robustlens.models.checkpoint import atomic_write, checkpoint_paths

FIELD = "evaluation"


def card_to_record(model_path: str | Path) -> Path:
    """The card ``--record`` will write to, checked before any work: it exists, is a valid
    robustlens card, and its folder is writable. One :class:`CheckpointError` otherwise."""
    _, card_path = checkpoint_paths(model_path)
    if not card_path.is_file():
        raise CheckpointError(
            f"cannot record the evaluation: no model card {card_path}",
            fix="--record needs a robustlens checkpoint (weights with their .json card); "
            "adapters and foreign weights have no card to write into",
        )
    ModelCard.read(card_path)  # a damaged card is one clear error, before the attack runs
    if not os.access(card_path.parent, os.W_OK):
        raise CheckpointError(
            f"cannot record the evaluation: {card_path.parent} is not writable",
            fix="copy the checkpoint somewhere writable, or leave --record out",
        )
    return card_path


def evaluation_record(
    *,
    attack: dict[str, Any],
    label: str,
    clean: Any,
    robust: Any,
    data: str,
    split: str,
    seed: int,
    weights_sha256: str | None,
) -> dict[str, Any]:
    """The ``evaluation`` entry for a measurement (``clean``/``robust``: Proportions)."""
    return {
        "attack": attack.get("attack"),
        "version": attack.get("version"),
        "label": label,
        "norm": attack.get("norm"),
        "eps": attack.get("eps"),
        "n": int(robust.n),
        "data": data,
        "split": split,
        "seed": int(seed),
        "clean_accuracy": float(clean.value),
        "clean_ci": [float(clean.low), float(clean.high)],
        "robust_accuracy": float(robust.value),
        "robust_ci": [float(robust.low), float(robust.high)],
        "confidence": float(robust.confidence),
        "interval": "wilson",
        "settings": attack,
        "weights_sha256": weights_sha256,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "robustlens": __version__,
    }


def record_evaluation(card_path: str | Path, record: dict[str, Any]) -> ModelCard:
    """Write ``record`` as the card's evaluation of record, atomically, leaving every other
    field as it is on disk now; returns the updated card."""
    card_path = Path(card_path)
    current = ModelCard.read(card_path)  # re-read: the card may have changed during the run
    if record.get("weights_sha256") not in (None, current.weights_sha256):
        raise CheckpointError(
            f"{card_path} now describes other weights (sha256 {current.weights_sha256}) than "
            f"the ones evaluated ({record['weights_sha256']}): the result was not recorded",
            fix="evaluate the checkpoint again",
        )
    data = json.loads(card_path.read_text(encoding="utf-8"))
    data[FIELD] = record
    updated = ModelCard.from_dict(data, origin=f"model card {card_path}")
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    atomic_write({card_path: text.encode("utf-8")})
    return updated
