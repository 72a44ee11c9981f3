"""The ensemble lens (Itazuri et al. §4.2): frozen extractors, late fusion, linear probes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robustlens.errors import ConfigError
from robustlens.lenses import ensemble
from robustlens.lenses.common import representations
from robustlens.params import invalid
from tests.lenses.helpers import (
    brightness_images,
    check_intervals,
    lens_setup,
    make_ctx,
    study_model,
    trained_cnn,
    value,
)

INFO, DATA, LENS = lens_setup("ensemble", 60, seed=9)
TRAIN = brightness_images(INFO, 120, seed=10, split="train")


def ctx():
    return make_ctx(INFO, load_split=lambda split, n: TRAIN.subset(n, seed=0) if n else TRAIN)


def models():
    return [
        study_model(trained_cnn(INFO, seed=0), "nat"),
        study_model(
            trained_cnn(INFO, seed=1), "rob", {"method": "pgd", "norm": "linf", "eps": 0.1}
        ),
        study_model(trained_cnn(INFO, seed=2), "rob2", {"method": "pgd", "norm": "l2", "eps": 1.0}),
    ]


def params(**overrides):
    base = {"targets": ["lowres-6"], "train_n": 100, "test_n": 50}
    return LENS.resolve_params(INFO, {**base, **overrides}, "test")


def test_every_single_and_pair_is_probed_and_labelled_by_kind():
    result = ensemble.compute(models(), DATA, params(), ctx())
    frame = result.tables["ensemble"]
    assert set(frame.model) == {"nat", "rob", "rob2", "nat+rob", "nat+rob2", "rob+rob2"}
    assert check_intervals(frame, ("accuracy",)) == len(frame)
    kinds = dict(zip(frame.model, frame.kind, strict=True))
    assert kinds == {
        "nat": "STD", "rob": "ADV", "rob2": "ADV",
        "nat+rob": "STD+ADV", "nat+rob2": "STD+ADV", "rob+rob2": "ADV+ADV",
    }  # fmt: skip
    assert any("STD+STD" in note for note in result.notes)
    correct = result.arrays["correct/lowres-6/nat+rob"]
    assert correct.shape == (50,)
    assert value(frame, model="nat+rob") == pytest.approx(correct.mean())


def test_fused_probe_is_a_logistic_regression_on_concatenated_features():
    ms = models()[:2]
    p = params()
    result = ensemble.compute(ms, DATA, p, ctx())
    train, test = ensemble.target_sets("lowres-6", DATA, p, ctx())
    feats = [
        (representations(m, train.images, "cpu"), representations(m, test.images, "cpu"))
        for m in ms
    ]
    tr = np.concatenate([f[0] for f in feats], axis=1)
    te = np.concatenate([f[1] for f in feats], axis=1)
    expected = ensemble.linear_probe(tr, train.labels.numpy(), te, test.labels.numpy(), 1.0)
    np.testing.assert_array_equal(result.arrays["correct/lowres-6/nat+rob"], expected)
    # the low-resolution target really lost detail: its images are the shrunk-and-grown ones
    assert not torch.allclose(test.images, DATA.subset(50, seed=0).images)


def test_digits_target_is_resized_to_the_models_input():
    train, test = ensemble.target_sets("digits", DATA, params(targets=["digits"]), ctx())
    assert train.images.shape[1:] == (1, 12, 12) and len(train) == 100 and len(test) == 50
    assert set(test.labels.tolist()) <= set(range(10))


def test_unknown_targets_and_bad_values_are_refused():
    with pytest.raises(ConfigError, match="nosuchdata"):
        ensemble.compute(models(), DATA, params(targets=["nosuchdata"]), ctx())
    with pytest.raises(ConfigError) as err:
        params(targets=["lowres-x"])
    allowed = "a data set name or lowres-<pixels> with pixels ≥ 2"
    hint = 'e.g. targets = ["digits", "lowres-14"]'
    assert str(err.value) == str(invalid("", "test.targets[0]", "lowres-x", allowed, hint))
    with pytest.raises(ConfigError) as err:
        params(train_n=3)
    assert str(err.value) == str(invalid("", "test.train_n", 3, "a whole number ≥ 10"))


def test_figure_groups_by_kind():
    ms = models()
    p = params()
    result = ensemble.compute(ms, DATA, p, ctx())
    figures = LENS.plot(result.tables, ms, p)
    assert len(figures) == 1 and "Fig. 7" in next(iter(figures))
