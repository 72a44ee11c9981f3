"""Training seeds: an entry with ``seeds`` is trained once per seed, each replicate a model of
its own (name, folder, training identity, lens units) that remembers its setting."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest

from robustlens.claims import evaluate_claims
from robustlens.errors import ConfigError
from robustlens.lenses import StudyModel
from robustlens.models import ModelCard
from robustlens.runner import Study
from robustlens.study.plan import StudyPlan
from robustlens.study.spec import load_spec, recipe_seed
from robustlens.study.store import Store
from robustlens.train import loop as loop_module
from tests.train.helpers import FAST, small_model, stripes

STUDY = """
[study]
name = "seeds"

[data]
dataset = "digits"
eval_n = 40

[[models]]
name = "natural"
arch = "small-cnn"
recipe = {{ method = "natural", epochs = 1 }}
{natural}

[[models]]
name = "linf"
arch = "small-cnn"
recipe = {{ method = "fgsm-rs", norm = "linf", eps = [0.1, 0.2], epochs = 1 }}
seeds = [0, 1]

[lenses.activations]
{lens}
"""


def spec_of(tmp_path, natural: str = "seeds = [3, 4, 5]", lens: str = ""):
    path = tmp_path / "study.toml"
    path.write_text(textwrap.dedent(STUDY.format(natural=natural, lens=lens)))
    return load_spec(path)


def test_each_seed_is_a_model_named_after_its_setting_and_seed(tmp_path):
    spec = spec_of(tmp_path)
    assert [m.name for m in spec.models] == [
        "natural@s3", "natural@s4", "natural@s5",
        "linf-0.1@s0", "linf-0.1@s1", "linf-0.2@s0", "linf-0.2@s1",
    ]  # fmt: skip
    assert [m.setting for m in spec.models] == ["natural"] * 3 + ["linf-0.1"] * 2 + ["linf-0.2"] * 2
    # replicate seeds are derived from the study seed, the entry and the replicate; all ε of
    # one entry share them (tests/study/test_study_seed.py)
    derived = [recipe_seed(0, "natural", s) for s in (3, 4, 5)]
    derived += [recipe_seed(0, "linf", s) for s in (0, 1)] * 2
    assert [m.recipe.seed for m in spec.models] == derived
    assert len(set(derived)) == 5
    assert [m.recipe.eps for m in spec.models] == [0.0] * 3 + [0.1, 0.1, 0.2, 0.2]
    assert {m.entry for m in spec.models} == {"natural", "linf"}


def test_an_entry_without_seeds_keeps_its_name_and_a_seed_derived_from_the_study_seed(tmp_path):
    spec = spec_of(tmp_path, natural="")
    assert spec.models[0].name == "natural" and spec.models[0].setting == ""
    assert spec.models[0].recipe.seed == recipe_seed(0, "natural") != 0


def test_a_lens_may_name_a_setting_an_entry_or_one_replicate(tmp_path):
    by_setting = spec_of(tmp_path, lens='models = ["linf-0.2", "natural@s4"]')
    assert by_setting.lens("activations").models == ("natural@s4", "linf-0.2@s0", "linf-0.2@s1")
    by_entry = spec_of(tmp_path, lens='models = ["natural"]')
    assert by_entry.lens("activations").models == ("natural@s3", "natural@s4", "natural@s5")
    with pytest.raises(ConfigError, match="'natural@s9' is not a model of the study"):
        spec_of(tmp_path, lens='models = ["natural@s9"]')


@pytest.mark.parametrize(
    ("natural", "match"),
    [
        ("seeds = [1, 2, 1]", r"models\[0\]\.seeds: seeds must be distinct, \[1\] repeat"),
        ("seeds = []", r"models\[0\]\.seeds"),
        ("seeds = [-1]", r"models\[0\]\.seeds\[0\]"),
        ('seeds = ["0"]', r"models\[0\]\.seeds\[0\]"),
        ("seeds = 0", r"models\[0\]\.seeds"),
    ],
)
def test_bad_seed_lists_are_one_clear_error(tmp_path, natural, match):
    with pytest.raises(ConfigError, match=match):
        spec_of(tmp_path, natural=natural)


def test_a_recipe_seed_beside_a_seeds_list_is_an_error(tmp_path):
    text = STUDY.format(natural="", lens="").replace(
        'recipe = { method = "natural", epochs = 1 }',
        'recipe = { method = "natural", epochs = 1, seed = 2 }\nseeds = [0, 1]',
    )
    path = tmp_path / "study.toml"
    path.write_text(text)
    with pytest.raises(
        ConfigError, match=r"models\[0\]\.recipe\.seed: give the training seed once"
    ):
        load_spec(path)


def test_seeds_on_a_loaded_model_are_an_error(tmp_path):
    text = STUDY.format(natural="", lens="").replace(
        'recipe = { method = "natural", epochs = 1 }',
        'checkpoint = "model.safetensors"\nseeds = [0, 1]',
    )
    path = tmp_path / "study.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"models\[0\]\.seeds: only a model trained by a recipe"):
        load_spec(path)


def test_a_replicate_name_cannot_clash_with_a_name_of_the_file(tmp_path):
    """ "@" is not allowed in a study file's names, so "natural@s0" can only be a replicate."""
    text = STUDY.format(natural="", lens="").replace('name = "natural"', 'name = "natural@s0"')
    path = tmp_path / "study.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"models\[0\]\.name"):
        load_spec(path)


def test_each_seed_has_its_own_training_identity():
    """The recipe's seed is part of what decides the weights, so replicates are cached apart
    (each also has its own folder, models/<name>)."""
    model, data = small_model(), stripes(64, 0)
    digests = {
        loop_module.identity_digest(
            loop_module.training_identity(model, data, dataclasses.replace(FAST, seed=s))
        )
        for s in (0, 1, 2)
    }
    assert len(digests) == 3


def test_the_plan_has_one_unit_and_key_per_replicate(tmp_path):
    spec = spec_of(tmp_path)
    card = ModelCard(
        arch="small-cnn", arch_kwargs={}, num_classes=10, input_shape=(1, 8, 8),
        mean=(0.0,), std=(1.0,), dataset="digits",
    )  # fmt: skip
    models = [
        StudyModel(m.name, None, card, m.name * 4, setting=m.setting)  # type: ignore[arg-type]
        for m in spec.models
    ]
    plan = StudyPlan.of(spec, models, "f" * 16)
    units = plan.for_lens("activations")
    assert [u.scope_model for u in units] == [m.name for m in spec.models]
    assert len({u.key for u in units}) == len(units)
    assert [u.models[0].setting for u in units] == [m.setting for m in spec.models]


TINY = """
[study]
name = "tiny-seeds"

[data]
dataset = "digits"
eval_n = 40

[[models]]
name = "natural"
arch = "small-cnn"
arch_kwargs = { widths = [4, 8], kernels = [3, 3], strides = [1, 2] }
recipe = { method = "natural", epochs = 1, eval_n = 20 }
seeds = [0, 1]

[[models]]
name = "linf"
arch = "small-cnn"
arch_kwargs = { widths = [4, 8], kernels = [3, 3], strides = [1, 2] }
recipe = { method = "fgsm-rs", norm = "linf", eps = [0.1], epochs = 1, eval_n = 20, eval_steps = 2 }
seeds = [0, 1]

[lenses.activations]
"""


@pytest.mark.slow
def test_a_seeded_study_trains_each_replicate_and_its_claims_say_two_seeds(tmp_path):
    (tmp_path / "tiny.toml").write_text(TINY)
    summary = Study.from_file(tmp_path / "tiny.toml", tmp_path / "out", device="cpu").run()
    names = ["natural@s0", "natural@s1", "linf-0.1@s0", "linf-0.1@s1"]
    assert summary.computed == [f"activations:{n}" for n in names] and not summary.failed
    assert all((tmp_path / "out" / "models" / n / "model.safetensors").is_file() for n in names)
    store = Store.open_existing(tmp_path / "out")
    try:
        results = Study.open(tmp_path / "out", device="cpu").results(store)
        assert [(m.name, m.group) for m in results.models] == [(n, n.split("@")[0]) for n in names]
        assert len({m.digest for m in results.models}) == 4  # each seed its own weights
        derived = [recipe_seed(0, n.split("-")[0].split("@")[0], int(n[-1])) for n in names]
        assert [m.card.recipe["seed"] for m in results.models] == derived
        verdicts = {c.id: v for c, v in evaluate_claims(results.view(), resamples=100)}
    finally:
        store.close()
    dense = verdicts["000-4.1-dense"]
    assert dense.seeds == 2 and dense.seeds_text == "2 seeds"
    assert "linf-0.1 (2 seeds): Δ Σ_k N_k" in dense.evidence, dense.evidence
    assert "hierarchical" in dense.interval
