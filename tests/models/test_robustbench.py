"""RobustBench checkpoints: files written here with RobustBench's key names load into our
architectures and give the outputs of a forward computed from the state dict alone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import safetensors.torch
import torch
from torch import nn

from robustlens.errors import CheckpointError, ConfigError
from robustlens.models import build_model, load_checkpoint, save_checkpoint
from robustlens.models.robustbench import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    ENTRIES,
    IMAGENET_MEAN,
    IMAGENET_SHAPE,
    IMAGENET_STD,
    MADRYLAB_CIFAR10_STD,
    load_robustbench,
    load_robustbench_layout,
    robustbench_model,
    robustbench_rename,
)
from tests.tolerances import close

from .robustbench_layouts import (
    preact_forward,
    preact_shapes,
    random_weights,
    resnet50_forward,
    resnet50_shapes,
    wrn_forward,
    wrn_shapes,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "MODELS.md"
IDENTITY = {"mean": (0.0,) * 3, "std": (1.0,) * 3}


def _images(n: int = 2, side: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand((n, 3, side, side), generator=torch.Generator().manual_seed(seed))


def _normalised(x: torch.Tensor, mean, std) -> torch.Tensor:
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def _assert_same(ours: torch.Tensor, ref: torch.Tensor, fan_in: int, layers: int) -> None:
    """Two float32 forwards of the same network: each layer sums up to ``fan_in`` products,
    and rounding may differ by a few ulp per layer."""
    scale = float(ref.abs().max())
    assert torch.isfinite(ref).all() and scale > 0
    torch.testing.assert_close(ours, ref, **close(torch.float32, fan_in, 4 * layers, scale))


def _save(state: dict[str, torch.Tensor], path: Path, *, wrap: str | None = None) -> Path:
    if path.suffix == ".safetensors":
        safetensors.torch.save_file({k: v.contiguous() for k, v in state.items()}, path)
    else:
        torch.save({wrap: state} if wrap else state, path)
    return path


def test_wrn_with_module_prefix_wrapper_and_sub_block1(tmp_path: Path) -> None:
    """A small WideResNet in the layout of Carmon2019Unlabeled's file: ``module.`` keys under
    ``state_dict``, with the unused ``sub_block1`` copy."""
    raw = random_weights(wrn_shapes(16, 2, sub_block1=True), seed=1)
    path = _save({f"module.{k}": v for k, v in raw.items()}, tmp_path / "wrn.pt", wrap="state_dict")
    model, card = load_robustbench_layout(
        path, "wrn", "cifar10", depth=16, widen_factor=2, **IDENTITY
    )
    x = _images()
    with torch.no_grad():
        _assert_same(model(x), wrn_forward(raw, x, 16), 9 * 128, 16)
    assert "sub_block1" in card.notes and model.normalize.is_identity()


@pytest.mark.parametrize(
    ("model_id", "depth"), [("Carmon2019Unlabeled", 28), ("Zhang2019Theoretically", 34)]
)
def test_full_size_wrn_names_and_shapes(model_id: str, depth: int) -> None:
    """WRN-28-10 and WRN-34-10 as the table builds them have exactly RobustBench's keys and
    shapes (sub_block1 aside), built on the meta device."""
    entry = robustbench_model(model_id)
    with torch.device("meta"):
        ours = build_model(entry.arch, "cifar10", **IDENTITY, **entry.arch_kwargs)
    theirs = wrn_shapes(depth, 10)
    got = {k: tuple(v.shape) for k, v in ours.state_dict().items() if not k.startswith("normal")}
    assert got == theirs


@pytest.mark.slow  # 36.5 M random weights written, read and run once on the CPU (seconds)
def test_carmon2019unlabeled_full_size_by_model_id(tmp_path: Path) -> None:
    raw = random_weights(wrn_shapes(28, 10, sub_block1=True), seed=2)
    path = _save({f"module.{k}": v for k, v in raw.items()}, tmp_path / "carmon.pt")
    model, card = load_robustbench(path, "Carmon2019Unlabeled")
    x = _images(1)
    with torch.no_grad():
        _assert_same(model(x), wrn_forward(raw, x, 28), 9 * 640, 28)
    assert card.source["robustbench"]["model_id"] == "Carmon2019Unlabeled"


def test_wong2020fast_preact_shortcut_from_input_without_final_bn(tmp_path: Path) -> None:
    """RobustBench's Wong2020Fast: PreActBlock (1×1 shortcut from the raw block input), no
    BN before the head, CIFAR-10 normalisation inside the model (not in the file)."""
    raw = random_weights(preact_shapes(64, bn_before_fc=False), seed=3)
    path = _save(raw, tmp_path / "wong.pt", wrap="state_dict")
    model, card = load_robustbench(path, "Wong2020Fast")
    x = _images()
    with torch.no_grad():
        ref = preact_forward(raw, _normalised(x, CIFAR10_MEAN, CIFAR10_STD), True)
        _assert_same(model(x), ref, 9 * 512, 18)
        # the other variant's forward differs: the test tells the two apart
        other = preact_forward(raw, _normalised(x, CIFAR10_MEAN, CIFAR10_STD), False)
        assert not torch.allclose(ref, other, rtol=1e-3, atol=1e-3)
    assert model.normalize.statistics()[1] == pytest.approx(CIFAR10_STD)
    assert "given by the caller" in card.notes and "Wong2020Fast" in card.notes
    # saved as a robustlens checkpoint (as docs/MODELS.md shows) and read back unchanged
    save_checkpoint(model, tmp_path / "wong2020fast", card)
    again, saved = load_checkpoint(tmp_path / "wong2020fast.safetensors")
    with torch.no_grad():
        assert torch.equal(again(x), model(x))
    assert saved.source["robustbench"] == {
        "model_id": "Wong2020Fast",
        "dataset": "cifar10",
        "threat": "Linf",
    }
    assert saved.dataset == "cifar10" and saved.arch_kwargs["shortcut"] == "input"


def test_rice2020overfitting_l2_with_mu_and_sigma_in_the_file(tmp_path: Path) -> None:
    """PreActBlockV2 with a final BN; a file saved from RobustBench's model object carries its
    ``mu``/``sigma`` buffers, which are read and checked against the table."""
    raw = random_weights(preact_shapes(64, bn_before_fc=True), seed=4)
    stats = {
        "mu": torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1),
        "sigma": torch.tensor(CIFAR10_STD).view(1, 3, 1, 1),
    }
    path = _save({**raw, **stats}, tmp_path / "rice.safetensors")
    model, card = load_robustbench(path, "Rice2020Overfitting", threat="L2")
    x = _images()
    with torch.no_grad():
        ref = preact_forward(raw, _normalised(x, CIFAR10_MEAN, CIFAR10_STD), False)
        _assert_same(model(x), ref, 9 * 512, 18)
    assert "taken from the file" in card.notes

    wrong = {**raw, **stats, "sigma": torch.full((1, 3, 1, 1), 0.5)}
    path = _save(wrong, tmp_path / "wrong.safetensors")
    with pytest.raises(CheckpointError, match=r"normalises with mean .* Rice2020Overfitting"):
        load_robustbench(path, "Rice2020Overfitting", threat="L2")


def test_cifar_resnet50_madrylab_statistics(tmp_path: Path) -> None:
    """Engstrom2019Robustness's layout (bottleneck ResNet, ``shortcut``/``linear``), a quarter
    width to keep it fast; the full-size key set is checked on the meta device."""
    raw = random_weights(resnet50_shapes(16), seed=5)
    path = _save(raw, tmp_path / "r50.pt")
    model, _ = load_robustbench_layout(
        path, "resnet50", "cifar10", width=16, mean=CIFAR10_MEAN, std=MADRYLAB_CIFAR10_STD
    )
    x = _images()
    with torch.no_grad():
        ref = resnet50_forward(raw, _normalised(x, CIFAR10_MEAN, MADRYLAB_CIFAR10_STD), False)
        _assert_same(model(x), ref, 9 * 128, 50)
    entry = robustbench_model("Engstrom2019Robustness", threat="L2")
    with torch.device("meta"):
        full = build_model(entry.arch, "cifar10", mean=entry.mean, std=entry.std)
    got = {k: tuple(v.shape) for k, v in full.state_dict().items() if not k.startswith("normal")}
    assert got == resnet50_shapes(64)
    assert sum(p.numel() for p in full.parameters()) == 23_520_842  # CIFAR-10 ResNet-50


def test_torchvision_resnet50_behind_robustbenchs_normalize_layer(tmp_path: Path) -> None:
    """RobustBench's ImageNet models are ``normalize_model(resnet50())``: keys ``model.*`` with
    torchvision's ``downsample``/``fc`` names and ``normalize.mean``/``std`` of shape
    (1, 3, 1, 1); small width, 10 classes and 64-pixel images keep it fast."""
    raw = random_weights(resnet50_shapes(8, torchvision=True), seed=6)
    stats = {
        "normalize.mean": torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1),
        "normalize.std": torch.tensor(IMAGENET_STD).view(1, 3, 1, 1),
    }
    path = _save({**{f"model.{k}": v for k, v in raw.items()}, **stats}, tmp_path / "in.pt")
    model, card = load_robustbench_layout(
        path,
        "resnet50-imagenet",
        None,
        layout="torchvision",
        width=8,
        num_classes=10,
        in_channels=3,
        input_size=64,
    )
    x = _images(2, 64)
    with torch.no_grad():
        ref = resnet50_forward(raw, _normalised(x, IMAGENET_MEAN, IMAGENET_STD), True)
        _assert_same(model(x), ref, 49 * 3 + 9 * 64, 50)
    assert "taken from the file" in card.notes


def test_imagenet_resnet50_full_size_names_and_parameter_count() -> None:
    entry = robustbench_model("Salman2020Do_R50", dataset="imagenet")
    with torch.device("meta"):
        full = build_model(entry.arch, mean=entry.mean, std=entry.std, **IMAGENET_SHAPE)
    rename = robustbench_rename("torchvision")
    theirs = {rename(k): v for k, v in resnet50_shapes(64, torchvision=True, classes=1000).items()}
    got = {k: tuple(v.shape) for k, v in full.state_dict().items() if not k.startswith("normal")}
    assert got == theirs
    assert sum(p.numel() for p in full.parameters()) == 25_557_032  # torchvision's ResNet-50


def test_every_entry_builds_and_is_in_the_docs_table() -> None:
    text = DOCS.read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `(\w+)` \| (\S+) \| (\S+) \|", text, flags=re.M))
    for entry in ENTRIES:
        shape = IMAGENET_SHAPE if entry.dataset == "imagenet" else {}
        dataset = None if entry.dataset == "imagenet" else entry.dataset
        with torch.device("meta"):
            model = build_model(entry.arch, dataset, **shape, **IDENTITY, **entry.arch_kwargs)
        assert model.num_classes == (1000 if shape else 10)
        assert (entry.model_id, entry.dataset, entry.threat) in rows, entry.key
    assert len(rows) == len(ENTRIES)


def test_bad_requests_get_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean"):
        robustbench_model("Carmon2019Unlabelled")
    with pytest.raises(ConfigError, match="Linf' or 'L2"):
        robustbench_model("Carmon2019Unlabeled", threat="linf-ish")
    with pytest.raises(ConfigError, match="layout"):
        robustbench_rename("timm")
    pickled = tmp_path / "module.pt"
    torch.save(nn.Linear(2, 2), pickled)  # a pickled module: code, not weights
    with pytest.raises(CheckpointError, match="refused"):
        load_robustbench(pickled, "Standard")
    missing = random_weights(preact_shapes(64, bn_before_fc=False), seed=7)
    del missing["linear.weight"]
    with pytest.raises(CheckpointError, match=r"linear\.weight"):
        load_robustbench(_save(missing, tmp_path / "cut.pt"), "Wong2020Fast")
