"""Foreign weight files: layouts recognised, normalisation recovered, unsafe pickles refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import safetensors.torch
import torch

from robustlens.errors import CheckpointError
from robustlens.models import (
    RobustClassifier,
    build_model,
    load_checkpoint,
    load_foreign_weights,
    model_digest,
    save_checkpoint,
)

from .helpers import CIFAR, images

# ResNet-18's layout at a quarter of its width, on 8×8 inputs, keeps the tests fast.
SMALL = {"input_size": 8, "width": 16}


@pytest.fixture(scope="module")
def source() -> RobustClassifier:
    """The "foreign" model: our resnet18 with trained-looking batch-norm statistics."""
    torch.manual_seed(5)
    model = build_model("resnet18", CIFAR, **SMALL)
    model.train()
    with torch.no_grad():
        model(torch.rand(4, 3, 8, 8))
    return model.eval()


def _weights(model: RobustClassifier, *, normalize: bool = False) -> dict[str, torch.Tensor]:
    return {
        k: v.clone()
        for k, v in model.state_dict().items()
        if normalize or not k.startswith("normalize.")
    }


def _same_outputs(a: RobustClassifier, b: RobustClassifier) -> None:
    x = images(a, 3)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


def test_plain_state_dict_with_our_normalisation(source, tmp_path: Path) -> None:
    path = tmp_path / "plain.pt"
    torch.save(_weights(source, normalize=True), path)
    model, card = load_foreign_weights(path, "resnet18", CIFAR, **SMALL)
    _same_outputs(model, source)
    assert not model.training
    assert "taken from the file" in card.notes
    assert card.source["layout"] == "state dict" and len(card.source["sha256"]) == 64
    assert card.weights_sha256 is None


def test_full_width_resnet18(tmp_path: Path) -> None:
    torch.manual_seed(0)
    full = build_model("resnet18", CIFAR, input_size=8).eval()
    path = tmp_path / "full.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in _weights(full).items()}}, path)
    model, _ = load_foreign_weights(path, "resnet18", CIFAR, input_size=8)
    _same_outputs(model, full)


def test_without_normalisation_the_data_set_statistics_are_used(source, tmp_path: Path) -> None:
    path = tmp_path / "bare.pth"
    torch.save(_weights(source), path)
    model, card = load_foreign_weights(path, "resnet18", CIFAR, **SMALL)
    _same_outputs(model, source)  # the source was built with the same data set statistics
    assert "data set's mean/std" in card.notes


@pytest.mark.parametrize(
    ("wrap", "layout"),
    [
        (lambda sd: {f"module.{k}": v for k, v in sd.items()}, "keys prefixed 'module.'"),
        (lambda sd: {"state_dict": sd, "epoch": 7, "optimizer": {}}, "under state_dict"),
        (lambda sd: {"net": {f"module.{k}": v for k, v in sd.items()}}, "under net"),
        (lambda sd: {"model": {"state_dict": sd}}, "under model/state_dict"),
    ],
    ids=["data-parallel", "state_dict", "net+module", "nested"],
)
def test_wrapped_layouts(source, tmp_path: Path, wrap, layout: str) -> None:
    path = tmp_path / "wrapped.ckpt"
    torch.save(wrap(_weights(source)), path)
    model, card = load_foreign_weights(path, "resnet18", CIFAR, **SMALL)
    _same_outputs(model, source)
    assert layout in card.source["layout"]


def test_madrylab_checkpoint_brings_its_normaliser(source, tmp_path: Path) -> None:
    mean = torch.tensor([0.5, 0.4, 0.3]).reshape(3, 1, 1)
    std = torch.tensor([0.2, 0.25, 0.3]).reshape(3, 1, 1)
    weights = _weights(source)
    state = {"module.normalizer.new_mean": mean, "module.normalizer.new_std": std}
    state |= {"module.attacker.normalize.new_mean": mean, "module.attacker.normalize.new_std": std}
    for k, v in weights.items():
        state[f"module.model.{k}"] = v
        state[f"module.attacker.model.{k}"] = v.clone()
    path = tmp_path / "madry.pt"
    torch.save({"model": state, "epoch": 150, "schedule": None}, path)

    model, card = load_foreign_weights(path, "resnet18", CIFAR, **SMALL)
    expected = build_model("resnet18", CIFAR, **SMALL, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))
    expected.load_state_dict(_weights(source), strict=False)
    _same_outputs(model, expected.eval())
    assert model.normalize.statistics()[0] == pytest.approx((0.5, 0.4, 0.3))
    assert card.mean == pytest.approx((0.5, 0.4, 0.3))
    assert card.source["layout"].startswith("MadryLab") and card.source["epoch"] == 150

    # Saved as our checkpoint, it rebuilds with the file's normalisation.
    save_checkpoint(model, tmp_path / "ours", card=card)
    again, again_card = load_checkpoint(tmp_path / "ours")
    _same_outputs(again, model)
    assert again_card.source == card.source and model_digest(again) == model_digest(model)


def test_a_normaliser_for_other_channels_is_rejected(source, tmp_path: Path) -> None:
    state = {f"module.model.{k}": v for k, v in _weights(source).items()}
    state["module.normalizer.new_mean"] = torch.zeros(1, 1, 1)
    state["module.normalizer.new_std"] = torch.ones(1, 1, 1)
    path = tmp_path / "grey.pt"
    torch.save({"model": state}, path)
    with pytest.raises(CheckpointError, match=r"normalisation in .* does not fit"):
        load_foreign_weights(path, "resnet18", CIFAR, **SMALL)


def test_foreign_safetensors(source, tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    safetensors.torch.save_file({f"module.{k}": v for k, v in _weights(source).items()}, path)
    model, _ = load_foreign_weights(path, "resnet18", CIFAR, **SMALL)
    _same_outputs(model, source)


class Marker:
    """Unpickling this would create a file: evidence that code ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (open, (str(self.path), "w"))


def test_a_pickle_that_would_run_code_is_refused(source, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": _weights(source), "extra": Marker(marker)}, path)
    with pytest.raises(CheckpointError, match="execute arbitrary code") as info:
        load_foreign_weights(path, "resnet18", CIFAR, **SMALL)
    assert "state_dict()" in str(info.value) and "safetensors" in str(info.value)
    assert "weights_only=False" not in str(info.value)
    assert not marker.exists()


def test_a_pickled_module_is_refused(source, tmp_path: Path) -> None:
    path = tmp_path / "whole.pth"
    torch.save(source, path)
    with pytest.raises(CheckpointError, match="refused to load"):
        load_foreign_weights(path, "resnet18", CIFAR, **SMALL)


def test_damaged_and_missing_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x80\x02 certainly not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable PyTorch weights file"):
        load_foreign_weights(junk, "resnet18", CIFAR, **SMALL)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_foreign_weights(bad, "resnet18", CIFAR, **SMALL)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_foreign_weights(tmp_path / "absent.pt", "resnet18", CIFAR, **SMALL)


def test_files_without_a_state_dict(tmp_path: Path) -> None:
    path = tmp_path / "odd.pt"
    torch.save({"epoch": 3, "optimizer": {"lr": 0.1}}, path)
    with pytest.raises(CheckpointError, match=r"found no state dict.*'epoch'"):
        load_foreign_weights(path, "resnet18", CIFAR, **SMALL)


def test_wrong_architecture_lists_the_problem_keys(source, tmp_path: Path) -> None:
    path = tmp_path / "r18.pt"
    torch.save(_weights(source), path)
    with pytest.raises(CheckpointError, match="do not fit preact-resnet18"):
        load_foreign_weights(path, "preact-resnet18", CIFAR, **SMALL)
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_foreign_weights(path, "resnet18", CIFAR, **SMALL, num_classes=100)


def test_extra_keys_need_strict_false(source, tmp_path: Path) -> None:
    path = tmp_path / "extra.pt"
    torch.save({**_weights(source), "proj.weight": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match=r"unexpected keys proj\.weight"):
        load_foreign_weights(path, "resnet18", CIFAR, **SMALL)
    model, card = load_foreign_weights(path, "resnet18", CIFAR, strict=False, **SMALL)
    _same_outputs(model, source)
    assert "ignored 1 keys" in card.notes and "proj.weight" in card.notes


def test_rename_maps_foreign_names(source, tmp_path: Path) -> None:
    path = tmp_path / "renamed.pt"
    torch.save({k.replace("linear.", "fc."): v for k, v in _weights(source).items()}, path)
    model, _ = load_foreign_weights(path, "resnet18", CIFAR, rename={"fc.": "linear."}, **SMALL)
    _same_outputs(model, source)
    model, _ = load_foreign_weights(
        path, "resnet18", CIFAR, rename=lambda k: k.replace("fc.", "linear."), **SMALL
    )
    _same_outputs(model, source)


def test_old_checkpoints_without_num_batches_tracked(source, tmp_path: Path) -> None:
    path = tmp_path / "old.pt"
    torch.save({k: v for k, v in _weights(source).items() if "num_batches" not in k}, path)
    model, card = load_foreign_weights(path, "resnet18", CIFAR, **SMALL)
    _same_outputs(model, source)
    assert "20 num_batches_tracked counters missing" in card.notes


def test_kuangliu_vgg_keys_load_into_our_layers(tmp_path: Path) -> None:
    torch.manual_seed(0)
    ours = build_model("vgg16-bn", CIFAR).eval()
    foreign = {k.replace("layers.", "features."): v for k, v in _weights(ours).items()}
    assert "features.0.weight" in foreign
    path = tmp_path / "vgg.pth"
    torch.save({"net": {f"module.{k}": v for k, v in foreign.items()}, "acc": 93.1}, path)
    model, _ = load_foreign_weights(path, "vgg16-bn", CIFAR)
    _same_outputs(model, ours)


def test_robustbench_wrn_sub_block_is_ignored(tmp_path: Path) -> None:
    torch.manual_seed(0)
    kwargs = {"depth": 10, "widen_factor": 1, "input_size": 8}
    ours = build_model("wrn", CIFAR, **kwargs).eval()
    weights = _weights(ours)
    weights |= {f"sub_{k}": v.clone() for k, v in weights.items() if k.startswith("block1.")}
    path = tmp_path / "wrn.pt"
    torch.save(weights, path)
    model, card = load_foreign_weights(path, "wrn", CIFAR, **kwargs)
    _same_outputs(model, ours)
    assert "ignored 12 keys" in card.notes and "sub_block1.layer.0.bn1.weight" in card.notes
