"""Weights holding NaN or infinite values are refused on load, naming the tensor."""

from __future__ import annotations

import pytest
import safetensors.torch
import torch
from torch import nn

from robustlens.errors import CheckpointError
from robustlens.models import build_model, load_checkpoint, save_checkpoint
from robustlens.models.adapters import AdaptedClassifier
from robustlens.models.foreign import load_foreign_weights


def small():
    torch.manual_seed(0)
    return build_model("small-cnn", "digits", widths=(4, 4, 4))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_a_checkpoint_with_a_non_finite_weight_is_refused(tmp_path, value):
    model = small()
    with torch.no_grad():
        model.linear.bias[2] = value
    save_checkpoint(model, tmp_path / "m", dataset="digits")
    with pytest.raises(CheckpointError, match=r"'linear.bias' holds 1 NaN or infinite") as err:
        load_checkpoint(tmp_path / "m")
    assert str(tmp_path / "m.safetensors") in str(err.value)


def test_a_finite_checkpoint_loads(tmp_path):
    save_checkpoint(small(), tmp_path / "m", dataset="digits")
    model, _ = load_checkpoint(tmp_path / "m")
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_foreign_weights_with_nan_are_refused(tmp_path, suffix):
    state = small().state_dict()
    state["block1.0.weight"][0, 0, 0, 0] = float("nan")
    path = tmp_path / f"w{suffix}"
    if suffix == ".pt":
        torch.save(state, path)
    else:
        safetensors.torch.save_file({k: v.contiguous() for k, v in state.items()}, path)
    with pytest.raises(CheckpointError, match=r"block1.0.weight"):
        load_foreign_weights(path, "small-cnn", "digits", widths=(4, 4, 4))


def test_an_adapted_module_with_inf_is_refused():
    module = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 3))
    with torch.no_grad():
        module[3].weight[0, 0] = float("inf")
    with pytest.raises(CheckpointError, match=r"'3.weight'"):
        AdaptedClassifier(module, input_shape=(3, 2, 2), spec="test:inf")


def test_integer_buffers_are_not_checked():
    from robustlens.models.checkpoint import check_finite_weights

    check_finite_weights({"n": torch.tensor(7), "w": torch.zeros(2)}, origin="x")
