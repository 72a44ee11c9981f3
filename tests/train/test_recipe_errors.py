"""Every way a training recipe can be wrong gets its own exact message and fix (the bad-input
contract: say what is wrong and how to repair it); the boundary values next to each refusal are
accepted."""

from __future__ import annotations

import hashlib
import json
import math

import pytest

from robustlens.errors import ConfigError
from robustlens.train import Recipe
from robustlens.train.recipe import MAX_EPOCHS

ADV = {"method": "pgd", "eps": 0.1}


def _refused(field: str, value: object) -> str:
    return f"training recipe: {field} = {value!r} is not allowed"


METHODS = "use one of 'natural', 'pgd', 'fgsm-rs', 'n-fgsm', 'trades', 'mart'"
NORMS = "use one of 'linf', 'l2', 'l1'"
SCHEDULES = "use one of 'one-cycle', 'cosine', 'constant'"
AUGMENTS = "use one of 'none', 'crop', 'crop-flip'"
EPOCHS = "use a whole number in [1, 10,000]; more than 10,000 epochs is almost surely a typo"
STEP_SIZE = "use a finite number > 0 or nothing (leave it out)"
STEPS = "use a whole number ≥ 1 or nothing (leave it out)"

# (recipe fields, exact problem, exact fix)
BAD_RECIPES = [
    ({"method": "TRADES"}, _refused("method", "TRADES"), METHODS),
    ({"norm": "l3"}, _refused("norm", "l3"), NORMS),
    ({"schedule": "step"}, _refused("schedule", "step"), SCHEDULES),
    ({"augment": "flip"}, _refused("augment", "flip"), AUGMENTS),
    ({"eps": -0.1}, _refused("eps", -0.1), "use a finite number ≥ 0"),
    ({"eps": -1}, _refused("eps", -1), "use a finite number ≥ 0"),
    (
        {"norm": "linf", "eps": 1.5},
        _refused("eps", 1.5),
        "use an L∞ budget ≤ 1 (pixels lie in [0, 1])",
    ),
    (
        {"method": "pgd", "eps": 0.0},
        _refused("eps", 0.0),
        "use a budget > 0 for method 'pgd'; e.g. eps = 0.1 for L∞ on Fashion-MNIST",
    ),
    (
        {"method": "fgsm-rs"},
        _refused("eps", 0.0),
        "use a budget > 0 for method 'fgsm-rs'; e.g. eps = 0.1 for L∞ on Fashion-MNIST",
    ),
    ({"epochs": 0}, _refused("epochs", 0), EPOCHS),
    ({"batch_size": 0}, _refused("batch_size", 0), "use a whole number ≥ 1"),
    ({"steps": 0}, _refused("steps", 0), STEPS),
    ({"steps": -3}, _refused("steps", -3), STEPS),
    ({"eval_n": 0}, _refused("eval_n", 0), "use a whole number ≥ 1"),
    ({"eval_steps": 0}, _refused("eval_steps", 0), "use a whole number ≥ 1"),
    ({"epochs": MAX_EPOCHS + 1}, _refused("epochs", 10_001), EPOCHS),
    ({"lr": 0.0}, _refused("lr", 0.0), "use a finite number > 0"),
    ({"lr": -0.1}, _refused("lr", -0.1), "use a finite number > 0"),
    ({"momentum": 1.0}, _refused("momentum", 1.0), "use a number in [0, 1)"),
    ({"momentum": -0.1}, _refused("momentum", -0.1), "use a number in [0, 1)"),
    ({"weight_decay": -1e-4}, _refused("weight_decay", -1e-4), "use a finite number ≥ 0"),
    ({"warmup_fraction": 1.0}, _refused("warmup_fraction", 1.0), "use a number in [0, 1)"),
    ({"warmup_fraction": -0.5}, _refused("warmup_fraction", -0.5), "use a number in [0, 1)"),
    (
        {"eps_warmup_epochs": -1.0},
        _refused("eps_warmup_epochs", -1.0),
        "use a finite number ≥ 0",
    ),
    (
        {"epochs": 3, "eps_warmup_epochs": 3.5},
        _refused("eps_warmup_epochs", 3.5),
        "use at most epochs = 3 (a longer warm-up never reaches eps)",
    ),
    ({**ADV, "step_size": 0.0}, _refused("step_size", 0.0), STEP_SIZE),
    ({**ADV, "step_size": -0.01}, _refused("step_size", -0.01), STEP_SIZE),
    # wrong types: the same message as a value out of range (one description per field)
    ({"epochs": 2.0}, _refused("epochs", 2.0), EPOCHS),
    ({"epochs": True}, _refused("epochs", True), EPOCHS),
    ({"seed": "0"}, _refused("seed", "0"), "use a whole number"),
    ({"eps": "0.1"}, _refused("eps", "0.1"), "use a finite number ≥ 0"),
    ({"eps": False}, _refused("eps", False), "use a finite number ≥ 0"),
    ({"eps": math.inf}, _refused("eps", math.inf), "use a finite number ≥ 0"),
    ({"lr": math.nan}, _refused("lr", math.nan), "use a finite number > 0"),
    ({"lr": None}, _refused("lr", None), "use a finite number > 0"),
    ({"step_size": math.inf}, _refused("step_size", math.inf), STEP_SIZE),
    ({"step_size": "big"}, _refused("step_size", "big"), STEP_SIZE),
    ({"nesterov": 1}, _refused("nesterov", 1), "use true or false"),
    ({"attack_in_eval_mode": "yes"}, _refused("attack_in_eval_mode", "yes"), "use true or false"),
    ({"method": 3}, _refused("method", 3), METHODS),
    # fields of other methods, and their own ranges
    ({**ADV, "beta": 3.0}, _refused("beta", 3.0), "use beta only with method 'trades' or 'mart'"),
    ({**ADV, "noise": 1.0}, _refused("noise", 1.0), "use noise only with method 'n-fgsm'"),
    (
        {"method": "trades", "eps": 0.1, "overfit_checks": 2},
        _refused("overfit_checks", 2),
        "use overfit_checks only with method 'fgsm-rs' or 'n-fgsm'",
    ),
    (
        {"overfit_drop": 0.5},
        _refused("overfit_drop", 0.5),
        "use overfit_drop only with method 'fgsm-rs' or 'n-fgsm'",
    ),
    ({"beta": 0.0}, _refused("beta", 0.0), "use a finite number > 0"),
    ({"noise": -1.0}, _refused("noise", -1.0), "use a finite number ≥ 0"),
    ({"overfit_checks": -1}, _refused("overfit_checks", -1), "use a whole number ≥ 0"),
    ({"overfit_checks": 2.0}, _refused("overfit_checks", 2.0), "use a whole number ≥ 0"),
    ({"overfit_drop": 0.0}, _refused("overfit_drop", 0.0), "use a number in (0, 1]"),
    ({"overfit_drop": 1.5}, _refused("overfit_drop", 1.5), "use a number in (0, 1]"),
    ({"norm": None}, _refused("norm", None), NORMS),
]


@pytest.mark.parametrize(
    ("fields", "problem", "fix"), BAD_RECIPES, ids=[repr(f) for f, _, _ in BAD_RECIPES]
)
def test_a_bad_recipe_gets_one_exact_message_and_fix(fields, problem, fix):
    with pytest.raises(ConfigError) as caught:
        Recipe(**fields)
    assert caught.value.problem == problem
    assert caught.value.fix == fix
    assert str(caught.value) == f"{problem}. {fix}"


def test_the_first_problem_in_field_order_is_the_one_reported():
    """A recipe with two wrong fields names the first check's field (method before norm)."""
    with pytest.raises(ConfigError) as caught:
        Recipe(method="x", norm="y", schedule="z")
    assert caught.value.problem == _refused("method", "x")


# Values right at each refusal's edge, all accepted.
GOOD_RECIPES = [
    {"norm": "l2", **ADV},
    {"norm": "l1", **ADV},
    {"norm": "l2", "method": "pgd", "eps": 1.5},  # only L∞ budgets are capped at 1
    {"norm": "l1", "method": "pgd", "eps": 12},
    {"norm": "linf", "method": "pgd", "eps": 1.0},
    {"method": "fgsm-rs", "eps": 0.03},
    {"schedule": "cosine"},
    {"schedule": "constant"},
    {"augment": "crop"},
    {"augment": "crop-flip"},
    {"eps": 0},
    {"epochs": 1, "batch_size": 1, "steps": 1, "eval_n": 1, "eval_steps": 1},
    {"epochs": MAX_EPOCHS},
    {"lr": 1e-6},
    {"lr": 5},  # a whole number is a number
    {"momentum": 0.0},
    {"momentum": 0.99},
    {"weight_decay": 0.0},
    {"warmup_fraction": 0.0},
    {"epochs": 3, "eps_warmup_epochs": 3},
    {**ADV, "step_size": 1e-4},
    {**ADV, "step_size": None},
    {"nesterov": False, "attack_in_eval_mode": False},
    {"seed": -5},
    {"method": "trades", "eps": 0.1, "beta": 1e-3},
    {"method": "mart", "eps": 0.1, "beta": 0.5, "steps": 3},
    {"method": "n-fgsm", "eps": 0.1, "noise": 0.0},
    {"method": "fgsm-rs", "eps": 0.1, "overfit_checks": 0, "overfit_drop": 1.0},
    {"method": "n-fgsm", "eps": 0.1, "overfit_checks": 100, "overfit_drop": 1e-6},
    {**ADV, "beta": 6.0, "noise": 2.0},  # other methods' fields at their defaults
]


@pytest.mark.parametrize("fields", GOOD_RECIPES, ids=[repr(f) for f in GOOD_RECIPES])
def test_values_at_the_edge_of_each_refusal_are_accepted(fields):
    recipe = Recipe(**fields)
    assert {name: getattr(recipe, name) for name in fields} == fields


def test_unknown_keys_are_named_with_the_allowed_ones():
    """The first unknown key (sorted) is named, with the nearest known one."""
    with pytest.raises(ConfigError) as caught:
        Recipe.from_dict({"epochz": 3, "lr": 0.1, "aug": "crop"})
    assert caught.value.problem == "training recipe: aug: unknown key"
    assert caught.value.fix == (
        "did you mean 'augment'? allowed: attack_in_eval_mode, augment, batch_size, beta, "
        "channels_last, epochs, eps, eps_warmup_epochs, eval_attack, eval_n, eval_steps, lr, "
        "method, momentum, "
        "nesterov, noise, norm, overfit_checks, overfit_drop, precision, schedule, seed, "
        "step_size, steps, sync_batchnorm, "
        "warmup_fraction, weight_decay"
    )


def test_from_dict_builds_the_recipe_it_is_given():
    assert Recipe.from_dict({"method": "pgd", "eps": 0.2, "epochs": 4}) == Recipe(
        method="pgd", eps=0.2, epochs=4
    )
    assert Recipe.from_dict({}) == Recipe()


def test_attack_settings_follow_the_method():
    natural, pgd = Recipe(), Recipe(method="pgd", eps=0.2, steps=5)
    fgsm = Recipe(method="fgsm-rs", eps=0.2, steps=5)
    assert (natural.adversarial, pgd.adversarial, fgsm.adversarial) == (False, True, True)
    assert (pgd.attack_steps, fgsm.attack_steps) == (5, 1)
    # an explicit step size scales with ε during the warm-up: 0.05 · (0.1 / 0.2)
    explicit = Recipe(method="pgd", eps=0.2, step_size=0.05)
    assert explicit.attack_step_size(0.2) == pytest.approx(0.05)
    assert explicit.attack_step_size(0.1) == pytest.approx(0.025)
    assert explicit.attack_step_size(0.0) == 0.0
    assert Recipe(step_size=0.05).attack_step_size(0.0) == 0.0  # natural: ε = 0
    assert pgd.attack_step_size(0.1) == pytest.approx(2.5 * 0.1 / 5)
    assert fgsm.attack_step_size(0.1) == pytest.approx(1.25 * 0.1)


def test_labels_name_method_norm_and_budget():
    assert Recipe().label() == "natural"
    assert Recipe(method="pgd", eps=0.1).label() == "pgd-linf-0.1"
    assert Recipe(method="fgsm-rs", norm="l2", eps=1.5).label() == "fgsm-rs-l2-1.5"


def test_the_digest_changes_with_every_field_and_only_with_them():
    base = Recipe(method="pgd", eps=0.1)
    changed = {
        "method": "fgsm-rs",
        "norm": "l2",
        "eps": 0.2,
        "steps": 3,
        "step_size": 0.01,
        "eps_warmup_epochs": 1.0,
        "epochs": 11,
        "batch_size": 64,
        "lr": 0.05,
        "momentum": 0.8,
        "nesterov": False,
        "weight_decay": 0.0,
        "schedule": "cosine",
        "warmup_fraction": 0.1,
        "augment": "crop",
        "attack_in_eval_mode": False,
        "seed": 1,
        "eval_n": 500,
        "eval_steps": 10,
    }
    assert set(changed) == set(base.to_dict())
    digests = {base.digest()}
    for name, value in changed.items():
        digests.add(Recipe.from_dict({**base.to_dict(), name: value}).digest())
    assert len(digests) == len(changed) + 1
    assert Recipe(method="pgd", eps=0.1).digest() == base.digest()
    assert len(base.digest()) == 64 and int(base.digest(), 16) >= 0


def test_the_digest_is_the_sha256_of_the_canonical_json():
    """Canonical: keys sorted, so the digest does not depend on the order fields are declared
    or given in (a stored model's digest must survive a reordering of the dataclass)."""
    recipe = Recipe(method="pgd", eps=0.1, epochs=3)
    canonical = json.dumps(dict(sorted(recipe.to_dict().items())), separators=(", ", ": "))
    assert recipe.digest() == hashlib.sha256(canonical.encode()).hexdigest()
