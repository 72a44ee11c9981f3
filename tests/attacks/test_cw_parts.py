"""Carlini–Wagner's pieces worked by hand: the margin f₆, success with a confidence margin κ,
the description of its settings, and the early abort of a stalled search."""

from __future__ import annotations

import pytest
import torch

from robustlens.attacks import CarliniWagnerL2
from robustlens.attacks.cw import margin
from tests.attacks.tiny_models import LinearClassifier
from tests.tolerances import close

LOGITS = torch.tensor([[1.0, 3.0, 2.0], [1.0, 3.0, 2.0]])
CLASSES = torch.tensor([0, 1])


@pytest.mark.parametrize(
    ("targeted", "confidence", "expected"),
    [
        # untargeted: Z_y − max_{i≠y} Z_i + κ, floored at 0: class 0: 1 − 3, class 1: 3 − 2
        (False, 0.0, [0.0, 1.0]),
        (False, 0.5, [0.0, 1.5]),
        (False, 2.5, [0.5, 3.5]),
        # targeted: max_{i≠t} Z_i − Z_t + κ: class 0: 3 − 1, class 1: 2 − 3
        (True, 0.0, [2.0, 0.0]),
        (True, 1.5, [3.5, 0.5]),
    ],
)
def test_margin_by_hand(targeted, confidence, expected):
    assert margin(LOGITS, CLASSES, targeted, confidence).tolist() == expected


def _cw(**kwargs) -> CarliniWagnerL2:
    return CarliniWagnerL2(LinearClassifier(torch.eye(3), torch.zeros(3)), **kwargs)


def test_success_needs_the_confidence_margin():
    # Predictions: class 1 for both rows (margin of 1 over class 2).
    assert _cw().is_success_with_margin(LOGITS, CLASSES).tolist() == [True, False]
    assert _cw(confidence=0.5).is_success_with_margin(LOGITS, CLASSES).tolist() == [True, False]
    assert _cw(confidence=2.5).is_success_with_margin(LOGITS, CLASSES).tolist() == [False, False]
    targeted = _cw(targeted=True)
    assert targeted.is_success_with_margin(LOGITS, CLASSES).tolist() == [False, True]
    strict = _cw(targeted=True, confidence=1.0)
    assert strict.is_success_with_margin(LOGITS, CLASSES).tolist() == [False, True]
    stricter = _cw(targeted=True, confidence=1.5)
    assert stricter.is_success_with_margin(LOGITS, CLASSES).tolist() == [False, False]


def test_describe_names_every_setting():
    assert _cw().describe() == {
        "attack": "cw-l2",
        "norm": "l2",
        "binary_search_steps": 9,
        "steps": 1000,
        "learning_rate": 0.01,
        "initial_const": 1e-3,
        "confidence": 0.0,
        "abort_early": True,
        "targeted": False,
        "target_mode": None,
    }
    described = _cw(
        binary_search_steps=2,
        steps=5,
        learning_rate=0.5,
        initial_const=2,
        confidence=1,
        abort_early=False,
        targeted=True,
        target_mode="next",
    ).describe()
    assert described == {
        "attack": "cw-l2",
        "norm": "l2",
        "binary_search_steps": 2,
        "steps": 5,
        "learning_rate": 0.5,
        "initial_const": 2.0,
        "confidence": 1.0,
        "abort_early": False,
        "targeted": True,
        "target_mode": "next",
    }


def test_an_unreachable_goal_stops_early_only_with_abort_early():
    """A model whose logits do not depend on the input: the loss never changes, so with
    abort_early each search stops at its second check (checks come every steps // 10 = 2 steps;
    the first only records the loss), after 4 steps; without it every search runs all 20 steps.
    Nothing is ever found (norm ∞)."""
    constant = LinearClassifier(torch.zeros(2, 4), torch.tensor([1.0, 0.0]))
    x = torch.full((3, 1, 2, 2), 0.5)
    y = torch.zeros(3, dtype=torch.long)
    kwargs = {"binary_search_steps": 2, "steps": 20}
    stopped = CarliniWagnerL2(constant, **kwargs).run(x, y)
    assert stopped.iterations.tolist() == [8, 8, 8]  # 2 searches × 4 steps
    assert stopped.success.tolist() == [False] * 3
    assert stopped.norms.tolist() == [float("inf")] * 3
    assert torch.equal(stopped.adversarial, x)
    full = CarliniWagnerL2(constant, abort_early=False, **kwargs).run(x, y)
    assert full.iterations.tolist() == [40, 40, 40]


def test_the_inner_search_is_adam_on_the_tanh_variable():
    """With one search and no early abort, the inputs C&W shows the model are (tanh(w_k) + 1)/2
    for the iterates w_k of torch's own Adam (β = (0.9, 0.999), ε = 1e-8) minimising
    ‖x' − x‖₂² + c·f₆(x') summed over samples (Adam is element-wise, so the sum keeps the
    samples independent)."""
    gen = torch.Generator().manual_seed(0)
    model = LinearClassifier(torch.randn(3, 6, generator=gen), torch.zeros(3)).eval()
    x = 0.2 + 0.6 * torch.rand(4, 1, 2, 3, generator=gen)
    with torch.no_grad():
        y = model(x).argmax(1)
    const, lr, steps = 0.5, 0.05, 6
    seen: list[torch.Tensor] = []
    hook = model.register_forward_hook(lambda m, inp, out: seen.append(inp[0].detach().clone()))
    try:
        CarliniWagnerL2(
            model,
            binary_search_steps=1,
            steps=steps,
            learning_rate=lr,
            initial_const=const,
            abort_early=False,
        ).run(x, y)
    finally:
        hook.remove()
    w = torch.atanh((2 * x - 1) * (1 - 1e-6)).requires_grad_(True)
    adam = torch.optim.Adam([w], lr=lr, betas=(0.9, 0.999), eps=1e-8)
    expected = []
    for _ in range(steps):
        xa = (torch.tanh(w) + 1) / 2
        expected.append(xa.detach().clone())
        loss = (xa - x).flatten(1).pow(2).sum(1) + const * margin(model(xa), y, False, 0.0)
        adam.zero_grad()
        loss.sum().backward()
        adam.step()
    assert len(seen) == steps
    # the same float32 arithmetic in another order, compounded over the steps
    tol = close(torch.float32, n_terms=6 * steps, ulps=16)
    torch.testing.assert_close(torch.stack(seen), torch.stack(expected), **tol)
    assert (torch.stack(expected)[-1] - x).abs().max() > 10 * lr * 0.1  # it really moved
