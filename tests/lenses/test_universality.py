"""The universality lens (Springer et al. §5.1): every model on every robustified set."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from robustlens.constructed.inversion import robustify
from robustlens.errors import ConfigError
from robustlens.lenses import universality
from robustlens.lenses.output import tidy
from robustlens.params import invalid
from tests.lenses.helpers import (
    check_intervals,
    lens_setup,
    make_ctx,
    mlp,
    rows,
    study_model,
    trained_cnn,
    value,
)

INFO, DATA, LENS = lens_setup("universality", 30, seed=11)


def models():
    return [
        study_model(trained_cnn(INFO, seed=0), "nat"),
        study_model(trained_cnn(INFO, seed=1), "nat2"),
        study_model(trained_cnn(INFO, seed=2), "rob", {"method": "pgd", "norm": "l2", "eps": 0.5}),
    ]


def with_non_sources():
    """:func:`models` plus a model trained on a constructed set (same architecture) and a
    natural model of another architecture: every model is evaluated, neither robustifies."""
    zero = study_model(trained_cnn(INFO, seed=3), "zero")
    zero.card.source = {"train_on": {"set": "zero", "source": "nat"}}
    net = study_model(mlp(INFO, (16,)), "mlp")
    return [*models(), zero, net]


_RESULT = {}


def result():
    """One run with the default sources on :func:`with_non_sources`, shared by the tests."""
    if "r" not in _RESULT:
        ms = with_non_sources()
        _RESULT["r"] = (ms, universality.compute(ms, DATA, params(show=2), make_ctx(INFO)))
    return _RESULT["r"]


def params(**overrides):
    return LENS.resolve_params(INFO, {"n": 12, "steps": 30, "step_size": 0.1, **overrides}, "t")


def test_every_model_on_every_set_with_its_own_marked():
    ms, res = result()
    frame = res.tables["universality"]
    acc = frame[frame.metric == "accuracy"]
    assert check_intervals(frame, ("accuracy",)) == len(acc)
    # default sources: the natural and robust small CNNs, not the model trained on a
    # constructed set nor the MLP; every model is evaluated on the test set and every R
    assert list(dict.fromkeys(acc[acc.setting != "test"].setting)) == ["nat", "nat2", "rob"]
    assert len(acc) == 5 * (1 + 3)
    own = rows(acc, model="rob", setting="rob")
    assert bool(own["self"].iloc[0]) and not bool(
        rows(acc, model="nat", setting="rob")["self"].iloc[0]
    )
    data = DATA.subset(12, seed=0)
    expected = robustify(ms[2].model, data.images, data.labels, steps=30, step_size=0.1)
    pred = ms[0].model(expected.images).argmax(1)
    assert value(acc, model="nat", setting="rob") == pytest.approx(
        float((pred == data.labels).float().mean())
    )
    np.testing.assert_allclose(res.arrays["distance/rob"], expected.distance)
    check = rows(frame, model="rob", metric="relative_distance")
    assert float(check.value.iloc[0]) < float(check.start.iloc[0])


def test_in_a_study_the_sets_are_kept_as_constructed_sets_and_reused(tmp_path):
    from robustlens.constructed import load_set

    ms = models()
    ctx = make_ctx(INFO)
    ctx.sets = tmp_path / "constructed"
    first = universality.compute(ms, DATA, params(sources=["nat2", "rob"]), ctx)
    folders = sorted(p.name for p in ctx.sets.iterdir())
    assert [f.rsplit("-", 1)[0] for f in folders] == [
        "robustified-test-nat2",
        "robustified-test-rob",
    ]
    kept = load_set(ctx.sets / folders[1], dataset="toy", shape=(1, 12, 12))
    np.testing.assert_allclose(kept.measures["distance"].numpy(), first.arrays["distance/rob"])
    assert kept.card["statistics"]["relative_distance_mean"] == pytest.approx(
        float(np.mean(first.arrays["distance/rob"]))
    )
    construction = rows(first.tables["universality"], metric="relative_distance")
    assert sorted(construction.set) == folders
    # a new run (empty in-memory cache) loads the files instead of inverting again
    fresh = make_ctx(INFO)
    fresh.sets = ctx.sets
    again = universality.compute(ms, DATA, params(sources=["nat2", "rob"]), fresh)
    for name, values in first.arrays.items():
        np.testing.assert_array_equal(again.arrays[name], values, err_msg=name)
    # the construction's summary is the same whether the set was just made or loaded
    pd.testing.assert_frame_equal(
        again.tables["universality"], first.tables["universality"], check_exact=True
    )
    # and the in-memory path (outside a study) gives the same sets
    plain = universality.compute(ms, DATA, params(sources=["nat2", "rob"]), make_ctx(INFO))
    np.testing.assert_allclose(plain.arrays["images/rob"], first.arrays["images/rob"], atol=1e-6)


def test_sources_can_be_chosen_and_unknown_ones_are_refused():
    ms = models()
    result = universality.compute(ms, DATA, params(sources=["rob"]), make_ctx(INFO))
    settings = {"test", "rob", "construction", "chance"}
    assert set(result.tables["universality"].setting) == settings
    with pytest.raises(ConfigError, match="ghost"):
        universality.compute(ms, DATA, params(sources=["ghost"]), make_ctx(INFO))
    with pytest.raises(ConfigError) as err:
        params(seed_mode="zeros")
    allowed = "one of 'other-image', 'noise'"
    assert str(err.value) == str(invalid("", "t.seed_mode", "zeros", allowed))


def test_without_default_sources_it_says_what_to_do():
    zero, mlp = with_non_sources()[3:]
    with pytest.raises(ConfigError, match="no default source") as info:
        universality.compute([zero, mlp], DATA, params(), make_ctx(INFO))
    assert "sources" in info.value.fix


def test_chance_comes_from_the_number_of_classes_not_from_the_labels_present():
    ms = models()
    two = DATA.take(torch.nonzero(DATA.labels < 2).flatten())
    assert len(np.unique(two.labels.numpy())) == 2
    p = params(n=None, sources=["rob"])
    res = universality.compute(ms, two, p, make_ctx(INFO))
    frame = res.tables["universality"]
    acc = frame[frame.metric == "accuracy"]
    assert np.allclose(acc.chance, 1 / 3)
    assert value(frame, model="nat", setting="chance", metric="chance_accuracy") == 1 / 3
    figures = LENS.plot(res.tables, ms, p)
    fig3 = figures["A standard model's accuracy on R_ε by the source's ε (Fig. 3)"]
    chance = [line for line in fig3.axes[0].get_lines() if "chance" in str(line.get_label())]
    assert len(chance) == 1 and chance[0].get_ydata()[0] == pytest.approx(1 / 3)


def test_table_5_columns_are_labelled_by_the_sources_eps_and_norm_with_chance_marked():
    ms, res = result()
    p = params(show=2)
    figures = LENS.plot(res.tables, ms, p, arrays=lambda m, n: res.arrays.get(n))
    assert len(figures) == 3
    table = figures["Accuracy on robustified test sets, every model × every source (Table 5)"]
    ax = table.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "Test",
        "R_0 (nat)",
        "R_0 (nat2)",
        "R_0.5 L2",
    ]
    assert [t.get_text() for t in ax.get_yticklabels()] == [m.name for m in ms]
    acc = res.tables["universality"]
    acc = acc[acc.metric == "accuracy"]
    order = ["test", "nat", "nat2", "rob"]
    grid = np.array(
        [[value(acc, model=m.name, setting=s) for s in order] for m in ms], dtype=np.float64
    )
    np.testing.assert_allclose(np.asarray(ax.images[0].get_array()), grid)
    # one hatched cell per accuracy at or below chance, and the own sets starred
    hatched = [patch for patch in ax.patches if patch.get_hatch()]
    assert len(hatched) == int(np.sum(grid <= 1 / 3))
    starred = sorted(t.get_text() for t in ax.texts if t.get_text().endswith("*"))
    own = [grid[i, order.index(m.name)] for i, m in enumerate(ms[:3])]
    assert starred == sorted(f"{100 * v:.0f}*" for v in own)
    assert "chance" in ax.get_title()


def test_two_sources_of_the_same_eps_and_norm_get_their_names():
    ms = models()
    twin = study_model(trained_cnn(INFO, seed=4), "rob-b", {"method": "pgd", "norm": "l2",
                                                             "eps": 0.5})  # fmt: skip
    frame = tidy(
        [
            universality._row(m, s.name, s, np.ones(4, dtype=bool), 1 / 3)
            for m in [*ms, twin]
            for s in (ms[2], twin)
        ]
    )
    figures = LENS.plot({"universality": frame}, [*ms, twin], params())
    ax = next(iter(figures.values())).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "Test",
        "R_0.5 L2 (rob)",
        "R_0.5 L2 (rob-b)",
    ]
