"""Helpers the lenses share: attack results computed once per study run."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from robustlens.attacks.spec import AttackSpec, parse_specs
from robustlens.lenses.common import adversarial, resolve_attacks, subset
from robustlens.lenses.norm_ratio import NormRatioParams
from tests.lenses.helpers import TOY, brightness_images, make_ctx, study_model, trained_cnn
from tests.tolerances import float_tol

INFO = TOY
DATA = brightness_images(INFO, 40, seed=11)


def test_one_run_per_model_data_and_setting():
    ctx = make_ctx(INFO)
    a, b = study_model(trained_cnn(INFO, 0), "a"), study_model(trained_cnn(INFO, 1), "b")
    first = adversarial(ctx, a, DATA, AttackSpec.parse("pgd l2 1 3"), early_stop=False)
    assert adversarial(ctx, a, DATA, AttackSpec.parse("pgd l2 1 3"), early_stop=False) is first
    assert adversarial(ctx, a, DATA, AttackSpec.parse("pgd l2 1 3"), early_stop=True) is not first
    assert adversarial(ctx, b, DATA, AttackSpec.parse("pgd l2 1 3"), early_stop=False) is not first
    other = subset(DATA, 20)
    assert adversarial(ctx, a, other, AttackSpec.parse("pgd l2 1 3"), early_stop=False) is not first
    # a minimal-norm attack does not depend on the budget that judges it
    df = adversarial(ctx, a, DATA, AttackSpec.parse("deepfool l2 0.3"), early_stop=True)
    again = adversarial(ctx, a, DATA, AttackSpec("deepfool", "l2", 0.0, 50), early_stop=False)
    assert again is df
    assert first.adversarial.device.type == "cpu"


def test_resolve_attacks_pairs_written_and_run_settings():
    pairs = resolve_attacks(parse_specs(("pgd l2 0.25 5", "fgsm linf 0.03")), DATA, 3072)
    (w1, r1), (w2, r2) = pairs
    # the lens takes math.sqrt, this test ** 0.5 (pow, not always correctly rounded): ≤ 1 ulp
    assert w1.eps == 0.25 and r1.eps == pytest.approx(
        0.25 * (144 / 3072) ** 0.5, rel=float_tol(np.float64)
    )
    assert w2.eps == r2.eps == 0.03


def test_resolve_attacks_moves_each_row_from_its_own_reference():
    texts = ("pgd l2 45 5 @imagenet", "pgd l2 0.25 5", "pgd l1 1 5 @144", "fgsm l1 0.5 @cifar10")
    for lens_reference, untagged in ((3072, 0.25 * (144 / 3072) ** 0.5), (0, 0.25)):
        pairs = resolve_attacks(parse_specs(texts), DATA, lens_reference)
        assert [w.key() for w, _ in pairs] == [
            "pgd l2 45 5 @imagenet",
            "pgd l2 0.25 5",
            "pgd l1 1 5 @144",
            "fgsm l1 0.5 @cifar10",
        ]
        # 150 528 / 144 = 1 045.33: ε·√(144/150528); L1 at its own resolution stays; × 144/3072
        assert [r.eps for _, r in pairs] == pytest.approx(
            [45 * (144 / 150528) ** 0.5, untagged, 1.0, 0.5 * 144 / 3072], rel=1e-12
        )
        assert all(r.reference is None for _, r in pairs)  # as run: the data's own units


def test_model_labels_name_the_norm_as_the_papers_write_it():
    from tests.claims.test_paper000 import model

    assert model("natural").label() == "natural (natural)"
    assert model("linf-0.1", "pgd", "linf", 0.1).label() == "linf-0.1 (L∞ ε=0.1)"
    assert model("l2-1.5", "fgsm-rs", "l2", 1.5).label() == "l2-1.5 (L2 ε=1.5)"


def test_attack_settings_are_parsed_once_and_stored_as_written():
    """A lens's attack settings are parsed when its parameters are made; the parameters keep
    the text (what is stored and hashed into the cache key) and hand the lens the parsed
    settings, the same objects at every use."""
    params = NormRatioParams(attacks=("pgd l2 0.25 20", "fgsm linf 0.03"))
    assert params.attack_specs == (
        AttackSpec("pgd", "l2", 0.25, 20),
        AttackSpec("fgsm", "linf", 0.03),
    )
    assert params.attack_specs is params.attack_specs
    assert dataclasses.asdict(params) == {
        "attacks": ("pgd l2 0.25 20", "fgsm linf 0.03"),
        "reference_dim": 3072,
        "n": None,
    }
    moved = dataclasses.replace(params, attacks=("pgd linf 0.1 5",))
    assert moved.attack_specs == (AttackSpec("pgd", "linf", 0.1, 5),)
