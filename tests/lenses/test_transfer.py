"""The transfer lens (Springer et al. §5.2): examples from each source on other architectures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robustlens.errors import ConfigError
from robustlens.lenses import get_lens, transfer
from robustlens.models import build_model
from tests.lenses.helpers import (
    brightness_images,
    make_ctx,
    make_info,
    rows,
    study_model,
    trained_cnn,
    value,
)

INFO = make_info((1, 12, 12), num_classes=3)
DATA = brightness_images(INFO, 30, seed=12)
LENS = get_lens("transfer")
_MLP = {}


def trained_mlp():
    if "m" not in _MLP:
        torch.manual_seed(0)
        net = build_model("mlp", INFO, hidden=(32,)).train()
        train = brightness_images(INFO, 256, seed=99, split="train")
        opt = torch.optim.Adam(net.parameters(), lr=0.01)
        for _ in range(30):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(train.images), train.labels).backward()
            opt.step()
        _MLP["m"] = net.eval()
    return _MLP["m"]


def models():
    return [
        study_model(trained_cnn(INFO, seed=0), "nat"),
        study_model(trained_cnn(INFO, seed=1), "rob", {"method": "pgd", "norm": "l2", "eps": 0.5}),
        study_model(trained_mlp(), "mlp"),
    ]


def params(**overrides):
    base = {"n": 20, "steps": 10, "eps": 3.0, "step_size": 0.5, "reference_dim": 0}
    return LENS.resolve_params(INFO, {**base, **overrides}, "t")


def test_sources_are_the_first_architecture_and_victims_the_other_natural_ones():
    ms = models()
    result = transfer.compute(ms, DATA, params(), make_ctx(INFO))
    frame = result.tables["transfer"]
    assert set(frame.setting) == {"nat", "rob"}
    assert set(rows(frame, victim=True).model) == {"mlp"}
    hits = result.arrays["hit/mlp/rob"]
    assert value(frame, model="mlp", setting="rob", metric="targeted_success") == pytest.approx(
        hits.mean()
    )
    # a white-box attack with a large budget fools its own source
    assert value(frame, model="nat", setting="nat", metric="untargeted_error") > 0.8
    targets = result.arrays["targets"]
    assert np.all(targets != DATA.subset(20, seed=0).labels.numpy())


def test_without_victims_or_with_unknown_sources_it_says_what_to_add():
    ms = models()[:2]
    with pytest.raises(ConfigError, match="victim"):
        transfer.compute(ms, DATA, params(), make_ctx(INFO))
    with pytest.raises(ConfigError, match="ghost"):
        transfer.compute(models(), DATA, params(sources=["ghost"]), make_ctx(INFO))


def test_figure():
    ms = models()
    p = params()
    result = transfer.compute(ms, DATA, p, make_ctx(INFO))
    assert len(LENS.plot(result.tables, ms, p)) == 1
