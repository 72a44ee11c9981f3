"""The records an evaluation hands on (model-card metrics, sweep tables), word for word, on a
linear model whose robustness radii are known exactly."""

from __future__ import annotations

import pytest
import torch

from robustlens.attacks import L2, PGD, DeepFool, epsilon_sweep, robust_accuracy
from robustlens.attacks.evaluate import RobustnessResult, SweepResult, predict
from robustlens.proportions import wilson_interval
from tests.attacks.test_minimal_norm import binary_linear

# Images shifted off 0.5 by margin/‖w‖₂ along −w (inside the box for margins ≤ 1.5): their
# exact L2 radii; budgets halfway between two radii split the samples.
MARGINS = torch.tensor([0.1, 0.2, 1.0, 1.5])


def test_minimal_norm_metrics_record_the_attack_and_its_budget():
    model, w, x, y = binary_linear(MARGINS)
    radius = MARGINS / w.norm()
    eps = float((radius[1] + radius[2]) / 2)
    attack = DeepFool(model, "l2", overshoot=0.0)
    result = robust_accuracy(model, (x, y), attack, eps=eps, batch_size=3)
    assert result.eps == eps and result.n == 4
    assert result.robust.tolist() == [False, False, True, True]
    assert result.iterations.tolist() == [1, 1, 1, 1]
    assert result.attack == {**attack.describe(), "eps": eps}
    # Wilson 95 % bounds by hand (z² = 3.841459, n + z² = 7.841459): 4/4 → [4/7.841459, 1];
    # 2/4 → 1/2 ± z/7.841459 · √(1 + z²/4) = 1/2 ± 0.349961.
    assert result.as_metrics() == [
        {
            "name": "clean_accuracy",
            "value": 1.0,
            "n": 4,
            "attack": None,
            "ci_low": pytest.approx(0.510109, abs=5e-7),
            "ci_high": 1.0,
        },
        {
            "name": "robust_accuracy",
            "value": 0.5,
            "n": 4,
            "attack": result.attack,
            "ci_low": pytest.approx(0.150039, abs=5e-7),
            "ci_high": pytest.approx(0.849961, abs=5e-7),
        },
    ]


def test_an_attack_with_a_budget_of_its_own_records_no_eps():
    model, _, x, y = binary_linear(MARGINS)
    attack = PGD(model, L2(1e-3), steps=2)
    result = robust_accuracy(model, (x, y), attack)
    assert result.eps is None and result.attack == attack.describe()
    assert result.robust_accuracy == 1.0 and result.clean_accuracy == 1.0


def test_a_minimal_norm_sweep_is_one_run_thresholded_at_each_budget():
    model, w, x, y = binary_linear(MARGINS)
    radius = (MARGINS / w.norm()).tolist()
    epsilons = [0.0, (radius[0] + radius[1]) / 2, (radius[1] + radius[2]) / 2, 2 * radius[3]]
    attack = DeepFool(model, "l2", overshoot=0.0)
    sweep = epsilon_sweep(model, (x, y), attack, epsilons)
    assert sweep.attacks == [attack.describe()]
    assert sweep.accuracies() == [1.0, 0.75, 0.5, 0.0]
    assert sweep.clean_correct.tolist() == [True] * 4
    frame = sweep.to_frame()
    assert list(frame.columns) == [
        "eps", "robust_accuracy", "ci_low", "ci_high", "clean_accuracy", "n"
    ]  # fmt: skip
    intervals = [wilson_interval(k, 4) for k in (4, 3, 2, 0)]
    assert frame.to_dict("list") == {
        "eps": epsilons,
        "robust_accuracy": [1.0, 0.75, 0.5, 0.0],
        "ci_low": [low for low, _ in intervals],
        "ci_high": [high for _, high in intervals],
        "clean_accuracy": [1.0] * 4,
        "n": [4] * 4,
    }


def test_accuracies_are_means_over_samples():
    result = RobustnessResult(
        clean_correct=torch.tensor([True, True, False, True]),
        robust=torch.tensor([True, False, False, False]),
        norms=torch.zeros(4),
        iterations=torch.zeros(4, dtype=torch.long),
        attack={},
        seconds=0.0,
    )
    assert (result.n, result.clean_accuracy, result.robust_accuracy) == (4, 0.75, 0.25)
    sweep = SweepResult([0.1, 0.2], torch.tensor([True, False]), torch.tensor([[1, 0], [0, 0]]))
    assert sweep.accuracies() == [0.5, 0.0] and sweep.attacks == []


def test_predict_runs_in_batches_in_eval_mode_and_restores_the_mode():
    model, _, x, _ = binary_linear(MARGINS)
    model.train()
    assert predict(model, x, 3).tolist() == [0, 0, 0, 0]
    assert model.training
    assert predict(model, x[:0], 3).tolist() == []


def test_budgets_compare_with_norms_of_any_dtype():
    from robustlens.attacks.evaluate import _input_size, within_budget

    assert within_budget(torch.tensor([1, 2]), 1.0, 4).tolist() == [True, False]
    assert within_budget(torch.tensor([0.5, torch.inf]), 0.5, 1).tolist() == [True, False]
    x = torch.zeros(3, 1, 2, 5)
    assert _input_size((x, torch.zeros(3))) == 10
    assert _input_size((x[:0], torch.zeros(0))) == 1


def test_an_image_set_is_evaluated_like_its_tensors():
    from robustlens.data import DatasetInfo, ImageSet

    model, _, x, y = binary_linear(MARGINS)
    info = DatasetInfo(
        name="lines",
        num_classes=2,
        class_names=("a", "b"),
        shape=(1, 3, 4),
        mean=(0.5,),
        std=(0.25,),
        splits=("test",),
    )
    data = ImageSet(x, y, info, "test", torch.arange(4))
    attack = DeepFool(model, "l2", overshoot=0.0)
    from_set = robust_accuracy(model, data, attack, eps=0.05, batch_size=1)
    from_tensors = robust_accuracy(model, (x, y), attack, eps=0.05, batch_size=3)
    assert torch.equal(from_set.robust, from_tensors.robust)
    assert torch.equal(from_set.clean_correct, from_tensors.clean_correct)
    assert from_set.n == 4
