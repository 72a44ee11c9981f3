"""Attack settings' exact texts and defaults: keys, run keys, labels, reference names, the
attack objects built with their default options, and the refusal of repeated rows."""

from __future__ import annotations

import pytest
import torch

from robustlens.attacks import FGSM, PGD, CarliniWagnerL2, DeepFool
from robustlens.attacks.spec import (
    CIFAR10_DIM,
    IMAGENET_DIM,
    AttackSpec,
    PaperRows,
    parse_reference,
    parse_specs,
    reference_name,
    reference_tag,
    refuse_repeats,
    scale_eps,
    table_label,
)
from robustlens.errors import ConfigError

MODEL = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))


def test_reference_tags_and_names():
    assert reference_tag(CIFAR10_DIM) == "@cifar10"
    assert reference_tag(IMAGENET_DIM) == "@imagenet"
    assert reference_tag(784) == "@784"
    assert reference_name(CIFAR10_DIM) == "CIFAR-10 (3,072 values)"
    assert reference_name(IMAGENET_DIM) == "ImageNet 224 × 224 (150,528 values)"
    assert reference_name(784) == "inputs of 784 values"
    assert reference_name(12345) == "inputs of 12,345 values"
    assert parse_reference("@ImageNet") == IMAGENET_DIM
    assert parse_reference("cifar10") == CIFAR10_DIM  # the @ may be left out
    assert parse_reference("@784") == 784
    assert parse_reference("@1") == 1


def test_scaling_leaves_the_budget_alone_at_its_own_resolution():
    assert scale_eps("l2", 0.5, CIFAR10_DIM, CIFAR10_DIM) == 0.5
    assert scale_eps("l1", 0.5, 784, -1) == 0.5  # a reference ≤ 0: as written
    assert scale_eps("l2", 0.5, 4 * 784, 784) == 1.0  # √4
    assert scale_eps("l1", 0.5, 4 * 784, 784) == 2.0
    assert scale_eps("linf", 0.5, 4 * 784, 784) == 0.5
    assert scale_eps("l2", 0.5, 4, 1) == 1.0  # "@1": a budget per input value
    assert AttackSpec.parse("pgd l1 0.5 3 @1").scaled(4, CIFAR10_DIM).eps == 2.0


def test_keys_labels_and_descriptions_word_for_word():
    pgd = AttackSpec("pgd", "linf", 0.03, 10)
    assert pgd.key() == "pgd linf 0.03 10"
    assert pgd.label() == "PGD-10 L∞ ε=0.03"
    assert pgd.describe() == {
        "attack": "pgd",
        "norm": "linf",
        "eps": 0.03,
        "steps": 10,
        "reference": None,
    }
    fgsm = AttackSpec("fgsm", "l1", 12.3456, 3, 784)
    assert fgsm.key() == "fgsm l1 12.3456 3 @784"
    assert fgsm.label() == "FGSM L1 ε=12.3 @784"  # FGSM takes no steps: none in its label
    assert AttackSpec("cw", "l2", 0.5).label() == "C&W L2 ε=0.5"
    assert AttackSpec("deepfool", "linf", 0.1, 20).label() == "DeepFool-20 L∞ ε=0.1"
    assert AttackSpec("deepfool", "l2", 0.1, 20, IMAGENET_DIM).describe()["reference"] == (
        IMAGENET_DIM
    )
    assert [s.minimal_norm for s in parse_specs(["pgd l2 1 2", "fgsm l2 1", "cw l2 1"])] == [
        False,
        False,
        True,
    ]
    assert AttackSpec("deepfool", "l2", 1.0).minimal_norm


def test_run_keys_word_for_word_with_their_defaults():
    pgd = AttackSpec("pgd", "l2", 0.1, 5, IMAGENET_DIM)
    assert pgd.run_key() == "pgd l2 0.1 5 @imagenet early_stop=True"
    assert pgd.run_key(early_stop=False) == "pgd l2 0.1 5 @imagenet early_stop=False"
    assert AttackSpec("fgsm", "linf", 1).run_key(early_stop=0) == "fgsm linf 1.0 early_stop=False"
    assert AttackSpec("cw", "l2", 0.5).run_key() == "cw l2 * 1000 searches=9"
    assert AttackSpec("cw", "l2", 0.5, 30).run_key(cw_binary_steps=2) == "cw l2 * 30 searches=2"
    assert AttackSpec("deepfool", "linf", 0.5).run_key() == "deepfool linf * 50"
    assert AttackSpec("deepfool", "l2", 0.5, 7).run_key() == "deepfool l2 * 7"


def test_identity_ignores_what_cannot_change_the_attack():
    assert AttackSpec("fgsm", "l2", 0.5, 3, 784).identity(CIFAR10_DIM) == (
        "fgsm",
        "l2",
        0.5,
        None,
        784,
    )
    assert AttackSpec("pgd", "linf", 0.5, 3, 784).identity(CIFAR10_DIM) == (
        "pgd",
        "linf",
        0.5,
        3,
        None,
    )
    assert AttackSpec("pgd", "l1", 0.5, 3).identity(CIFAR10_DIM) == (
        "pgd",
        "l1",
        0.5,
        3,
        CIFAR10_DIM,
    )


def test_build_passes_the_setting_and_the_default_options():
    pgd = AttackSpec("pgd", "l2", 0.5, 7).build(MODEL)
    assert isinstance(pgd, PGD)
    assert (pgd.seed, pgd.early_stop, pgd.steps, pgd.threat.norm, pgd.threat.eps) == (
        0,
        True,
        7,
        "l2",
        0.5,
    )
    pgd = AttackSpec("pgd", "linf", 0.1, 3).build(MODEL, seed=4, early_stop=False)
    assert (pgd.seed, pgd.early_stop, pgd.threat.norm) == (4, False, "linf")
    fgsm = AttackSpec("fgsm", "l1", 2.0).build(MODEL, seed=5)
    assert isinstance(fgsm, FGSM) and fgsm.seed == 5 and fgsm.threat.norm == "l1"
    assert fgsm.threat.eps == 2.0
    assert AttackSpec("fgsm", "l2", 1.0).build(MODEL).seed == 0
    cw = AttackSpec("cw", "l2", 0.5).build(MODEL)
    assert isinstance(cw, CarliniWagnerL2)
    assert (cw.steps, cw.binary_search_steps, cw.seed) == (1000, 9, 0)
    cw = AttackSpec("cw", "l2", 0.5, 20).build(MODEL, seed=2, cw_binary_steps=3)
    assert (cw.steps, cw.binary_search_steps, cw.seed) == (20, 3, 2)
    deepfool = AttackSpec("deepfool", "linf", 0.1).build(MODEL)
    assert isinstance(deepfool, DeepFool)
    assert (deepfool.norm, deepfool.steps, deepfool.seed) == ("linf", 50, 0)
    deepfool = AttackSpec("deepfool", "l2", 0.1, 9).build(MODEL, seed=6)
    assert (deepfool.norm, deepfool.steps, deepfool.seed) == ("l2", 9, 6)
    for text in ("pgd l2 0.5 7", "fgsm linf 0.1", "cw l2 0.5", "deepfool l2 0.1"):
        assert AttackSpec.parse(text).build(MODEL).model is MODEL, text


@pytest.mark.parametrize(
    ("texts", "first", "second"),
    [
        (["fgsm linf 0.25", "pgd l2 1 5", "fgsm linf 0.25 @imagenet"], "fgsm linf 0.25", None),
        (["fgsm l2 0.25", "fgsm l2 0.25 4"], "fgsm l2 0.25", "fgsm l2 0.25 4"),
    ],
)
def test_a_repeated_row_is_named_with_the_row_it_repeats(texts, first, second):
    specs = parse_specs(texts)
    with pytest.raises(ConfigError) as caught:
        refuse_repeats(specs, CIFAR10_DIM, "transfer")
    second = second or specs[-1].key()
    assert caught.value.problem == (
        f"transfer: attack rows {first!r} and {second!r} are the same attack "
        "(L∞ budgets are never rescaled; FGSM takes no steps)"
    )
    assert caught.value.fix == "keep one of them"


def test_paper_rows_default_to_cifar10_units():
    paper = PaperRows({"1": ("pgd l2 0.5 9",), "2": ("pgd l2 0.5 9 @cifar10",)})
    assert paper.reference_dim == CIFAR10_DIM
    assert paper.rows() == ("pgd l2 0.5 9",)
    assert paper.source(AttackSpec.parse("pgd l2 0.5 9"), CIFAR10_DIM) == "1, 2"
    assert table_label("1") == "Table 1" and table_label("1, 2") == "Tables 1, 2"
    assert table_label("1–2") == "Tables 1–2"  # a range is several tables too
