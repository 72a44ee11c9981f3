"""TRADES and MART losses on hand cases: logits are the logarithms of chosen probabilities
(plus a constant per row, which a softmax ignores), so every value below is worked out from
the papers' formulas by hand, in float64."""

from __future__ import annotations

import math

import pytest
import torch

from robustlens.train.losses import (
    boosted_cross_entropy,
    kl_per_sample,
    log_one_minus_top_other,
    mart_loss,
    trades_loss,
)
from tests.tolerances import close

F64 = torch.float64
TOL = close(F64, 16)
APPROX = {"rel": TOL["rtol"], "abs": TOL["atol"]}


def logits(*rows: list[float], shift: float = 3.0) -> torch.Tensor:
    """Logits whose softmax is each row of probabilities (shifted by ``shift`` per row)."""
    return torch.tensor(
        [[math.log(p) + shift * i for p in row] for i, row in enumerate(rows)], dtype=F64
    )


def test_kl_of_two_classes():
    """p = (1/2, 1/2), q = (3/4, 1/4): ½ ln(½ / ¾) + ½ ln(½ / ¼) = ½ ln(4/3); KL(p ‖ p) = 0."""
    p = logits([0.5, 0.5], [0.5, 0.5])
    q = logits([0.75, 0.25], [0.5, 0.5])
    expected = torch.tensor([0.5 * math.log(4 / 3), 0.0], dtype=F64)
    torch.testing.assert_close(kl_per_sample(p, q), expected, **TOL)
    # not symmetric: KL(q ‖ p) = ¾ ln(3/2) + ¼ ln(1/2)
    reverse = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert float(kl_per_sample(q, p)[0]) == pytest.approx(reverse, **APPROX)


def test_trades_loss_is_clean_cross_entropy_plus_beta_times_the_mean_kl():
    """Row 1: y = 0, p(x) = (½, ¼, ¼), p(x') = (¼, ½, ¼): CE = ln 2,
    KL = ½ ln(½/¼) + ¼ ln(¼/½) + ¼ ln 1 = ¼ ln 2.
    Row 2: y = 2, p(x) = p(x') = (0.2, 0.3, 0.5): CE = ln 2, KL = 0.
    Mean: ln 2 + β·⅛ ln 2; with β = 6: 1.75 ln 2."""
    clean = logits([0.5, 0.25, 0.25], [0.2, 0.3, 0.5])
    adv = logits([0.25, 0.5, 0.25], [0.2, 0.3, 0.5], shift=-1.0)
    y = torch.tensor([0, 2])
    assert float(trades_loss(clean, adv, y, 6.0)) == pytest.approx(1.75 * math.log(2), **APPROX)
    assert float(trades_loss(clean, adv, y, 1.0)) == pytest.approx(1.125 * math.log(2), **APPROX)


def test_mart_loss_on_three_classes():
    """Row 1: y = 0, p(x') = (0.5, 0.3, 0.2), p(x) = (0.6, 0.2, 0.2).
    Row 2: y = 1, p(x') = (0.7, 0.2, 0.1) (misclassified), p(x) = (0.1, 0.8, 0.1)."""
    adv = logits([0.5, 0.3, 0.2], [0.7, 0.2, 0.1])
    clean = logits([0.6, 0.2, 0.2], [0.1, 0.8, 0.1], shift=2.0)
    y = torch.tensor([0, 1])
    # BCE = −ln p_y(x') − ln(1 − max_{k≠y} p_k(x'))
    bce = [-math.log(0.5) - math.log(1 - 0.3), -math.log(0.2) - math.log(1 - 0.7)]
    # KL(p(x) ‖ p(x')) · (1 − p_y(x))
    kl = [
        0.6 * math.log(0.6 / 0.5) + 0.2 * math.log(0.2 / 0.3) + 0.2 * math.log(0.2 / 0.2),
        0.1 * math.log(0.1 / 0.7) + 0.8 * math.log(0.8 / 0.2) + 0.1 * math.log(0.1 / 0.1),
    ]
    weight = [1 - 0.6, 1 - 0.8]
    torch.testing.assert_close(boosted_cross_entropy(adv, y), torch.tensor(bce, dtype=F64), **TOL)
    robust = sum(k * w for k, w in zip(kl, weight, strict=True)) / 2
    for beta in (6.0, 0.5):
        expected = sum(bce) / 2 + beta * robust
        assert float(mart_loss(clean, adv, y, beta)) == pytest.approx(expected, **APPROX)


def test_mart_boosted_cross_entropy_of_two_classes_counts_the_true_class_twice():
    """With two classes the other class is the top other one: 1 − p_other = p_y, so
    BCE = −2 ln p_y."""
    adv = logits([0.3, 0.7], [0.9, 0.1])
    y = torch.tensor([1, 0])
    expected = torch.tensor([-2 * math.log(0.7), -2 * math.log(0.9)], dtype=F64)
    torch.testing.assert_close(boosted_cross_entropy(adv, y), expected, **TOL)


def test_log_one_minus_top_other_stays_finite_where_one_minus_p_rounds_to_zero():
    """z = (0, 100, 0), y = 0: 1 − p_1 = 2 / (2 + e^100), which is 0 after 1 − p in float64;
    log(2) − log(2 + e^100) = log 2 − 100 − log(1 + 2e^−100) = log 2 − 100 to float64."""
    z = torch.tensor([[0.0, 100.0, 0.0]], dtype=F64)
    p = torch.softmax(z, dim=1)
    assert float(1 - p[0, 1]) == 0.0  # the naive form would take log(0)
    value = log_one_minus_top_other(z, torch.tensor([0]))
    tol = close(F64, 4, scale=100)
    assert float(value) == pytest.approx(math.log(2) - 100, rel=tol["rtol"], abs=tol["atol"])


def test_the_top_other_class_ignores_the_true_class_even_when_it_is_the_largest():
    """z = ln(0.6, 0.3, 0.1), y = 0: the top other class is 1 (not 0): log(1 − 0.3)."""
    z = logits([0.6, 0.3, 0.1])
    value = log_one_minus_top_other(z, torch.tensor([0]))
    assert float(value) == pytest.approx(math.log(0.7), **APPROX)


def test_the_losses_pass_gradients_to_both_inputs():
    """TRADES and MART train on f(x) and f(x'): both logits get a gradient (MART's also through
    its weight 1 − p_y(x))."""
    clean = logits([0.5, 0.3, 0.2]).requires_grad_(True)
    adv = logits([0.2, 0.5, 0.3]).requires_grad_(True)
    y = torch.tensor([0])
    for loss in (trades_loss, mart_loss):
        clean.grad, adv.grad = None, None
        loss(clean, adv, y, 6.0).backward()
        assert clean.grad is not None and adv.grad is not None
        assert float(clean.grad.abs().sum()) > 0 and float(adv.grad.abs().sum()) > 0
