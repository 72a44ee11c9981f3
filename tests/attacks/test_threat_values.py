"""Threat models on small perturbations worked by hand: norms, steps, projections, the box,
membership with its rounding tolerance, and their descriptions."""

from __future__ import annotations

import pytest
import torch

from robustlens.attacks.threat import L1, L2, Linf, clip_to_box, project_l1_ball, threat_model

# two samples of 2 × 2 pixels
DELTA = torch.tensor([[[[3.0, -4.0], [0.0, 0.0]]], [[[0.5, 0.5], [-0.5, 0.5]]]])


def test_norms_by_hand():
    assert Linf(1).norms(DELTA).tolist() == [4.0, 0.5]
    assert L2(1).norms(DELTA).tolist() == [5.0, 1.0]
    assert L1(1).norms(DELTA).tolist() == [7.0, 2.0]


def test_projections_by_hand():
    torch.testing.assert_close(
        Linf(1.0).project(DELTA),
        torch.tensor([[[[1.0, -1.0], [0.0, 0.0]]], [[[0.5, 0.5], [-0.5, 0.5]]]]),
    )
    # L2 ball of radius 2: the first sample is scaled by 2/5, the second (norm 1) kept
    torch.testing.assert_close(
        L2(2.0).project(DELTA),
        torch.tensor([[[[1.2, -1.6], [0.0, 0.0]]], [[[0.5, 0.5], [-0.5, 0.5]]]]),
    )
    # L1 ball of radius 3: |v| = (4, 3) → θ = (7 − 3)/2 = 2 → (1, −2); the second is inside
    torch.testing.assert_close(
        L1(3.0).project(DELTA),
        torch.tensor([[[[1.0, -2.0], [0.0, 0.0]]], [[[0.5, 0.5], [-0.5, 0.5]]]]),
    )
    assert torch.equal(L2(0.0).project(DELTA), torch.zeros_like(DELTA))
    assert torch.equal(project_l1_ball(DELTA, 0.0), torch.zeros_like(DELTA))
    # a row far outside with many equal coordinates: θ leaves each at ε/4
    torch.testing.assert_close(
        project_l1_ball(torch.tensor([[2.0, -2.0, 2.0, -2.0]]), 1.0),
        torch.tensor([[0.25, -0.25, 0.25, -0.25]]),
    )


def test_steps_by_hand():
    x = torch.full_like(DELTA, 0.5)
    torch.testing.assert_close(Linf(1).step(DELTA, 0.1, x), DELTA.sign() * 0.1)
    # L2: g/‖g‖₂ · step; the second sample's gradient has norm 1
    torch.testing.assert_close(
        L2(1).step(DELTA, 0.5, x),
        torch.tensor([[[[0.3, -0.4], [0.0, 0.0]]], [[[0.25, 0.25], [-0.25, 0.25]]]]),
    )
    assert torch.equal(L2(1).step(torch.zeros_like(DELTA), 0.5, x), torch.zeros_like(DELTA))
    # L1 with sparsity 0.5 moves the top k = 2 of 4 coordinates by step/2 each: in the second
    # sample all four tie, so any two of them.
    step = L1(1, sparsity=0.5).step(DELTA, 0.8, x)
    torch.testing.assert_close(step[0], torch.tensor([[[0.4, -0.4], [0.0, 0.0]]]))
    torch.testing.assert_close(
        step[1].abs().flatten().sort().values, torch.tensor([0.0, 0.0, 0.4, 0.4])
    )
    assert float(step[1].abs().sum()) == pytest.approx(0.8)
    # sparsity 0: every coordinate moves, each by step/4 (the zeros of sample 1 do not move)
    dense = L1(1, sparsity=0.0).step(DELTA, 0.8, x)
    torch.testing.assert_close(dense[1], torch.tensor([[[0.2, 0.2], [-0.2, 0.2]]]))
    # no gradient at all: no step
    assert torch.equal(L1(1).step(torch.zeros_like(DELTA), 0.8, x), torch.zeros_like(DELTA))


def test_l1_steps_skip_pixels_pushed_out_of_the_box():
    grad = torch.tensor([[[[-5.0, 5.0, 1.0, -2.0]]]])
    x = torch.tensor([[[[0.0, 1.0, 0.5, 0.5]]]])
    # pixel 0 at 0 pushed down, pixel 1 at 1 pushed up: blocked; top 1 of the rest is −2
    step = L1(1, sparsity=0.75).step(grad, 0.3, x)
    torch.testing.assert_close(step, torch.tensor([[[[0.0, 0.0, 0.0, -0.3]]]]))
    # pixel 0 at 0 pushed up and pixel 1 at 1 pushed down may move
    step = L1(1, sparsity=0.75).step(-grad, 0.3, x)
    assert step.flatten().abs().argmax().item() in (0, 1)


def test_clip_to_box_keeps_what_fits():
    x = torch.tensor([0.0, 0.5, 1.0, 0.9])
    delta = torch.tensor([-0.2, 0.3, 0.1, 0.2])
    torch.testing.assert_close(clip_to_box(x, delta), torch.tensor([0.0, 0.3, 0.0, 0.1]))


def test_membership_allows_only_rounding():
    ball = L2(1.0)
    tol = 1e-5  # the documented relative tolerance of contains()
    inside = torch.tensor([[1.0 + tol / 2, 0.0]])
    outside = torch.tensor([[1.0 + 3 * tol, 0.0]])
    assert ball.contains(inside).tolist() == [True]
    assert ball.contains(outside).tolist() == [False]
    point = L2(0.0)
    assert point.contains(torch.tensor([[tol / 2, 0.0]])).tolist() == [True]
    assert point.contains(torch.tensor([[2 * tol, 0.0]])).tolist() == [False]
    assert Linf(0.1).contains(torch.tensor([[0.1, -0.1], [0.2, 0.0]])).tolist() == [True, False]


def test_descriptions_and_budget_changes():
    assert Linf(0.1).describe() == {"norm": "linf", "eps": 0.1}
    assert L2(1).describe() == {"norm": "l2", "eps": 1.0}
    assert isinstance(L2(1).describe()["eps"], float)
    assert L1(2.5).describe() == {"norm": "l1", "eps": 2.5}
    assert str(Linf(0.03)) == "LINF(ε=0.03)"
    assert str(L2(0.5)) == "L2(ε=0.5)"
    assert str(L1(12)) == "L1(ε=12)"
    assert Linf(0.1).with_eps(0.2) == Linf(0.2)
    assert L2(0.1).with_eps(3) == L2(3)
    assert L1(1.0, sparsity=0.5).with_eps(2.0) == L1(2.0, sparsity=0.5)
    assert L1(1.0).sparsity == 0.99
    assert threat_model("∞", 0.1) == Linf(0.1)
    assert threat_model("L_INF", 1) == Linf(1.0)
    assert threat_model(" l1 ", 3) == L1(3.0)
    assert threat_model("1", 3) == L1(3.0)
    assert threat_model("inf", 0.1) == Linf(0.1)
    assert threat_model("l2", 2) == L2(2.0)
