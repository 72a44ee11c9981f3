"""Attack settings written as text, and their budgets moved between input resolutions."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from robustlens.attacks import FGSM, PGD, CarliniWagnerL2, DeepFool
from robustlens.attacks.spec import CIFAR10_DIM, AttackSpec, parse_specs, scale_eps
from robustlens.errors import ConfigError

FMNIST_DIM = 28 * 28


def test_parse_reads_attack_norm_budget_and_steps():
    spec = AttackSpec.parse("PGD Linf 0.025 5")
    assert spec == AttackSpec("pgd", "linf", 0.025, 5)
    assert AttackSpec.parse("fgsm l2 0.25") == AttackSpec("fgsm", "l2", 0.25, None)
    assert AttackSpec.parse("deepfool l2 0.25").steps is None


@given(
    st.sampled_from(["pgd", "fgsm"]),
    st.sampled_from(["linf", "l2", "l1"]),
    st.floats(0.0, 100.0, allow_nan=False),
    st.integers(1, 5000),
)
def test_key_is_what_parse_reads_back(attack, norm, eps, steps):
    spec = AttackSpec(attack, norm, eps, steps)
    again = AttackSpec.parse(spec.key())
    assert (again.attack, again.norm, again.steps) == (attack, norm, steps)
    assert again.eps == pytest.approx(eps, rel=1e-5)


@pytest.mark.parametrize(
    "text, words",
    [
        ("pgd linf", "not understood"),
        ("pgd linf 0.1 5 6", "not understood"),
        ("bim linf 0.1 5", "unknown attack 'bim'"),
        ("pgd l3 0.1 5", "unknown norm 'l3'"),
        ("pgd linf x 5", "not a number"),
        ("pgd linf 0.1 five", "not a number"),
        ("pgd linf -0.1 5", "ε must be ≥ 0"),
        ("pgd linf nan 5", "ε must be ≥ 0"),
        ("pgd linf 0.1 0", "steps ≥ 1"),
        ("pgd linf 0.1", "needs a number of steps"),
        ("cw linf 0.1 10", "Carlini–Wagner is an L2 attack"),
        ("deepfool l1 0.1", "DeepFool supports l2 and linf"),
    ],
)
def test_bad_settings_name_the_problem(text, words):
    with pytest.raises(ConfigError, match=words):
        AttackSpec.parse(text)


def test_scaling_keeps_the_per_value_size_of_the_perturbation():
    # a constant perturbation c on every value has ‖·‖∞ = c, ‖·‖₂ = c·√d, ‖·‖₁ = c·d
    c = 0.01
    for norm, size in (
        ("linf", lambda d: c),
        ("l2", lambda d: c * d**0.5),
        ("l1", lambda d: c * d),
    ):
        moved = scale_eps(norm, size(CIFAR10_DIM), FMNIST_DIM, CIFAR10_DIM)
        assert moved == pytest.approx(size(FMNIST_DIM)), norm
    # by hand: L2 0.25 on CIFAR-10 is 0.25·√(784/3072) = 0.12630 on Fashion-MNIST
    assert scale_eps("l2", 0.25, FMNIST_DIM, CIFAR10_DIM) == pytest.approx(0.126296, abs=1e-6)
    assert scale_eps("l1", 0.5, FMNIST_DIM, CIFAR10_DIM) == pytest.approx(0.127604, abs=1e-6)
    assert scale_eps("l2", 0.25, FMNIST_DIM, 0) == 0.25  # 0 = use as written
    assert AttackSpec("pgd", "l2", 0.25, 7).scaled(FMNIST_DIM, CIFAR10_DIM).steps == 7


def test_label_and_run_key():
    assert AttackSpec("pgd", "linf", 0.025, 5).label() == "PGD-5 L∞ ε=0.025"
    assert AttackSpec("fgsm", "l2", 0.1263, None).label() == "FGSM L2 ε=0.126"
    # minimal-norm attacks do not depend on ε (it only judges their result): one run serves all
    assert (
        AttackSpec("deepfool", "l2", 0.25).run_key()
        == AttackSpec("deepfool", "l2", 0.0, 50).run_key()
    )
    assert AttackSpec("cw", "l2", 0.25, 10).run_key() != AttackSpec("cw", "l2", 0.25, 20).run_key()
    assert AttackSpec("pgd", "l2", 0.25, 10).run_key() != AttackSpec("pgd", "l2", 0.5, 10).run_key()
    pgd = AttackSpec("pgd", "l2", 0.25, 10)
    assert pgd.run_key(early_stop=True) != pgd.run_key(early_stop=False)
    deepfool = AttackSpec("deepfool", "l2", 0.25)
    assert deepfool.run_key(early_stop=False, cw_binary_steps=3) == deepfool.run_key()
    cw = AttackSpec("cw", "l2", 0.25, 10)
    assert cw.run_key(cw_binary_steps=3) != cw.run_key(cw_binary_steps=9)


def test_build_makes_the_named_attack():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    pgd = AttackSpec("pgd", "l2", 0.5, 7).build(model)
    assert isinstance(pgd, PGD) and pgd.steps == 7 and pgd.threat.eps == 0.5
    assert isinstance(AttackSpec("fgsm", "linf", 0.1).build(model), FGSM)
    cw = AttackSpec("cw", "l2", 0.5, 10).build(model, cw_binary_steps=3)
    assert isinstance(cw, CarliniWagnerL2)
    assert isinstance(AttackSpec("deepfool", "linf", 0.1).build(model), DeepFool)
    assert parse_specs(["fgsm l1 0.5", "pgd l2 1 3"])[1].eps == 1.0
    assert not math.isnan(AttackSpec.parse("fgsm l1 0.5").eps)
