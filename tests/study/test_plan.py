"""The study plan: a study file's lenses expanded into units (one lens on one model, or a
study-scope lens on the models it covers), each with its cache key — the one expansion the
execution, the results view and the status all read."""

from __future__ import annotations

from pathlib import Path

import pytest

from robustlens.errors import ConfigError
from robustlens.lenses import LENSES, StudyModel
from robustlens.models import ModelCard
from robustlens.study.plan import StudyPlan, expected_units, lens_groups, params_dict, unit_key
from robustlens.study.spec import load_spec
from robustlens.study.store import run_key

STUDY = """
[study]
name = "plan"

[data]
dataset = "digits"
eval_n = 40

[[models]]
name = "a"
arch = "small-cnn"
recipe = { method = "natural", epochs = 1 }

[[models]]
name = "b"
arch = "small-cnn"
recipe = { method = "natural", epochs = 1, seed = 1 }

[[models]]
name = "lin"
arch = "small-cnn"
recipe = { method = "fgsm-rs", norm = "linf", eps = [0.1, 0.2], epochs = 1 }

[lenses.activations]
models = ["lin"]

[lenses.ensemble]
models = ["a", "b"]

[lenses.color]
"""
FINGERPRINT = "f" * 16


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    path = Path(tmp_path_factory.mktemp("plan")) / "plan.toml"
    path.write_text(STUDY)
    return load_spec(path)


def fake_models(names: list[str], digest_of=None) -> list[StudyModel]:
    """Models with a name and a digest only: planning needs no weights."""
    card = ModelCard(
        arch="small-cnn", arch_kwargs={}, num_classes=10, input_shape=(1, 8, 8),
        mean=(0.0,), std=(1.0,), dataset="digits",
    )  # fmt: skip
    digest_of = digest_of or (lambda name: name * 4)
    return [StudyModel(n, None, card, digest_of(n)) for n in names]  # type: ignore[arg-type]


NAMES = ["a", "b", "lin-0.1", "lin-0.2"]


def test_a_subset_and_a_study_scope_lens_give_the_expected_units(spec):
    plan = StudyPlan.of(spec, fake_models(NAMES), FINGERPRINT)
    assert [u.label for u in plan.units] == [
        "activations:lin-0.1",
        "activations:lin-0.2",
        "ensemble:all",
        "color:a",
        "color:b",
        "color:lin-0.1",
        "color:lin-0.2",
    ]
    (ensemble,) = plan.for_lens("ensemble")
    assert [m.name for m in ensemble.models] == ["a", "b"]
    assert ensemble.scope_model is None and [m.name for m in ensemble.target] == ["a", "b"]
    first = plan.for_lens("activations")[0]
    assert first.scope_model == "lin-0.1" and first.target.name == "lin-0.1"
    assert first.digests == {"lin-0.1": "lin-0.1" * 4}


def test_each_key_is_the_stores_run_key_of_its_lens_models_and_data(spec):
    plan = StudyPlan.of(spec, fake_models(NAMES), FINGERPRINT)
    for unit in plan.units:
        lens = LENSES.get(unit.lens.name)
        expected = run_key(
            lens.name,
            lens.version,
            params_dict(unit.lens.params),
            unit.digests,
            FINGERPRINT,
            spec.seed,
        )
        assert (
            unit.key == expected == unit_key(unit.lens, lens, unit.models, FINGERPRINT, spec.seed)
        )
    assert len({u.key for u in plan.units}) == len(plan.units)


def test_a_new_digest_changes_only_the_keys_of_units_that_look_at_the_model(spec):
    before = StudyPlan.of(spec, fake_models(NAMES), FINGERPRINT)
    after = StudyPlan.of(
        spec, fake_models(NAMES, lambda n: "retrained" if n == "b" else n * 4), FINGERPRINT
    )
    changed = {u.label for u, v in zip(before.units, after.units, strict=True) if u.key != v.key}
    assert changed == {"ensemble:all", "color:b"}
    other_data = StudyPlan.of(spec, fake_models(NAMES), "e" * 16)
    assert all(u.key != v.key for u, v in zip(before.units, other_data.units, strict=True))


def test_units_cover_only_the_models_at_hand(spec):
    """Results read the units of the models the store holds: a model not stored yet has no
    unit, and a study-scope lens covering none of them has none either."""
    plan = StudyPlan.of(spec, fake_models(["a", "lin-0.2"]), FINGERPRINT)
    assert [u.label for u in plan.units] == [
        "activations:lin-0.2",
        "ensemble:all",
        "color:a",
        "color:lin-0.2",
    ]
    assert [m.name for m in plan.for_lens("ensemble")[0].models] == ["a"]
    none = StudyPlan.of(spec, fake_models(["lin-0.1"]), FINGERPRINT)
    assert none.for_lens("ensemble") == []


def test_expected_units_count_every_model_of_the_study_file(spec):
    assert [expected_units(spec, lens.name) for lens in spec.lenses] == [2, 1, 4]
    assert expected_units(spec, "filters") == 0
    assert lens_groups(spec.lens("ensemble"), LENSES.get("ensemble"), ["a", "b", "c"], str) == [
        ["a", "b"]
    ]


def test_a_lens_the_study_lacks_is_one_clear_error(spec):
    plan = StudyPlan.of(spec, fake_models(NAMES), FINGERPRINT)
    with pytest.raises(ConfigError, match="the study has no lens 'filters'") as info:
        plan.for_lens("filters")
    assert info.value.fix == "its lenses: activations, ensemble, color"
