"""Every bad input of SVCCA and linear CKA gets one ConfigError with this exact message and fix
(issue 14 §3: say what is wrong and how to fix it)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from robustlens.analysis import linear_cka, svcca
from robustlens.analysis.similarity import as_float64, check_finite
from robustlens.errors import ConfigError

RNG = np.random.default_rng(0)
GOOD = RNG.standard_normal((30, 4))
OTHER = RNG.standard_normal((30, 3))

FLATTEN = "flatten each sample's representation, e.g. x.reshape(len(x), -1)"
FINITE_FIX = "remove or repair those samples (a diverged model or attack produces them)"
CONSTANT_FIX = "check that the representations were extracted from different inputs"
NUMERIC_FIX = "pass a numpy array or torch tensor of numbers"


def with_bad(value: float, count: int) -> np.ndarray:
    m = GOOD.copy()
    m.flat[:count] = value
    return m


# (x, y, message, fix): checked for both svcca and linear_cka
SHARED = [
    ("abc", OTHER, "x must be a numeric array, got str", NUMERIC_FIX),
    (GOOD, [[1.0, "q"], [2.0, 3.0]], "y must be a numeric array, got list", NUMERIC_FIX),
    (
        GOOD[:, 0],
        OTHER,
        "x must have shape [N, D] (rows = samples), got shape (30,)",
        FLATTEN,
    ),
    (
        GOOD,
        np.zeros((30, 2, 2)),
        "y must have shape [N, D] (rows = samples), got shape (30, 2, 2)",
        FLATTEN,
    ),
    (
        GOOD[:1],
        OTHER[:1],
        "x needs at least 2 samples and 1 feature, got shape (1, 4)",
        "pass more samples",
    ),
    (
        GOOD,
        np.zeros((30, 0)),
        "y needs at least 2 samples and 1 feature, got shape (30, 0)",
        "pass more samples",
    ),
    (with_bad(np.nan, 1), OTHER, "x holds 1 NaN or infinite value(s)", FINITE_FIX),
    (GOOD, with_bad(np.inf, 3), "y holds 3 NaN or infinite value(s)", FINITE_FIX),
    (
        np.full((30, 4), 2.5),
        OTHER,
        "x is constant over samples (zero variance), so similarity is undefined",
        CONSTANT_FIX,
    ),
    (
        GOOD,
        np.ones((30, 3)),
        "y is constant over samples (zero variance), so similarity is undefined",
        CONSTANT_FIX,
    ),
    (
        GOOD,
        OTHER[:29],
        "x and y must hold the same samples, got 30 and 29 rows",
        "pass the representations of the same inputs, in the same order",
    ),
]


@pytest.mark.parametrize("fn", [svcca, linear_cka], ids=["svcca", "linear_cka"])
@pytest.mark.parametrize(("x", "y", "message", "fix"), SHARED)
def test_bad_inputs_have_one_exact_error(fn, x, y, message, fix):
    with pytest.raises(ConfigError) as err:
        fn(x, y)
    assert err.value.problem == message
    assert err.value.fix == fix
    assert str(err.value) == f"{message}. {fix}"


@pytest.mark.parametrize("keep", [0, 0.0, 1.5, -0.1, float("nan"), True, "0.99", None])
def test_keep_outside_the_unit_interval(keep):
    with pytest.raises(ConfigError) as err:
        svcca(GOOD, OTHER, keep=keep)
    assert err.value.problem == (
        f"keep is the fraction of variance to keep and must lie in (0, 1], got {keep!r}"
    )
    assert err.value.fix == (
        "use keep=0.99 as in SVCCA (Raghu et al. 2017), or 1.0 to keep all directions"
    )


@pytest.mark.parametrize("keep", [1e-9, 0.5, 1.0, 1, np.float32(0.9)])
def test_keep_inside_the_unit_interval_is_accepted(keep):
    assert svcca(GOOD, OTHER, keep=keep).n_samples == 30


def test_too_few_distinct_samples_message():
    """20 independent rows in 50 dimensions: all 19 directions of each are kept at keep=1."""
    rng = np.random.default_rng(12)
    x, y = rng.standard_normal((20, 50)), rng.standard_normal((20, 50))
    with pytest.raises(ConfigError) as err:
        svcca(x, y, keep=1.0)
    assert err.value.problem == (
        "svcca kept 19 + 19 singular directions but has only 20 samples; it needs at least 39 "
        "distinct ones (more than kept_x + kept_y), or the kept subspaces are forced to overlap "
        "and canonical correlations of 1 appear regardless of the data"
    )
    assert err.value.fix == (
        "pass at least 39 distinct samples (several times more is better; a bootstrap resample "
        "of n rows holds about 0.63·n) or lower keep"
    )


def test_too_few_distinct_samples_message_names_the_repeats():
    """40 rows of which rows 20..39 repeat rows 0..19: 20 distinct, 12 + 12 kept."""
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((20, 12)), rng.standard_normal((20, 12))
    xr, yr = np.concatenate([x, x]), np.concatenate([y, y])
    with pytest.raises(ConfigError) as err:
        svcca(xr, yr, keep=1.0)
    assert err.value.problem == (
        "svcca kept 12 + 12 singular directions but has only 20 samples (40 rows, 20 of them "
        "repeats of another row, as in a bootstrap resample, which holds about 63 % distinct "
        "rows); it needs at least 25 distinct ones (more than kept_x + kept_y), or the kept "
        "subspaces are forced to overlap and canonical correlations of 1 appear regardless of "
        "the data"
    )
    assert err.value.fix == (
        "pass at least 25 distinct samples (several times more is better; a bootstrap resample "
        "of n rows holds about 0.63·n) or lower keep"
    )


def test_exactly_one_more_distinct_sample_than_kept_directions_is_enough():
    """kept_x + kept_y = 2 needs 3 distinct samples: 3 pass (even with repeats), 2 do not."""
    x = np.array([[0.0], [1.0], [3.0], [0.0], [1.0], [3.0]])
    y = np.array([[1.0], [0.0], [2.0], [1.0], [0.0], [2.0]])
    res = svcca(x, y)
    assert (res.kept_x, res.kept_y, res.n_samples) == (1, 1, 6)
    # 1-D centred x and y: the canonical correlation is |Pearson r|
    assert res.mean == pytest.approx(abs(np.corrcoef(x[:, 0], y[:, 0])[0, 1]), rel=1e-12)
    with pytest.raises(ConfigError, match=r"only 2 samples \(6 rows, 4 of them repeats"):
        svcca(np.tile([[0.0], [1.0]], (3, 1)), np.tile([[5.0], [2.0]], (3, 1)))


def test_as_float64_and_check_finite_name_their_input():
    with pytest.raises(ConfigError) as err:
        as_float64(object(), "feats")
    assert err.value.problem == "feats must be a numeric array, got object"
    assert err.value.fix == NUMERIC_FIX
    t = torch.arange(6, dtype=torch.float32, requires_grad=True).reshape(2, 3)
    out = as_float64(t, "t")
    assert out.dtype == np.float64 and isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, np.arange(6.0).reshape(2, 3))
    bad = np.array([1.0, np.nan, -np.inf, np.inf, 2.0])
    with pytest.raises(ConfigError) as err:
        check_finite(bad, "losses")
    assert err.value.problem == "losses holds 3 NaN or infinite value(s)"
    assert err.value.fix == FINITE_FIX
    # large finite values whose sum overflows are finite: no error
    check_finite(np.array([1e308, 1e308, -1e308]), "big")


@pytest.mark.parametrize(("distinct", "kept"), [(15, 14), (11, 10)])
def test_too_few_rows_is_reported_without_counting_repeats(distinct, kept):
    """20 rows (``distinct`` of them distinct) in 30 dimensions keep ``kept`` + ``kept``
    directions, at least as many as rows: SVCCA refuses on the row count alone, without
    counting distinct rows."""
    rng = np.random.default_rng(5)
    idx = np.r_[np.arange(distinct), np.arange(20 - distinct)]
    x = rng.standard_normal((distinct, 30))[idx]
    y = rng.standard_normal((distinct, 30))[idx]
    with pytest.raises(ConfigError) as err:
        svcca(x, y, keep=1.0)
    assert err.value.problem == (
        f"svcca kept {kept} + {kept} singular directions but has only 20 samples; it needs at "
        f"least {2 * kept + 1} distinct ones (more than kept_x + kept_y), or the kept subspaces "
        "are forced to overlap and canonical correlations of 1 appear regardless of the data"
    )


def test_check_finite_raises_no_floating_point_warnings():
    """The fast path sums the values: an overflowing sum of finite values, or inf + (−inf),
    must give the answer (pass, or the ConfigError), not a RuntimeWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_finite(np.array([1e308, 1e308, -1e308]), "big")
        with pytest.raises(ConfigError, match="2 NaN or infinite"):
            check_finite(np.array([np.inf, 1.0, -np.inf]), "opposite")
