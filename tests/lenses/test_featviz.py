"""The featviz lens: per-tap visualisations, their spatial scale, first-layer filters."""

from __future__ import annotations

import numpy as np
import pytest

from robustlens.analysis.featviz import spectral_centroid
from robustlens.errors import ConfigError
from robustlens.lenses import featviz
from robustlens.params import invalid
from tests.lenses.helpers import (
    lens_setup,
    make_ctx,
    study_model,
    trained_cnn,
)

INFO, DATA, LENS = lens_setup("featviz", 20, seed=4)


def test_one_visualisation_per_tap_and_channel_with_its_centroid():
    net = trained_cnn(INFO)
    p = LENS.resolve_params(INFO, {"channels": 2, "steps": 4}, "test")
    result = featviz.compute(study_model(net), DATA, p, make_ctx(INFO))
    frame = result.tables["featviz"]
    assert list(frame.layer) == ["block1", "block2"]
    images = result.arrays["images/block2"]
    assert images.shape == (2, 1, 12, 12)
    np.testing.assert_allclose(result.arrays["centroid/block2"], spectral_centroid(
        __import__("torch").from_numpy(images)))  # fmt: skip
    assert result.arrays["first_layer"].shape == (4, 1, 3, 3)
    figures = LENS.plot(
        result.tables, [study_model(net)], p, arrays=lambda m, n: result.arrays.get(n)
    )
    assert len(figures) == 4  # centroid curve, two taps, first-layer filters


def test_defaults_and_bad_values():
    p = LENS.resolve_params(INFO, {}, "test")
    assert p.steps == 512 and p.lr == 0.05
    with pytest.raises(ConfigError) as err:
        LENS.resolve_params(INFO, {"channels": 0}, "test")
    assert str(err.value) == str(invalid("", "test.channels", 0, "a whole number ≥ 1"))
    with pytest.raises(ConfigError, match="unknown tap"):
        featviz.compute(
            study_model(trained_cnn(INFO)),
            DATA,
            LENS.resolve_params(INFO, {"taps": ["nope"], "steps": 1}, "test"),
            make_ctx(INFO),
        )
