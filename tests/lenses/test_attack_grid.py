"""The unseen-attacks lens (Garaev et al. 2024, §3.1, Tables 1–3, A1)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from robustlens.attacks.spec import CIFAR10_DIM, IMAGENET_DIM, AttackSpec
from robustlens.errors import ConfigError
from robustlens.lenses import attack_grid
from robustlens.lenses.common import resolve_attacks
from robustlens.lenses.output import TIDY_COLUMNS
from robustlens.params import invalid
from tests.lenses.helpers import (
    brightness_images,
    check_intervals,
    correct,
    lens_setup,
    make_ctx,
    make_info,
    rows,
    study_model,
    trained_cnn,
    value,
)

INFO, DATA, LENS = lens_setup("attack_grid", 48, seed=3)


def params(**overrides):
    return LENS.resolve_params(INFO, {"reference_dim": 0, **overrides}, "test")


def test_rows_are_accuracy_under_each_attack_run_independently():
    net = trained_cnn(INFO, seed=0)
    p = params(attacks=["fgsm linf 0.1", "pgd l2 0.8 5", "deepfool l2 0.3"])
    result = attack_grid.compute(study_model(net), DATA, p, make_ctx(INFO))
    frame = result.tables["attack_grid"]
    assert list(frame.columns[: len(TIDY_COLUMNS)]) == list(TIDY_COLUMNS)
    assert check_intervals(frame, ("accuracy",)) == 4  # clean and three attacks
    clean = correct(net, DATA)
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
    clean = correct(net, DATA).mean()
    assert value(frame, key="fgsm linf 0") == pytest.approx(clean)
    assert value(frame, key="deepfool l2 0") == pytest.approx(clean)
    found = AttackSpec.parse("deepfool l2 1").build(net).run(DATA.images, DATA.labels).success
    # with a huge budget only the images DeepFool cannot move out of their class stay robust
    survivors = correct(net, DATA) & ~found.numpy()
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


def test_defaults_are_the_rows_of_tables_1_2_and_a1():
    p = LENS.resolve_params(INFO, {}, "test")
    assert p.reference_dim == CIFAR10_DIM
    # Table A1's FGSM L∞ rows are Table 1's again (L∞ budgets are never moved): left out
    a1_kept = [t for t in attack_grid.TABLE_A1 if not t.startswith("fgsm linf")]
    assert p.attacks == attack_grid.TABLE_1 + tuple(a1_kept)
    assert len(p.attacks) == 11 + 8
    written = {t: AttackSpec.parse(t) for t in p.attacks}
    run = {w.key(): r for w, r in resolve_attacks(p.attack_specs, make_data(28), p.reference_dim)}
    # Table A1 (ImageNet 224 × 224 units) at Fashion-MNIST's 784 values: L2 × 1/√192
    for text, eps in [
        ("pgd l2 100 5 @imagenet", 100 / 192**0.5),
        ("pgd l2 45 100 @imagenet", 3.247595),
        ("pgd l2 0.5 100 @imagenet", 0.5 / 192**0.5),
        ("fgsm l2 0.25 @imagenet", 0.25 / 192**0.5),
        ("cw l2 0.25 10 @imagenet", 0.25 / 192**0.5),
        ("deepfool l2 0.25 @imagenet", 0.25 / 192**0.5),
        ("pgd linf 0.5 5 @imagenet", 0.5),
        ("pgd linf 1 5 @imagenet", 1.0),
        # Tables 1–2 (CIFAR-10 units): L2 × √(784/3072), L1 × 784/3072
        ("pgd l2 0.5 100", 0.5 * (784 / 3072) ** 0.5),
        ("pgd l1 0.5 100", 0.5 * 784 / 3072),
        ("fgsm linf 0.25", 0.25),
    ]:
        assert run[text].eps == pytest.approx(eps, rel=1e-6), text
    assert run["pgd l2 100 5 @imagenet"].steps == 5 and run["cw l2 0.25 10 @imagenet"].steps == 10
    assert written["pgd l2 45 100 @imagenet"].eps == 45
    # at ImageNet's own resolution A1 runs as written and Table 1's L2 budgets grow × 7
    at_imagenet = dict(
        (w.key(), r.eps) for w, r in resolve_attacks(p.attack_specs, make_data(224, 3), CIFAR10_DIM)
    )
    assert at_imagenet["pgd l2 45 100 @imagenet"] == 45
    assert at_imagenet["pgd l2 0.5 100"] == pytest.approx(3.5)


def make_data(side: int, channels: int = 1):
    info = make_info((channels, side, side), num_classes=3)
    return brightness_images(info, 2, seed=0)


def test_rows_carry_their_own_reference_and_paper_table():
    net = trained_cnn(INFO, seed=0)
    texts = [
        "pgd l2 45 3 @imagenet",  # not a paper row (3 steps)
        "pgd l2 0.25 3",
        "fgsm linf 0.025 @imagenet",  # Tables 1–2 and A1
        "deepfool l2 0.25",  # Tables 1–2
        "deepfool l2 0.25 @imagenet",  # Table A1: the same DeepFool run, a smaller budget
    ]
    p = LENS.resolve_params(INFO, {"attacks": texts}, "test")
    result = attack_grid.compute(study_model(net), DATA, p, make_ctx(INFO))
    frame = result.tables["attack_grid"].set_index("key")
    to_imagenet, to_cifar = (144 / IMAGENET_DIM) ** 0.5, (144 / CIFAR10_DIM) ** 0.5
    expected_eps = [45 * to_imagenet, 0.25 * to_cifar, 0.025, 0.25 * to_cifar, 0.25 * to_imagenet]
    clean = correct(net, DATA)
    for text, eps in zip(texts, expected_eps, strict=True):
        key = AttackSpec.parse(text).key()
        assert frame.loc[key, "eps"] == pytest.approx(eps)
        assert frame.loc[key, "eps_paper"] == AttackSpec.parse(text).eps
        # the oracle: the attack built by hand at the scaled budget
        spec = AttackSpec.parse(text)
        by_hand = AttackSpec(spec.attack, spec.norm, eps, spec.steps)
        res = by_hand.build(net, seed=0, early_stop=True).run(DATA.images, DATA.labels)
        fooled = res.success.numpy()
        if by_hand.minimal_norm:
            fooled = fooled & (res.norms.numpy() <= eps * (1 + 1e-6))
        np.testing.assert_array_equal(result.arrays[f"robust/{key}"], clean & ~fooled)
    assert list(frame.reference) == [
        0,
        IMAGENET_DIM,
        CIFAR10_DIM,
        IMAGENET_DIM,
        CIFAR10_DIM,
        IMAGENET_DIM,
    ]
    assert list(frame.table) == ["", "", "", "1–2, A1", "1–2", "A1"]
    assert list(frame.setting) == [
        "no attack",
        f"PGD-3 L2 ε={45 * to_imagenet:.3g} (written ε=45)",
        f"PGD-3 L2 ε={0.25 * to_cifar:.3g} (written ε=0.25)",
        "FGSM L∞ ε=0.025 (Tables 1–2, A1)",
        f"DeepFool L2 ε={0.25 * to_cifar:.3g} (Tables 1–2: ε=0.25)",
        f"DeepFool L2 ε={0.25 * to_imagenet:.3g} (Table A1: ε=0.25)",
    ]
    # the larger budget counts at least as many DeepFool perturbations as fooling
    assert (
        frame.loc["deepfool l2 0.25", "value"] <= frame.loc["deepfool l2 0.25 @imagenet", "value"]
    )
    notes = " ".join(result.notes)
    assert "CIFAR-10 (3,072 values) are moved to 144 input values" in notes
    assert "ImageNet 224 × 224 (150,528 values) are moved to 144 input values" in notes


def test_settings_stay_distinct_when_budgets_agree_to_three_digits():
    p = params(attacks=["fgsm l2 0.25", "fgsm l2 0.2501"])
    frame = attack_grid.compute(study_model(trained_cnn(INFO)), DATA, p, make_ctx(INFO)).tables[
        "attack_grid"
    ]
    assert list(frame.setting) == ["no attack", "FGSM L2 ε=0.25", "FGSM L2 ε=0.25 [fgsm l2 0.2501]"]


def test_models_share_nothing_but_the_rows():
    a, b = trained_cnn(INFO, seed=0), trained_cnn(INFO, seed=1)
    ctx = make_ctx(INFO)
    p = params(attacks=["pgd linf 0.1 3"], n=30)
    fa = attack_grid.compute(study_model(a, "a"), DATA, p, ctx).tables["attack_grid"]
    fb = attack_grid.compute(study_model(b, "b"), DATA, p, ctx).tables["attack_grid"]
    assert set(fa.n) == {30} and list(fa.setting) == list(fb.setting)
    assert value(fa, setting="no attack") == pytest.approx(
        correct(a, DATA.subset(30, seed=0)).mean()
    )
    figures = attack_grid.plot(
        {"attack_grid": pd.concat([fa, fb])},
        [study_model(a, "a"), study_model(b, "b")],
        p,
    )
    (fig,) = figures.values()
    assert len(fig.axes[0].patches) == 2 * 2  # two rows (no attack, PGD) per model


ATTACK = "an attack setting 'ATTACK NORM EPS [STEPS] [@cifar10|@imagenet|@N]'"
SAME = (
    "both are the same attack (L∞ budgets are never rescaled; FGSM takes no steps): "
    "keep one of them"
)


@pytest.mark.parametrize(
    "overrides, key, value, allowed, hint",
    [
        ({"attacks": []}, "attacks", [], f"a non-empty list, each {ATTACK}", None),
        (
            {"attacks": ["pgd linf 0.1"]},
            "attacks[0]",
            "pgd linf 0.1",
            ATTACK,
            "'pgd linf 0.1': PGD needs a number of steps",
        ),
        (
            {"attacks": ["pgd lx 0.1 3"]},
            "attacks[0]",
            "pgd lx 0.1 3",
            ATTACK,
            "unknown norm 'lx' in 'pgd lx 0.1 3'",
        ),
        (
            {"attacks": ["pgd l2 45 100 @mnist"]},
            "attacks[0]",
            "pgd l2 45 100 @mnist",
            ATTACK,
            "unknown reference '@mnist' in 'pgd l2 45 100 @mnist'",
        ),
        (
            {"attacks": ["fgsm linf 0.25", "fgsm linf 0.25 @imagenet"]},
            "attacks[1]",
            "fgsm linf 0.25 @imagenet",
            "an attack other than attacks[0] ('fgsm linf 0.25')",
            SAME,
        ),
        (
            {"attacks": ["pgd l2 1 3", "pgd l2 1 3"]},
            "attacks[1]",
            "pgd l2 1 3",
            "an attack other than attacks[0] ('pgd l2 1 3')",
            SAME,
        ),
        ({"cw_binary_steps": 0}, "cw_binary_steps", 0, "a whole number ≥ 1", None),
        ({"n": 0}, "n", 0, "a whole number ≥ 1 or nothing (leave it out)", None),
    ],
)
def test_bad_parameters_are_refused(overrides, key, value, allowed, hint):
    with pytest.raises(ConfigError) as err:
        LENS.resolve_params(INFO, overrides, "lenses.attack_grid")
    assert str(err.value) == str(invalid("", f"lenses.attack_grid.{key}", value, allowed, hint))


def test_an_unknown_parameter_is_refused():
    with pytest.raises(ConfigError) as err:
        LENS.resolve_params(INFO, {"steps": 3}, "lenses.attack_grid")
    assert err.value.problem == "lenses.attack_grid.steps: unknown parameter of lens 'attack_grid'"
