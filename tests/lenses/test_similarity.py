"""The similarity lens (Garaev et al. 2024, §4.1, Tables 7, A3): SVCCA and CKA of clean vs
adversarial penultimate representations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from robustlens.analysis import linear_cka, svcca
from robustlens.analysis.bootstrap import bootstrap_indices
from robustlens.attacks.spec import AttackSpec
from robustlens.errors import ConfigError
from robustlens.lenses import similarity
from robustlens.lenses.common import representations
from robustlens.params import invalid
from tests.lenses.helpers import (
    features,
    lens_setup,
    make_ctx,
    study_model,
    trained_cnn,
    value,
)

INFO, DATA, LENS = lens_setup("similarity", 96, seed=7)


def test_values_are_svcca_and_cka_of_the_representations():
    net = trained_cnn(INFO)
    p = LENS.resolve_params(
        INFO, {"attacks": ["pgd l2 1 5"], "reference_dim": 0, "bootstrap": 5}, "test"
    )
    result = similarity.compute(study_model(net), DATA, p, make_ctx(INFO))
    frame = result.tables["similarity"]
    adv = AttackSpec.parse("pgd l2 1 5").build(net, early_stop=False).run(DATA.images, DATA.labels)
    clean, attacked = features(net, DATA.images), features(net, adv.adversarial)
    expected = svcca(clean, attacked)
    assert value(frame, metric="svcca") == pytest.approx(expected.mean)
    assert value(frame, metric="linear_cka") == pytest.approx(linear_cka(clean, attacked))
    row = frame[frame.metric == "svcca"].iloc[0]
    assert (row.kept_clean, row.kept_adversarial) == (expected.kept_x, expected.kept_y)
    assert 0 < expected.mean < 1  # the attack really moved the representations
    boot = result.arrays["svcca_boot/pgd l2 1 5"]
    idx = bootstrap_indices(len(DATA), 5, seed=0)
    assert boot.shape == (5,)
    assert boot[2] == pytest.approx(svcca(clean[idx[2]], attacked[idx[2]]).mean)


def test_an_attack_that_changes_nothing_gives_similarity_one():
    net = trained_cnn(INFO)
    p = LENS.resolve_params(
        INFO, {"attacks": ["fgsm linf 0"], "reference_dim": 0, "bootstrap": 0}, "test"
    )
    result = similarity.compute(study_model(net), DATA, p, make_ctx(INFO))
    frame = result.tables["similarity"]
    assert value(frame, metric="svcca") == pytest.approx(1.0)
    assert value(frame, metric="linear_cka") == pytest.approx(1.0)
    assert not any(name.startswith("svcca_boot/") for name in result.arrays)


def test_fgsm_attacks_every_image_including_the_misclassified_ones():
    # §4.1 compares clean and attacked representations of all images: FGSM steps each one,
    # also those the model gets wrong already (the early exit is for accuracy under attack).
    net = trained_cnn(INFO)
    p = LENS.resolve_params(
        INFO, {"attacks": ["fgsm linf 0.1"], "reference_dim": 0, "bootstrap": 0}, "test"
    )
    result = similarity.compute(study_model(net), DATA, p, make_ctx(INFO))
    x = DATA.images.clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(net(x), DATA.labels, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    stepped = (DATA.images + 0.1 * grad.sign()).clamp(0, 1)
    with torch.no_grad():
        assert (net(DATA.images).argmax(1) != DATA.labels).sum() >= 3
    expected = svcca(features(net, DATA.images), features(net, stepped))
    assert value(result.tables["similarity"], metric="svcca") == pytest.approx(expected.mean)


def recover_rows(subset: np.ndarray, full: np.ndarray) -> list[int]:
    """The index into ``full`` of each row of ``subset`` (rows of ``full`` are distinct)."""
    where = {row.tobytes(): i for i, row in enumerate(full)}
    return [where[row.tobytes()] for row in subset]


def test_resamples_are_paired_across_models_and_the_figure_has_a_bar_each(monkeypatch):
    """Every bootstrap statistic of every model is computed on the same resampled images:
    the rows handed to SVCCA are traced back to image indices, model by model."""
    nets = [trained_cnn(INFO, seed=0), trained_cnn(INFO, seed=1)]
    models = [study_model(n, f"m{i}") for i, n in enumerate(nets)]
    settings = {"attacks": ["pgd linf 0.1 3", "fgsm l2 1"], "reference_dim": 0}
    default = LENS.resolve_params(INFO, settings, "test")
    assert default.bootstrap == 100 and default.keep == 0.99  # SVCCA's 99 % by default
    p = LENS.resolve_params(INFO, {**settings, "bootstrap": 4}, "test")
    ctx = make_ctx(INFO, seed=5)
    seen: list[np.ndarray] = []

    def spy(x, y, **kwargs):
        seen.append(x)
        return svcca(x, y, **kwargs)

    monkeypatch.setattr(similarity, "svcca", spy)
    frames, drawn = [], {}
    for m in models:
        seen.clear()
        frames.append(similarity.compute(m, DATA, p, ctx).tables["similarity"])
        clean = representations(m, DATA.images, ctx.device)  # the lens's own code path
        assert np.unique(clean, axis=0).shape[0] == len(DATA)  # rows identify images
        # per attack: one call on all images, then one per resample
        assert len(seen) == 2 * (1 + 4)
        drawn[m.name] = [recover_rows(x, clean) for x in seen[1:5] + seen[6:]]
        assert drawn[m.name][0] != list(range(len(DATA)))  # a real resample
        assert drawn[m.name][:4] == drawn[m.name][4:]  # the same resamples for both attacks
    assert drawn["m0"] == drawn["m1"]
    expected = bootstrap_indices(len(DATA), 4, ctx.seed).tolist()
    assert drawn["m0"][:4] == expected
    figures = similarity.plot({"similarity": pd.concat(frames)}, models, p)
    assert len(figures) == 2
    for fig in figures.values():
        assert len(fig.axes[0].patches) == 2 * 2


def test_too_few_images_for_the_kept_directions_is_a_clear_error():
    net = trained_cnn(INFO)
    p = LENS.resolve_params(
        INFO,
        {"attacks": ["pgd l2 1 2"], "reference_dim": 0, "n": 6, "bootstrap": 0, "keep": 1.0},
        "test",
    )
    with pytest.raises(ConfigError, match="samples"):
        similarity.compute(study_model(net), DATA, p, make_ctx(INFO))


def test_bootstrap_resamples_with_too_few_distinct_images_are_refused():
    """20 images and 8 + 8 kept directions: the full set passes (20 > 16), but a bootstrap
    resample of 20 draws holds only 11–14 distinct images, too few for the kept subspaces."""
    net = trained_cnn(INFO)
    settings = {"attacks": ["pgd l2 1 2"], "reference_dim": 0, "n": 20, "keep": 1.0}
    plain = LENS.resolve_params(INFO, {**settings, "bootstrap": 0}, "test")
    result = similarity.compute(study_model(net), DATA, plain, make_ctx(INFO))
    row = result.tables["similarity"].query("metric == 'svcca'").iloc[0]
    assert row.kept_clean + row.kept_adversarial < 20
    assert max(np.unique(i).size for i in bootstrap_indices(20, 5, 0)) <= 16
    boot = LENS.resolve_params(INFO, {**settings, "bootstrap": 5}, "test")
    with pytest.raises(ConfigError, match="distinct"):
        similarity.compute(study_model(net), DATA, boot, make_ctx(INFO))


@pytest.mark.parametrize(
    "overrides, key, value, allowed",
    [
        (
            {"attacks": ["deepfool l2 0.1"]},
            "attacks[0]",
            "deepfool l2 0.1",
            "a PGD or FGSM setting (a fixed budget, e.g. 'pgd l2 0.25 100')",
        ),
        ({"keep": 0.0}, "keep", 0.0, "a number in (0, 1]"),
        ({"keep": 1.5}, "keep", 1.5, "a number in (0, 1]"),
        ({"n": 1}, "n", 1, "a whole number ≥ 2 or nothing (leave it out)"),
    ],
)
def test_bad_parameters_are_refused(overrides, key, value, allowed):
    with pytest.raises(ConfigError) as err:
        LENS.resolve_params(INFO, overrides, "lenses.similarity")
    assert str(err.value) == str(invalid("", f"lenses.similarity.{key}", value, allowed))
