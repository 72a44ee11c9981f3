"""What every attack shares, on small cases: targets by mode, batches and their joined
results, success for targeted and untargeted goals, and the class count of a bare model."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from robustlens.attacks import PGD, CarliniWagnerL2, Linf
from robustlens.attacks.base import num_classes_of
from robustlens.attacks.result import AttackResult
from robustlens.attacks.targets import (
    choose_targets,
    least_likely_targets,
    next_targets,
    random_targets,
)
from tests.attacks.tiny_models import LinearClassifier
from tests.tolerances import float_tol

# logits = W·x: class scores (x₀, x₁, 2·x₂, 0) for 3-pixel images
W = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 2.0], [0, 0, 0]])
MODEL = LinearClassifier(W, torch.zeros(4)).eval()
X = torch.tensor([[0.9, 0.1, 0.2], [0.1, 0.8, 0.0], [0.3, 0.2, 0.9]]).view(3, 1, 1, 3)
Y = torch.tensor([0, 1, 2])


def test_targets_by_mode():
    assert next_targets(torch.tensor([0, 2, 3]), 4).tolist() == [1, 3, 0]
    logits = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])
    assert least_likely_targets(logits).tolist() == [1, 2]
    assert choose_targets(" NEXT ", MODEL, X, Y, 4).tolist() == [1, 2, 3]
    # least likely: the lowest logit, class 3 (0) or, where a pixel is 0, that class
    assert choose_targets("Least_Likely", MODEL, X, Y, 4).tolist() == [3, 2, 3]
    gen_a, gen_b = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    random = choose_targets("random", MODEL, X, Y, 4, gen_a)
    offset = torch.randint(1, 4, (3,), generator=gen_b)
    assert random.tolist() == ((Y + offset) % 4).tolist()


def test_a_targeted_attack_chooses_its_targets_by_its_mode():
    """PGD with ε = 0 cannot move: its success says whether the clean prediction (0, 1, 2) is
    the target, so it shows which targets were chosen. Labels (3, 0, 1) make "next" pick
    exactly the predictions."""
    labels = torch.tensor([3, 0, 1])

    def success(mode: str, seed: int = 0) -> list[bool]:
        attack = PGD(MODEL, Linf(0.0), steps=1, targeted=True, target_mode=mode, seed=seed)
        assert attack.generator.initial_seed() == seed
        return attack.run(X, labels).success.tolist()

    assert success("next") == [True, True, True]
    assert success("least-likely") == [False, False, False]  # targets (3, 2, 3)
    for seed in range(4):
        drawn = random_targets(labels, 4, torch.Generator().manual_seed(seed))
        assert success("random", seed) == (drawn == Y).tolist()
    explicit = PGD(MODEL, Linf(0.0), steps=1, targeted=True).run(X, Y, torch.tensor([0, 3, 2]))
    assert explicit.success.tolist() == [True, False, True]
    untargeted = PGD(MODEL, Linf(0.0), steps=1).run(X, torch.tensor([0, 0, 0]))
    assert untargeted.success.tolist() == [False, True, True]


def test_a_call_returns_the_adversarial_images():
    attack = PGD(MODEL, Linf(0.05), steps=2, random_start=False)
    assert torch.equal(attack(X, Y), attack.run(X, Y).adversarial)


def test_an_unpooled_attack_in_batches_gives_the_results_of_one_batch():
    attack = CarliniWagnerL2(MODEL, binary_search_steps=2, steps=5, learning_rate=0.05)
    whole = attack.run(X, Y)
    for size in (1, 2, 3, 10):
        parts = attack.run(X, Y, batch_size=size)
        assert torch.equal(parts.success, whole.success)
        assert torch.equal(parts.iterations, whole.iterations)
        torch.testing.assert_close(parts.adversarial, whole.adversarial)
        torch.testing.assert_close(parts.norms, whole.norms)


def test_results_join_in_order_and_keep_losses_only_when_all_have_them():
    def part(k: int, loss: bool) -> AttackResult:
        return AttackResult(
            adversarial=torch.full((k, 1), float(k)),
            success=torch.tensor([k % 2 == 0] * k),
            norms=torch.arange(k, dtype=torch.float32),
            iterations=torch.full((k,), k),
            loss=torch.full((k,), -float(k)) if loss else None,
        )

    joined = AttackResult.concat([part(1, True), part(2, True)])
    assert joined.adversarial.flatten().tolist() == [1.0, 2.0, 2.0]
    assert joined.success.tolist() == [False, True, True]
    assert joined.norms.tolist() == [0.0, 0.0, 1.0]
    assert joined.iterations.tolist() == [1, 2, 2]
    assert joined.loss.tolist() == [-1.0, -2.0, -2.0]
    assert len(joined) == 3
    assert joined.success_rate == pytest.approx(2 / 3, rel=float_tol(torch.float32))
    assert AttackResult.concat([part(1, True), part(2, False)]).loss is None
    empty = AttackResult(torch.zeros(0, 1), torch.zeros(0, dtype=torch.bool), *[torch.zeros(0)] * 2)
    assert len(empty) == 0 and math.isnan(empty.success_rate)


def test_the_class_count_of_a_model_without_the_attribute_comes_from_one_output():
    bare = nn.Sequential(nn.Flatten(), nn.Linear(3, 5))
    assert num_classes_of(bare, X) == 5
    assert num_classes_of(MODEL, X) == 4
    bare.num_classes = "five"  # not a whole number: ignored
    assert num_classes_of(bare, X) == 5
