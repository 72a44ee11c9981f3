"""The loss-distribution lens (Garaev et al. 2024, §3.3, Fig. 1–3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from robustlens.analysis import proxy_a_distance
from robustlens.attacks.spec import AttackSpec
from robustlens.errors import ConfigError
from robustlens.lenses import loss_dist
from robustlens.params import invalid
from tests.lenses.helpers import (
    lens_setup,
    make_ctx,
    study_model,
    trained_cnn,
    value,
)

INFO, DATA, LENS = lens_setup("loss_dist", 80, seed=6)


def test_losses_and_a_distance_match_an_independent_computation():
    net = trained_cnn(INFO)
    p = LENS.resolve_params(INFO, {"attacks": ["pgd linf 0.1 5"], "reference_dim": 0}, "test")
    result = loss_dist.compute(study_model(net), DATA, p, make_ctx(INFO, seed=3))
    frame = result.tables["loss_dist"]
    with torch.no_grad():
        clean = F.cross_entropy(net(DATA.images), DATA.labels, reduction="none").double().numpy()
        adv_images = (
            AttackSpec.parse("pgd linf 0.1 5")
            .build(net, seed=3, early_stop=False)
            .run(DATA.images, DATA.labels)
            .adversarial
        )
        adv = F.cross_entropy(net(adv_images), DATA.labels, reduction="none").double().numpy()
    np.testing.assert_allclose(result.arrays["loss/clean"], clean, rtol=1e-6)
    np.testing.assert_allclose(result.arrays["loss/pgd linf 0.1 5"], adv, rtol=1e-6)
    assert value(frame, setting="clean", metric="mean_loss") == pytest.approx(clean.mean())
    expected = proxy_a_distance(clean, adv, seed=3, paired=True)  # clean[i], adv[i]: one image
    assert value(frame, key="pgd linf 0.1 5", metric="a_distance") == pytest.approx(
        expected.distance
    )
    errors = result.arrays["a_errors/pgd linf 0.1 5"]
    assert errors.shape == (2, len(DATA)) and errors.dtype == bool
    assert 2 * (1 - 2 * errors.mean()) == pytest.approx(expected.distance_unclipped)
    # the attack raises every loss, and a classifier separates the two loss samples well
    assert (adv >= clean - 1e-6).all() and expected.distance > 1.0


def test_an_attack_that_changes_nothing_is_at_a_distance_of_zero():
    """Identical losses: with the folds over images both copies of an image are held out
    together and get the same prediction, so exactly one of them is wrong (error ½, A = 0);
    independent folds would split the twins and land above ½."""
    net = trained_cnn(INFO)
    p = LENS.resolve_params(INFO, {"attacks": ["fgsm linf 0"], "reference_dim": 0}, "test")
    result = loss_dist.compute(study_model(net), DATA, p, make_ctx(INFO))
    np.testing.assert_array_equal(result.arrays["loss/clean"], result.arrays["loss/fgsm linf 0"])
    frame = result.tables["loss_dist"]
    assert value(frame, key="fgsm linf 0", metric="classifier_error") == 0.5
    assert value(frame, key="fgsm linf 0", metric="a_distance") == 0.0
    errors = result.arrays["a_errors/fgsm linf 0"]
    np.testing.assert_array_equal(errors[0] ^ errors[1], np.ones(len(DATA), dtype=bool))


def test_figures_have_a_panel_per_model():
    nets = [trained_cnn(INFO, seed=0), trained_cnn(INFO, seed=1)]
    models = [study_model(n, f"m{i}") for i, n in enumerate(nets)]
    p = LENS.resolve_params(INFO, {"attacks": ["pgd l2 1 3"], "reference_dim": 0}, "test")
    ctx = make_ctx(INFO)
    results = {m.name: loss_dist.compute(m, DATA, p, ctx) for m in models}
    import pandas as pd

    tables = {"loss_dist": pd.concat([r.tables["loss_dist"] for r in results.values()])}
    figures = loss_dist.plot(
        tables, models, p, arrays=lambda model, name: results[model].arrays.get(name)
    )
    assert len(figures) == 2
    dist = next(fig for title, fig in figures.items() if "A-distance" not in title)
    assert len([ax for ax in dist.axes if ax.has_data()]) == 2


@pytest.mark.parametrize(
    "overrides, key, value, allowed",
    [
        (
            {"attacks": ["cw l2 0.1 10"]},
            "attacks[0]",
            "cw l2 0.1 10",
            "a PGD or FGSM setting (a fixed budget, e.g. 'pgd l2 0.5 10')",
        ),
        ({"folds": 1}, "folds", 1, "a whole number ≥ 2"),
    ],
)
def test_bad_parameters_are_refused(overrides, key, value, allowed):
    with pytest.raises(ConfigError) as err:
        LENS.resolve_params(INFO, overrides, "lenses.loss_dist")
    assert str(err.value) == str(invalid("", f"lenses.loss_dist.{key}", value, allowed))
