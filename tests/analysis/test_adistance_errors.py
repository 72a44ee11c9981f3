"""Every bad input of the proxy A-distance gets one ConfigError with this exact message and
fix, raised before any classifier is trained."""

from __future__ import annotations

import numpy as np
import pytest

from robustlens.analysis import adistance as adistance_module
from robustlens.analysis import proxy_a_distance
from robustlens.errors import ConfigError

RNG = np.random.default_rng(0)
A, B = RNG.standard_normal(12), RNG.standard_normal(12) + 1.0
FLATTEN = "flatten each sample's features, e.g. x.reshape(len(x), -1)"
FINITE_FIX = "remove or repair those samples (a diverged model or attack produces them)"
FEW_FIX = "pass at least {f} samples each (hundreds for a stable estimate) or lower folds"


def with_nan(x: np.ndarray, count: int) -> np.ndarray:
    x = x.copy()
    x.flat[:count] = np.nan
    return x


# (a, b, keyword arguments, message, fix)
TABLE = [
    (A, B, {"paired": "yes"}, "paired must be True or False, got 'yes'", None),
    (A, B, {"paired": 1}, "paired must be True or False, got 1", None),
    (A, B, {"folds": 1}, "folds must be an integer ≥ 2, got 1", "use folds=5"),
    (A, B, {"folds": 2.5}, "folds must be an integer ≥ 2, got 2.5", "use folds=5"),
    (A, B, {"folds": True}, "folds must be an integer ≥ 2, got True", "use folds=5"),
    (A, B, {"seed": 0.5}, "seed must be an integer, got 0.5", None),
    (A, B, {"seed": False}, "seed must be an integer, got False", None),
    (
        np.ones((12, 2, 2)),
        B,
        {},
        "a must have shape [N] or [N, F], got shape (12, 2, 2)",
        FLATTEN,
    ),
    (A, np.ones((12, 1, 1)), {}, "b must have shape [N] or [N, F], got shape (12, 1, 1)", FLATTEN),
    (
        "ab",
        B,
        {},
        "a must be a numeric array, got str",
        "pass a numpy array or torch tensor of numbers",
    ),
    (with_nan(A, 2), B, {}, "a holds 4 NaN or infinite value(s)", FINITE_FIX),  # v and log1p v
    (A, with_nan(np.ones((12, 3)), 5), {}, "b holds 5 NaN or infinite value(s)", FINITE_FIX),
    (
        np.ones((12, 3)),
        B,
        {},
        "a and b must have the same number of features, got 3 and 2",
        "compare the same quantity for both samples",
    ),
    (
        A,
        B[:11],
        {"paired": True},
        "paired samples need one b for every a, got 12 and 11 samples",
        "pass a[i] and b[i] of the same item, or paired=False for independent samples",
    ),
    (
        A[:4],
        B,
        {},
        "5-fold cross-validation needs at least 5 samples in each of a and b, got 4 and 12",
        FEW_FIX.format(f=5),
    ),
    (
        A,
        B[:2],
        {"folds": 3},
        "3-fold cross-validation needs at least 3 samples in each of a and b, got 12 and 2",
        FEW_FIX.format(f=3),
    ),
]


@pytest.mark.parametrize(("a", "b", "kwargs", "message", "fix"), TABLE)
def test_bad_inputs_have_one_exact_error(a, b, kwargs, message, fix, monkeypatch):
    def no_training(*args, **kw):
        raise AssertionError("a classifier was trained before the input was checked")

    monkeypatch.setattr(adistance_module, "LogisticRegression", no_training)
    with pytest.raises(ConfigError) as err:
        proxy_a_distance(a, b, **kwargs)
    assert err.value.problem == message
    assert err.value.fix == fix


def test_as_many_samples_as_folds_is_enough():
    res = proxy_a_distance(A[:5], B[:7])
    assert (res.folds, res.seed, res.paired) == (5, 0, False)
    assert sorted(set(res.fold_a.tolist())) == [0, 1, 2, 3, 4]
    paired = proxy_a_distance(A[:3], B[:3], folds=3, seed=np.int64(2), paired=np.bool_(True))
    assert (paired.folds, paired.seed, paired.paired) == (3, 2, True)
    assert isinstance(paired.paired, bool) and isinstance(paired.seed, int)
