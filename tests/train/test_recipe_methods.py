"""The methods' own settings: defaults from the papers, fields only their methods use (and
that stay out of the other recipes' digests, so no stored model is retrained), names."""

from __future__ import annotations

import hashlib
import json

import pytest

from robustlens.train import Recipe
from robustlens.train.recipe import METHOD_FIELDS, method_name

OLD_FIELDS = {
    "method": "natural",
    "norm": "linf",
    "eps": 0.0,
    "steps": 7,
    "step_size": None,
    "eps_warmup_epochs": 0.0,
    "epochs": 10,
    "batch_size": 128,
    "lr": 0.1,
    "momentum": 0.9,
    "nesterov": True,
    "weight_decay": 5e-4,
    "schedule": "one-cycle",
    "warmup_fraction": 0.25,
    "augment": "none",
    "attack_in_eval_mode": True,
    "seed": 0,
    "eval_n": 1000,
    "eval_steps": 20,
}
"""A recipe's fields before TRADES, MART and N-FGSM came, at their defaults."""


def _sha(values: dict) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


@pytest.mark.parametrize(
    "fields",
    [{}, {"method": "pgd", "eps": 0.1}, {"method": "pgd", "norm": "l2", "eps": 1.5, "steps": 3}],
)
def test_natural_and_pgd_recipes_keep_the_digest_they_had(fields):
    """Models trained before these methods existed are reused, not retrained."""
    assert Recipe(**fields).digest() == _sha({**OLD_FIELDS, **fields})


def test_each_method_records_exactly_the_fields_it_uses():
    new = set(METHOD_FIELDS)
    expected = {
        "natural": set(),
        "pgd": set(),
        "fgsm-rs": {"overfit_checks", "overfit_drop"},
        "n-fgsm": {"noise", "overfit_checks", "overfit_drop"},
        "trades": {"beta"},
        "mart": {"beta"},
    }
    for method, own in expected.items():
        recipe = Recipe(method=method, eps=0.0 if method == "natural" else 0.1)
        assert set(recipe.to_dict()) == set(OLD_FIELDS) | own, method
        assert set(recipe.to_dict()) & new == own
        assert Recipe.from_dict(recipe.to_dict()) == recipe


def test_a_methods_own_fields_change_its_digest():
    pairs = [
        (Recipe(method="trades", eps=0.1), Recipe(method="trades", eps=0.1, beta=1.0)),
        (Recipe(method="mart", eps=0.1), Recipe(method="mart", eps=0.1, beta=5.0)),
        (Recipe(method="n-fgsm", eps=0.1), Recipe(method="n-fgsm", eps=0.1, noise=1.0)),
        (Recipe(method="fgsm-rs", eps=0.1), Recipe(method="fgsm-rs", eps=0.1, overfit_checks=0)),
        (Recipe(method="n-fgsm", eps=0.1), Recipe(method="n-fgsm", eps=0.1, overfit_drop=0.3)),
    ]
    for a, b in pairs:
        assert a.digest() != b.digest()


def test_defaults_follow_the_papers():
    """TRADES and MART: 10 steps of ε/4 (Zhang et al. 2019; Wang et al. 2020), β = 6;
    N-FGSM: noise 2ε, one step of ε (de Jorge et al. 2022); FGSM-RS: 1.25ε; PGD: 7 steps."""
    for method in ("trades", "mart"):
        recipe = Recipe(method=method, eps=0.2)
        assert (recipe.steps, recipe.attack_steps, recipe.beta) == (10, 10, 6.0)
        assert recipe.attack_step_size(0.2) == pytest.approx(0.05)
        assert Recipe(method=method, eps=0.2, steps=4).attack_steps == 4
    nfgsm = Recipe(method="n-fgsm", eps=0.2)
    assert (nfgsm.attack_steps, nfgsm.noise, nfgsm.attack_step_size(0.2)) == (1, 2.0, 0.2)
    assert nfgsm.attack_step_size(0.1) == 0.1  # ε during a warm-up
    assert Recipe(method="fgsm-rs", eps=0.2).attack_step_size(0.2) == pytest.approx(0.25)
    assert Recipe(method="pgd", eps=0.2).steps == Recipe().steps == 7
    for method in ("fgsm-rs", "n-fgsm"):
        recipe = Recipe(method=method, eps=0.1)
        assert (recipe.single_step, recipe.overfit_checks, recipe.overfit_drop) == (True, 4, 0.2)
    assert not Recipe(method="trades", eps=0.1).single_step


def test_switching_method_resets_the_fields_the_new_one_does_not_use():
    trades = Recipe(method="trades", eps=0.1, beta=2.0, epochs=3)
    natural = trades.for_method("natural", eps=0.0)
    assert natural == Recipe(epochs=3, steps=10)
    assert trades.for_method("mart") == Recipe(method="mart", eps=0.1, epochs=3, steps=10)
    fgsm = Recipe(method="fgsm-rs", eps=0.1, overfit_checks=1)
    assert fgsm.for_method("n-fgsm").overfit_checks == 4
    assert fgsm.for_method("fgsm-rs").overfit_checks == 4  # back to the default as well


def test_method_names_for_tables():
    cases = [
        ({"method": "natural"}, "natural"),
        ({}, "natural"),
        ({"method": "pgd", "steps": 7}, "PGD-7"),
        ({"method": "fgsm-rs", "steps": 7}, "FGSM-RS"),
        ({"method": "n-fgsm", "noise": 2.0}, "N-FGSM k=2"),
        ({"method": "trades", "steps": 10, "beta": 6.0}, "TRADES-10 β=6"),
        ({"method": "mart", "steps": 10, "beta": 0.5}, "MART-10 β=0.5"),
    ]
    for recipe, name in cases:
        assert method_name(recipe) == name
    assert method_name(Recipe(method="trades", eps=0.1).to_dict()) == "TRADES-10 β=6"
