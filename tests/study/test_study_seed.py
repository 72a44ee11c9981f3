"""The study seed reaches every random choice (issue 19): recipes and the evaluation subset
derive their seeds from it unless the file pins them, lens units are keyed by it, two cold runs
give identical stores, adding a lens leaves the others' results as they were, and every run
records how to reproduce it."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from robustlens.cli import app
from robustlens.runner import Study
from robustlens.runtime import derive_seed
from robustlens.study.plan import StudyPlan
from robustlens.study.spec import load_spec, recipe_seed
from robustlens.study.store import Store

STUDY = """
[study]
name = "seeded"
seed = {seed}

[data]
dataset = "digits"
eval_n = 40
{data}

[[models]]
name = "a"
arch = "small-cnn"
arch_kwargs = {{ widths = [4, 8], kernels = [3, 3], strides = [1, 2] }}
recipe = {{ method = "natural", epochs = 1, eval_n = 20 {pin} }}

[[models]]
name = "b"
arch = "small-cnn"
arch_kwargs = {{ widths = [4, 8], kernels = [3, 3], strides = [1, 2] }}
recipe = {{ method = "fgsm-rs", norm = "linf", eps = [0.1, 0.2], epochs = 1, eval_n = 20 }}
{extra_model}
[lenses.activations]
{extra_lens}
"""

EXTRA_MODEL = """
[[models]]
name = "c"
arch = "mlp"
recipe = { method = "natural", epochs = 1, eval_n = 20 }
"""


def write(tmp_path, name="study.toml", *, seed=0, pin="", data="", model="", lens=""):
    path = tmp_path / name
    path.write_text(
        textwrap.dedent(
            STUDY.format(seed=seed, pin=pin, data=data, extra_model=model, extra_lens=lens)
        )
    )
    return path


def seeds_of(spec) -> dict[str, int]:
    return {m.name: m.recipe.seed for m in spec.models}


# ------------------------------------------------------------------------------- the plan


def test_derived_seeds_are_named_streams_of_the_study_seed():
    assert derive_seed(0, "train", "a") != derive_seed(1, "train", "a")
    assert derive_seed(0, "train", "a") != derive_seed(0, "train", "b")
    assert derive_seed(0, "train", "a") == derive_seed(0, "train", "a")
    assert 0 <= derive_seed(2**40, "x") < 2**32


def test_changing_the_study_seed_changes_every_unpinned_seed(tmp_path):
    zero = load_spec(write(tmp_path, "0.toml", seed=0))
    seven = load_spec(write(tmp_path, "7.toml", seed=7))
    assert seeds_of(zero) == {
        "a": recipe_seed(0, "a"),
        "b-0.1": recipe_seed(0, "b"),
        "b-0.2": recipe_seed(0, "b"),  # one entry's ε share initialisation and batch order
    }
    assert all(seeds_of(zero)[k] != seeds_of(seven)[k] for k in seeds_of(zero))
    assert zero.eval_seed == derive_seed(0, "eval") != seven.eval_seed
    assert not zero.eval_seed_pinned and not any(m.seed_pinned for m in zero.models)


def test_a_recipe_seed_or_an_eval_seed_in_the_file_pins_it(tmp_path):
    zero = load_spec(write(tmp_path, "0.toml", seed=0, pin=", seed = 5", data="eval_seed = 3"))
    seven = load_spec(write(tmp_path, "7.toml", seed=7, pin=", seed = 5", data="eval_seed = 3"))
    assert seeds_of(zero)["a"] == seeds_of(seven)["a"] == 5
    assert zero.models[0].seed_pinned and not zero.models[1].seed_pinned
    assert seeds_of(zero)["b-0.1"] != seeds_of(seven)["b-0.1"]
    assert zero.eval_seed == seven.eval_seed == 3 and zero.eval_seed_pinned


def test_adding_a_model_leaves_the_other_models_seeds_unchanged(tmp_path):
    base = load_spec(write(tmp_path, "base.toml"))
    more = load_spec(write(tmp_path, "more.toml", model=EXTRA_MODEL))
    assert seeds_of(more) == {**seeds_of(base), "c": recipe_seed(0, "c")}


def test_lens_unit_keys_depend_on_the_study_seed(tmp_path):
    from tests.study.test_plan import fake_models

    zero = load_spec(write(tmp_path, "0.toml", seed=0))
    seven = load_spec(write(tmp_path, "7.toml", seed=7))
    models = fake_models([m.name for m in zero.models])
    keys_zero = {u.key for u in StudyPlan.of(zero, models, "fp").units}
    keys_seven = {u.key for u in StudyPlan.of(seven, models, "fp").units}
    assert keys_zero and not keys_zero & keys_seven


# ------------------------------------------------------------------------------- runs


def stored(folder) -> dict[str, object]:
    """Everything a run stored that its numbers depend on: model digests, every table and
    every array of every lens run (timings and dates left out)."""
    store = Store.open_existing(folder)
    try:
        out: dict[str, object] = {f"model:{row['name']}": row["digest"] for row in store.models()}
        for run in store.runs():
            label = f"{run.lens}:{run.scope_model}"
            for name in store.table_names(run):
                out[f"{label}:table:{name}"] = store.table(run, name)
            for name in store.array_names(run):
                out[f"{label}:array:{name}"] = store.array(run, name)
        return out
    finally:
        store.close()


def assert_same(a: dict[str, object], b: dict[str, object], keys=None) -> None:
    for key in keys if keys is not None else a:
        left, right = a[key], b[key]
        if isinstance(left, pd.DataFrame):
            pd.testing.assert_frame_equal(left, right, check_exact=True)
        elif isinstance(left, np.ndarray):
            np.testing.assert_array_equal(left, right)
        else:
            assert left == right, key


@pytest.mark.slow
def test_two_cold_runs_give_identical_stores_and_a_new_seed_retrains(tmp_path):
    path = write(tmp_path)
    Study.from_file(path, tmp_path / "one").run()
    Study.from_file(path, tmp_path / "two").run()
    one, two = stored(tmp_path / "one"), stored(tmp_path / "two")
    assert one.keys() == two.keys() and any(":array:" in k for k in one)
    assert_same(one, two)

    Study.from_file(write(tmp_path, "7.toml", seed=7), tmp_path / "seven").run()
    seven = stored(tmp_path / "seven")
    for name in ("model:a", "model:b-0.1", "model:b-0.2"):
        assert seven[name] != one[name], f"{name} was not retrained under another study seed"


@pytest.mark.slow
def test_a_pinned_recipe_seed_keeps_its_model_under_another_study_seed(tmp_path):
    Study.from_file(write(tmp_path, "0.toml", seed=0, pin=", seed = 5"), tmp_path / "zero").run()
    Study.from_file(write(tmp_path, "7.toml", seed=7, pin=", seed = 5"), tmp_path / "seven").run()
    zero, seven = stored(tmp_path / "zero"), stored(tmp_path / "seven")
    assert zero["model:a"] == seven["model:a"]
    assert zero["model:b-0.1"] != seven["model:b-0.1"]


@pytest.mark.slow
def test_adding_a_lens_leaves_the_other_lenses_results_unchanged(tmp_path):
    Study.from_file(write(tmp_path, "base.toml"), tmp_path / "base").run()
    more_lens = "[lenses.loss_dist]\nn = 20\n"
    Study.from_file(write(tmp_path, "more.toml", lens=more_lens), tmp_path / "more").run()
    base, more = stored(tmp_path / "base"), stored(tmp_path / "more")
    assert any(k.startswith("loss_dist:") for k in more)
    assert not any(k.startswith("loss_dist:") for k in base)
    assert_same(base, more, keys=list(base))


@pytest.mark.slow
def test_each_run_records_how_to_reproduce_it(tmp_path):
    path = write(tmp_path, pin=", seed = 5")
    out = tmp_path / "out"
    summary = Study.from_file(path, out).run()
    with Study.open(out).read() as results:
        record = results.provenance
    seeds = record["seeds"]
    assert seeds["study"] == 0
    assert seeds["models"]["a"] == {"seed": 5, "from": "recipe (pinned)"}
    assert seeds["models"]["b-0.1"] == {"seed": recipe_seed(0, "b"), "from": "study seed"}
    assert seeds["eval_subset"]["seed"] == derive_seed(0, "eval")
    assert record["study_file_sha256"] and record["data_fingerprint"] and record["threads"] >= 1
    assert {"torch", "numpy", "python"} <= record["versions"].keys()
    html = summary.report.read_text()
    assert "How to reproduce this run" in html and record["study_file_sha256"] in html
    printed = CliRunner().invoke(app, ["study", "status", str(out), "--provenance"])
    assert printed.exit_code == 0, printed.output
    assert f"b-0.1 {recipe_seed(0, 'b')} (study seed)" in printed.output
    assert "a 5 (recipe (pinned))" in printed.output


@pytest.mark.slow
def test_results_of_another_seed_in_the_same_folder_are_counted_as_not_used(tmp_path):
    out = tmp_path / "out"
    first = Study.from_file(write(tmp_path, "0.toml", seed=0), out).run()
    store = Store.open_existing(out)
    try:
        earlier = len(store.runs())
    finally:
        store.close()
    assert first.superseded == 0 and earlier > 0
    again = Study.from_file(write(tmp_path, "7.toml", seed=7), out).run()
    assert again.superseded == earlier  # every lens key carries the study seed
    assert again.computed and not again.cached
