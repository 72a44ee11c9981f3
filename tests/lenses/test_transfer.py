"""The transfer lens (Springer et al. §5.2): examples from each source on other architectures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robustlens.errors import ConfigError
from robustlens.lenses import transfer
from robustlens.lenses.common import chosen_sources
from tests.lenses.helpers import (
    check_intervals,
    lens_setup,
    make_ctx,
    rows,
    study_model,
    trained_cnn,
    trained_mlp,
    value,
)

INFO, DATA, LENS = lens_setup("transfer", 30, seed=12)


def constructed(name: str = "zero", seed: int = 2):
    """A small CNN trained on a constructed set: neither natural nor robust, never a source."""
    m = study_model(trained_cnn(INFO, seed=seed), name)
    m.card.source = {"train_on": {"set": "zero", "source": "nat"}}
    assert not m.is_natural and not m.is_robust
    return m


def models():
    return [
        study_model(trained_cnn(INFO, seed=0), "nat"),
        study_model(trained_cnn(INFO, seed=1), "rob", {"method": "pgd", "norm": "l2", "eps": 0.5}),
        constructed(),
        study_model(trained_mlp(INFO), "mlp"),
    ]


def params(**overrides):
    base = {"n": 20, "steps": 10, "eps": 3.0, "step_size": 0.5, "reference_dim": 0}
    return LENS.resolve_params(INFO, {**base, **overrides}, "t")


_RESULT = {}


def result():
    """One run of the lens on :func:`models` with the default sources, shared by the tests."""
    if "r" not in _RESULT:
        ms = models()
        _RESULT["r"] = (ms, transfer.compute(ms, DATA, params(), make_ctx(INFO)))
    return _RESULT["r"]


def test_default_sources_are_natural_and_robust_models_of_the_first_architecture():
    _, res = result()
    frame = res.tables["transfer"]
    assert check_intervals(frame, tuple(set(frame.metric))) == len(frame)
    # the model trained on a constructed set is of the sources' architecture but not a source,
    # and not a victim either (it is not naturally trained)
    assert set(frame.setting) == {"nat", "rob", transfer.CLEAN}
    assert set(rows(frame, victim=True).model) == {"mlp"}
    assert "zero" not in set(frame.model)
    hits = res.arrays["hit/mlp/rob"]
    assert value(frame, model="mlp", setting="rob", metric="targeted_success") == pytest.approx(
        hits.mean()
    )
    # a white-box attack with a large budget fools its own source
    assert value(frame, model="nat", setting="nat", metric="untargeted_error") > 0.8
    targets = res.arrays["targets"]
    assert np.all(targets != DATA.subset(20, seed=0).labels.numpy())


def test_each_model_has_its_clean_baseline_on_the_same_images():
    ms, res = result()
    frame = res.tables["transfer"]
    data = DATA.subset(20, seed=0)
    targets = torch.as_tensor(res.arrays["targets"])
    for m in (ms[0], ms[1], ms[3]):
        with torch.no_grad():
            pred = m.model(data.images).argmax(1)
        error = float((pred != data.labels).float().mean())
        target_rate = float((pred == targets).float().mean())
        assert value(frame, model=m.name, setting="clean", metric="clean_error") == pytest.approx(
            error
        )
        assert value(
            frame, model=m.name, setting="clean", metric="clean_target_rate"
        ) == pytest.approx(target_rate)
        np.testing.assert_array_equal(res.arrays[f"clean_error/{m.name}"], (pred != data.labels))
    # the victim's baseline is written next to each of its transfer rates
    error = value(frame, model="mlp", setting="clean", metric="clean_error")
    for source in ("nat", "rob"):
        row = rows(frame, model="mlp", setting=source, metric="untargeted_error")
        assert float(row.baseline.iloc[0]) == pytest.approx(error)
    assert bool(rows(frame, model="mlp", setting="clean", metric="clean_error").victim.iloc[0])
    assert not bool(rows(frame, model="nat", setting="clean", metric="clean_error").victim.iloc[0])


def test_without_sources_or_victims_or_with_unknown_sources_it_says_what_to_add():
    nat, rob, zero, mlp = models()
    with pytest.raises(ConfigError, match="victim"):
        transfer.compute([nat, rob], DATA, params(), make_ctx(INFO))
    with pytest.raises(ConfigError, match="ghost"):
        transfer.compute([nat, rob, mlp], DATA, params(sources=["ghost"]), make_ctx(INFO))
    # the first model's architecture has only a model trained on a constructed set
    with pytest.raises(ConfigError, match="no default source") as info:
        transfer.compute([zero, mlp], DATA, params(), make_ctx(INFO))
    assert "sources" in info.value.fix
    # named sources are taken as given
    assert [m.name for m in chosen_sources([nat, rob, mlp], ("rob",), "t")] == ["rob"]


def test_figures_draw_the_baseline_and_the_annotated_source_by_victim_matrices():
    ms, res = result()
    p = params()
    frame = res.tables["transfer"]
    figures = LENS.plot(res.tables, ms, p)
    assert len(figures) == 2
    curves, matrix = figures.values()
    error = value(frame, model="mlp", setting="clean", metric="clean_error")
    dashed = [line for line in curves.axes[0].get_lines() if line.get_ls() == "--"]
    levels = [line.get_ydata()[0] for line in dashed if len(line.get_ydata())]
    assert levels == pytest.approx([error])  # one victim: one baseline line
    untargeted, targeted = matrix.axes[:2]
    # rows: natural source, robust source, then the clean baseline; one column: the victim
    assert [t.get_text() for t in untargeted.get_yticklabels()] == [
        ms[0].label(),
        ms[1].label(),
        "no attack (baseline)",
    ]
    assert [t.get_text() for t in untargeted.get_xticklabels()] == ["mlp"]
    expected = [
        value(frame, model="mlp", setting="nat", metric="untargeted_error"),
        value(frame, model="mlp", setting="rob", metric="untargeted_error"),
        error,
    ]
    assert [t.get_text() for t in untargeted.texts] == [f"{100 * v:.0f}" for v in expected]
    shown = np.asarray(untargeted.images[0].get_array())
    np.testing.assert_allclose(shown[:, 0], expected)
    rate = value(frame, model="mlp", setting="clean", metric="clean_target_rate")
    assert targeted.texts[-1].get_text() == f"{100 * rate:.0f}"
