"""APGD and APGD-T obey the ball and the box for any setting (hypothesis, as for PGD), with
‖δ‖ ≤ ε exactly as computed in the images' dtype, and report success truthfully."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustlens.attacks import APGD, APGDT, L2, Linf
from tests.attacks.tiny_models import TinyCNN

THREATS = {"linf": Linf, "l2": L2}
KINDS = ("ce", "dlr", "t", "targeted-ce", "targeted-dlr")


def build(kind, model, threat, steps, restarts, early_stop, seed):
    if kind == "t":
        return APGDT(
            model, threat, steps, targets=3, restarts=restarts, early_stop=early_stop, seed=seed
        )
    targeted = kind.startswith("targeted")
    loss = kind.rsplit("-", 1)[-1]
    return APGD(
        model,
        threat,
        steps,
        loss=loss,
        restarts=restarts,
        targeted=targeted,
        target_mode="next",
        early_stop=early_stop,
        seed=seed,
    )


@settings(max_examples=30, deadline=None)
@given(
    norm=st.sampled_from(list(THREATS)),
    eps=st.floats(0.0, 2.0),
    steps=st.integers(1, 6),
    kind=st.sampled_from(KINDS),
    restarts=st.integers(1, 2),
    early_stop=st.booleans(),
    batch_size=st.sampled_from([None, 2, 5]),
    seed=st.integers(0, 1000),
)
def test_apgd_output_obeys_ball_and_box(
    norm, eps, steps, kind, restarts, early_stop, batch_size, seed
):
    model = TinyCNN(seed=1).eval()
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(6, 1, 6, 6, generator=gen)
    x[0] = 0.0  # images at the box corners
    x[1] = 1.0
    y = torch.randint(0, 10, (6,), generator=gen)
    threat = THREATS[norm](eps)
    attack = build(kind, model, threat, steps, restarts, early_stop, seed)
    result = attack.run(x, y, batch_size=batch_size)
    adv = result.adversarial
    assert adv.shape == x.shape and adv.dtype == x.dtype
    assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0
    # no tolerance: the iterates are kept inside ε with room for the rounding of x + δ − x
    assert bool((threat.norms(adv - x) <= eps).all())
    assert torch.equal(result.norms, threat.norms(adv - x))
    runs = restarts * (3 if kind == "t" else 1)
    assert bool((result.iterations <= steps * runs).all())
    with torch.no_grad():
        pred = model(adv).argmax(1)
    if kind.startswith("targeted"):
        assert torch.equal(result.success, pred == (y + 1) % 10)
    else:
        assert torch.equal(result.success, pred != y)
    if not early_stop:
        # every run spends every step on every image
        assert bool((result.iterations == steps * runs).all())


@settings(max_examples=10, deadline=None)
@given(norm=st.sampled_from(list(THREATS)), seed=st.integers(0, 1000))
def test_float64_images_stay_inside_too(norm, seed):
    model = TinyCNN(seed=2).double().eval()
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(4, 1, 6, 6, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 10, (4,), generator=gen)
    threat = THREATS[norm](0.3)
    adv = APGD(model, threat, 4, loss="dlr", seed=seed).run(x, y).adversarial
    assert adv.dtype == torch.float64
    assert bool((threat.norms(adv - x) <= 0.3).all())
    assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0
