"""Attack details that only a targeted test sees: two-sided random starts, best iterates,
projection in the training attack, C&W's search over c and its smallest success, and the
three counts behind robust accuracy."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robustlens.attacks import L2, PGD, CarliniWagnerL2, Linf
from robustlens.attacks.base import Attack
from robustlens.attacks.evaluate import robust_accuracy
from robustlens.attacks.result import AttackResult
from tests.attacks.tiny_models import LinearClassifier
from tests.tolerances import close

# ------------------------------------------------------------------------ L∞ random start


def test_linf_random_start_covers_both_sides_of_every_coordinate():
    # 2 × 3 × 16 × 16 = 1536 coordinates drawn uniformly from [−ε, ε] around 0.5.
    eps = 0.1
    x = torch.full((2, 3, 16, 16), 0.5)
    delta = Linf(eps).random_init(x, torch.Generator().manual_seed(0)).flatten()
    assert float(delta.abs().max()) <= eps
    assert float(delta.min()) < -0.9 * eps and float(delta.max()) > 0.9 * eps
    # Uniform on [−ε, ε]: half below 0 (standard error 0.013), mean 0 (s.e. 0.0015), and each
    # quarter of the interval holds a quarter of the draws.
    assert abs(float((delta < 0).float().mean()) - 0.5) < 0.05
    assert abs(float(delta.mean())) < 0.01
    counts = torch.histc(delta, bins=4, min=-eps, max=eps)
    assert torch.all((counts / delta.numel() - 0.25).abs() < 0.05)


# ---------------------------------------------------------------------- PGD best iterate


def distance_to_point(target: float):
    """A custom objective, −|x − target| summed over pixels: highest at x = target."""

    def loss(model: nn.Module, x: torch.Tensor, _: torch.Tensor) -> torch.Tensor:
        return -(x.flatten(1) - target).abs().sum(dim=1)

    return loss


def test_pgd_returns_the_best_iterate_not_the_last():
    # One pixel at 0, ascending −|x − 0.3| by signed steps of 0.25: the iterates are 0, 0.25
    # and 0.5 (objective −0.3, −0.05, −0.2). The best is the middle one, not the last.
    model = LinearClassifier(torch.ones(2, 1), torch.zeros(2))
    attack = PGD(
        model, Linf(1.0), steps=2, step_size=0.25, random_start=False, loss=distance_to_point(0.3)
    )
    x = torch.zeros(1, 1, 1, 1)
    result = attack.run(x, torch.tensor([0]))
    assert result.adversarial.flatten().tolist() == [0.25]
    assert result.loss.tolist() == pytest.approx([-0.05], abs=1e-7)


def test_pgd_without_best_tracking_returns_the_last_iterate():
    model = LinearClassifier(torch.ones(2, 1), torch.zeros(2))
    attack = PGD(
        model,
        Linf(1.0),
        steps=2,
        step_size=0.25,
        random_start=False,
        loss=distance_to_point(0.3),
        track_best=False,
    )
    result = attack.run(torch.zeros(1, 1, 1, 1), torch.tensor([0]))
    assert result.adversarial.flatten().tolist() == [0.5]


# ---------------------------------------------------------- the training attack's projection


@pytest.mark.parametrize("threat", [Linf(0.05), L2(0.2)], ids=["linf", "l2"])
def test_training_perturbation_stays_in_the_ball(threat):
    """PGD.perturb, the fast path adversarial training uses (train.loop.make_attack): ten steps
    of 2.5·ε/10 on a linear model would travel 2.5·ε in one direction without projection."""
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(3, 48, generator=gen)
    model = LinearClassifier(weight, torch.zeros(3)).eval()
    x = 0.25 + 0.5 * torch.rand(16, 3, 4, 4, generator=gen)
    y = model(x).argmax(1)
    attack = PGD(model, threat, steps=10, random_start=True, early_stop=False, track_best=False)
    adv = attack.perturb(x, y, generator=torch.Generator().manual_seed(1))
    norms = threat.norms(adv - x)
    # float32 rounding of x + δ − x: a few ulp of values ≤ 1 per coordinate (× √d for L2).
    tol = 8 * torch.finfo(torch.float32).eps * (48**0.5 if threat.norm == "l2" else 1.0)
    assert torch.all(norms <= threat.eps + tol), norms.max()
    # The linear loss grows without bound along the gradient: every sample reaches the sphere.
    assert torch.all(norms >= threat.eps * (1 - 1e-4)), norms.min()
    assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0


# ------------------------------------------------------------------ C&W's search over c


class _ScriptedCW(CarliniWagnerL2):
    """C&W whose inner optimisation is replaced by a rule: sample i succeeds iff c ≥ need[i].
    Records the constants the binary search tries."""

    def __init__(self, model: nn.Module, need: torch.Tensor, **kwargs) -> None:
        super().__init__(model, **kwargs)
        self.need = need
        self.tried: list[list[float]] = []

    def _inner(self, x, w0, classes, const, best_l2, best_adv, iterations):
        self.tried.append(const.tolist())
        return const >= self.need


def test_cw_binary_search_brackets_the_smallest_sufficient_constant():
    # Carlini & Wagner's schedule: c × 10 until the first success, then bisect between the
    # largest failing and the smallest succeeding c. Computed by hand for three samples:
    # needs 5e-4 (succeeds at once), 0.37, and ∞ (never succeeds).
    model = LinearClassifier(torch.ones(2, 1), torch.zeros(2))
    need = torch.tensor([5e-4, 0.37, float("inf")])
    attack = _ScriptedCW(model, need, binary_search_steps=6, initial_const=1e-3)
    attack.run(torch.full((3, 1, 1, 1), 0.5), torch.zeros(3, dtype=torch.long))
    expected = [
        [1e-3, 5e-4, 2.5e-4, 3.75e-4, 4.375e-4, 4.6875e-4],
        [1e-3, 1e-2, 1e-1, 1.0, 0.55, 0.325],
        [1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0],
    ]
    tried = torch.tensor(attack.tried).T  # [sample, search step]
    # The constants are float32: a few ulp of rounding per halving or ×10.
    torch.testing.assert_close(tried, torch.tensor(expected), rtol=1e-6, atol=0.0)


def test_cw_returns_the_smallest_successful_iterate_it_saw():
    """Every input C&W feeds the model is recorded; its answer must be the successful one
    closest to the clean image (a later, larger success must not replace it)."""
    gen = torch.Generator().manual_seed(0)
    model = LinearClassifier(torch.randn(3, 12, generator=gen), torch.zeros(3)).eval()
    x = torch.rand(1, 1, 3, 4, generator=gen)
    y = model(x).argmax(1)
    seen: list[torch.Tensor] = []
    handle = model.register_forward_hook(lambda m, inp, out: seen.append(inp[0].detach().clone()))
    try:
        result = CarliniWagnerL2(
            model, binary_search_steps=6, steps=60, learning_rate=0.1, initial_const=0.1
        ).run(x, y)
    finally:
        handle.remove()
    inputs = torch.cat(seen)
    with torch.no_grad():
        fooled = model(inputs).argmax(1) != y
    distances = (inputs[fooled] - x).flatten(1).double().norm(dim=1)
    assert bool(result.success.item()) and fooled.sum() > 1
    # The last success is not the smallest one, so keeping the last one would be caught.
    assert float(distances[-1] - distances.min()) > 1e-3
    # C&W measures its norm in float32 over the image's values; the reference is float64.
    torch.testing.assert_close(
        result.norms.double(), distances.min().reshape(1), **close(torch.float32, x[0].numel())
    )


# ------------------------------------------------------------------- robust accuracy counts


class _ScriptedAttack(Attack):
    """An attack whose success on each image is set in advance (the image's id is its first
    pixel, id/100)."""

    name = "scripted"

    def __init__(self, model: nn.Module, fooled: torch.Tensor) -> None:
        super().__init__(model)
        self.fooled = fooled

    def _run(self, images, labels, targets, *args):
        ids = (images.flatten(1)[:, 0] * 100).round().long()
        n = images.shape[0]
        return AttackResult(
            images, self.fooled[ids], torch.zeros(n), torch.ones(n, dtype=torch.long)
        )

    def describe(self):
        return {"attack": self.name}


class _SecondPixel(nn.Module):
    """Predicts class 1 when the second pixel is above 0.5, else class 0."""

    num_classes = 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = x.flatten(1)[:, 1]
        return torch.stack([0.5 - p, p - 0.5], dim=1)


def test_robust_accuracy_counts_correct_and_unfooled_images_over_all_images():
    """40 images in three chunks (batch_size 2 → chunks of 16): image i is classified
    correctly unless i % 3 == 0 (26 correct) and the attack fools it iff i % 4 == 0. Robust =
    correct and not fooled: the 26 correct minus the 6 fooled ones (4, 8, 16, 20, 28, 32) = 20,
    over all 40 images (not over the 26 correct ones). The 7 misclassified images the attack
    does not fool (3, 9, 15, 21, 27, 33, 39) are not robust."""
    n = 40
    i = torch.arange(n)
    labels = torch.ones(n, dtype=torch.long)
    correct = i % 3 != 0
    fooled = i % 4 == 0
    images = torch.zeros(n, 1, 1, 2)
    images[:, 0, 0, 0] = i / 100
    images[:, 0, 0, 1] = torch.where(correct, 0.9, 0.1)
    result = robust_accuracy(
        _SecondPixel(), (images, labels), _ScriptedAttack(None, fooled), batch_size=2
    )
    assert result.n == 40
    assert result.clean_correct.tolist() == correct.tolist()
    expected = [k % 3 != 0 and k % 4 != 0 for k in range(n)]
    assert result.robust.tolist() == expected
    assert sum(expected) == 20
    assert result.clean_accuracy == pytest.approx(26 / 40)
    assert result.robust_accuracy == pytest.approx(20 / 40)
    metrics = {m["name"]: m for m in result.as_metrics()}
    assert metrics["robust_accuracy"]["value"] == pytest.approx(0.5)
    assert metrics["robust_accuracy"]["n"] == 40
