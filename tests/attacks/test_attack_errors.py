"""Every refusal of the attack modules, with its exact message and fix (the bad-input contract:
one clear error saying what is wrong and how to repair it), and the values at each refusal's
edge accepted."""

from __future__ import annotations

import math

import pytest
import torch

from robustlens.attacks import (
    FGSM,
    L1,
    L2,
    PGD,
    CarliniWagnerL2,
    DeepFool,
    Linf,
    epsilon_sweep,
    robust_accuracy,
    threat_model,
)
from robustlens.attacks.base import check_finite, check_images
from robustlens.attacks.spec import REFERENCE_FIX, USAGE, AttackSpec, parse_reference
from robustlens.attacks.targets import choose_targets, random_targets
from robustlens.errors import ConfigError, NumericalError
from tests.attacks.tiny_models import LinearClassifier

MODEL = LinearClassifier(torch.eye(3, 4), torch.zeros(3))
X = torch.full((2, 1, 2, 2), 0.5)
Y = torch.tensor([0, 1])


def _bad_loss(model, x, y):
    return torch.zeros(x.shape[0], 2)


BAD_CALLS = {
    # base.check_images / check_finite / Attack
    "integer images": (
        lambda: check_images(torch.zeros(2, 1, 2, 2, dtype=torch.long)),
        ConfigError,
        "attack inputs must be a floating-point tensor of images in [0, 1]",
        None,
    ),
    "a list of images": (
        lambda: check_images([[0.5]]),
        ConfigError,
        "attack inputs must be a floating-point tensor of images in [0, 1]",
        None,
    ),
    "images below 0": (
        lambda: check_images(torch.tensor([[[[-0.5, 0.5]]]])),
        ConfigError,
        "attack inputs must lie in [0, 1], got values in [-0.5, 0.5]",
        "pass unnormalised images; the model's own Normalize layer applies mean/std",
    ),
    "images above 1": (
        lambda: check_images(torch.tensor([[[[0.25, 1.125]]]])),
        ConfigError,
        "attack inputs must lie in [0, 1], got values in [0.25, 1.12]",
        "pass unnormalised images; the model's own Normalize layer applies mean/std",
    ),
    "more labels than images": (
        lambda: check_images(X, torch.tensor([0, 1, 2])),
        ConfigError,
        "2 images but 3 labels",
        None,
    ),
    "NaN logits": (
        lambda: check_finite(torch.tensor([[0.0, math.nan], [1.0, 2.0], [math.inf, 0.0]])),
        NumericalError,
        "the model produced NaN or infinite outputs on 2 of 3 inputs",
        "check the checkpoint (a diverged training run?) and the input scaling",
    ),
    "NaN from a custom loss": (
        lambda: check_finite(torch.tensor([[math.nan]]), "custom loss"),
        NumericalError,
        "the custom loss produced NaN or infinite outputs on 1 of 1 inputs",
        "check the checkpoint (a diverged training run?) and the input scaling",
    ),
    "unknown target mode": (
        lambda: PGD(MODEL, Linf(0.1), targeted=True, target_mode="far"),
        ConfigError,
        "unknown target mode 'far'",
        "use one of: random, least-likely, next",
    ),
    "targets for an untargeted attack": (
        lambda: PGD(MODEL, Linf(0.1), steps=1).run(X, Y, torch.tensor([1, 2])),
        ConfigError,
        "targets were given to an untargeted attack",
        "set targeted=True",
    ),
    # targets
    "one class to target": (
        lambda: random_targets(torch.tensor([0, 0]), 1),
        ConfigError,
        "targeted attacks need at least two classes",
        None,
    ),
    "unknown mode when choosing targets": (
        lambda: choose_targets("farthest", MODEL, X, Y, 3),
        ConfigError,
        "unknown target mode 'farthest'",
        "use one of: random, least-likely, next",
    ),
    # threat models
    "negative L∞ budget": (
        lambda: Linf(-0.1),
        ConfigError,
        "Linf budget must be a finite number ≥ 0, got -0.1",
        None,
    ),
    "infinite L2 budget": (
        lambda: L2(math.inf),
        ConfigError,
        "L2 budget must be a finite number ≥ 0, got inf",
        None,
    ),
    "boolean L1 budget": (
        lambda: L1(True),
        ConfigError,
        "L1 budget must be a finite number ≥ 0, got True",
        None,
    ),
    "text budget": (
        lambda: Linf("0.1"),
        ConfigError,
        "Linf budget must be a finite number ≥ 0, got '0.1'",
        None,
    ),
    "L1 sparsity 1": (
        lambda: L1(1.0, sparsity=1.0),
        ConfigError,
        "L1 sparsity must be in [0, 1), got 1.0",
        None,
    ),
    "negative L1 sparsity": (
        lambda: L1(1.0, sparsity=-0.5),
        ConfigError,
        "L1 sparsity must be in [0, 1), got -0.5",
        None,
    ),
    "unknown norm": (
        lambda: threat_model("l3", 0.1),
        ConfigError,
        "unknown norm 'l3'",
        "use one of: linf, l2, l1",
    ),
    # PGD
    "PGD without a threat model": (
        lambda: PGD(MODEL, 0.1),
        ConfigError,
        "threat must be Linf(eps), L2(eps) or L1(eps), got 0.1",
        None,
    ),
    "PGD with no steps": (
        lambda: PGD(MODEL, Linf(0.1), steps=0),
        ConfigError,
        "PGD needs at least one step, got steps=0",
        None,
    ),
    "PGD with no restarts": (
        lambda: PGD(MODEL, Linf(0.1), restarts=0),
        ConfigError,
        "restarts must be at least 1, got 0",
        None,
    ),
    "PGD with a negative step": (
        lambda: PGD(MODEL, Linf(0.1), step_size=-0.5),
        ConfigError,
        "step size must be ≥ 0, got -0.5",
        None,
    ),
    "a custom loss of the wrong shape": (
        lambda: PGD(MODEL, Linf(0.1), steps=1, loss=_bad_loss).run(X, Y),
        ConfigError,
        "a custom loss must return one value per sample, got shape (2, 2)",
        None,
    ),
    # C&W
    "C&W with no search": (
        lambda: CarliniWagnerL2(MODEL, binary_search_steps=0),
        ConfigError,
        "C&W needs binary_search_steps ≥ 1 and steps ≥ 1",
        None,
    ),
    "C&W with no steps": (
        lambda: CarliniWagnerL2(MODEL, steps=0),
        ConfigError,
        "C&W needs binary_search_steps ≥ 1 and steps ≥ 1",
        None,
    ),
    "C&W with learning rate 0": (
        lambda: CarliniWagnerL2(MODEL, learning_rate=0.0),
        ConfigError,
        "C&W needs learning_rate > 0, initial_const > 0 and confidence ≥ 0",
        None,
    ),
    "C&W with c = 0": (
        lambda: CarliniWagnerL2(MODEL, initial_const=0.0),
        ConfigError,
        "C&W needs learning_rate > 0, initial_const > 0 and confidence ≥ 0",
        None,
    ),
    "C&W with negative confidence": (
        lambda: CarliniWagnerL2(MODEL, confidence=-0.1),
        ConfigError,
        "C&W needs learning_rate > 0, initial_const > 0 and confidence ≥ 0",
        None,
    ),
    # DeepFool
    "DeepFool in L1": (
        lambda: DeepFool(MODEL, "l1"),
        ConfigError,
        "DeepFool supports norm 'l2' or 'linf', got 'l1'",
        None,
    ),
    "DeepFool with no steps": (
        lambda: DeepFool(MODEL, steps=0),
        ConfigError,
        "DeepFool needs steps ≥ 1, overshoot ≥ 0 and candidates ≥ 2",
        None,
    ),
    "DeepFool with negative overshoot": (
        lambda: DeepFool(MODEL, overshoot=-0.01),
        ConfigError,
        "DeepFool needs steps ≥ 1, overshoot ≥ 0 and candidates ≥ 2",
        None,
    ),
    "DeepFool with one candidate": (
        lambda: DeepFool(MODEL, candidates=1),
        ConfigError,
        "DeepFool needs steps ≥ 1, overshoot ≥ 0 and candidates ≥ 2",
        None,
    ),
    # evaluation
    "evaluation with more labels than images": (
        lambda: robust_accuracy(MODEL, (X, torch.tensor([0, 1, 2])), FGSM(MODEL, Linf(0.1))),
        ConfigError,
        "2 images but 3 labels",
        None,
    ),
    "DeepFool accuracy without a budget": (
        lambda: robust_accuracy(MODEL, (X, Y), DeepFool(MODEL)),
        ConfigError,
        "deepfool finds minimal perturbations: give the budget eps to compare with",
        None,
    ),
    "C&W accuracy without a budget": (
        lambda: robust_accuracy(MODEL, (X, Y), CarliniWagnerL2(MODEL)),
        ConfigError,
        "cw-l2 finds minimal perturbations: give the budget eps to compare with",
        None,
    ),
    "a sweep over no budgets": (
        lambda: epsilon_sweep(MODEL, (X, Y), DeepFool(MODEL), []),
        ConfigError,
        "give at least one ε to sweep",
        None,
    ),
}


def _spec_case(text: str, problem: str, fix: str) -> tuple:
    return (lambda: AttackSpec.parse(text), ConfigError, problem, fix)


BAD_CALLS |= {
    # attack settings
    "ε not a number": (
        lambda: AttackSpec("pgd", "linf", "0.1", 5),
        ConfigError,
        "attack ε must be a finite number, got '0.1'",
        USAGE,
    ),
    "ε a boolean": (
        lambda: AttackSpec("pgd", "linf", True, 5),
        ConfigError,
        "attack ε must be a finite number, got True",
        USAGE,
    ),
    "ε NaN": (
        lambda: AttackSpec("pgd", "linf", math.nan, 5),
        ConfigError,
        "attack ε must be a finite number, got nan",
        USAGE,
    ),
    "ε negative": (
        lambda: AttackSpec("pgd", "linf", -0.5, 5),
        ConfigError,
        "attack ε must be ≥ 0, got -0.5",
        USAGE,
    ),
    "a tag in the middle": _spec_case(
        "pgd l2 @imagenet 0.5 5",
        "attack setting 'pgd l2 @imagenet 0.5 5': the reference must be one last word, "
        "e.g. @imagenet",
        REFERENCE_FIX,
    ),
    "a bare @": _spec_case(
        "pgd l2 0.5 5 @",
        "attack setting 'pgd l2 0.5 5 @': the reference must be one last word, e.g. @imagenet",
        REFERENCE_FIX,
    ),
    "an unknown tag": _spec_case(
        "pgd l2 0.5 5 @mnist",
        "unknown reference '@mnist' in 'pgd l2 0.5 5 @mnist'",
        REFERENCE_FIX,
    ),
    "too few words": _spec_case("pgd linf", "attack setting 'pgd linf' is not understood", USAGE),
    "too many words": _spec_case(
        "pgd linf 0.1 5 6", "attack setting 'pgd linf 0.1 5 6' is not understood", USAGE
    ),
    "unknown attack": _spec_case(
        "BIM linf 0.1 5",
        "unknown attack 'BIM' in 'BIM linf 0.1 5'",
        "use pgd, fgsm, cw, deepfool, apgd, apgd-dlr, apgd-t, square, fab, fab-t, autoattack, "
        "autoattack-plus, autoattack-rand",
    ),
    "unknown norm in a setting": _spec_case(
        "pgd L3 0.1 5", "unknown norm 'L3' in 'pgd L3 0.1 5'", "use linf, l2 or l1"
    ),
    "ε not a number in a setting": _spec_case(
        "pgd linf x 5", "attack setting 'pgd linf x 5': ε or steps is not a number", USAGE
    ),
    "steps not a number": _spec_case(
        "pgd linf 0.1 5.5",
        "attack setting 'pgd linf 0.1 5.5': ε or steps is not a number",
        USAGE,
    ),
    "negative ε in a setting": _spec_case(
        "pgd linf -0.1 5", "attack setting 'pgd linf -0.1 5': ε must be ≥ 0 and steps ≥ 1", USAGE
    ),
    "infinite ε in a setting": _spec_case(
        "fgsm linf inf", "attack setting 'fgsm linf inf': ε must be ≥ 0 and steps ≥ 1", USAGE
    ),
    "zero steps": _spec_case(
        "pgd linf 0.1 0", "attack setting 'pgd linf 0.1 0': ε must be ≥ 0 and steps ≥ 1", USAGE
    ),
    "C&W in L∞": _spec_case(
        "cw linf 0.1 10", "'cw linf 0.1 10': Carlini–Wagner is an L2 attack", "use cw l2 …"
    ),
    "C&W in L1": _spec_case(
        "cw l1 0.1", "'cw l1 0.1': Carlini–Wagner is an L2 attack", "use cw l2 …"
    ),
    "DeepFool in L1 as a setting": _spec_case(
        "deepfool l1 0.1",
        "'deepfool l1 0.1': DeepFool supports l2 and linf",
        "use deepfool l2 …",
    ),
    "PGD without steps": _spec_case(
        "pgd l2 0.5", "'pgd l2 0.5': PGD needs a number of steps", USAGE
    ),
    "a reference of 0 values": (
        lambda: parse_reference("@0"),
        ConfigError,
        "unknown reference '@0'",
        REFERENCE_FIX,
    ),
}


@pytest.mark.parametrize(("call", "kind", "problem", "fix"), BAD_CALLS.values(), ids=BAD_CALLS)
def test_each_refusal_has_its_exact_message_and_fix(call, kind, problem, fix):
    with pytest.raises(kind) as caught:
        call()
    assert type(caught.value) is kind
    assert caught.value.problem == problem
    assert caught.value.fix == fix
    assert str(caught.value) == (problem if fix is None else f"{problem}. {fix}")


def test_the_usage_and_reference_hints_name_every_form():
    assert USAGE == (
        'write "ATTACK NORM EPS [STEPS] [@cifar10|@imagenet|@N]", e.g. "pgd linf 0.025 5", '
        '"fgsm l2 0.25", "apgd linf 8/255" or "pgd l2 45 100 @imagenet" (ε written for '
        "ImageNet's 3 × 224 × 224 inputs; without a tag the lens's reference_dim applies); "
        "ε may be a fraction such as 8/255"
    )
    assert REFERENCE_FIX == (
        "end the setting with @cifar10 (3 × 32 × 32 = 3 072 values), @imagenet "
        "(3 × 224 × 224 = 150 528 values) or @N for budgets written for inputs of N values, "
        "e.g. @784; leave it out to use the lens's reference_dim"
    )


ACCEPTED = {
    "images at both bounds": lambda: check_images(torch.tensor([[[[0.0, 1.0]]]]), Y[:1]),
    "an empty batch": lambda: check_images(torch.zeros(0, 1, 2, 2), torch.zeros(0)),
    "zero budgets": lambda: (Linf(0), L2(0.0), L1(0)),
    "L1 sparsity 0": lambda: L1(1.0, sparsity=0.0),
    "norm aliases": lambda: [threat_model(n, 0.1) for n in ("inf", "L∞", " L_inf ", "2", "1")],
    "two classes to target": lambda: random_targets(torch.tensor([0, 1]), 2),
    "PGD with one step of 0": lambda: PGD(MODEL, Linf(0.1), steps=1, restarts=1, step_size=0.0),
    "C&W at the edges": lambda: CarliniWagnerL2(
        MODEL, binary_search_steps=1, steps=1, confidence=0.0
    ),
    "DeepFool at the edges": lambda: DeepFool(MODEL, "LINF", steps=1, overshoot=0.0, candidates=2),
    "DeepFool over all classes": lambda: DeepFool(MODEL, candidates=None),
    "an attack setting of ε 0": lambda: AttackSpec("deepfool", "l2", 0, 1),
}


@pytest.mark.parametrize("call", ACCEPTED.values(), ids=ACCEPTED)
def test_values_at_the_edge_of_each_refusal_are_accepted(call):
    call()


def test_random_targets_never_pick_the_true_label_and_cover_the_others():
    labels = torch.tensor([0, 1, 2] * 200)
    targets = random_targets(labels, 3, torch.Generator().manual_seed(0))
    assert not bool((targets == labels).any())
    for y in range(3):
        assert set(targets[labels == y].tolist()) == {0, 1, 2} - {y}
    assert random_targets(torch.tensor([0, 1]), 2).tolist() == [1, 0]  # the only other class
