"""The universality lens (Springer et al. §5.1): every model on every robustified set."""

from __future__ import annotations

import numpy as np
import pytest

from robustlens.constructed.inversion import robustify
from robustlens.errors import ConfigError
from robustlens.lenses import get_lens, universality
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
DATA = brightness_images(INFO, 30, seed=11)
LENS = get_lens("universality")


def models():
    return [
        study_model(trained_cnn(INFO, seed=0), "nat"),
        study_model(trained_cnn(INFO, seed=1), "nat2"),
        study_model(trained_cnn(INFO, seed=2), "rob", {"method": "pgd", "norm": "l2", "eps": 0.5}),
    ]


def params(**overrides):
    return LENS.resolve_params(INFO, {"n": 12, "steps": 30, "step_size": 0.1, **overrides}, "t")


def test_every_model_on_every_set_with_its_own_marked():
    ms = models()
    p = params()
    result = universality.compute(ms, DATA, p, make_ctx(INFO))
    frame = result.tables["universality"]
    acc = frame[frame.metric == "accuracy"]
    assert len(acc) == 3 * (1 + 3)  # test + one set per source
    own = rows(acc, model="rob", setting="rob")
    assert bool(own["self"].iloc[0]) and not bool(
        rows(acc, model="nat", setting="rob")["self"].iloc[0]
    )
    data = DATA.subset(12, seed=0)
    expected = robustify(ms[2].model, data.images, data.labels, steps=30, step_size=0.1)
    pred = ms[0].model(expected.images).argmax(1)
    assert value(acc, model="nat", setting="rob") == pytest.approx(
        float((pred == data.labels).float().mean())
    )
    np.testing.assert_allclose(result.arrays["distance/rob"], expected.distance)
    check = rows(frame, model="rob", metric="relative_distance")
    assert float(check.value.iloc[0]) < float(check.start.iloc[0])


def test_in_a_study_the_sets_are_kept_as_constructed_sets_and_reused(tmp_path):
    from robustlens.constructed import load_set

    ms = models()
    ctx = make_ctx(INFO)
    ctx.sets = tmp_path / "constructed"
    first = universality.compute(ms, DATA, params(sources=["nat2", "rob"]), ctx)
    folders = sorted(p.name for p in ctx.sets.iterdir())
    assert [f.rsplit("-", 1)[0] for f in folders] == [
        "robustified-test-nat2",
        "robustified-test-rob",
    ]
    kept = load_set(ctx.sets / folders[1], dataset="toy", shape=(1, 12, 12))
    np.testing.assert_allclose(kept.measures["distance"].numpy(), first.arrays["distance/rob"])
    assert kept.card["statistics"]["relative_distance_mean"] == pytest.approx(
        float(np.mean(first.arrays["distance/rob"]))
    )
    construction = rows(first.tables["universality"], metric="relative_distance")
    assert sorted(construction.set) == folders
    # a new run (empty in-memory cache) loads the files instead of inverting again
    fresh = make_ctx(INFO)
    fresh.sets = ctx.sets
    again = universality.compute(ms, DATA, params(sources=["nat2", "rob"]), fresh)
    for name, values in first.arrays.items():
        np.testing.assert_array_equal(again.arrays[name], values, err_msg=name)
    # and the in-memory path (outside a study) gives the same sets
    plain = universality.compute(ms, DATA, params(sources=["nat2", "rob"]), make_ctx(INFO))
    np.testing.assert_allclose(plain.arrays["images/rob"], first.arrays["images/rob"], atol=1e-6)


def test_sources_can_be_chosen_and_unknown_ones_are_refused():
    ms = models()
    result = universality.compute(ms, DATA, params(sources=["rob"]), make_ctx(INFO))
    assert set(result.tables["universality"].setting) == {"test", "rob", "construction"}
    with pytest.raises(ConfigError, match="ghost"):
        universality.compute(ms, DATA, params(sources=["ghost"]), make_ctx(INFO))
    with pytest.raises(ConfigError, match="seed_mode"):
        params(seed_mode="zeros")


def test_figures():
    ms = models()
    p = params(show=2)
    result = universality.compute(ms, DATA, p, make_ctx(INFO))
    figures = LENS.plot(result.tables, ms, p, arrays=lambda m, n: result.arrays.get(n))
    assert len(figures) == 3
