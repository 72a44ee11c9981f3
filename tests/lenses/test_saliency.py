"""The saliency lens (Itazuri et al. §3.4, App. A): maps, their numbers, the sanity check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustlens.analysis.saliency import attribute, high_frequency_fraction
from robustlens.errors import ConfigError
from robustlens.lenses import saliency
from robustlens.models.base import RobustClassifier
from robustlens.params import invalid
from tests.lenses.helpers import (
    lens_setup,
    make_ctx,
    rows,
    study_model,
    trained_cnn,
    value,
)
from tests.tolerances import close

INFO, DATA, LENS = lens_setup("saliency", 24, seed=6)


def params(**overrides):
    base = {"n": 12, "show": 2, "smoothgrad_samples": 5, "ig_steps": 8, "sanity_images": 4}
    return LENS.resolve_params(INFO, {**base, **overrides}, "test")


def test_defaults_follow_the_paper():
    p = LENS.resolve_params(INFO, {}, "test")
    assert p.methods == ("vanilla", "loss", "guided", "smoothgrad", "integrated")
    assert p.smoothgrad_noise == 0.15 and p.ig_steps == 50


def test_numbers_are_the_analysis_functions_on_the_maps():
    net = trained_cnn(INFO)
    p = params()
    result = saliency.compute(study_model(net), DATA, p, make_ctx(INFO))
    frame = result.tables["saliency"]
    data = DATA.subset(12, seed=0)
    maps = attribute(net, data.images, data.labels, "guided")
    hf = high_frequency_fraction(maps)
    np.testing.assert_allclose(result.arrays["high_frequency/guided"], hf)
    assert value(frame, setting="guided", metric="high_frequency_fraction") == pytest.approx(
        np.nanmean(hf)
    )
    np.testing.assert_allclose(result.arrays["maps/guided"], maps[:2].numpy())
    assert result.arrays["images"].shape == (2, 1, 12, 12)
    sanity = result.tables["saliency_sanity"]
    spear = rows(sanity, setting="vanilla", metric="spearman")
    assert list(spear.layers_randomized) == [1, 2, 3]
    assert result.arrays["sanity/vanilla/spearman"].shape == (3, 4)
    assert set(rows(sanity, metric="unchanged_flag").setting) == set(p.methods)


def test_integrated_gradients_are_eq_17_unless_multiplied_by_the_inputs():
    # App. A Eq. 17: the path integral of the gradient, without Captum's (x − x′) factor
    net = trained_cnn(INFO)
    data = DATA.subset(12, seed=0)
    eq17 = attribute(net, data.images, data.labels, "integrated", steps=8)
    for multiply, expected in ((False, eq17), (True, data.images * eq17)):
        p = params(methods=["integrated"], sanity_images=0, ig_multiply_by_inputs=multiply)
        result = saliency.compute(study_model(net), DATA, p, make_ctx(INFO))
        got = torch.from_numpy(result.arrays["maps/integrated"])
        torch.testing.assert_close(got, expected[:2], **close(torch.float32, 8 * 144))


def test_a_model_with_functional_relus_is_refused_for_guided_backprop():
    class Functional(RobustClassifier):
        arch = "functional-toy"

        def __init__(self):
            super().__init__(1, 3, input_size=12)
            self.conv = nn.Conv2d(1, 4, 3, padding=1)
            self.linear = nn.Linear(4, 3)

        def forward_features(self, z):
            return F.relu(self.conv(z)).mean(dim=(2, 3))

    torch.manual_seed(0)
    net = Functional().eval()
    with pytest.raises(ConfigError, match=r"nn\.ReLU"):
        saliency.compute(study_model(net), DATA, params(), make_ctx(INFO))
    without = params(methods=["vanilla"], sanity_images=0)
    assert "saliency" in saliency.compute(study_model(net), DATA, without, make_ctx(INFO)).tables


METHODS_WORDS = "one of 'vanilla', 'loss', 'guided', 'smoothgrad', 'integrated'"


@pytest.mark.parametrize(
    ("override", "key", "value", "allowed", "hint"),
    [
        ({"methods": ["gradcam"]}, "methods[0]", "gradcam", METHODS_WORDS, None),
        ({"methods": []}, "methods", [], f"a non-empty list, each {METHODS_WORDS}", None),
        (
            {"smoothgrad_noise": 5.0},
            "smoothgrad_noise",
            5.0,
            "a number in (0, 1]",
            "a fraction of the input range",
        ),
        ({"ig_steps": 0}, "ig_steps", 0, "a whole number ≥ 1", None),
        ({"unchanged_threshold": 2.0}, "unchanged_threshold", 2.0, "a number in [-1, 1]", None),
    ],
)
def test_bad_parameters_are_refused(override, key, value, allowed, hint):
    with pytest.raises(ConfigError) as err:
        params(**override)
    assert str(err.value) == str(invalid("", f"test.{key}", value, allowed, hint))


def test_figures_show_maps_numbers_and_sanity_curves():
    models = [
        study_model(trained_cnn(INFO, seed=0), "nat"),
        study_model(
            trained_cnn(INFO, seed=1), "rob", {"method": "pgd", "norm": "linf", "eps": 0.1}
        ),
    ]
    p = params(methods=["vanilla", "guided"])
    results = {m.name: saliency.compute(m, DATA, p, make_ctx(INFO)) for m in models}
    tables = {
        name: pd.concat([r.tables[name] for r in results.values()])
        for name in ("saliency", "saliency_sanity")
    }
    figures = LENS.plot(tables, models, p, arrays=lambda m, n: results[m].arrays.get(n))
    assert len(figures) == 3
