"""The audit's black-box baseline, a score-based random search: it stays in the ε-ball and the
[0, 1] box, reads only outputs, and breaks a linear model it can see no gradient of."""

from __future__ import annotations

import pytest
import torch

from robustlens.attacks.random_search import RandomSearch, margin
from robustlens.attacks.threat import L1, L2, Linf
from robustlens.errors import ConfigError
from tests.attacks.tiny_models import LinearClassifier
from tests.tolerances import float_tol


def linear(d: int = 36, k: int = 3, seed: int = 0) -> LinearClassifier:
    gen = torch.Generator().manual_seed(seed)
    return LinearClassifier(torch.randn(k, d, generator=gen), torch.zeros(k)).eval()


def images(n: int = 16, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 1, 6, 6, generator=torch.Generator().manual_seed(seed))


def test_margin_is_true_logit_minus_the_best_other():
    logits = torch.tensor([[3.0, 1.0, 2.5], [0.0, 4.0, -1.0]])
    assert margin(logits, torch.tensor([0, 0])).tolist() == [0.5, -4.0]


@pytest.mark.parametrize("threat", [Linf(0.1), L2(0.5)])
def test_every_result_stays_in_the_ball_and_the_box(threat):
    x = images()
    net = linear()
    y = net(x).argmax(1)
    result = RandomSearch(net, threat, queries=40, seed=3).run(x, y)
    tol = float_tol(torch.float32, x[0].numel())
    assert float(result.adversarial.min()) >= 0.0 and float(result.adversarial.max()) <= 1.0
    assert bool((threat.norms(result.adversarial - x) <= threat.eps * (1 + tol)).all())
    fooled = net(result.adversarial).argmax(1) != y
    assert torch.equal(fooled, result.success)  # success is what the model says


@pytest.mark.parametrize("threat", [Linf(0.3), L2(2.0)])
def test_it_breaks_a_linear_model_without_gradients(threat):
    x = images(24)
    net = linear()
    y = net(x).argmax(1)
    with torch.no_grad():  # the search needs no autograd at all
        result = RandomSearch(net, threat, queries=300, seed=0).run(x, y)
    assert result.success_rate > 0.5
    margins = margin(net(result.adversarial).detach(), y)
    assert bool((margins[result.success] < 0).all())


def test_more_queries_never_leave_more_images_robust():
    x, net = images(24), linear()
    y = net(x).argmax(1)
    few = RandomSearch(net, Linf(0.1), queries=5, seed=0).run(x, y)
    many = RandomSearch(net, Linf(0.1), queries=200, seed=0).run(x, y)
    # the same seed makes the same first proposals; more of them can only lower the margin
    assert bool((many.loss >= few.loss).all())
    assert int(many.success.sum()) >= int(few.success.sum())


def test_an_l1_ball_and_bad_budgets_are_refused():
    with pytest.raises(ConfigError, match="L∞ and L2"):
        RandomSearch(linear(), L1(1.0))
    with pytest.raises(ConfigError, match="queries"):
        RandomSearch(linear(), Linf(0.1), queries=0)
