"""Every registered lens on every zoo architecture (smallest width / depth), on tiny images of
both input shapes the zoo serves, and on a plain user ``nn.Module`` loaded through the adapter
with taps the user names: each cell runs, or ends in a recorded *not applicable* with its
reason, never in another error.

The expected not-applicable cells are listed with the words their reason must contain, so a
lens that quietly stops applying (or starts crashing) fails here.
"""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from robustlens.lenses import LENSES
from robustlens.lenses.base import LensNotApplicable, LensResult
from robustlens.models import build_model
from robustlens.models.adapters import AdaptedClassifier
from tests.lenses.helpers import (
    MATRIX_SHAPES,
    SMALLEST_ARCH_KWARGS,
    TINY_LENS_PARAMS,
    make_images,
    make_info,
    run_lens_like_a_study,
    study_model,
)

USER = "user-module"
ARCHS = (*SMALLEST_ARCH_KWARGS, USER)
N_IMAGES = 16

NOT_APPLICABLE = {
    ("activations", "mlp"): "no feature maps",
    ("featviz", "mlp"): "no convolutional taps",
    ("filters", "mlp"): "no 3×3 convolutions",
    ("filters", "lenet"): "are 5×5",
}
"""(lens, architecture) → words the recorded reason contains; every other cell runs."""

HEAVY = {"vgg16-bn", "resnet56"}
"""Architectures run on their natural 3×32×32 shape only (marked slow): the 1×28×28 row of
them adds nothing the lighter models of both shapes do not check, and VGG-16's fixed widths
(15 M parameters) make it the most expensive row."""


class UserNet(nn.Module):
    """A network as a user writes it: no robustlens base class, its own names."""

    def __init__(self, channels: int, classes: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(channels, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.block = nn.Sequential(nn.Conv2d(4, 6, 3, padding=1), nn.ReLU())
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(6, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.block(self.stem(x))))


@functools.cache
def _model(arch: str, shape: tuple[int, int, int]) -> nn.Module:
    info = make_info(shape, num_classes=3)
    torch.manual_seed(0)
    if arch == USER:
        return AdaptedClassifier(
            UserNet(shape[0], 3),
            input_shape=shape,
            taps=["body.stem.1", "body.block.1"],  # named by the user
        ).eval()
    return build_model(arch, info, **SMALLEST_ARCH_KWARGS[arch]).eval()


def _group(arch: str, shape: tuple[int, int, int]) -> list:
    """The model as a natural and as an adversarially trained study model, and a natural
    victim of another architecture (study-scope lenses compare models)."""
    net = _model(arch, shape)
    victim = "mlp" if arch == "small-cnn" else "small-cnn"
    robust = {"method": "pgd", "norm": "linf", "eps": 0.1}
    return [
        study_model(net, "natural"),
        study_model(net, "robust", robust),
        study_model(_model(victim, shape), "victim"),
    ]


def _cell(*values: object, arch: str, shape: tuple[int, int, int]) -> object:
    marks = [pytest.mark.slow] if arch in HEAVY else []
    name = "-".join(str(v) for v in values[:1]) + f"-{arch}-{shape[0]}x{shape[1]}"
    return pytest.param(*values, arch, shape, id=name.lstrip("-"), marks=marks)


SHAPES = {arch: MATRIX_SHAPES[-1:] if arch in HEAVY else MATRIX_SHAPES for arch in ARCHS}
CELLS = [
    _cell(lens, arch=arch, shape=shape)
    for lens in LENSES.names()
    for arch in ARCHS
    for shape in SHAPES[arch]
]


def test_every_registered_lens_has_tiny_parameters():
    assert sorted(TINY_LENS_PARAMS) == LENSES.names()


@pytest.mark.parametrize(("lens", "arch", "shape"), CELLS)
def test_lens_runs_or_is_not_applicable(lens, arch, shape):
    spec = LENSES.get(lens)
    info = make_info(shape, num_classes=3)
    data = make_images(info, N_IMAGES)
    train = make_images(info, 12, seed=5, split="train")
    models = _group(arch, shape)
    expected = NOT_APPLICABLE.get((lens, arch))
    try:
        result = run_lens_like_a_study(
            spec, models, data, TINY_LENS_PARAMS[lens], load_split=lambda split, n: train
        )
    except LensNotApplicable as exc:
        assert expected is not None, f"{lens} unexpectedly not applicable to {arch}: {exc}"
        assert expected in exc.problem, exc.problem
        return
    assert expected is None, f"{lens} ran on {arch}, expected not applicable ({expected})"
    assert isinstance(result, LensResult)
    assert result.tables and all(not frame.empty for frame in result.tables.values())
    assert "natural" in set().union(*(set(f["model"]) for f in result.tables.values()))


@pytest.mark.parametrize(
    ("arch", "shape"),
    [_cell(arch=arch, shape=shape) for arch in ARCHS for shape in SHAPES[arch]],
)
def test_saliency_sanity_check_runs_on_every_architecture(arch, shape):
    """App. A's cascade re-initialises every layer of the model from the output down: the
    part of the saliency lens that depends most on the architecture (one method keeps it
    short; the matrix covers every method without it)."""
    info = make_info(shape, num_classes=3)
    data = make_images(info, 4)
    params = {**TINY_LENS_PARAMS["saliency"], "methods": ["vanilla"], "sanity_images": 1}
    result = run_lens_like_a_study(LENSES.get("saliency"), _group(arch, shape), data, params)
    sanity = result.tables["saliency_sanity"]
    assert len(set(sanity["layer"])) >= 2  # more than one layer re-initialised in turn
