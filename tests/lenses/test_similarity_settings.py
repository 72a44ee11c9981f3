"""The similarity lens's default attacks: Tables 7 and A3 of Garaev et al. 2024 (§4.1)."""

from __future__ import annotations

import pytest

from robustlens.attacks.spec import CIFAR10_DIM, AttackSpec
from robustlens.errors import ConfigError
from robustlens.lenses import get_lens, similarity
from tests.lenses.helpers import TOY, brightness_images, make_ctx, study_model, trained_cnn

INFO = TOY
LENS = get_lens("similarity")


def test_defaults_are_table_7_then_the_new_rows_of_table_a3():
    p = LENS.resolve_params(INFO, {}, "test")
    assert p.reference_dim == CIFAR10_DIM
    assert p.attacks == (
        "pgd l2 0.25 100",  # Table 7
        "pgd linf 0.025 100",
        "fgsm l2 0.25",  # Tables 7 and A3: once
        "fgsm linf 0.025",
        "pgd l2 0.25 1000",  # Table A3: the best and worst rows of Tables 1–2
        "pgd linf 0.25 5",
        "fgsm linf 0.25",
    )
    source = {t: similarity.PAPER.source(AttackSpec.parse(t), CIFAR10_DIM) for t in p.attacks}
    assert source == {
        "pgd l2 0.25 100": "7",
        "pgd linf 0.025 100": "7",
        "fgsm l2 0.25": "7, A3",
        "fgsm linf 0.025": "7",
        "pgd l2 0.25 1000": "A3",
        "pgd linf 0.25 5": "A3",
        "fgsm linf 0.25": "A3",
    }


def test_rows_are_marked_with_their_table():
    data = brightness_images(INFO, 24, seed=5)
    p = LENS.resolve_params(
        INFO, {"attacks": ["fgsm l2 0.25", "fgsm linf 0.25", "fgsm linf 0.1"], "bootstrap": 0}, "t"
    )
    frame = similarity.compute(study_model(trained_cnn(INFO)), data, p, make_ctx(INFO)).tables[
        "similarity"
    ]
    svcca = frame[frame.metric == "svcca"]
    eps = 0.25 * (144 / 3072) ** 0.5
    assert list(svcca.table) == ["7, A3", "A3", ""]
    assert list(svcca.setting) == [
        f"FGSM L2 ε={eps:.3g} (Tables 7, A3)",
        "FGSM L∞ ε=0.25 (Table A3)",
        "FGSM L∞ ε=0.1",
    ]


def test_repeated_attacks_are_refused():
    with pytest.raises(ConfigError, match="same attack"):
        LENS.resolve_params(INFO, {"attacks": ["fgsm linf 0.25", "fgsm linf 0.25 @imagenet"]}, "t")
