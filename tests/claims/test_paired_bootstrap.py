"""Claims compare models on the same bootstrap resamples of the images (a paired bootstrap)."""

from __future__ import annotations

import numpy as np

from robustlens.analysis.bootstrap import weighted_mean
from robustlens.claims import HOLDS, ResultsView
from robustlens.claims.base import verdict_from, versus_natural
from robustlens.lenses.base import StudyModel
from robustlens.models.card import ModelCard

N = 200
# Rounding of a weighted mean of N values of size ≤ 20 (a sum of N terms, divided by N).
TOL = 4 * N * np.finfo(np.float64).eps * 20


def model(name: str, method: str, eps: float) -> StudyModel:
    card = ModelCard(
        arch="small-cnn",
        arch_kwargs={},
        num_classes=10,
        input_shape=(1, 28, 28),
        mean=(0.5,),
        std=(0.5,),
        recipe={"method": method, "norm": "linf", "eps": eps},
    )
    return StudyModel(name, None, card, digest=name)  # type: ignore[arg-type]


def twin_view(shift: float) -> tuple[ResultsView, dict[str, np.ndarray]]:
    """Per-image values with a wide spread shared by both models; the robust one is the natural
    one plus ``shift`` on every image. Only a paired comparison sees the shift."""
    base = np.random.default_rng(0).standard_normal(N) * 5.0
    values = {"nat": base, "rob": base + shift}
    models = [model("nat", "natural", 0.0), model("rob", "pgd", 0.1)]
    view = ResultsView(models, lambda lens, m, name: values.get(m), {"x"}, N, 10)
    return view, values


def stat(view: ResultsView, name: str, w: np.ndarray) -> np.ndarray:
    return weighted_mean(view.array("x", name, "v"), w)


def test_every_model_gets_the_same_resamples():
    view, _ = twin_view(0.1)
    first = view.weights(N)
    assert view.weights(N) is first or np.array_equal(view.weights(N), first)


def test_a_shift_hidden_in_a_wide_spread_is_found_by_the_paired_comparison():
    view, values = twin_view(0.1)
    signs, parts, numbers = versus_natural(view, stat, "x")
    # Paired: every resample's difference is exactly the shift, up to rounding.
    assert np.abs(np.asarray(values["nat"])).max() < 20
    for key in ("delta", "low", "high"):
        assert abs(numbers["rob"][key] - 0.1) < TOL, key
    assert signs == [1]
    assert verdict_from(signs, parts, numbers).status == HOLDS


def test_an_unpaired_interval_of_the_same_data_would_contain_zero():
    """The oracle for the test above: resampling the two models independently gives an
    interval about 2·1.96·5·√2/√200 ≈ 2 wide, which contains 0."""
    _, values = twin_view(0.1)
    rng = np.random.default_rng(1)
    a = rng.integers(0, N, size=(1000, N))
    b = rng.integers(0, N, size=(1000, N))
    diffs = values["rob"][a].mean(axis=1) - values["nat"][b].mean(axis=1)
    low, high = np.quantile(diffs, [0.025, 0.975])
    assert low < 0 < high


def test_mean_interval_uses_the_views_shared_resamples():
    view, values = twin_view(0.25)
    iv = view.mean_interval(values["rob"] - values["nat"])
    assert abs(iv.low - 0.25) < TOL and abs(iv.high - 0.25) < TOL
    direct = weighted_mean(values["rob"], view.weights(N)) - weighted_mean(
        values["nat"], view.weights(N)
    )
    assert np.all(np.abs(direct - 0.25) < TOL)
