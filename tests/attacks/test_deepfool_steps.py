"""DeepFool's single steps worked by hand on a two-class linear model with saturated pixels:
the box-aware gradient mask, the step bound, gradients smaller than 1 and models that do not
name their number of classes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robustlens.attacks import DeepFool
from tests.attacks.tiny_models import LinearClassifier
from tests.tolerances import close

# z₁ − z₀ = g(x) = w·x + b with w = (0.3, 0.2, −0.1), b = −0.45. At x = (1, 0.5, 0): g = −0.05,
# so class 0. Pixel 0 sits at 1 and w₀ > 0, pixel 2 sits at 0 and w₂ < 0: a step along +w
# pushes both out of the box. Only pixel 1 (w₁ = 0.2) is free.
W = torch.tensor([0.3, 0.2, -0.1])
B = -0.45
X = torch.tensor([1.0, 0.5, 0.0]).view(1, 1, 1, 3)
Y = torch.tensor([0])
F = 0.05 + 1e-4  # |g| + DeepFool's 1e-4


def linear_model() -> LinearClassifier:
    return LinearClassifier(torch.stack([torch.zeros(3), W]), torch.tensor([0.0, B])).eval()


def assert_point(actual: torch.Tensor, expected: list[float]) -> None:
    want = torch.tensor(expected).view_as(actual)
    torch.testing.assert_close(actual, want, **close(torch.float32, n_terms=3, ulps=16))


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_box_aware_steps_move_only_the_free_pixels(norm):
    """Free part of w: (0, 0.2, 0), ‖·‖₂ = ‖·‖₁ = 0.2 (below 1, so no floor on the dual norm
    may round it up). L2: r = F/0.2² · (0, 0.2, 0); L∞: r = F/0.2 · sign(0, 0.2, 0); both
    (0, 0.2505, 0), which crosses the boundary in one step: g = −0.05 + 0.2·0.2505 = 1e-4·2."""
    result = DeepFool(linear_model(), norm, overshoot=0.0, box_aware=True).run(X, Y)
    assert result.success.tolist() == [True]
    assert result.iterations.tolist() == [1]
    assert_point(result.adversarial, [1.0, 0.5 + F / 0.2, 0.0])
    assert result.norms.item() == pytest.approx(F / 0.2, rel=close(torch.float32, 3)["rtol"])


def test_the_overshoot_scales_the_box_aware_total():
    result = DeepFool(linear_model(), "l2", overshoot=0.5, box_aware=True).run(X, Y)
    assert result.iterations.tolist() == [1]
    assert_point(result.adversarial, [1.0, 0.5 + 1.5 * F / 0.2, 0.0])


def test_plain_steps_lose_the_clipped_part_and_stop_at_the_step_bound():
    """Without the mask: r = F/‖w‖₂² · w with ‖w‖₂² = 0.14, clipped to the box; pixel 1 moves
    by 0.2·F/0.14 only, g stays < 0, and steps=1 stops there, unfooled (norm ∞)."""
    result = DeepFool(linear_model(), "l2", overshoot=0.0, steps=1).run(X, Y)
    assert result.success.tolist() == [False]
    assert result.iterations.tolist() == [1]
    assert_point(result.adversarial, [1.0, 0.5 + 0.2 * F / 0.14, 0.0])
    assert result.norms.tolist() == [float("inf")]
    more = DeepFool(linear_model(), "l2", overshoot=0.0, steps=2).run(X, Y)
    assert more.iterations.tolist() == [2]


def test_free_zeroes_exactly_the_components_that_push_out_of_the_box():
    """grads [C=2, N=3, 2 pixels], points [N=3, 2 pixels]: a component is zeroed where its
    pixel is at 0 and the gradient is negative, or at 1 and the gradient is positive."""
    point = torch.tensor([[0.0, 1.0], [0.5, 0.0], [1.0, 0.3]])
    grads = torch.tensor(
        [
            [[-1.0, 2.0], [3.0, -4.0], [5.0, 6.0]],
            [[1.0, -2.0], [-3.0, 4.0], [-5.0, -6.0]],
        ]
    )
    expected = torch.tensor(
        [
            [[0.0, 0.0], [3.0, 0.0], [0.0, 6.0]],
            [[1.0, -2.0], [-3.0, 4.0], [-5.0, -6.0]],
        ]
    )
    assert torch.equal(DeepFool._free(grads, point), expected)


def test_a_model_without_a_num_classes_attribute_is_attacked_the_same():
    """The number of classes then comes from one forward pass."""
    plain = nn.Sequential(nn.Flatten(), nn.Linear(3, 2)).eval()
    with torch.no_grad():
        plain[1].weight.copy_(torch.stack([torch.zeros(3), W]))
        plain[1].bias.copy_(torch.tensor([0.0, B]))
    assert not hasattr(plain, "num_classes")
    ours = DeepFool(plain, "l2", overshoot=0.0, box_aware=True).run(X, Y)
    theirs = DeepFool(linear_model(), "l2", overshoot=0.0, box_aware=True).run(X, Y)
    assert torch.equal(ours.adversarial, theirs.adversarial)
    assert ours.iterations.tolist() == [1]


def test_describe_names_every_setting():
    attack = DeepFool(linear_model(), "LinF", steps=7, overshoot=0.1, candidates=3, box_aware=1)
    assert attack.describe() == {
        "attack": "deepfool",
        "norm": "linf",
        "steps": 7,
        "overshoot": 0.1,
        "candidates": 3,
        "box_aware": True,
    }


def test_candidates_are_the_most_likely_other_classes():
    logits = torch.tensor([[0.1, 0.5, 0.3, 0.9], [2.0, 1.0, 3.0, 0.0]])
    labels = torch.tensor([3, 2])
    model = linear_model()
    ranked = DeepFool(model, candidates=3)._candidate_classes(logits, labels)
    assert ranked.tolist() == [[1, 2], [0, 1]]
    everything = DeepFool(model, candidates=None)._candidate_classes(logits, labels)
    assert everything.tolist() == [[1, 2, 0], [0, 1, 3]]
    assert DeepFool(model, candidates=10)._candidate_classes(logits, labels).tolist() == (
        everything.tolist()
    )


def test_only_the_candidate_classes_are_tried():
    """Logits at x = (0, 0): (0, −0.5, −1). Class 1 is the more likely other class, but class
    2's boundary is nearer: 1/‖(0, 4)‖ = 0.25 against 0.5/‖(1, 0)‖ = 0.5. With all classes
    DeepFool reaches class 2; with 2 candidates (the label and the top other class) class 1."""
    weight = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 4.0]])
    model = LinearClassifier(weight, torch.tensor([0.0, -0.5, -1.0])).eval()
    x, y = torch.zeros(1, 1, 1, 2), torch.tensor([0])
    rtol = close(torch.float32, 2)["rtol"]
    nearest = DeepFool(model, overshoot=0.0, candidates=None).run(x, y)
    assert model(nearest.adversarial).argmax(1).tolist() == [2]
    assert nearest.norms.item() == pytest.approx((1 + 1e-4) / 4, rel=rtol)
    top = DeepFool(model, overshoot=0.0, candidates=2).run(x, y)
    assert model(top.adversarial).argmax(1).tolist() == [1]
    assert top.norms.item() == pytest.approx(0.5 + 1e-4, rel=rtol)


def test_the_defaults_are_foolbox_s_and_the_paper_s():
    assert DeepFool(linear_model()).describe() == {
        "attack": "deepfool",
        "norm": "l2",
        "steps": 50,
        "overshoot": 0.02,
        "candidates": 10,
        "box_aware": False,
    }
    # DeepFool draws nothing at random; its seed is kept like every attack's
    assert DeepFool(linear_model()).seed == 0
    assert DeepFool(linear_model(), seed=5).seed == 5
