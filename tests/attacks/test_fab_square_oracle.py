"""Square and FAB-T against torchattacks 3.5.1 on trained Fashion-MNIST models (the oracle).

Per image, an attack either breaks it (misclassified within the ε-ball) or not. Ours must not
be weaker than torchattacks': of the discordant images, b are robust under ours but broken by
theirs and c the reverse; under the hypothesis "ours is at least as strong" b is at most a
Binomial(b + c, ½) draw, so the test fails when the one-sided exact binomial (McNemar) test
gives P(X ≥ b) < 0.01. Both run on the same 500 test images with the same budget.

Budgets kept small enough for the CPU suite: Square with 100 queries instead of 5 000 (both
libraries rescale the same p schedule to the budget, so the comparison is like for like), FAB-T
with 10 iterations instead of 100 (torchattacks' default).
"""

from __future__ import annotations

import pytest
import torch
from scipy.stats import binomtest

from robustlens.attacks import FAB, L2, Linf, Square

ta = pytest.importorskip("torchattacks", reason="the torchattacks oracle needs the 'oracles' extra")

N = 500
ALPHA = 0.01


def broken(model, x, y, adv, norm: str, eps: float) -> torch.Tensor:
    """Misclassified inside the ε-ball and the box (the criterion for both libraries)."""
    delta = (adv - x).flatten(1)
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    inside = (size <= eps * (1 + 1e-5)) & (adv.min() >= 0) & (adv.max() <= 1)
    with torch.no_grad():
        wrong = torch.cat([model(a).argmax(1) for a in adv.split(250)]) != y
    return wrong & inside


def not_weaker(ours: torch.Tensor, theirs: torch.Tensor) -> tuple[bool, str]:
    """One-sided exact McNemar test of "ours breaks no fewer images than theirs"."""
    b = int((~ours & theirs).sum())  # robust under ours, broken by theirs
    c = int((ours & ~theirs).sum())
    p = binomtest(b, b + c, 0.5, alternative="greater").pvalue if b + c else 1.0
    text = f"ours breaks {int(ours.sum())}, theirs {int(theirs.sum())}; b={b}, c={c}, p={p:.3g}"
    return p >= ALPHA, text


@pytest.mark.slow
@pytest.mark.parametrize(
    ("which", "norm", "eps"), [("robust", "linf", 0.1), ("natural", "l2", 1.0)]
)
def test_square_is_not_weaker_than_torchattacks(fmnist_models, fmnist_test, which, norm, eps):
    model = fmnist_models[which]
    x, y = fmnist_test.images[:N], fmnist_test.labels[:N]
    threat = Linf(eps) if norm == "linf" else L2(eps)
    queries = 100
    ours = Square(model, threat, queries, seed=0).run(x, y)
    theirs_attack = ta.Square(
        model, norm={"linf": "Linf", "l2": "L2"}[norm], eps=eps, n_queries=queries, seed=0
    )
    theirs = broken(model, x, y, theirs_attack(x, y), norm, eps)
    mine = broken(model, x, y, ours.adversarial, norm, eps)
    assert torch.equal(mine, ours.success)
    ok, text = not_weaker(mine, theirs)
    assert ok, text
    assert 0.05 < theirs.float().mean() < 0.95, text  # neither attack trivially wins


@pytest.mark.slow
@pytest.mark.parametrize(
    ("which", "norm", "eps"), [("robust", "linf", 0.1), ("natural", "l2", 1.0)]
)
def test_fab_t_is_not_weaker_than_torchattacks(fmnist_models, fmnist_test, which, norm, eps):
    model = fmnist_models[which]
    x, y = fmnist_test.images[:N], fmnist_test.labels[:N]
    steps = 10
    ours = FAB(model, norm, steps=steps, targets=9, eps=eps, seed=0).run(x, y)
    theirs_attack = ta.FAB(
        model,
        norm={"linf": "Linf", "l2": "L2"}[norm],
        eps=eps,
        steps=steps,
        multi_targeted=True,
        n_classes=10,
        seed=0,
    )
    theirs = broken(model, x, y, theirs_attack(x, y), norm, eps)
    mine = broken(model, x, y, ours.adversarial, norm, eps)
    assert torch.equal(mine, ours.success)
    ok, text = not_weaker(mine, theirs)
    assert ok, text
    assert 0.05 < theirs.float().mean() < 0.95, text
