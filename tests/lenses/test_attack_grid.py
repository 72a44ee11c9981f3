"""The unseen-attacks lens (Garaev et al. 2024, §3.1, Tables 1–3)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from robustlens.attacks.spec import CIFAR10_DIM, AttackSpec
from robustlens.errors import ConfigError
from robustlens.lenses import attack_grid, get_lens
from robustlens.lenses.base import TIDY_COLUMNS
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
DATA = brightness_images(INFO, 48, seed=3)
LENS = get_lens("attack_grid")


def params(**overrides):
    return LENS.resolve_params(INFO, {"reference_dim": 0, **overrides}, "test")


def clean_correct(model, data) -> np.ndarray:
    with torch.no_grad():
        return (model(data.images).argmax(1) == data.labels).numpy()


def test_rows_are_accuracy_under_each_attack_run_independently():
    net = trained_cnn(INFO, seed=0)
    p = params(attacks=["fgsm linf 0.1", "pgd l2 0.8 5", "deepfool l2 0.3"])
    result = attack_grid.compute(study_model(net), DATA, p, make_ctx(INFO))
    frame = result.tables["attack_grid"]
    assert list(frame.columns[: len(TIDY_COLUMNS)]) == list(TIDY_COLUMNS)
    clean = clean_correct(net, DATA)
    assert value(frame, setting="no attack") == pytest.approx(clean.mean())
    for text in p.attacks:
        spec = AttackSpec.parse(text)
        res = spec.build(net, seed=0, early_stop=True).run(DATA.images, DATA.labels)
        fooled = res.success.numpy()
        if spec.minimal_norm:  # robust when the minimal perturbation exceeds the budget
            fooled = fooled & (res.norms.numpy() <= spec.eps * (1 + 1e-6))
        expected = clean & ~fooled
        np.testing.assert_array_equal(result.arrays[f"robust/{spec.key()}"], expected)
        assert value(frame, key=spec.key()) == pytest.approx(expected.mean())
        assert value(frame, key=spec.key()) <= clean.mean()


def test_budget_zero_leaves_clean_accuracy_and_a_huge_budget_counts_every_success():
    net = trained_cnn(INFO, seed=1)
    p = params(attacks=["fgsm linf 0", "deepfool l2 0", "deepfool l2 1000"])
    frame = attack_grid.compute(study_model(net), DATA, p, make_ctx(INFO)).tables["attack_grid"]
    clean = clean_correct(net, DATA).mean()
    assert value(frame, key="fgsm linf 0") == pytest.approx(clean)
    assert value(frame, key="deepfool l2 0") == pytest.approx(clean)
    found = AttackSpec.parse("deepfool l2 1").build(net).run(DATA.images, DATA.labels).success
    # with a huge budget only the images DeepFool cannot move out of their class stay robust
    survivors = clean_correct(net, DATA) & ~found.numpy()
    assert value(frame, key="deepfool l2 1000") == pytest.approx(survivors.mean())
    assert clean > 0.8 and survivors.mean() == 0.0  # DeepFool crosses every boundary here


def test_paper_budgets_are_moved_to_the_data_resolution():
    net = trained_cnn(INFO)
    p = LENS.resolve_params(INFO, {"attacks": ["pgd l2 0.25 2", "pgd linf 0.03 2"]}, "test")
    assert p.reference_dim == CIFAR10_DIM  # the default: Tables 1–3 are CIFAR-10 budgets
    result = attack_grid.compute(study_model(net), DATA, p, make_ctx(INFO))
    frame = result.tables["attack_grid"]
    l2 = rows(frame, key="pgd l2 0.25 2")
    assert float(l2.eps.iloc[0]) == pytest.approx(0.25 * (144 / 3072) ** 0.5)
    assert float(l2.eps_paper.iloc[0]) == 0.25
    assert float(rows(frame, key="pgd linf 0.03 2").eps.iloc[0]) == pytest.approx(0.03)
    assert any("moved to 144 input values" in note for note in result.notes)


def test_models_share_nothing_but_the_rows():
    a, b = trained_cnn(INFO, seed=0), trained_cnn(INFO, seed=1)
    ctx = make_ctx(INFO)
    p = params(attacks=["pgd linf 0.1 3"], n=30)
    fa = attack_grid.compute(study_model(a, "a"), DATA, p, ctx).tables["attack_grid"]
    fb = attack_grid.compute(study_model(b, "b"), DATA, p, ctx).tables["attack_grid"]
    assert set(fa.n) == {30} and list(fa.setting) == list(fb.setting)
    assert value(fa, setting="no attack") == pytest.approx(
        clean_correct(a, DATA.subset(30, seed=0)).mean()
    )
    figures = attack_grid.plot(
        {"attack_grid": pd.concat([fa, fb])},
        [study_model(a, "a"), study_model(b, "b")],
        p,
    )
    (fig,) = figures.values()
    assert len(fig.axes[0].patches) == 2 * 2  # two rows (no attack, PGD) per model


@pytest.mark.parametrize(
    "overrides, words",
    [
        ({"attacks": []}, "at least one attack"),
        ({"attacks": ["pgd linf 0.1"]}, "needs a number of steps"),
        ({"attacks": ["pgd lx 0.1 3"]}, "unknown norm"),
        ({"cw_binary_steps": 0}, "cw_binary_steps"),
        ({"n": 0}, "n ≥ 1"),
        ({"steps": 3}, "unknown parameter"),
    ],
)
def test_bad_parameters_are_refused(overrides, words):
    with pytest.raises(ConfigError, match=words):
        LENS.resolve_params(INFO, overrides, "lenses.attack_grid")
