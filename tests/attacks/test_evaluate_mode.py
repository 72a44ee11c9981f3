"""Evaluating a model never changes it: predict and robust_accuracy run in eval mode
(BatchNorm statistics untouched, the same numbers whatever mode the model was left in) and
give the caller its mode back."""

from __future__ import annotations

import torch

from robustlens.attacks import PGD, Linf, robust_accuracy
from robustlens.attacks.evaluate import predict
from tests.attacks.tiny_models import TinyCNN


def moved_statistics(seed: int = 0) -> TinyCNN:
    """A TinyCNN whose BatchNorm running statistics are not the initial ones."""
    model = TinyCNN(seed=seed).train()
    with torch.no_grad():
        model(torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(seed)) * 3)
    return model


def data() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.rand(20, 1, 8, 8, generator=gen), torch.randint(0, 10, (20,), generator=gen)


def test_robust_accuracy_of_a_model_left_in_train_mode_is_its_eval_mode_accuracy():
    left_training = moved_statistics()
    reference = moved_statistics().eval()
    before = {k: v.clone() for k, v in left_training.state_dict().items()}
    x, y = data()
    got = robust_accuracy(left_training, (x, y), PGD(left_training, Linf(0.05), steps=3))
    want = robust_accuracy(reference, (x, y), PGD(reference, Linf(0.05), steps=3))
    for key, value in left_training.state_dict().items():
        assert torch.equal(value, before[key]), key  # running statistics untouched
    assert left_training.training and all(m.training for m in left_training.modules())
    assert torch.equal(got.clean_correct, want.clean_correct)
    assert torch.equal(got.robust, want.robust)
    assert not reference.training


def test_predict_runs_in_eval_mode_and_restores_the_mode():
    model = moved_statistics()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, _ = data()
    got = predict(model, x, batch_size=7)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert model.training
    with torch.no_grad():
        assert torch.equal(got, model.eval()(x).argmax(1))
