"""Checkpoints: safetensors weights + JSON card, atomic writes, hash checks, strict loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import safetensors.torch
import torch
from torch import nn

from robustlens.errors import CheckpointError, ConfigError
from robustlens.models import (
    AdaptedClassifier,
    ModelCard,
    RobustClassifier,
    build_model,
    checkpoint_paths,
    load_checkpoint,
    model_digest,
    save_checkpoint,
)
from robustlens.models import checkpoint as checkpoint_module
from robustlens.models.checkpoint import state_tensors

from .helpers import FMNIST, images


def _model(seed: int = 0) -> RobustClassifier:
    """A small CNN whose batch-norm statistics are not the initial ones."""
    torch.manual_seed(seed)
    model = build_model("small-cnn", FMNIST, widths=(4, 8, 8))
    model.train()
    with torch.no_grad():
        model(torch.rand(8, 1, 28, 28))
    return model.eval()


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_round_trip_gives_identical_outputs_and_card(tmp_path: Path) -> None:
    model = _model()
    card = save_checkpoint(
        model, tmp_path / "fm", dataset=FMNIST, seed=0, recipe={"method": "natural"}
    )
    assert _files(tmp_path) == ["fm.json", "fm.safetensors"]
    assert card.weights_sha256 and card.dataset == "fashion-mnist"
    for path in ("fm", "fm.safetensors", "fm.json"):
        loaded, loaded_card = load_checkpoint(tmp_path / path)
        assert loaded_card == card
        assert not loaded.training
        assert type(loaded) is type(model) and loaded.arch_kwargs == model.arch_kwargs
        x = images(model, 3)
        with torch.no_grad():
            assert torch.equal(loaded(x), model(x))
        assert model_digest(loaded) == model_digest(model)


def test_card_on_disk_matches_the_returned_card(tmp_path: Path) -> None:
    card = save_checkpoint(_model(), tmp_path / "m")
    assert ModelCard.read(tmp_path / "m.json") == card
    assert json.loads((tmp_path / "m.json").read_text())["format"] == card.format


def test_a_template_card_keeps_its_fields_but_takes_the_models_facts(tmp_path: Path) -> None:
    template = ModelCard.for_model(build_model("mlp", FMNIST), notes="from a sweep", seed=3)
    card = save_checkpoint(_model(), tmp_path / "m", card=template, source="unit test")
    assert card.arch == "small-cnn" and card.notes == "from a sweep" and card.seed == 3
    assert card.source == "unit test"
    with pytest.raises(ConfigError, match="unknown model card field"):
        save_checkpoint(_model(), tmp_path / "m2", colour="red")


def test_tampered_weights_are_rejected_with_both_hashes(tmp_path: Path) -> None:
    card = save_checkpoint(_model(), tmp_path / "m")
    weights = tmp_path / "m.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt or was changed") as info:
        load_checkpoint(weights)
    assert card.weights_sha256 in str(info.value)


def test_truncated_weights_are_rejected(tmp_path: Path) -> None:
    save_checkpoint(_model(), tmp_path / "m")
    weights = tmp_path / "m.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="corrupt or was changed"):
        load_checkpoint(weights)


def test_unparsable_weights_with_a_matching_hash_are_rejected(tmp_path: Path) -> None:
    import hashlib

    save_checkpoint(_model(), tmp_path / "m")
    weights, card_path = tmp_path / "m.safetensors", tmp_path / "m.json"
    truncated = weights.read_bytes()[:100]
    weights.write_bytes(truncated)
    data = json.loads(card_path.read_text())
    data["weights_sha256"] = hashlib.sha256(truncated).hexdigest()
    card_path.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_checkpoint(weights)


def test_missing_card_names_the_expected_file(tmp_path: Path) -> None:
    save_checkpoint(_model(), tmp_path / "m")
    (tmp_path / "m.json").unlink()
    with pytest.raises(CheckpointError, match=f"expected {tmp_path / 'm.json'}"):
        load_checkpoint(tmp_path / "m.safetensors")


def test_missing_weights_are_reported(tmp_path: Path) -> None:
    save_checkpoint(_model(), tmp_path / "m")
    (tmp_path / "m.safetensors").unlink()
    with pytest.raises(CheckpointError, match="is missing"):
        load_checkpoint(tmp_path / "m.json")


def _edit_card(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_weights_that_do_not_fit_the_architecture_list_the_keys(tmp_path: Path) -> None:
    card = save_checkpoint(_model(), tmp_path / "m")
    _edit_card(tmp_path / "m.json", arch_kwargs={**card.arch_kwargs, "widths": [4, 8, 16]})
    with pytest.raises(CheckpointError, match="shape mismatches") as info:
        load_checkpoint(tmp_path / "m")
    assert "block3.0.weight" in str(info.value)
    _edit_card(tmp_path / "m.json", arch_kwargs={**card.arch_kwargs, "batch_norm": False})
    with pytest.raises(CheckpointError, match=r"missing keys .*unexpected keys"):
        load_checkpoint(tmp_path / "m")


def test_a_card_for_an_unknown_architecture_is_rejected(tmp_path: Path) -> None:
    save_checkpoint(_model(), tmp_path / "m")
    _edit_card(tmp_path / "m.json", arch="resnet-9000")
    with pytest.raises(CheckpointError, match="cannot build"):
        load_checkpoint(tmp_path / "m")


def test_inconsistent_card_is_rejected(tmp_path: Path) -> None:
    save_checkpoint(_model(), tmp_path / "m")
    _edit_card(tmp_path / "m.json", num_classes=3)
    with pytest.raises(CheckpointError, match="inconsistent"):
        load_checkpoint(tmp_path / "m")


class Boom(OSError):
    pass


def _failing_writer(fail_on_call: int):
    calls = {"n": 0}
    real = checkpoint_module._write_all

    def write(handle, data: bytes) -> None:
        calls["n"] += 1
        if calls["n"] == fail_on_call:
            handle.write(data[: len(data) // 2])
            raise Boom("disk full")
        real(handle, data)

    return write


@pytest.mark.parametrize("fail_on_call", [1, 2], ids=["weights", "card"])
def test_a_failed_save_leaves_no_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_on_call: int
) -> None:
    monkeypatch.setattr(checkpoint_module, "_write_all", _failing_writer(fail_on_call))
    with pytest.raises(Boom):
        save_checkpoint(_model(), tmp_path / "m")
    assert _files(tmp_path) == []


@pytest.mark.parametrize("fail_on_call", [1, 2], ids=["weights", "card"])
def test_a_failed_overwrite_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_on_call: int
) -> None:
    old = _model(seed=0)
    card = save_checkpoint(old, tmp_path / "m")
    monkeypatch.setattr(checkpoint_module, "_write_all", _failing_writer(fail_on_call))
    with pytest.raises(Boom):
        save_checkpoint(_model(seed=1), tmp_path / "m")
    assert _files(tmp_path) == ["m.json", "m.safetensors"]
    loaded, loaded_card = load_checkpoint(tmp_path / "m")
    assert loaded_card == card and model_digest(loaded) == model_digest(old)


def test_overwriting_replaces_both_files(tmp_path: Path) -> None:
    save_checkpoint(_model(seed=0), tmp_path / "m")
    new = _model(seed=1)
    card = save_checkpoint(new, tmp_path / "m")
    loaded, loaded_card = load_checkpoint(tmp_path / "m")
    assert loaded_card == card and model_digest(loaded) == model_digest(new)
    assert _files(tmp_path) == ["m.json", "m.safetensors"]


def test_paths_for_stems_with_dots(tmp_path: Path) -> None:
    weights, card = checkpoint_paths(tmp_path / "run.v1")
    assert weights.name == "run.v1.safetensors" and card.name == "run.v1.json"
    save_checkpoint(_model(), tmp_path / "sub" / "run.v1")
    assert _files(tmp_path / "sub") == ["run.v1.json", "run.v1.safetensors"]


def test_a_study_model_folder_loads_its_model_pair(tmp_path: Path) -> None:
    """A study keeps each model as models/NAME/model.{safetensors,json}: the folder is enough."""
    folder = tmp_path / "models" / "linf-0.1"
    card = save_checkpoint(_model(), folder / "model", dataset=FMNIST, seed=3)
    weights, card_path = checkpoint_paths(folder)
    assert (weights, card_path) == (folder / "model.safetensors", folder / "model.json")
    assert load_checkpoint(folder)[1] == card
    with pytest.raises(CheckpointError, match="no model card"):
        load_checkpoint(tmp_path / "models")  # a folder without a model pair


def test_shared_tensors_are_saved_as_copies() -> None:
    net = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
    net[1].weight = net[0].weight  # tied weights: two keys, one storage
    tensors = state_tensors(net)
    assert tensors["0.weight"].data_ptr() != tensors["1.weight"].data_ptr()
    restored = safetensors.torch.load(safetensors.torch.save(tensors))
    assert torch.equal(restored["1.weight"], net[0].weight.detach())


def test_models_that_cannot_be_rebuilt_are_not_saved(tmp_path: Path) -> None:
    foreign = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    adapted = AdaptedClassifier(foreign, input_shape=(1, 2, 2))
    with pytest.raises(CheckpointError, match="does not know it"):
        save_checkpoint(adapted, tmp_path / "a")
    assert not tmp_path.joinpath("a.safetensors").exists()


def test_models_changed_after_building_are_not_saved(tmp_path: Path) -> None:
    model = _model()
    model.linear = nn.Linear(8, 3)  # a new head for 3 classes, not recorded in arch_kwargs
    with pytest.raises(CheckpointError, match=r"changed after it was built.*linear\.weight"):
        save_checkpoint(model, tmp_path / "m")
    assert _files(tmp_path) == []


def test_digest_tracks_the_weights() -> None:
    a, b = _model(seed=0), _model(seed=0)
    assert model_digest(a) == model_digest(b)
    with torch.no_grad():
        b.linear.bias[0] += 1e-3
    assert model_digest(a) != model_digest(b)
    assert len(model_digest(a)) == 64
