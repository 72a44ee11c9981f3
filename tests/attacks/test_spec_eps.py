"""An attack setting's ε must be a finite number ≥ 0, however the setting is made."""

from __future__ import annotations

import pytest

from robustlens.attacks.spec import AttackSpec
from robustlens.errors import ConfigError


@pytest.mark.parametrize("eps", [float("nan"), float("inf"), -float("inf"), -0.1, "0.1", None])
def test_a_bad_eps_is_refused_when_built_directly(eps):
    with pytest.raises(ConfigError, match="ε must be"):
        AttackSpec("pgd", "linf", eps, 10)


@pytest.mark.parametrize("text", ["pgd linf nan 10", "pgd l2 -0.5 10", "fgsm linf inf"])
def test_a_bad_eps_is_refused_when_parsed(text):
    with pytest.raises(ConfigError, match="ε"):
        AttackSpec.parse(text)


def test_zero_and_positive_eps_are_accepted():
    assert AttackSpec("deepfool", "l2", 0.0, 50).eps == 0.0
    assert AttackSpec("pgd", "l2", 45, 100).eps == 45
