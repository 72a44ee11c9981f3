"""Attack settings written as text, and their budgets moved between input resolutions."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from robustlens.attacks import FGSM, PGD, CarliniWagnerL2, DeepFool
from robustlens.attacks.spec import (
    CIFAR10_DIM,
    IMAGENET_DIM,
    AttackSpec,
    PaperRows,
    parse_specs,
    refuse_repeats,
    scale_eps,
    table_label,
)
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


def test_a_trailing_tag_names_the_resolution_the_budget_was_written_for():
    assert AttackSpec.parse("pgd l2 45 100 @imagenet") == AttackSpec("pgd", "l2", 45.0, 100, 150528)
    assert AttackSpec.parse("FGSM L2 0.25 @CIFAR10").reference == 3072
    assert AttackSpec.parse("deepfool l2 0.25 @784") == AttackSpec(
        "deepfool", "l2", 0.25, None, 784
    )
    assert AttackSpec.parse("pgd l2 0.25 5").reference is None  # the lens's reference_dim
    assert IMAGENET_DIM == 3 * 224 * 224 and CIFAR10_DIM == 3 * 32 * 32


@given(
    st.sampled_from(["pgd", "fgsm"]),
    st.sampled_from(["linf", "l2", "l1"]),
    st.floats(0.0, 100.0, allow_nan=False),
    st.integers(1, 5000),
    st.sampled_from([None, CIFAR10_DIM, IMAGENET_DIM, 784, 1]),
)
def test_key_with_a_reference_is_what_parse_reads_back(attack, norm, eps, steps, reference):
    spec = AttackSpec(attack, norm, eps, steps, reference)
    again = AttackSpec.parse(spec.key())
    assert (again.attack, again.norm, again.steps, again.reference) == (
        attack,
        norm,
        steps,
        reference,
    )
    assert again.eps == pytest.approx(eps, rel=1e-5)


def test_keys_and_labels_name_the_reference():
    assert AttackSpec.parse("pgd l2 45 100 @150528").key() == "pgd l2 45 100 @imagenet"
    assert AttackSpec.parse("fgsm l2 0.25 @3072").key() == "fgsm l2 0.25 @cifar10"
    assert AttackSpec.parse("fgsm l2 0.25 @784").key() == "fgsm l2 0.25 @784"
    assert AttackSpec.parse("fgsm l2 0.25").key() == "fgsm l2 0.25"
    assert AttackSpec.parse("pgd l2 45 100 @imagenet").label() == "PGD-100 L2 ε=45 @imagenet"


def test_each_row_is_scaled_from_its_own_reference():
    a1 = AttackSpec.parse("pgd l2 45 100 @imagenet")
    # by hand: 150 528 / 784 = 192, so 45·√(784/150528) = 45/√192 = 3.24760
    run = a1.scaled(FMNIST_DIM, CIFAR10_DIM)
    assert run.eps == pytest.approx(3.247595, abs=1e-6)
    assert run == AttackSpec("pgd", "l2", run.eps, 100)  # in the data's own units now
    assert a1.scaled(FMNIST_DIM, 0).eps == run.eps  # the lens's reference does not apply
    assert a1.scaled(IMAGENET_DIM, CIFAR10_DIM).eps == 45.0
    # Table 1's rows without a tag use the lens's reference: √(150528/3072) = 7 at ImageNet
    assert AttackSpec.parse("pgd l2 0.5 100").scaled(IMAGENET_DIM, CIFAR10_DIM).eps == 3.5
    assert AttackSpec.parse("fgsm l1 0.5 @imagenet").scaled(FMNIST_DIM, 0).eps == 0.5 / 192
    assert AttackSpec.parse("pgd linf 0.5 5 @imagenet").scaled(FMNIST_DIM, 0).eps == 0.5
    assert AttackSpec.parse("pgd l2 0.25 5 @784").scaled(FMNIST_DIM, CIFAR10_DIM).eps == 0.25
    assert a1.reference_for(CIFAR10_DIM) == IMAGENET_DIM
    assert AttackSpec.parse("pgd l2 1 5").reference_for(CIFAR10_DIM) == CIFAR10_DIM


def test_run_keys_tell_rows_apart_that_differ_only_by_reference():
    cifar, imagenet = (
        AttackSpec.parse("pgd l2 0.5 100"),
        AttackSpec.parse("pgd l2 0.5 100 @imagenet"),
    )
    assert cifar.key() != imagenet.key() and cifar.run_key() != imagenet.run_key()
    assert (
        cifar.scaled(FMNIST_DIM, CIFAR10_DIM).run_key()
        != imagenet.scaled(FMNIST_DIM, CIFAR10_DIM).run_key()
    )
    # an L∞ budget is never moved: the same attack, so one shared run
    linf = [
        AttackSpec.parse(t).scaled(FMNIST_DIM, CIFAR10_DIM)
        for t in ("fgsm linf 0.25", "fgsm linf 0.25 @imagenet")
    ]
    assert linf[0].run_key() == linf[1].run_key()
    # minimal-norm attacks do not depend on ε, so neither on its reference
    assert (
        AttackSpec.parse("deepfool l2 0.25 @imagenet").run_key()
        == AttackSpec.parse("deepfool l2 0.25").run_key()
    )
    # ε exactly, not to the 6 digits of key()
    near = AttackSpec("pgd", "l2", 0.1234561, 5), AttackSpec("pgd", "l2", 0.1234562, 5)
    assert near[0].key() == near[1].key() and near[0].run_key() != near[1].run_key()


@pytest.mark.parametrize(
    "text, words",
    [
        ("pgd l2 0.25 5 @mnist", "unknown reference '@mnist'"),
        ("pgd l2 0.25 5 @0", "unknown reference '@0'"),
        ("pgd l2 0.25 5 @-784", "unknown reference '@-784'"),
        ("pgd l2 0.25 5 @3.5", "unknown reference '@3.5'"),
        ("pgd l2 0.25 5 @", "one last word"),
        ("pgd l2 0.25 5 @ imagenet", "one last word"),
        ("pgd l2 @imagenet 0.25 5", "one last word"),
        ("pgd l2 0.25 5 @imagenet @cifar10", "one last word"),
        ("pgd l2 @imagenet", "not understood"),
    ],
)
def test_bad_reference_tags_say_what_is_allowed(text, words):
    with pytest.raises(ConfigError, match=words) as info:
        AttackSpec.parse(text)
    assert "@cifar10" in info.value.fix and "@imagenet" in info.value.fix


def test_repeated_attacks_are_refused():
    same = parse_specs(["fgsm linf 0.25", "fgsm linf 0.25 @imagenet"])  # L∞: never moved
    with pytest.raises(ConfigError, match="same attack"):
        refuse_repeats(same, CIFAR10_DIM, "lens")
    with pytest.raises(ConfigError, match="same attack"):  # FGSM takes no steps
        refuse_repeats(parse_specs(["fgsm l2 0.25", "fgsm l2 0.25 1"]), CIFAR10_DIM, "lens")
    with pytest.raises(ConfigError, match="same attack"):  # the lens's reference is @cifar10
        refuse_repeats(parse_specs(["pgd l2 0.5 9", "pgd l2 0.5 9 @cifar10"]), CIFAR10_DIM, "x")
    refuse_repeats(parse_specs(["pgd l2 0.5 9", "pgd l2 0.5 9 @cifar10"]), 0, "lens")
    refuse_repeats(parse_specs(["pgd l2 0.5 9", "pgd l2 0.5 9 @imagenet"]), CIFAR10_DIM, "x")


def test_paper_rows_keep_each_attack_once_and_know_their_tables():
    paper = PaperRows(
        {
            "1": ("fgsm linf 0.25", "pgd l2 0.5 9"),
            "A1": ("fgsm linf 0.25 @imagenet", "pgd l2 0.5 9 @imagenet"),
        }
    )
    assert paper.rows() == ("fgsm linf 0.25", "pgd l2 0.5 9", "pgd l2 0.5 9 @imagenet")
    source = {t: paper.source(AttackSpec.parse(t), CIFAR10_DIM) for t in paper.rows()}
    assert source == {
        "fgsm linf 0.25": "1, A1",
        "pgd l2 0.5 9": "1",
        "pgd l2 0.5 9 @imagenet": "A1",
    }
    # an untagged row is Table 1's only while the lens reads untagged rows as CIFAR-10
    assert paper.source(AttackSpec.parse("pgd l2 0.5 9"), 0) == ""
    assert paper.source(AttackSpec.parse("pgd l2 0.5 9 @cifar10"), 0) == "1"
    assert paper.source(AttackSpec.parse("pgd l2 0.5 8"), CIFAR10_DIM) == ""
    assert table_label("A1") == "Table A1" and table_label("1–2, A1") == "Tables 1–2, A1"


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
