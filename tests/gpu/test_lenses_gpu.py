"""Every registered lens once with its models on the device, against the same lens on the CPU.

The lens runs as the study runner runs it (models on the context's device, data on the CPU)
with the matrix's tiny parameters. Its tables must have the same names, columns and rows on
both devices, and their numbers must agree: float32 summation order changes values by about
1e-6 relative, and an attacked image at the boundary can change a count or a norm outright, so
at least AGREE of the numeric entries of each table must match to RTOL / ATOL.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from robustlens.lenses import LENSES
from robustlens.lenses.base import LensContext, LensNotApplicable
from robustlens.models import build_model
from tests.lenses.helpers import (
    SMALLEST_ARCH_KWARGS,
    TINY_LENS_PARAMS,
    make_images,
    make_info,
    study_model,
)

pytestmark = pytest.mark.gpu

RTOL, ATOL, AGREE = 1e-3, 1e-4, 0.8
SHAPE = (3, 32, 32)


def _models(device: torch.device) -> list:
    info = make_info(SHAPE, num_classes=3)
    torch.manual_seed(0)
    net = build_model("small-cnn", info, **SMALLEST_ARCH_KWARGS["small-cnn"]).eval()
    victim = build_model("mlp", info, **SMALLEST_ARCH_KWARGS["mlp"]).eval()
    net, victim = copy.deepcopy(net).to(device), copy.deepcopy(victim).to(device)
    robust = {"method": "pgd", "norm": "linf", "eps": 0.1}
    return [
        study_model(net, "natural"),
        study_model(net, "robust", robust),
        study_model(victim, "victim"),
    ]


def _run(lens: str, device: torch.device):
    spec = LENSES.get(lens)
    info = make_info(SHAPE, num_classes=3)
    data = make_images(info, 16)
    train = make_images(info, 12, seed=5, split="train")
    models = _models(device)
    params = spec.resolve_params(info, TINY_LENS_PARAMS[lens], f"lenses.{lens}")
    ctx = LensContext(info=info, seed=0, device=device, load_split=lambda split, n: train)
    torch.manual_seed(1)  # lenses that draw from the global generator draw the same on both
    if spec.scope == "model":
        spec.check_applicable(models[0], params)
        return spec.compute(models[0], data, params, ctx)
    return spec.compute(models, data, params, ctx)


def _numbers(frame: pd.DataFrame) -> np.ndarray:
    numeric = frame.select_dtypes(include="number")
    return numeric.to_numpy(dtype=float).ravel()


@pytest.mark.parametrize("lens", LENSES.names())
def test_lens_on_device_matches_cpu(gpu_device, lens):
    try:
        on_cpu = _run(lens, torch.device("cpu"))
    except LensNotApplicable:
        with pytest.raises(LensNotApplicable):
            _run(lens, gpu_device)
        return
    on_dev = _run(lens, gpu_device)
    assert sorted(on_cpu.tables) == sorted(on_dev.tables), lens
    for name, frame in on_cpu.tables.items():
        other = on_dev.tables[name]
        assert list(frame.columns) == list(other.columns), (lens, name)
        assert frame.shape == other.shape, (lens, name)
        a, b = _numbers(frame), _numbers(other)
        if a.size == 0:
            continue
        same = np.isclose(a, b, rtol=RTOL, atol=ATOL, equal_nan=True)
        assert same.mean() >= AGREE, f"{lens}/{name}: {same.mean():.2f} of the numbers agree"
