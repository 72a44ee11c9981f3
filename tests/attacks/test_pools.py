"""PGD and DeepFool attack through a working pool that finished images leave and new ones join:
samples are independent, so without randomness a pool of any size gives the results of one
batch of all images (up to float rounding); with randomness every pool size still keeps each
result in its ball."""

from __future__ import annotations

import pytest
import torch

from robustlens.attacks import L1, L2, PGD, DeepFool, Linf
from tests.attacks.tiny_models import TinyCNN
from tests.tolerances import close

N = 7


def inputs():
    model = TinyCNN(seed=2).eval()
    x = torch.rand(N, 1, 6, 6, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, y


def assert_same(a, b, steps):
    """Same successes and iterations; the same points up to float32 rounding, which differs
    between batch sizes (other kernels) and adds up over ``steps`` steps of 36-pixel sums."""
    assert torch.equal(a.success, b.success)
    assert torch.equal(a.iterations, b.iterations)
    tol = close(torch.float32, n_terms=36 * steps)
    torch.testing.assert_close(a.adversarial, b.adversarial, **tol)
    torch.testing.assert_close(a.norms, b.norms, **tol)


@pytest.mark.parametrize("pool", [1, 3, 100])
@pytest.mark.parametrize("threat", [Linf(0.05), L2(0.5), L1(2.0)], ids=["linf", "l2", "l1"])
def test_pgd_without_random_start_gives_the_same_result_for_every_pool(pool, threat):
    model, x, y = inputs()
    attack = PGD(model, threat, steps=4, random_start=False, restarts=2)
    assert_same(attack.run(x, y, batch_size=pool), attack.run(x, y), steps=8)


@pytest.mark.parametrize("pool", [1, 3, 100])
@pytest.mark.parametrize("threat", [Linf(0.05), L2(0.5), L1(2.0)], ids=["linf", "l2", "l1"])
def test_pgd_with_random_starts_refills_its_pool_and_stays_in_the_ball(pool, threat):
    model, x, y = inputs()
    result = PGD(model, threat, steps=3, restarts=2, seed=1).run(x, y, batch_size=pool)
    assert result.iterations.shape == (N,)
    assert bool((result.iterations >= 1).all())  # every image was admitted and stepped
    assert bool((result.iterations <= 6).all())
    assert bool(threat.contains(result.adversarial - x).all())


@pytest.mark.parametrize("pool", [1, 3, 100])
@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_deepfool_gives_the_same_result_for_every_pool(pool, norm):
    model, x, y = inputs()
    attack = DeepFool(model, norm, steps=5, candidates=4)
    assert_same(attack.run(x, y, batch_size=pool), attack.run(x, y), steps=5)


@pytest.mark.parametrize("pool", [1, 2, 3])
@pytest.mark.parametrize(
    "make",
    [
        lambda m: DeepFool(m, "l2", steps=5, candidates=4),
        lambda m: PGD(m, L2(0.5), steps=3, restarts=2),
    ],
    ids=["deepfool", "pgd"],
)
def test_the_model_never_sees_more_rows_than_the_pool_holds(pool, make):
    """The pool bounds memory: every forward pass takes at most ``batch_size`` images."""
    model, x, y = inputs()
    sizes: list[int] = []
    hook = model.register_forward_hook(lambda m, inp, out: sizes.append(inp[0].shape[0]))
    try:
        result = make(model).run(x, y, batch_size=pool)
    finally:
        hook.remove()
    assert max(sizes) == pool  # full while images wait
    assert result.iterations.dtype == torch.long and result.success.dtype == torch.bool
    if isinstance(make(model), DeepFool):
        # each image is looked at once per step and once more to see it is done: no row twice
        assert sum(sizes) == int((result.iterations + 1).sum())
