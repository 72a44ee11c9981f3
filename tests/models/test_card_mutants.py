"""A checkpoint whose card records no weights sha256 is refused, never loaded unchecked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from robustlens.errors import CheckpointError
from robustlens.models import build_model, load_checkpoint, save_checkpoint

from .helpers import FMNIST


def _saved(tmp_path: Path) -> tuple[Path, Path]:
    torch.manual_seed(0)
    save_checkpoint(build_model("small-cnn", FMNIST, widths=(4, 8, 8)).eval(), tmp_path / "m")
    return tmp_path / "m.safetensors", tmp_path / "m.json"


def _edit_card(card_path: Path, **changes) -> None:
    data = json.loads(card_path.read_text())
    for key, value in changes.items():
        if value is ...:
            data.pop(key)
        else:
            data[key] = value
    card_path.write_text(json.dumps(data))


@pytest.mark.parametrize("missing", [None, ...], ids=["null", "absent"])
def test_a_card_without_the_weights_sha256_is_refused(tmp_path: Path, missing) -> None:
    weights, card_path = _saved(tmp_path)
    load_checkpoint(weights)  # loads while the card has its hash
    _edit_card(card_path, weights_sha256=missing)
    with pytest.raises(CheckpointError, match="records no weights_sha256"):
        load_checkpoint(weights)


def test_changed_weights_behind_a_card_without_a_hash_are_refused(tmp_path: Path) -> None:
    weights, card_path = _saved(tmp_path)
    _edit_card(card_path, weights_sha256=None)
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError):
        load_checkpoint(weights)
