"""Study files become plans; every mistake names the file, the key and what is allowed."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from robustlens.constructed.request import TrainOn
from robustlens.errors import ConfigError
from robustlens.study.spec import load_spec

VALID = """
[study]
name = "demo"
seed = 3

[data]
dataset = "digits"
eval_n = 100

[[models]]
name = "natural"
arch = "small-cnn"
recipe = { method = "natural", epochs = 1 }

[[models]]
name = "linf"
arch = "small-cnn"
arch_kwargs = { widths = [8, 16] , kernels = [3, 3], strides = [1, 2] }
recipe = { method = "pgd", norm = "linf", eps = [0.05, 0.1], steps = 3, epochs = 1 }

[lenses.activations]
tau_dens = 0.9

[lenses.color]
"""


def write(tmp_path, text: str):
    path = tmp_path / "study.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_a_valid_study_expands_eps_lists_and_applies_paper_defaults(tmp_path):
    spec = load_spec(write(tmp_path, VALID))
    assert spec.name == "demo" and spec.seed == 3 and spec.dataset == "digits"
    assert [m.name for m in spec.models] == ["natural", "linf-0.05", "linf-0.1"]
    assert [m.recipe.eps for m in spec.models] == [0.0, 0.05, 0.1]
    assert spec.models[1].arch_kwargs["widths"] == [8, 16]
    activations = spec.lens("activations").params
    assert (
        activations.tau_dens == 0.9 and activations.tau_act == 0.0 and activations.tau_sim == 0.95
    )
    # digits are 8×8: contour thicknesses scaled for small images
    assert spec.lens("color").params.thicknesses == (1, 2, 3, 4)


def replace(old: str, new: str) -> str:
    assert old in VALID
    return VALID.replace(old, new)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (VALID + "\n[extra]\nx = 1\n", ["extra", "unknown key", "data, lenses, models, study"]),
        (replace("seed = 3", 'seed = "three"'), ["study.seed", "whole number"]),
        (replace('dataset = "digits"', 'dataset = "imagenet9"'), ["data.dataset", "fashion-mnist"]),
        (
            replace("eval_n = 100", "eval_n = 0"),
            ["data.eval_n = 0 is not allowed. use a whole number ≥ 1"],
        ),
        (
            replace('name = "natural"\narch', 'name = "natural"\ncolour = 1\narch'),
            ["models[0].colour"],
        ),
        (
            replace('arch = "small-cnn"\nrecipe', 'arch = "resnet-7"\nrecipe'),
            ["models[0].arch", "resnet18"],
        ),
        (replace('method = "natural"', 'method = "madry"'), ["models[0].recipe", "fgsm-rs"]),
        (replace("steps = 3", "steps = 0"), ["models[1].recipe", "steps"]),
        (replace("steps = 3", "stepz = 3"), ["models[1].recipe.stepz", "unknown key"]),
        (replace("tau_dens = 0.9", "tau_dens = 1.5"), ["lenses.activations", "tau_dens"]),
        (
            replace("tau_dens = 0.9", "tau_dense = 0.9"),
            ["lenses.activations", "tau_dense", "tau_dens"],
        ),
        (replace("tau_dens = 0.9", 'tau_dens = "high"'), ["lenses.activations.tau_dens", "number"]),
        (replace("[lenses.color]", "[lenses.colour]"), ["lenses.colour", "unknown lens", "color"]),
        (
            replace(
                "[lenses.activations]",
                '[[models]]\nname = "linf-0.1"\ncheckpoint = "m.safetensors"\n'
                "\n[lenses.activations]",
            ),
            ["unique", "linf-0.1"],
        ),
        (replace('recipe = { method = "natural", epochs = 1 }', ""), ["models[0]", "exactly one"]),
        (VALID.replace("[study]", "[study\n"), ["not valid TOML"]),
    ],
)
def test_mistakes_get_one_error_naming_file_and_key(tmp_path, text, fragments):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_spec(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_missing_file_and_missing_sections(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_spec(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match=r"\[models\]"):
        load_spec(write(tmp_path, '[study]\nname = "x"\n[data]\ndataset = "digits"\n'))


def test_checkpoint_paths_are_relative_to_the_study_file(tmp_path):
    text = """
    [study]
    name = "loaded"
    [data]
    dataset = "digits"
    [[models]]
    name = "mine"
    checkpoint = "models/mine.safetensors"
    """
    spec = load_spec(write(tmp_path, text))
    assert spec.models[0].path == (tmp_path / "models" / "mine.safetensors").resolve()
    assert spec.models[0].source == "checkpoint"


@pytest.mark.parametrize("path", sorted(Path(__file__).parents[2].glob("studies/*.toml")))
def test_shipped_study_files_are_valid(path):
    spec = load_spec(path)
    assert spec.models and spec.lenses


ZERO = (
    '[[models]]\nname = "zero"\narch = "small-cnn"\nrecipe = { method = "natural", epochs = 1 }\n'
)


@pytest.mark.parametrize(
    ("train_on", "fragments"),
    [
        ('{ set = "shuffled", source = "natural" }', ["train_on.set", "robustified"]),
        ('{ set = "zero", source = "ghost" }', ["train_on.source", "natural, linf-0.05"]),
        ('{ set = "zero", source = "natural", stepz = 3 }', ["train_on.stepz", "unknown key"]),
        ('{ set = "robustified", source = "natural", eps = 0.5 }', ["no budget"]),
        (
            '{ set = "negative", source = "natural", steps = 0 }',
            ["train_on.steps = 0 is not allowed. use a whole number ≥ 1"],
        ),
        (
            '{ set = "zero", source = "natural", eps = -0.5 }',
            ["train_on.eps", "> 0", "used as written"],
        ),
        (
            '{ set = "robustified", source = "linf-0.1", seed_mode = "zeros" }',
            ["train_on.seed_mode", "unknown seed mode 'zeros'", "other-image, noise"],
        ),
        (
            '{ set = "negative", source = "natural", seed_mode = "noise" }',
            ["train_on.seed_mode", "only a robustified set", "robustified"],
        ),
        (
            '{ set = "robustified", source = "natural", seed_mode = 1 }',
            ["train_on.seed_mode", "a string"],
        ),
        (
            '{ set = "negative", source = "natural", leakage_model = "natural" }',
            ["train_on.leakage_model", "not adversarially trained", "linf-0.05, linf-0.1"],
        ),
        (
            '{ set = "negative", source = "natural", leakage_model = "ghost" }',
            ["train_on.leakage_model", "not a model listed before", "linf-0.05, linf-0.1"],
        ),
        (
            '{ set = "zero", source = "natural", leakage_model = "linf" }',
            ["train_on.leakage_model", "'linf' is not a model listed before"],
        ),
        (
            '{ set = "robustified", source = "linf-0.1", leakage_model = "linf-0.1" }',
            ["train_on.leakage_model", "no new label to leak", "zero, zero-all, negative"],
        ),
    ],
)
def test_train_on_mistakes(tmp_path, train_on, fragments):
    text = replace("[lenses.activations]", ZERO + f"train_on = {train_on}\n\n[lenses.activations]")
    with pytest.raises(ConfigError) as info:
        load_spec(write(tmp_path, text))
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


def test_train_on_names_an_earlier_model(tmp_path):
    text = replace(
        "[lenses.activations]",
        ZERO + 'train_on = { set = "negative", source = "linf-0.1", steps = 20 }\n\n'
        "[lenses.activations]",
    )
    spec = load_spec(write(tmp_path, text))
    plan = spec.models[-1]
    assert plan.train_on == TrainOn("negative", "linf-0.1", steps=20)
    first = VALID.replace(
        'recipe = { method = "natural", epochs = 1 }',
        'recipe = { method = "natural", epochs = 1 }\ntrain_on = { set = "zero", source = "linf" }',
        1,
    )
    with pytest.raises(ConfigError, match="not a model listed before"):
        load_spec(write(tmp_path, first))


def test_train_on_seed_mode_and_leakage_model(tmp_path):
    robust = ZERO + 'train_on = { set = "robustified", source = "linf-0.1", seed_mode = "noise" }\n'
    zero = ZERO.replace('"zero"', '"zero-2"') + (
        'train_on = { set = "zero", source = "natural", eps = 2.0, leakage_model = "linf-0.05" }\n'
    )
    text = replace("[lenses.activations]", robust + "\n" + zero + "\n[lenses.activations]")
    spec = load_spec(write(tmp_path, text))
    assert spec.models[-2].train_on == TrainOn("robustified", "linf-0.1", seed_mode="noise")
    assert spec.models[-1].train_on == TrainOn(
        "zero", "natural", eps=2.0, leakage_model="linf-0.05"
    )
    # a model that trains on a constructed set is not a robust model for the check
    later = text.replace('leakage_model = "linf-0.05"', 'leakage_model = "zero"')
    with pytest.raises(ConfigError, match="'zero' is not adversarially trained"):
        load_spec(write(tmp_path, later))


def test_a_lens_may_name_its_models_by_model_or_entry(tmp_path):
    spec = load_spec(write(tmp_path, VALID.replace("tau_dens = 0.9", 'models = ["linf"]')))
    assert spec.lens("activations").models == ("linf-0.05", "linf-0.1")
    assert spec.lens("color").models is None
    assert spec.lens("activations").covers("linf-0.1")
    assert not spec.lens("activations").covers("natural")
    assert spec.lens("color").covers("natural")
    both = load_spec(
        write(tmp_path, VALID.replace("tau_dens = 0.9", 'models = ["linf-0.1", "natural"]'))
    )
    assert both.lens("activations").models == ("natural", "linf-0.1")  # study order


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('["resnet"]', "'resnet' is not a model of the study"),
        ('"natural"', "models = 'natural' is not allowed. use a non-empty list, each a string"),
        (
            "[]",
            r"models = \[\] is not allowed. "
            "use a non-empty list, each a string; names of the study's models",
        ),
    ],
)
def test_a_lens_naming_unknown_models_is_refused(tmp_path, value: str, message: str):
    text = VALID.replace("tau_dens = 0.9", f"models = {value}")
    with pytest.raises(ConfigError, match=message) as info:
        load_spec(write(tmp_path, text))
    assert "lenses.activations.models" in str(info.value)
    if "resnet" in value:
        assert "natural, linf-0.05, linf-0.1, linf" in str(info.value)


def test_lens_sources_are_checked_before_any_work_and_entries_expand(tmp_path):
    """universality / transfer sources name models or entries of the study; a typo is refused
    when the file is read, not hours later when the lens runs."""
    text = VALID + '\n[lenses.universality]\nsources = ["natural", "linf"]\n'
    spec = load_spec(write(tmp_path, text))
    assert spec.lens("universality").params.sources == ("natural", "linf-0.05", "linf-0.1")
    typo = text.replace('sources = ["natural", "linf"]', 'sources = ["natral"]')
    with pytest.raises(ConfigError, match="'natral' is not a model of the study") as info:
        load_spec(write(tmp_path, typo))
    assert "lenses.universality.sources" in str(info.value)
    narrowed = text.replace(
        'sources = ["natural", "linf"]', 'models = ["linf"]\nsources = ["natural"]'
    )
    with pytest.raises(ConfigError, match="'natural' is not among the lens's models"):
        load_spec(write(tmp_path, narrowed))
