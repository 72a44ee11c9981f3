"""save_checkpoint_unit: weights and card as one unit, staged in a hidden folder and committed
by one rename; finish_checkpoint_unit completes a committed pair and discards a staged one,
touching nothing else in the folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from robustlens.errors import CheckpointError
from robustlens.models import build_model, load_checkpoint
from robustlens.models.checkpoint import (
    encode_checkpoint,
    finish_checkpoint_unit,
    save_checkpoint_unit,
    unit_folders,
)

from .helpers import FMNIST


def _model(seed: int = 0):
    torch.manual_seed(seed)
    return build_model("small-cnn", FMNIST, widths=(4, 8, 8)).eval()


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_the_pair_is_saved_with_nothing_else_left(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    card = save_checkpoint_unit(_model(), tmp_path / "model", dataset="fashion-mnist")
    assert _files(tmp_path) == ["model.json", "model.safetensors", "notes.txt"]
    _, loaded = load_checkpoint(tmp_path / "model.safetensors")
    assert loaded.weights_sha256 == card.weights_sha256
    assert finish_checkpoint_unit(tmp_path / "model") is None


def test_the_hook_sees_the_three_points_in_order(tmp_path):
    seen = []

    def at(phase: str) -> None:
        staging, committed = unit_folders(tmp_path / "model")
        seen.append((phase, staging.is_dir(), committed.is_dir(), _files(tmp_path)))

    save_checkpoint_unit(_model(), tmp_path / "model", at=at)
    assert [s[0] for s in seen] == ["weights-staged", "pair-committed", "card-in-place"]
    assert seen[0][1:3] == (True, False) and ".model.staging/model.json" not in seen[0][3]
    assert seen[1][1:3] == (False, True) and "model.json" not in seen[1][3]
    assert seen[2][1:3] == (False, True) and "model.json" in seen[2][3]
    assert "model.safetensors" not in seen[2][3]


def stage(folder: Path, model, *, card: bool, into: str = "staging", truncate: bool = False):
    """Leave what a kill leaves: the pair (or the weights only) in a unit folder."""
    data, text, written = encode_checkpoint(model)
    staging, committed = unit_folders(folder / "model")
    unit = staging if into == "staging" else committed
    unit.mkdir()
    (unit / "model.safetensors").write_bytes(data[: len(data) // 2] if truncate else data)
    if card:
        (unit / "model.json").write_bytes(text)
    return written


@pytest.mark.parametrize("card", [False, True])
def test_a_staged_pair_is_discarded_and_the_old_pair_and_other_files_stay(tmp_path, card):
    old = save_checkpoint_unit(_model(0), tmp_path / "model")
    (tmp_path / "notes.txt").write_text("mine")
    stage(tmp_path, _model(1), card=card, truncate=not card)
    assert finish_checkpoint_unit(tmp_path / "model") == "discarded"
    assert _files(tmp_path) == ["model.json", "model.safetensors", "notes.txt"]
    _, loaded = load_checkpoint(tmp_path / "model")
    assert loaded.weights_sha256 == old.weights_sha256


def test_a_committed_pair_is_put_in_place_even_with_its_card_already_there(tmp_path):
    new = stage(tmp_path, _model(1), card=True, into="commit")
    assert finish_checkpoint_unit(tmp_path / "model") == "finished"
    _, loaded = load_checkpoint(tmp_path / "model")
    assert loaded.weights_sha256 == new.weights_sha256
    assert _files(tmp_path) == ["model.json", "model.safetensors"]
    # killed after the card was moved, before the weights: the weights follow
    newer = stage(tmp_path, _model(2), card=True, into="commit")
    _, committed = unit_folders(tmp_path / "model")
    (committed / "model.json").replace(tmp_path / "model.json")
    assert finish_checkpoint_unit(tmp_path / "model") == "finished"
    _, loaded = load_checkpoint(tmp_path / "model")
    assert loaded.weights_sha256 == newer.weights_sha256


def test_a_file_of_someone_else_in_the_staging_folder_is_kept_and_reported(tmp_path):
    stage(tmp_path, _model(), card=False)
    staging, _ = unit_folders(tmp_path / "model")
    (staging / "mine.txt").write_text("mine")
    with pytest.raises(CheckpointError, match="did not write"):
        finish_checkpoint_unit(tmp_path / "model")
    assert (staging / "mine.txt").read_text() == "mine"
