"""The boundary lens (Garaev et al. 2024, §5, Table 8): DeepFool distance to the boundary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from robustlens.attacks import DeepFool
from robustlens.errors import ConfigError
from robustlens.lenses import boundary, get_lens
from tests.lenses.helpers import (
    brightness_images,
    make_ctx,
    make_info,
    study_model,
    trained_cnn,
    value,
)

INFO = make_info((1, 12, 12), num_classes=3)
DATA = brightness_images(INFO, 60, seed=9)
LENS = get_lens("boundary")


def test_distances_are_deepfool_norms_with_misclassified_images_at_zero():
    net = trained_cnn(INFO)
    result = boundary.compute(
        study_model(net), DATA, LENS.resolve_params(INFO, {}, "t"), make_ctx(INFO)
    )
    frame = result.tables["boundary"]
    with torch.no_grad():
        correct = (net(DATA.images).argmax(1) == DATA.labels).numpy()
    np.testing.assert_array_equal(result.arrays["correct"], correct)
    assert 0 < correct.mean() < 1
    for norm in ("l2", "linf"):
        attack = DeepFool(net, norm).run(DATA.images, DATA.labels)
        d = result.arrays[f"distance/{norm}"]
        np.testing.assert_allclose(d, attack.norms.numpy().astype(np.float64), rtol=1e-6)
        assert (d[~correct] == 0).all() and (d[correct] > 0).all()
        assert value(frame, norm=norm, metric="mean_distance_all") == pytest.approx(d.mean())
        assert value(frame, norm=norm, metric="median_distance_correct") == pytest.approx(
            np.median(d[correct])
        )
        assert value(frame, norm=norm, metric="mean_iterations") == pytest.approx(
            attack.iterations.double().mean().item()
        )
        assert value(frame, norm=norm, metric="not_found") == 0.0
    # an L∞ distance is never larger than the L2 one of the same image... for the same δ;
    # DeepFool's two runs find different δ, but ‖δ‖∞ ≤ ‖δ‖₂ bounds the best L∞ answer
    assert np.median(result.arrays["distance/linf"]) <= np.median(result.arrays["distance/l2"])


def test_an_image_deepfool_cannot_move_has_no_distance():
    net = trained_cnn(INFO)
    p = LENS.resolve_params(INFO, {"steps": 1, "norms": ["l2"]}, "t")
    result = boundary.compute(study_model(net), DATA, p, make_ctx(INFO))
    attack = DeepFool(net, "l2", steps=1).run(DATA.images, DATA.labels)
    d = result.arrays["distance/l2"]
    np.testing.assert_array_equal(np.isnan(d), ~attack.success.numpy())
    assert (~attack.success).any()  # one DeepFool step is not enough for every image
    assert torch.isinf(attack.norms[~attack.success]).all()  # the minimal-norm convention
    frame = result.tables["boundary"]
    assert value(frame, metric="not_found") == pytest.approx((~attack.success).double().mean())
    assert value(frame, metric="mean_distance_all") == pytest.approx(np.nanmean(d))


def test_figure_draws_one_violin_per_model_and_norm():
    nets = [trained_cnn(INFO, seed=0), trained_cnn(INFO, seed=1)]
    models = [study_model(n, f"m{i}") for i, n in enumerate(nets)]
    p = LENS.resolve_params(INFO, {"n": 30}, "t")
    ctx = make_ctx(INFO)
    results = {m.name: boundary.compute(m, DATA, p, ctx) for m in models}
    frame = pd.concat([r.tables["boundary"] for r in results.values()])
    (fig,) = boundary.plot(
        {"boundary": frame}, models, p, arrays=lambda m, name: results[m].arrays.get(name)
    ).values()
    assert len(fig.axes) == 2
    assert all(len(ax.collections) >= 2 for ax in fig.axes)


@pytest.mark.parametrize(
    "overrides, words",
    [
        ({"norms": ["l1"]}, "l2 and/or linf"),
        ({"norms": []}, "l2 and/or linf"),
        ({"steps": 0}, "≥ 1"),
    ],
)
def test_bad_parameters_are_refused(overrides, words):
    with pytest.raises(ConfigError, match=words):
        LENS.resolve_params(INFO, overrides, "lenses.boundary")
