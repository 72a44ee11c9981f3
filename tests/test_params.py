"""The shared parameter constraints (robustlens.params): each constraint accepts and refuses
values on both sides of every boundary and describes itself in words; one error format for an
unknown key (with the nearest name) and for a value that is not allowed; and the four users
(training recipe, study file, lens parameters, command line) refuse through it."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

from robustlens import cli
from robustlens.errors import ConfigError
from robustlens.params import (
    AnyOf,
    Anything,
    Boolean,
    Integer,
    Interval,
    ListOf,
    NoneValue,
    Options,
    PathValue,
    Real,
    Satisfies,
    Table,
    Text,
    check,
    closest,
    did_you_mean,
    from_annotation,
    invalid,
    make_constraint,
    shown,
    unknown_key,
    validate,
)
from robustlens.registry import Registry

UP, DOWN = math.inf, -math.inf


def below(x: float) -> float:
    return math.nextafter(x, DOWN)


def above(x: float) -> float:
    return math.nextafter(x, UP)


# ------------------------------------------------------------------------------- intervals


@pytest.mark.parametrize(
    ("closed", "left_in", "right_in"),
    [
        ("both", True, True),
        ("left", True, False),
        ("right", False, True),
        ("neither", False, False),
    ],
)
def test_a_real_interval_holds_its_closed_ends_only(closed, left_in, right_in):
    rule = Interval("real", 0, 1, closed=closed)
    assert rule.accepts(0) is left_in and rule.accepts(0.0) is left_in
    assert rule.accepts(1) is right_in and rule.accepts(1.0) is right_in
    assert not rule.accepts(below(0.0)) and rule.accepts(above(0.0))
    assert rule.accepts(below(1.0)) and not rule.accepts(above(1.0))


@pytest.mark.parametrize(
    ("closed", "left_in", "right_in"),
    [
        ("both", True, True),
        ("left", True, False),
        ("right", False, True),
        ("neither", False, False),
    ],
)
def test_an_integer_interval_holds_its_closed_ends_only(closed, left_in, right_in):
    rule = Interval("integer", 1, 5, closed=closed)
    assert (rule.accepts(0), rule.accepts(1), rule.accepts(2)) == (False, left_in, True)
    assert (rule.accepts(4), rule.accepts(5), rule.accepts(6)) == (True, right_in, False)


def test_one_sided_intervals_are_unbounded_on_the_other_side():
    at_least = Interval("integer", 1, None)
    assert not at_least.accepts(0) and at_least.accepts(1) and at_least.accepts(10**30)
    positive = Interval("real", 0, None, closed="neither")
    assert not positive.accepts(0.0) and positive.accepts(5e-324) and positive.accepts(1e308)
    at_most = Interval("real", None, 1, closed="both")
    assert at_most.accepts(-1e308) and at_most.accepts(1.0) and not at_most.accepts(above(1.0))
    below_one = Interval("real", None, 1, closed="neither")
    assert below_one.accepts(below(1.0)) and not below_one.accepts(1.0)


@pytest.mark.parametrize("value", [True, False, "1", None, [1], math.nan, math.inf, -math.inf])
def test_an_interval_refuses_what_is_not_a_finite_number(value):
    assert not Interval("real", None, None).accepts(value)
    assert not Interval("integer", None, None).accepts(value)


def test_an_integer_interval_refuses_whole_floats_and_a_real_one_takes_ints():
    assert not Interval("integer", 0, 10).accepts(2.0)
    assert Interval("real", 0, 10).accepts(2)
    assert Interval("real", 0, 10).convert(2) == 2.0 and isinstance(
        Interval("real", 0, 10).convert(2), float
    )
    assert Interval("integer", 0, 10).convert(2) == 2


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        (Interval("integer", 1, None), "a whole number ≥ 1"),
        (Interval("integer", 1, None, closed="neither"), "a whole number > 1"),
        (Interval("integer", None, 3), "a whole number ≤ 3"),
        (Interval("integer", None, 3, closed="left"), "a whole number < 3"),
        (Interval("integer", 1, 10_000), "a whole number in [1, 10,000]"),
        (Interval("integer", None, None), "a whole number"),
        (Interval(int, 0, 9, closed="neither"), "a whole number in (0, 9)"),
        (Interval("real", 0, None, closed="left"), "a finite number ≥ 0"),
        (Interval("real", 0, None, closed="neither"), "a finite number > 0"),
        (Interval("real", None, 0.5, closed="right"), "a finite number ≤ 0.5"),
        (Interval("real", 0, 1, closed="left"), "a number in [0, 1)"),
        (Interval("real", 0, 1, closed="right"), "a number in (0, 1]"),
        (Interval(float, 0.25, 2.5), "a number in [0.25, 2.5]"),
        (Interval("real", None, None), "a finite number"),
    ],
)
def test_an_interval_describes_itself(rule, words):
    assert rule.describe() == words == str(rule)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Interval("complex", 0, 1),
        lambda: Interval("real", 0, 1, closed="open"),
        lambda: Interval("real", 2, 1),
    ],
)
def test_an_impossible_interval_is_a_programming_error(make):
    with pytest.raises(ValueError):
        make()


# --------------------------------------------------------------------- types and options


@pytest.mark.parametrize(
    ("rule", "good", "bad", "words"),
    [
        (Integer(), [0, -3, 10**20], [True, 2.0, "2", None], "a whole number"),
        (Real(), [0, -1.5, 1e308], [False, math.nan, math.inf, "1", None], "a finite number"),
        (Boolean(), [True, False], [1, 0, "yes", None], "true or false"),
        (Text(), ["", "x"], [1, None, b"x", ["x"]], "a string"),
        (Table(), [{}, {"a": 1}], [[], "a", None], "a table"),
        (PathValue(), ["a.pt", Path("b")], ["", "  ", 3, None], "a path (text)"),
        (NoneValue(), [None], [0, "", False, []], "nothing (leave it out)"),
        (Anything(), [None, 1, "x", []], [], "anything"),
    ],
)
def test_each_type_accepts_its_own_values_only(rule, good, bad, words):
    assert all(rule.accepts(v) for v in good)
    assert not any(rule.accepts(v) for v in bad)
    assert rule.describe() == words


def test_a_real_is_used_as_a_float_and_a_path_as_a_path():
    assert isinstance(Real().convert(3), float) and Real().convert(3) == 3.0
    assert PathValue().convert("x/y.pt") == Path("x/y.pt")


def test_options_compare_type_and_value():
    rule = Options(("linf", "l2", "l1"))
    assert rule.accepts("l2") and not rule.accepts("L2") and not rule.accepts(["l2"])
    assert rule.describe() == "one of 'linf', 'l2', 'l1'"
    numbers = Options((1, 2))
    assert numbers.accepts(1) and not numbers.accepts(True) and not numbers.accepts(1.0)
    assert not numbers.accepts("1")
    # a set has no order of its own: described sorted, the same every run
    assert Options({"b", "c", "a"}).describe() == "one of 'a', 'b', 'c'"


def test_satisfies_uses_its_test_and_its_words():
    rule = Satisfies(lambda v: isinstance(v, str) and v.isupper(), "capital letters")
    assert rule.accepts("AB") and not rule.accepts("Ab") and not rule.accepts(1)
    assert rule.describe() == "capital letters"


def test_lists_check_every_item_and_their_length():
    rule = ListOf(int, min_len=1)
    assert rule.accepts([1]) and rule.accepts((1, 2)) and not rule.accepts([])
    assert not rule.accepts([1, 2.5]) and not rule.accepts(1) and not rule.accepts("12")
    assert rule.describe() == "a non-empty list, each a whole number"
    assert ListOf(str).describe() == "a list, each a string" and ListOf(str).accepts([])
    assert ListOf().describe() == "a list" and ListOf().accepts([None, 1])
    two = ListOf(float, min_len=2)
    assert not two.accepts([1.0]) and two.accepts([1.0, 2])
    assert two.describe() == "a list of at least 2 items, each a finite number"
    assert two.convert([1, 2.5]) == (1.0, 2.5) and isinstance(two.convert([1, 2])[0], float)
    failure = rule.failure([1, 2, "3"], "taps")
    assert (failure.key, failure.value, failure.allowed) == ("taps[2]", "3", "a whole number")


def test_any_of_joins_its_options_and_converts_with_the_one_that_fits():
    rule = make_constraint([Interval("integer", 1, None), None])
    assert isinstance(rule, AnyOf)
    assert rule.accepts(1) and rule.accepts(None) and not rule.accepts(0)
    assert rule.describe() == "a whole number ≥ 1 or nothing (leave it out)"
    three = AnyOf([int, str, None])
    assert three.describe() == "a whole number, a string or nothing (leave it out)"
    assert AnyOf([float, str]).convert(2) == 2.0 and AnyOf([str, float]).convert("a") == "a"
    # a list value that fails is blamed on its item when one option is a list
    failure = AnyOf([ListOf(str), None]).failure(["a", 2], "taps")
    assert (failure.key, failure.allowed) == ("taps[1]", "a string")
    whole = AnyOf([ListOf(str), None]).failure("a", "taps")
    assert whole.allowed == "a list, each a string or nothing (leave it out)"


def test_short_forms_and_annotations_become_constraints():
    assert isinstance(make_constraint(int), Integer) and isinstance(make_constraint(bool), Boolean)
    assert isinstance(make_constraint(Path), PathValue) and isinstance(
        make_constraint(None), NoneValue
    )
    with pytest.raises(TypeError):
        make_constraint("a whole number")
    assert from_annotation(int).describe() == "a whole number"
    assert from_annotation(float | None).describe() == "a finite number or nothing (leave it out)"
    assert from_annotation(tuple[int, ...]).describe() == "a list, each a whole number"
    assert (
        from_annotation(tuple[str, ...] | None).describe()
        == "a list, each a string or nothing (leave it out)"
    )
    assert isinstance(from_annotation(dict[str, int]), Anything)


# ------------------------------------------------------------------------- the one format


def test_a_value_that_is_not_allowed_names_place_value_rule_and_hint():
    error = invalid("study.toml", "data.eval_n", 0, "a whole number ≥ 1", "e.g. 1000")
    assert error.problem == "study.toml: data.eval_n = 0 is not allowed"
    assert error.fix == "use a whole number ≥ 1; e.g. 1000"
    assert str(invalid("", "--eps", math.nan, "a finite number ≥ 0")) == (
        "--eps = nan is not allowed. use a finite number ≥ 0"
    )


def test_long_values_are_cut_and_paths_shown_as_text():
    assert shown("x" * 10) == "'xxxxxxxxxx'"
    long = shown(list(range(100)))
    assert len(long) == 80 and long.endswith("...") and long.startswith("[0, 1, 2")
    assert shown(Path("a/b.pt")) == "'a/b.pt'"


def test_an_unknown_key_gets_the_nearest_name_and_every_allowed_one():
    error = unknown_key("study.toml", "data.evaln", ["eval_n", "dataset", "root"], last="evaln")
    assert error.problem == "study.toml: data.evaln: unknown key"
    assert error.fix == "did you mean 'eval_n'? allowed: dataset, eval_n, root"
    far = unknown_key("w", "zzz", ["eval_n"], noun="parameter of lens 'x'")
    assert far.problem == "w: zzz: unknown parameter of lens 'x'"
    assert far.fix == "allowed: eval_n"
    assert unknown_key("w", "a", []).fix == "allowed: (none)"


def test_suggestions_are_the_registrys_too():
    assert closest("colour", ["color", "latent"]) == "color"
    assert closest("qqq", ["color", "latent"]) is None
    assert did_you_mean("colour", ["color"]) == "did you mean 'color'? "
    assert did_you_mean("qqq", ["color"]) == ""
    lenses: Registry[int] = Registry("lens")
    lenses.add("color", 1)
    with pytest.raises(ConfigError) as caught:
        lenses.get("colour")
    assert caught.value.fix == "did you mean 'color'? Known lens names: color"


RULES = {"steps": Interval("integer", 1, None), "lr": Interval("real", 0, None, closed="neither")}


def test_validate_returns_the_given_values_converted():
    assert validate({"lr": 1}, RULES) == {"lr": 1.0}
    assert validate({}, RULES) == {}
    assert validate({"steps": 3, "lr": 0.5}, RULES) == {"steps": 3, "lr": 0.5}


def test_validate_reports_the_first_bad_value_in_the_constraints_order():
    with pytest.raises(ConfigError) as caught:
        validate({"lr": -1, "steps": 0}, RULES, where="f.toml", prefix="models[0].recipe")
    assert str(caught.value) == (
        "f.toml: models[0].recipe.steps = 0 is not allowed. use a whole number ≥ 1"
    )


def test_validate_names_keys_as_the_user_wrote_them_and_adds_hints():
    spell = lambda key: "--" + key.replace("_", "-")  # noqa: E731
    with pytest.raises(ConfigError) as caught:
        validate({"lr": 0}, RULES, spell=spell, hints={"lr": "e.g. --lr 0.1"})
    assert str(caught.value) == "--lr = 0 is not allowed. use a finite number > 0; e.g. --lr 0.1"
    with pytest.raises(ConfigError) as caught:
        validate({"step": 3}, RULES, spell=spell)
    assert caught.value.problem == "--step: unknown key"
    assert caught.value.fix == "did you mean '--steps'? allowed: --lr, --steps"


def test_validate_refuses_unknown_keys_before_any_value():
    with pytest.raises(ConfigError) as caught:
        validate({"steps": 0, "stepz": 1, "a": 1}, RULES, where="f.toml", prefix="train_on")
    assert caught.value.problem == "f.toml: train_on.a: unknown key"
    assert caught.value.fix == "allowed: lr, steps"


def test_validate_refuses_a_value_that_is_not_a_table():
    with pytest.raises(ConfigError) as caught:
        validate([1, 2], RULES, where="f.toml", prefix="data")
    assert str(caught.value) == "f.toml: data = [1, 2] is not allowed. use a table"


def test_check_names_the_failing_item():
    with pytest.raises(ConfigError) as caught:
        check(["a", 1], ListOf(str), where="f.toml", key="lenses.x.taps")
    assert caught.value.problem == "f.toml: lenses.x.taps[1] = 1 is not allowed"
    assert check([1, 2], ListOf(float)) == (1.0, 2.0)


# ------------------------------------------------------------- the four users, one format


def test_the_training_recipe_refuses_through_the_shared_format():
    from robustlens.train import Recipe
    from robustlens.train.recipe import CONSTRAINTS

    assert list(CONSTRAINTS) == list(Recipe.__dataclass_fields__)  # every field, in order
    with pytest.raises(ConfigError) as caught:
        Recipe(batch_size=0)
    assert str(caught.value) == str(
        invalid("training recipe", "batch_size", 0, CONSTRAINTS["batch_size"].describe())
    )


STUDY = """\
[study]
name = "p"
seed = {seed}
[data]
dataset = "digits"
[[models]]
name = "m"
arch = "small-cnn"
recipe = {{ epochs = {epochs} }}
[lenses.activations]
tau_dens = {tau}
"""


@pytest.mark.parametrize(
    ("values", "key", "value", "allowed"),
    [
        ({"seed": -1}, "study.seed", -1, "a whole number ≥ 0"),
        (
            {"epochs": 0},
            "models[0].recipe.epochs",
            0,
            "a whole number in [1, 10,000]; more than 10,000 epochs is almost surely a typo",
        ),
        ({"tau": '"high"'}, "lenses.activations.tau_dens", "high", "a number in [0, 1]"),
        ({"tau": "1.5"}, "lenses.activations.tau_dens", 1.5, "a number in [0, 1]"),
    ],
)
def test_the_study_file_and_its_lenses_refuse_through_the_shared_format(
    tmp_path, values, key, value, allowed
):
    from robustlens.study.spec import load_spec

    path = tmp_path / "study.toml"
    path.write_text(STUDY.format(**{"seed": 0, "epochs": 1, "tau": 0.9, **values}))
    with pytest.raises(ConfigError) as caught:
        load_spec(path)
    assert caught.value.problem == f"{path}: {key} = {value!r} is not allowed"
    assert caught.value.fix == f"use {allowed}"


def test_a_valid_study_of_the_same_shape_loads(tmp_path):
    """The study above is refused for its one bad value, not for anything else."""
    from robustlens.study.spec import load_spec

    path = tmp_path / "study.toml"
    path.write_text(STUDY.format(seed=0, epochs=1, tau=0.9))
    spec = load_spec(path)
    assert spec.seed == 0 and spec.models[0].recipe.epochs == 1
    assert spec.lens("activations").params.tau_dens == 0.9


def test_a_lens_parameter_is_refused_through_the_shared_format():
    from robustlens.data import dataset_info
    from robustlens.lenses import get_lens

    info = dataset_info("digits")
    with pytest.raises(ConfigError) as caught:
        get_lens("activations").resolve_params(info, {"batch_size": 2.5}, "w.toml: lenses.x")
    assert str(caught.value) == str(
        invalid("", "w.toml: lenses.x.batch_size", 2.5, "a whole number ≥ 1")
    )
    with pytest.raises(ConfigError) as caught:
        get_lens("activations").resolve_params(info, {"tau_den": 0.5}, "w.toml: lenses.x")
    assert (
        caught.value.problem == "w.toml: lenses.x.tau_den: unknown parameter of lens 'activations'"
    )
    assert caught.value.fix.startswith("did you mean 'tau_dens'? allowed: ")


def test_a_command_line_option_is_refused_through_the_shared_format(tmp_path, monkeypatch, capsys):
    """--epochs 0 is refused as the option it is, before any work (no output folder)."""
    out = tmp_path / "out"
    argv = ["robustlens", "train", "--out", str(out), "--data", "digits", "--epochs", "0"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 2
    error = invalid(
        "",
        "--epochs",
        0,
        "a whole number in [1, 10,000]",
        "more than 10,000 epochs is almost surely a typo",
    )
    assert capsys.readouterr().err.strip() == f"error: {error}"
    assert not out.exists()
