"""Every attack once on the device against the same attack on the CPU.

The random starts are drawn on the CPU by each attack's own generator and moved, so both runs
start from the same points; what differs is the order in which the device's kernels sum
(float32, TF32 off). A gradient coordinate that is almost zero can then take the other sign,
and an image at the decision boundary can end on the other side, so the per-image outcomes are
required to agree on AGREE of the images (not all), while the budget and the [0, 1] box hold
exactly on the device.
"""

from __future__ import annotations

import math

import pytest
import torch

from robustlens.attacks import FGSM, L1, L2, PGD, CarliniWagnerL2, DeepFool, Linf, robust_accuracy
from robustlens.attacks.spec import AttackSpec
from tests.gpu.helpers import N, agreement, brightness_test_set, model_pair
from tests.tolerances import eps as machine_eps
from tests.tolerances import float_tol

pytestmark = pytest.mark.gpu

AGREE = 0.9
"""Share of images whose outcome (fooled or not) must be the same on both devices: 6 of 64
images may sit close enough to the boundary for float32 summation order to decide."""

BOUNDED = {
    "pgd-linf": lambda m: PGD(m, Linf(0.1), steps=10),
    "pgd-l2": lambda m: PGD(m, L2(1.0), steps=10),
    "pgd-l1": lambda m: PGD(m, L1(8.0), steps=10),
    "pgd-linf-restarts-targeted": lambda m: PGD(
        m, Linf(0.1), steps=5, restarts=2, targeted=True, target_mode="random"
    ),
    "fgsm-linf": lambda m: FGSM(m, Linf(0.1)),
}
MINIMAL = {
    "cw-l2": lambda m: CarliniWagnerL2(m, steps=50, binary_search_steps=4, initial_const=0.1),
    "deepfool-l2": lambda m: DeepFool(m, "l2"),
    "deepfool-linf": lambda m: DeepFool(m, "linf"),
}


def _norm_slack(attack, d: int) -> float:
    """How far above ε a norm of x_adv − x may come out: the subtraction rounds each pixel
    (in [0, 1]) by at most one float32 ulp of 1, and an Lp norm of d such errors adds √d or d."""
    one_ulp = machine_eps(torch.float32)
    if isinstance(attack.threat, Linf):
        return 2 * one_ulp
    if isinstance(attack.threat, L2):
        return attack.threat.eps * float_tol(torch.float32, d) + 2 * one_ulp * math.sqrt(d)
    return attack.threat.eps * float_tol(torch.float32, d) + 2 * one_ulp * d


@pytest.mark.parametrize("name", sorted(BOUNDED))
def test_bounded_attack_on_device_matches_cpu(gpu_device, name):
    cpu_model, dev_model = model_pair(gpu_device)
    data = brightness_test_set()
    x, y = data.images, data.labels
    on_cpu = BOUNDED[name](cpu_model).run(x, y, batch_size=24)
    attack = BOUNDED[name](dev_model)
    xd = x.to(gpu_device)
    on_dev = attack.run(xd, y.to(gpu_device), batch_size=24)
    adv = on_dev.adversarial
    assert adv.device.type == gpu_device.type
    assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0  # exactly in the box
    d = x[0].numel()
    norms = attack.threat.norms(adv - xd)
    assert float(norms.max()) <= attack.threat.eps + _norm_slack(attack, d), name
    assert agreement(on_cpu.success, on_dev.success) >= AGREE, name
    assert 0 < float(on_cpu.success.float().mean()) < 1, "the check needs both outcomes"


@pytest.mark.parametrize("name", sorted(MINIMAL))
def test_minimal_norm_attack_on_device_matches_cpu(gpu_device, name):
    cpu_model, dev_model = model_pair(gpu_device)
    data = brightness_test_set()
    x, y = data.images, data.labels
    on_cpu = MINIMAL[name](cpu_model).run(x, y, batch_size=24)
    on_dev = MINIMAL[name](dev_model).run(x.to(gpu_device), y.to(gpu_device), batch_size=24)
    adv = on_dev.adversarial
    assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0
    assert agreement(on_cpu.success, on_dev.success) >= AGREE, name
    both = (on_cpu.success & on_dev.success.cpu()).nonzero().flatten()
    assert both.numel() >= N // 2, f"{name}: too few images fooled on both devices"
    a, b = on_cpu.norms[both].double(), on_dev.norms.cpu()[both].double()
    # The norm found is a continuous function of the gradients for most images: 2 % median
    # relative difference allows for iterates that took a different branch (C&W's binary
    # search, DeepFool's closest class) on a few images.
    assert float(((a - b).abs() / a.clamp_min(1e-12)).median()) <= 0.02, name


SPECS = ("pgd linf 0.1 10", "fgsm linf 0.1", "pgd l2 1.0 10", "deepfool l2 1.0", "cw l2 1.0 20")


@pytest.mark.parametrize("text", SPECS)
def test_robust_accuracy_through_specs_on_device(gpu_device, text):
    """The path studies take: an attack spec built on the model, then robust_accuracy."""
    cpu_model, dev_model = model_pair(gpu_device)
    data = brightness_test_set()
    spec = AttackSpec.parse(text)
    eps = spec.eps if spec.attack in ("deepfool", "cw") else None
    results = [
        robust_accuracy(m, data, spec.build(m, seed=0, cw_binary_steps=3), eps=eps, batch_size=16)
        for m in (cpu_model, dev_model)
    ]
    assert agreement(results[0].clean_correct, results[1].clean_correct) >= 1 - 1 / N
    assert agreement(results[0].robust, results[1].robust) >= AGREE, text
    assert abs(results[0].robust_accuracy - results[1].robust_accuracy) <= 1 - AGREE
