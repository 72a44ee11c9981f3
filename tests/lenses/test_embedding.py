"""The embedding lens (Garaev et al. 2024, §4.2, Fig. 4–8): 2-D PCA and k-NN class agreement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from robustlens.analysis import knn_agreement, pca_2d
from robustlens.attacks.spec import AttackSpec
from robustlens.errors import ConfigError
from robustlens.lenses import embedding
from robustlens.params import invalid
from tests.lenses.helpers import (
    features,
    lens_setup,
    make_ctx,
    study_model,
    trained_cnn,
    value,
)

INFO, DATA, LENS = lens_setup("embedding", 90, seed=8)


def test_projection_shares_the_clean_axes_and_agreement_is_measured_in_both_spaces():
    net = trained_cnn(INFO)
    p = LENS.resolve_params(INFO, {"attacks": ["pgd linf 0.15 5"], "reference_dim": 0}, "test")
    result = embedding.compute(study_model(net), DATA, p, make_ctx(INFO))
    frame = result.tables["embedding"]
    adv = AttackSpec.parse("pgd linf 0.15 5").build(net, early_stop=False)
    attacked = features(net, adv.run(DATA.images, DATA.labels).adversarial)
    clean = features(net, DATA.images)
    pca = pca_2d(clean, attacked)
    np.testing.assert_allclose(result.arrays["pca/clean"], pca.reference, atol=1e-9)
    np.testing.assert_allclose(result.arrays["pca/pgd linf 0.15 5"], pca.others[0], atol=1e-9)
    labels = DATA.labels.numpy()
    np.testing.assert_array_equal(result.arrays["labels"], labels)
    for key, points in (("clean", clean), ("pgd linf 0.15 5", attacked)):
        assert value(frame, key=key, metric="knn_agreement_full") == pytest.approx(
            knn_agreement(points, labels, k=10)
        )
    assert value(frame, key="clean", metric="pca_explained_variance") == pytest.approx(
        pca.explained_variance_ratio.sum()
    )
    # the trained model separates its classes; the attack mixes them
    full_clean = value(frame, key="clean", metric="knn_agreement_full")
    assert full_clean > 0.8
    assert value(frame, key="pgd linf 0.15 5", metric="knn_agreement_full") < full_clean


def test_figure_has_a_row_per_model_and_a_column_per_input_kind():
    nets = [trained_cnn(INFO, seed=0), trained_cnn(INFO, seed=1)]
    models = [study_model(n, f"m{i}") for i, n in enumerate(nets)]
    p = LENS.resolve_params(INFO, {"attacks": ["fgsm l2 1"], "reference_dim": 0, "k": 5}, "test")
    ctx = make_ctx(INFO)
    results = {m.name: embedding.compute(m, DATA, p, ctx) for m in models}
    frame = pd.concat([r.tables["embedding"] for r in results.values()])
    figures = embedding.plot(
        {"embedding": frame}, models, p, arrays=lambda m, name: results[m].arrays.get(name)
    )
    (fig,) = figures.values()
    assert len(fig.axes) == 2 * 2
    assert all(len(ax.collections) == 1 for ax in fig.axes)  # one scatter each


@pytest.mark.parametrize(
    "overrides, key, value, allowed",
    [
        (
            {"attacks": ["cw l2 0.1 5"]},
            "attacks[0]",
            "cw l2 0.1 5",
            "a PGD or FGSM setting (a fixed budget, e.g. 'pgd l2 0.25 20')",
        ),
        ({"k": 0}, "k", 0, "a whole number ≥ 1"),
        ({"n": 5}, "n", 5, "a whole number > k (10) or nothing (leave it out)"),
    ],
)
def test_bad_parameters_are_refused(overrides, key, value, allowed):
    with pytest.raises(ConfigError) as err:
        LENS.resolve_params(INFO, overrides, "lenses.embedding")
    assert str(err.value) == str(invalid("", f"lenses.embedding.{key}", value, allowed))
