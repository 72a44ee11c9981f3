"""PGD's settings and losses on one-pixel problems worked by hand: its description, the
default step, the targeted objective, the training fast path, restarts and early exit."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from robustlens.attacks import FGSM, L1, L2, PGD, Linf
from tests.attacks.tiny_models import LinearClassifier

# logits (x, −x) of a one-pixel image: class 0 above x = 0, so every x in (0, 1] is class 0
MODEL = LinearClassifier(torch.tensor([[1.0], [-1.0]]), torch.zeros(2)).eval()


def test_describe_names_every_setting_and_the_default_step():
    pgd = PGD(MODEL, L2(0.5), steps=4)
    assert pgd.step_size == 2.5 * 0.5 / 4
    assert pgd.describe() == {
        "attack": "pgd",
        "norm": "l2",
        "eps": 0.5,
        "steps": 4,
        "step_size": 0.3125,
        "random_start": True,
        "restarts": 1,
        "targeted": False,
        "target_mode": None,
        "early_stop": True,
        "loss": "cross-entropy",
        "seed": 0,
    }
    custom = PGD(
        MODEL,
        L1(2.0),
        steps=1,
        step_size=0.1,
        random_start=False,
        restarts=3,
        targeted=True,
        target_mode="next",
        loss=lambda m, x, t: x.flatten(1).sum(1),
        seed=9,
    )
    assert custom.describe() == {
        "attack": "pgd",
        "norm": "l1",
        "eps": 2.0,
        "steps": 1,
        "step_size": 0.1,
        "random_start": False,
        "restarts": 3,
        "targeted": True,
        "target_mode": "next",
        "early_stop": False,  # a custom loss has no notion of fooled
        "loss": "custom",
        "seed": 9,
    }
    fgsm = FGSM(MODEL, Linf(0.1), seed=2).describe()
    assert (fgsm["attack"], fgsm["steps"], fgsm["step_size"], fgsm["random_start"]) == (
        "fgsm",
        1,
        0.1,
        False,
    )
    assert (fgsm["restarts"], fgsm["early_stop"], fgsm["seed"]) == (1, True, 2)


def test_the_objective_is_the_per_sample_cross_entropy_negated_when_targeted():
    x = torch.tensor([0.2, 0.7]).view(2, 1, 1, 1)
    labels, targets = torch.tensor([0, 1]), torch.tensor([1, 1])
    logits = MODEL(x)
    loss, out = PGD(MODEL, Linf(0.1)).objective(x, labels, None)
    torch.testing.assert_close(loss, F.cross_entropy(logits, labels, reduction="none"))
    torch.testing.assert_close(out, logits)
    toward, _ = PGD(MODEL, Linf(0.1), targeted=True).objective(x, labels, targets)
    torch.testing.assert_close(toward, -F.cross_entropy(logits, targets, reduction="none"))
    custom = PGD(MODEL, Linf(0.1), targeted=True, loss=lambda m, x, t: x.flatten(1).sum(1) + t)
    value, none = custom.objective(x, labels, targets)
    assert none is None
    torch.testing.assert_close(value, -(x.flatten() + targets))
    untargeted_custom = PGD(MODEL, Linf(0.1), loss=lambda m, x, t: x.flatten(1).sum(1) * t)
    value, _ = untargeted_custom.objective(x, labels, None)
    torch.testing.assert_close(value, x.flatten() * labels)


def test_the_training_path_takes_every_step_from_the_given_generator():
    """perturb: no early exit, no best iterate. From x = 0.5, descending toward class 1 takes
    x down by the step each time: 3 steps of 0.02 in L∞ from a zero start give 0.44."""
    x = torch.full((2, 1, 1, 1), 0.5)
    y = torch.tensor([0, 0])
    fixed = PGD(MODEL, Linf(0.1), steps=3, step_size=0.02, random_start=False)
    torch.testing.assert_close(fixed.perturb(x, y), torch.full_like(x, 0.44))
    # the projection caps the travel at ε
    far = PGD(MODEL, Linf(0.05), steps=10, step_size=0.02, random_start=False)
    torch.testing.assert_close(far.perturb(x, y), torch.full_like(x, 0.45))
    # targeted at class 0 (the one it has): ascending −CE moves x up instead
    up = PGD(MODEL, Linf(0.1), steps=3, step_size=0.02, random_start=False, targeted=True)
    torch.testing.assert_close(up.perturb(x, y, targets=y), torch.full_like(x, 0.56))
    # a random start from the caller's generator, or the attack's own when none is given
    noisy = PGD(MODEL, Linf(0.1), steps=1, step_size=0.0, seed=3)
    start = Linf(0.1).random_init(x, torch.Generator().manual_seed(7))
    gen = torch.Generator().manual_seed(7)
    torch.testing.assert_close(noisy.perturb(x, y, generator=gen), x + start)
    own = Linf(0.1).random_init(x, torch.Generator().manual_seed(3))
    torch.testing.assert_close(noisy.perturb(x, y), x + own)


def test_restarts_stop_once_a_sample_is_fooled_with_early_exit():
    """x = 0.05 is class 0; one L∞ step of 0.1 down crosses to class 1 (x = 0 is a tie, so
    argmax picks 0; x < 0 cannot be reached in the box). x = 0.9 is never fooled in budget:
    it spends all 3 steps of each of the 2 runs."""
    x = torch.tensor([0.05, 0.9]).view(2, 1, 1, 1)
    y = torch.tensor([0, 0])
    attack = PGD(MODEL, Linf(0.1), steps=3, step_size=0.1, random_start=False, restarts=2)
    result = attack.run(x, y)
    assert result.success.tolist() == [False, False]  # the box stops x at 0: a tie
    assert result.iterations.tolist() == [6, 6]
    shifted = LinearClassifier(torch.tensor([[1.0], [-1.0]]), torch.tensor([-0.04, 0.04]))
    # logits (x − 0.04, 0.04 − x): class 1 below x = 0.04, reached after one step from 0.05
    fooled = PGD(shifted.eval(), Linf(0.1), steps=3, step_size=0.1, random_start=False, restarts=2)
    result = fooled.run(x, y)
    assert result.success.tolist() == [True, False]
    assert result.iterations.tolist() == [1, 6]
    assert result.adversarial.flatten().tolist() == pytest.approx([0.0, 0.8])
    no_exit = PGD(
        shifted.eval(),
        Linf(0.1),
        steps=3,
        step_size=0.1,
        random_start=False,
        restarts=2,
        early_stop=False,
    )
    assert no_exit.run(x, y).iterations.tolist() == [6, 6]
