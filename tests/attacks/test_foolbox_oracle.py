"""Agreement with Foolbox on trained Fashion-MNIST models (the attack oracle).

Our robust accuracy must not exceed Foolbox's by more than 0.5 points for the same budget and
steps: a weaker attack than the reference would overstate robustness.
"""

from __future__ import annotations

import pytest
import torch

from robustlens.attacks import FGSM, L2, PGD, Linf, robust_accuracy

fb = pytest.importorskip("foolbox", reason="the Foolbox oracle needs the 'oracles' extra")

STEPS = 20
CASES = [
    ("linf-pgd", 0.1),
    ("l2-pgd", 1.5),
    ("linf-fgsm", 0.1),
]


def foolbox_robust_accuracy(model, data, kind: str, eps: float) -> float:
    fmodel = fb.PyTorchModel(model, bounds=(0, 1))
    if kind == "linf-pgd":
        attack = fb.attacks.LinfPGD(steps=STEPS, abs_stepsize=2.5 * eps / STEPS)
    elif kind == "l2-pgd":
        attack = fb.attacks.L2PGD(steps=STEPS, abs_stepsize=2.5 * eps / STEPS)
    else:
        attack = fb.attacks.LinfFastGradientAttack(random_start=False)
    robust = []
    for x, y in data.batches(250):
        torch.manual_seed(0)
        _, _, success = attack(fmodel, x, y, epsilons=eps)
        robust.append(~success)
    return float(torch.cat(robust).float().mean())


def our_robust_accuracy(model, data, kind: str, eps: float) -> float:
    if kind == "linf-pgd":
        attack = PGD(model, Linf(eps), steps=STEPS)
    elif kind == "l2-pgd":
        attack = PGD(model, L2(eps), steps=STEPS)
    else:
        attack = FGSM(model, Linf(eps))
    return robust_accuracy(model, data, attack).robust_accuracy


@pytest.mark.slow
@pytest.mark.parametrize("which", ["natural", "robust"])
@pytest.mark.parametrize(("kind", "eps"), CASES)
def test_our_attacks_are_at_least_as_strong_as_foolbox(
    fmnist_models, fmnist_test, which, kind, eps
):
    model = fmnist_models[which]
    ours = our_robust_accuracy(model, fmnist_test, kind, eps)
    theirs = foolbox_robust_accuracy(model, fmnist_test, kind, eps)
    assert ours <= theirs + 0.005, f"{which} {kind} ε={eps}: ours {ours:.3f}, Foolbox {theirs:.3f}"
    if which == "robust" and kind != "l2-pgd":
        # The comparison means something only if the model is not trivially broken.
        assert theirs > 0.3


@pytest.mark.slow
@pytest.mark.parametrize("which", ["natural", "robust"])
def test_deepfool_finds_the_perturbations_foolbox_finds(fmnist_models, fmnist_test, which):
    """DeepFool L2 (all classes, 50 steps, overshoot 0.02, clipped to [0, 1]) is the algorithm
    Foolbox's L2DeepFoolAttack runs: per image the same success and, where both succeed, the
    same perturbation size up to float rounding. Our working pool (32 rows here) changes the
    order the images are processed in, never their results."""
    from robustlens.attacks import DeepFool

    model = fmnist_models[which]
    x, y = fmnist_test.images[:120], fmnist_test.labels[:120]
    ours = DeepFool(model, "l2", steps=50, overshoot=0.02).run(x, y, batch_size=32)
    attack = fb.attacks.L2DeepFoolAttack(steps=50, candidates=10, overshoot=0.02)
    _, advs, success = attack(fb.PyTorchModel(model, bounds=(0, 1)), x, y, epsilons=None)
    theirs = (advs - x).flatten(1).norm(dim=1)
    assert (ours.success == success).float().mean() >= 0.99
    both = ours.success & success
    close = torch.isclose(ours.norms[both], theirs[both], rtol=1e-3, atol=1e-4)
    assert close.float().mean() >= 0.97, (ours.norms[both][~close], theirs[both][~close])
    assert ours.norms[both].mean() <= theirs[both].mean() * 1.005
    assert ours.adversarial.min() >= 0 and ours.adversarial.max() <= 1
