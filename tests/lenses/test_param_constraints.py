"""Every lens parameter's constraint, at its bounds: each constrained field refuses the value
just outside each bound and accepts the bound itself (or, for an open bound, the nearest
value inside), both when the parameter class is built directly (the error names the class)
and through ``LensSpec.resolve_params`` (the error names the study's place), always in the
one format of :mod:`robustlens.params`."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from robustlens.data import dataset_info
from robustlens.errors import ConfigError
from robustlens.lenses import get_lens, list_lenses
from robustlens.lenses.parameters import RULE, LensParams
from robustlens.params import invalid

INFO = dataset_info("digits")
NOTHING = " or nothing (leave it out)"
WHOLE_1 = "a whole number ≥ 1"
WHOLE_0 = "a whole number ≥ 0"
POSITIVE = "a finite number > 0"

# (lens, field, kind, low, low included, high, high included, allowed, hint, optional, item)
# ``item``: the bounds are those of each item of a list parameter (checked as ``field[0]``).
INTERVALS: list[tuple] = [
    ("activations", "tau_dens", "real", 0, True, 1, True, "a number in [0, 1]", None, 0, 0),
    (
        "activations",
        "tau_sim",
        "real",
        -1,
        True,
        1,
        True,
        "a number in [-1, 1]",
        "it is a cosine similarity",
        0,
        0,
    ),
    ("activations", "batch_size", "integer", 1, True, None, 0, WHOLE_1, None, 0, 0),
    ("attack_grid", "reference_dim", "integer", 0, True, None, 0, WHOLE_0, None, 0, 0),
    ("attack_grid", "n", "integer", 1, True, None, 0, WHOLE_1, None, 1, 0),
    ("attack_grid", "cw_binary_steps", "integer", 1, True, None, 0, WHOLE_1, None, 0, 0),
    ("boundary", "steps", "integer", 1, True, None, 0, WHOLE_1, None, 0, 0),
    ("boundary", "n", "integer", 1, True, None, 0, WHOLE_1, None, 1, 0),
    ("color", "thicknesses", "integer", 1, True, None, 0, WHOLE_1, None, 0, 1),
    ("color", "grid_copies", "integer", 2, True, None, 0, "a whole number ≥ 2", None, 0, 0),
    ("color", "batch_size", "integer", 1, True, None, 0, WHOLE_1, None, 0, 0),
    ("embedding", "reference_dim", "integer", 0, True, None, 0, WHOLE_0, None, 0, 0),
    ("embedding", "k", "integer", 1, True, None, 0, WHOLE_1, None, 0, 0),
    ("ensemble", "train_n", "integer", 10, True, None, 0, "a whole number ≥ 10", None, 0, 0),
    ("ensemble", "test_n", "integer", 10, True, None, 0, "a whole number ≥ 10", None, 0, 0),
    ("ensemble", "regularization", "real", 0, False, None, 0, POSITIVE, None, 0, 0),
    ("featviz", "channels", "integer", 1, True, None, 0, WHOLE_1, None, 0, 0),
    ("featviz", "steps", "integer", 1, True, None, 0, WHOLE_1, None, 0, 0),
    ("featviz", "lr", "real", 0, False, None, 0, POSITIVE, None, 0, 0),
    (
        "filters",
        "kernel_sizes",
        "integer",
        1,
        True,
        None,
        0,
        WHOLE_1,
        "e.g. kernel_sizes = [3] (the paper) or [3, 5]",
        0,
        1,
    ),
    ("filters", "resamples", "integer", 0, True, None, 0, WHOLE_0, None, 0, 0),
    ("filters", "threshold_images", "integer", 0, True, None, 0, WHOLE_0, None, 0, 0),
    ("latent", "epochs", "integer", 1, True, None, 0, WHOLE_1, None, 0, 0),
    ("latent", "lr", "real", 0, False, None, 0, POSITIVE, None, 0, 0),
    ("latent", "batch_size", "integer", 1, True, None, 0, WHOLE_1, None, 0, 0),
    ("latent", "attack_steps", "integer", 1, True, None, 0, WHOLE_1, None, 0, 0),
    ("loss_dist", "reference_dim", "integer", 0, True, None, 0, WHOLE_0, None, 0, 0),
    ("loss_dist", "n", "integer", 1, True, None, 0, WHOLE_1, None, 1, 0),
    ("loss_dist", "folds", "integer", 2, True, None, 0, "a whole number ≥ 2", None, 0, 0),
    ("masking", "n", "integer", 10, True, None, 0, "a whole number ≥ 10", None, 1, 0),
    ("masking", "eps", "real", 0, False, None, 0, POSITIVE, None, 1, 0),
    ("masking", "reference_dim", "integer", 0, True, None, 0, WHOLE_0, None, 0, 0),
    ("masking", "steps", "integer", 1, True, None, 0, WHOLE_1, None, 0, 0),
    ("masking", "more_steps", "integer", 1, True, None, 0, WHOLE_1, None, 0, 0),
    ("masking", "restarts", "integer", 1, True, None, 0, WHOLE_1, None, 0, 0),
    ("masking", "apgd_targets", "integer", 0, True, None, 0, WHOLE_0, None, 0, 0),
    ("masking", "eps_grid", "real", 0, False, None, 0, POSITIVE, None, 0, 1),
    ("masking", "queries", "integer", 1, True, None, 0, WHOLE_1, None, 0, 0),
    ("masking", "alpha", "real", 0, False, 1, False, "a number in (0, 1)", None, 0, 0),
    (
        "masking",
        "unconverged_points",
        "real",
        0,
        True,
        100,
        True,
        "a number in [0, 100]",
        None,
        0,
        0,
    ),
    ("masking", "gradient_fraction", "real", 0, True, 1, True, "a number in [0, 1]", None, 0, 0),
    ("norm_ratio", "reference_dim", "integer", 0, True, None, 0, WHOLE_0, None, 0, 0),
    ("norm_ratio", "n", "integer", 1, True, None, 0, WHOLE_1, None, 1, 0),
    ("probes", "blur_sigmas", "real", 0, True, None, 0, "a finite number ≥ 0", None, 0, 1),
    ("probes", "median_times", "integer", 0, True, None, 0, WHOLE_0, None, 0, 1),
    ("probes", "n", "integer", 1, True, None, 0, WHOLE_1, None, 1, 0),
    (
        "probes",
        "reference_side",
        "integer",
        0,
        True,
        None,
        0,
        WHOLE_0,
        "0 applies the sizes as written, in pixels",
        0,
        0,
    ),
    ("saliency", "n", "integer", 1, True, None, 0, WHOLE_1, None, 1, 0),
    ("saliency", "show", "integer", 0, True, None, 0, WHOLE_0, None, 0, 0),
    (
        "saliency",
        "smoothgrad_noise",
        "real",
        0,
        False,
        1,
        True,
        "a number in (0, 1]",
        "a fraction of the input range",
        0,
        0,
    ),
    ("saliency", "smoothgrad_samples", "integer", 1, True, None, 0, WHOLE_1, None, 0, 0),
    ("saliency", "ig_steps", "integer", 1, True, None, 0, WHOLE_1, None, 0, 0),
    (
        "saliency",
        "high_frequency_cutoff",
        "real",
        0,
        False,
        1.5,
        False,
        "a number in (0, 1.5)",
        "a fraction of Nyquist",
        0,
        0,
    ),
    ("saliency", "sanity_images", "integer", 0, True, None, 0, WHOLE_0, None, 0, 0),
    (
        "saliency",
        "unchanged_threshold",
        "real",
        -1,
        True,
        1,
        True,
        "a number in [-1, 1]",
        None,
        0,
        0,
    ),
    ("similarity", "reference_dim", "integer", 0, True, None, 0, WHOLE_0, None, 0, 0),
    ("similarity", "keep", "real", 0, False, 1, True, "a number in (0, 1]", None, 0, 0),
    ("similarity", "n", "integer", 2, True, None, 0, "a whole number ≥ 2", None, 1, 0),
    ("similarity", "bootstrap", "integer", 0, True, None, 0, WHOLE_0, None, 0, 0),
    ("transfer", "eps", "real", 0, False, None, 0, POSITIVE, None, 0, 0),
    ("transfer", "steps", "integer", 1, True, None, 0, WHOLE_1, None, 0, 0),
    ("transfer", "step_size", "real", 0, False, None, 0, POSITIVE, None, 0, 0),
    ("transfer", "n", "integer", 2, True, None, 0, "a whole number ≥ 2", None, 1, 0),
    ("universality", "n", "integer", 2, True, None, 0, "a whole number ≥ 2", None, 1, 0),
    ("universality", "steps", "integer", 1, True, None, 0, WHOLE_1, None, 1, 0),
    ("universality", "step_size", "real", 0, False, None, 0, POSITIVE, None, 1, 0),
]

ATTACK = "an attack setting 'ATTACK NORM EPS [STEPS] [@cifar10|@imagenet|@N]'"
ATTACKS = f"a non-empty list, each {ATTACK}"
ODD = "an odd whole number ≥ 1"
METHODS = "one of 'vanilla', 'loss', 'guided', 'smoothgrad', 'integrated'"
TARGET = "a data set name or lowres-<pixels> with pixels ≥ 2"

# (lens, field, accepted values, [(refused value, key in the error, allowed)], hint)
CHOICES: list[tuple] = [
    ("attack_grid", "attacks", [("fgsm linf 0.1",)], [((), "attacks", ATTACKS)], None),
    ("loss_dist", "attacks", [("fgsm linf 0.1",)], [((), "attacks", ATTACKS)], None),
    ("norm_ratio", "attacks", [("fgsm linf 0.1",)], [((), "attacks", ATTACKS)], None),
    ("similarity", "attacks", [("fgsm linf 0.1",)], [((), "attacks", ATTACKS)], None),
    (
        "boundary",
        "norms",
        [("l2",), ("linf",), ("l2", "linf")],
        [
            ((), "norms", "a non-empty list, each one of 'l2', 'linf'"),
            (("l1",), "norms[0]", "one of 'l2', 'linf'"),
        ],
        None,
    ),
    (
        "color",
        "colors",
        [("white",), ("blue", "red", "green")],
        [
            ((), "colors", "a non-empty list, each one of 'white', 'red', 'green', 'blue'"),
            (("red", "Red"), "colors[1]", "one of 'white', 'red', 'green', 'blue'"),
        ],
        None,
    ),
    (
        "ensemble",
        "targets",
        [("digits",), ("lowres-2",), ("lowres-14", "anything-else")],
        [
            ((), "targets", f"a non-empty list, each {TARGET}"),
            (("lowres-1",), "targets[0]", TARGET),
            (("digits", "lowres-"), "targets[1]", TARGET),
            (("lowres-2.5",), "targets[0]", TARGET),
        ],
        'e.g. targets = ["digits", "lowres-14"]',
    ),
    (
        "masking",
        "norm",
        ["auto", "linf", "l2", "l1"],
        [("L2", "norm", "one of 'auto', 'linf', 'l2', 'l1'")],
        None,
    ),
    (
        "masking",
        "black_box",
        ["square", "random-search"],
        [("boundary", "black_box", "one of 'square', 'random-search'")],
        None,
    ),
    ("probes", "blur_kernel", [1, 3, 9], [(0, "blur_kernel", ODD), (2, "blur_kernel", ODD)], None),
    (
        "probes",
        "median_kernel",
        [1, 5],
        [(-1, "median_kernel", ODD), (4, "median_kernel", ODD)],
        None,
    ),
    (
        "probes",
        "texture",
        [(), ("edge_map",), ("amplitude_swap", "edge_map")],
        [(("edges",), "texture[0]", "one of 'amplitude_swap', 'edge_map'")],
        None,
    ),
    (
        "saliency",
        "methods",
        [("vanilla",), ("integrated", "loss")],
        [((), "methods", f"a non-empty list, each {METHODS}"), (("grad",), "methods[0]", METHODS)],
        None,
    ),
    (
        "universality",
        "seed_mode",
        ["other-image", "noise"],
        [("zeros", "seed_mode", "one of 'other-image', 'noise'")],
        None,
    ),
]


def outside_and_inside(kind: str, bound: float, included: bool, below: bool) -> tuple:
    """(the value just outside ``bound``, the value at it or, when it is open, just inside);
    ``below``: the bound is a lower one."""
    if kind == "integer":
        step = -1 if below else 1
        return (bound + step, bound) if included else (bound, bound - step)
    away, into = (-math.inf, math.inf) if below else (math.inf, -math.inf)
    bound = float(bound)
    return (
        (math.nextafter(bound, away), bound) if included else (bound, math.nextafter(bound, into))
    )


def interval_cases() -> list[tuple]:
    """(lens, field, value to set, refusal) per bound and side of it; the refusal (None when
    the value is accepted): (key in the error, value in the error, allowed, hint)."""
    cases = []
    for lens, name, kind, low, low_in, high, high_in, allowed, hint, optional, item in INTERVALS:
        full = allowed + NOTHING if optional else allowed
        for bound, included, below in ((low, low_in, True), (high, high_in, False)):
            if bound is None:
                continue
            out, inside = outside_and_inside(kind, bound, included, below)
            key = f"{name}[0]" if item else name
            wrap = (lambda v: (v,)) if item else (lambda v: v)
            refused = (key, out, allowed if item else full, hint)
            cases.append((lens, name, wrap(out), refused))
            cases.append((lens, name, wrap(inside), None))
    return cases


def choice_cases() -> list[tuple]:
    cases = []
    for lens, name, good, bad, hint in CHOICES:
        cases += [(lens, name, value, None) for value in good]
        for value, key, allowed in bad:
            shown = value[int(key[-2])] if key.endswith("]") else value
            cases.append((lens, name, value, (key, shown, allowed, hint)))
    return cases


CASES = interval_cases() + choice_cases()


def case_id(case: tuple) -> str:
    lens, name, value, refusal = case
    return f"{lens}.{name}={value!r}:{'refused' if refusal else 'accepted'}"


def stored(value: Any) -> Any:
    """A value as resolve_params keeps it (lists as tuples)."""
    return tuple(value) if isinstance(value, list) else value


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_the_parameter_class_checks_its_constraint(case):
    lens, name, value, refusal = case
    params = get_lens(lens).params
    if refusal is None:
        assert getattr(params(**{name: value}), name) == value
        return
    key, shown, allowed, hint = refusal
    with pytest.raises(ConfigError) as err:
        params(**{name: value})
    assert str(err.value) == str(invalid(params.__name__, key, shown, allowed, hint))


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_resolve_params_checks_the_same_constraint_naming_the_study_place(case):
    lens, name, value, refusal = case
    place = f"study.toml: lenses.{lens}"
    given = list(value) if isinstance(value, tuple) else value  # as TOML gives a list
    if refusal is None:
        resolved = get_lens(lens).resolve_params(INFO, {name: given}, place)
        assert getattr(resolved, name) == stored(value)
        return
    with pytest.raises(ConfigError) as err:
        get_lens(lens).resolve_params(INFO, {name: given}, place)
    key, shown, allowed, hint = refusal
    shown = given if shown is value else shown
    expected = invalid("", f"{place}.{key}", shown, allowed, hint)
    assert str(err.value) == str(expected)


def test_every_constrained_field_of_every_lens_is_tested_here():
    ruled = {
        (get_lens(name).params, f.name)
        for name in list_lenses()
        for f in dataclasses.fields(get_lens(name).params)
        if RULE in f.metadata
    }
    tested = {(get_lens(case[0]).params, case[1]) for case in CASES}
    tested.add((get_lens("probes").params, "stylized_dir"))
    assert ruled == tested


def test_every_lens_checks_its_parameters_through_the_one_mechanism():
    """Every parameter class is a LensParams whose checks are check_params's alone (no
    __post_init__ of its own, which could raise in another format)."""
    for name in list_lenses():
        params = get_lens(name).params
        assert issubclass(params, LensParams), name
        assert params.__post_init__ is LensParams.__post_init__, name


def test_every_lens_takes_its_defaults():
    for name in list_lenses():
        spec = get_lens(name)
        defaults = spec.defaults(INFO) if spec.defaults else {}
        assert spec.resolve_params(INFO, {}, "s") == spec.params(**defaults)


def test_a_folder_parameter_must_name_a_folder(tmp_path):
    params = get_lens("probes").params
    assert params(stylized_dir=str(tmp_path)).stylized_dir == str(tmp_path)
    missing = str(tmp_path / "absent")
    allowed = "a folder with one subfolder of images per class" + NOTHING
    with pytest.raises(ConfigError) as err:
        params(stylized_dir=missing)
    assert str(err.value) == str(invalid("ProbesParams", "stylized_dir", missing, allowed))
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError) as err:
        get_lens("probes").resolve_params(INFO, {"stylized_dir": str(tmp_path / "file")}, "s")
    given = str(tmp_path / "file")
    assert str(err.value) == str(invalid("", "s.stylized_dir", given, allowed))


# ---------------------------------------------------------------- rules over several fields


def test_embedding_needs_more_images_than_neighbours():
    params = get_lens("embedding").params
    assert params(k=3, n=4).n == 4
    assert params(k=3, n=None).n is None
    with pytest.raises(ConfigError) as err:
        params(k=3, n=3)
    allowed = "a whole number > k (3)" + NOTHING
    assert str(err.value) == str(invalid("EmbeddingParams", "n", 3, allowed))
    with pytest.raises(ConfigError) as err:
        get_lens("embedding").resolve_params(INFO, {"k": 4, "n": 4}, "s: lenses.embedding")
    expected = invalid("", "s: lenses.embedding.n", 4, "a whole number > k (4)" + NOTHING)
    assert str(err.value) == str(expected)


GRADIENT = "a PGD or FGSM setting (a fixed budget, e.g. {!r})"
SAME = "both are the same attack (L∞ budgets are never rescaled; FGSM takes no steps): "


@pytest.mark.parametrize(
    ("lens", "attacks", "key", "allowed", "hint"),
    [
        ("similarity", ("cw l2 1 5",), "attacks[0]", GRADIENT.format("pgd l2 0.25 100"), None),
        (
            "loss_dist",
            ("pgd l2 1 5", "deepfool linf 0.1"),
            "attacks[1]",
            GRADIENT.format("pgd l2 0.5 10"),
            None,
        ),
        ("norm_ratio", ("cw l2 1 5",), "attacks[0]", GRADIENT.format("pgd l2 0.25 20"), None),
        ("embedding", ("deepfool l2 1",), "attacks[0]", GRADIENT.format("pgd l2 0.25 20"), None),
        ("attack_grid", ("pgd l9 1 5",), "attacks[0]", ATTACK, "unknown norm 'l9' in 'pgd l9 1 5'"),
        (
            "similarity",
            ("pgd l2 1 5", "fgsm l2 1", "pgd l2 1 5 @cifar10"),
            "attacks[2]",
            "an attack other than attacks[0] ('pgd l2 1 5')",
            SAME + "keep one of them",
        ),
    ],
)
def test_attack_settings_are_checked_in_the_same_format(lens, attacks, key, allowed, hint):
    params = get_lens(lens).params
    with pytest.raises(ConfigError) as err:
        params(attacks=attacks)
    value = attacks[int(key[-2])]
    assert str(err.value) == str(invalid(params.__name__, key, value, allowed, hint))
    with pytest.raises(ConfigError) as err:
        get_lens(lens).resolve_params(INFO, {"attacks": list(attacks)}, "s")
    assert str(err.value) == str(invalid("", f"s.{key}", value, allowed, hint))


def test_attack_grid_takes_minimal_norm_attacks_and_distinct_rows():
    params = get_lens("attack_grid").params
    rows = ("deepfool l2 0.1", "cw l2 0.5 10", "pgd l2 1 5", "pgd l2 1 5 @imagenet")
    assert params(attacks=rows).attacks == rows
