"""The filters lens (Gavrikov & Keuper 2022): per-layer statistics, stored filters, figures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robustlens.analysis.filters import orthogonality, scaled_filters, sparsity, variance_entropy
from robustlens.errors import ConfigError
from robustlens.lenses import filters
from robustlens.models import build_model
from robustlens.models.convs import conv_layers
from robustlens.params import invalid
from tests.lenses.helpers import (
    lens_setup,
    make_ctx,
    rows,
    study_model,
    trained_cnn,
    value,
)

INFO, DATA, LENS = lens_setup("filters", 40, seed=3)


def params(**overrides):
    base = {"reference_dim": 0, "threshold_attack": "pgd linf 0.1 3", "resamples": 20}
    return LENS.resolve_params(INFO, {**base, **overrides}, "test")


def test_statistics_are_the_analysis_functions_on_each_layer():
    net = trained_cnn(INFO)
    result = filters.compute(study_model(net), DATA, params(), make_ctx(INFO))
    frame = result.tables["filters"]
    w = net.block2[0].weight.detach().double().numpy()
    assert value(frame, layer="block2.0", metric="sparsity") == sparsity(w)
    assert value(frame, layer="block2.0", metric="variance_entropy") == pytest.approx(
        variance_entropy(w)
    )
    assert value(frame, layer="block2.0", metric="orthogonality") == pytest.approx(orthogonality(w))
    part = rows(frame, layer="block2.0", metric="orthogonality")
    assert (part.ci_low <= part.ci_high).all()
    assert set(rows(frame, metric="sparsity").group) == {"first", "d10"}
    assert (rows(frame, metric="sparsity").weights == "raw").all()
    np.testing.assert_allclose(
        result.arrays["filters/d10/3x3/block2.0"], scaled_filters(w).astype(np.float32)
    )
    assert list(result.arrays["filters/index"]) == [
        "filters/first/3x3/block1.0",
        "filters/d10/3x3/block2.0",
    ]
    assert result.arrays["quality_boot/orthogonality"].shape == (2, 20)
    assert "m: 3×3 statistics cover all 2 convolutions" in result.notes
    assert value(frame, metric=filters.LAYERS_LEFT_OUT) == 0.0
    change = result.arrays["threshold/relative_change"]
    assert change.shape == (len(DATA),) and np.all(change >= 0)
    assert value(frame, metric="first_layer_relative_change") == pytest.approx(change.mean())


def test_folded_weights_are_measured_on_request_and_labelled():
    net = trained_cnn(INFO)
    raw = filters.compute(study_model(net), DATA, params(threshold_images=0), make_ctx(INFO))
    folded = filters.compute(
        study_model(net), DATA, params(threshold_images=0, fold_batchnorm=True), make_ctx(INFO)
    )
    r, f = raw.tables["filters"], folded.tables["filters"]
    assert (f.weights == "BatchNorm-folded").all()
    # folding scales each output channel: sparsity (relative to the layer's max) and the
    # entropy of the unnormalised filters (§3) see it; orthogonality (unit banks) and the
    # entropy of ‖F‖∞-scaled filters (pca.ipynb's variant) are invariant to it
    w = conv_layers(net, fold_batchnorm=True)[1].weight
    assert value(f, layer="block2.0", metric="sparsity") == sparsity(w)
    assert value(f, layer="block2.0", metric="variance_entropy") == pytest.approx(
        variance_entropy(w)
    )
    assert value(f, layer="block2.0", metric="variance_entropy") != pytest.approx(
        value(r, layer="block2.0", metric="variance_entropy")
    )
    assert value(f, layer="block2.0", metric="orthogonality") == pytest.approx(
        value(r, layer="block2.0", metric="orthogonality")
    )
    scaled = {
        fold: filters.compute(
            study_model(net),
            DATA,
            params(threshold_images=0, fold_batchnorm=fold, entropy_on_scaled_filters=True),
            make_ctx(INFO),
        ).tables["filters"]
        for fold in (False, True)
    }
    assert value(scaled[True], layer="block2.0", metric="variance_entropy") == pytest.approx(
        value(scaled[False], layer="block2.0", metric="variance_entropy")
    )
    assert value(scaled[True], layer="block2.0", metric="variance_entropy") == pytest.approx(
        variance_entropy(w, scaled=True)
    )
    assert not np.allclose(folded.arrays["first_layer"], raw.arrays["first_layer"]), (
        "the first-layer picture shows folded weights too"
    )


def test_other_kernel_sizes_are_left_out_with_a_note_or_refused():
    torch.manual_seed(0)
    net = build_model("small-cnn", INFO, widths=(4, 8), kernels=(5, 3), strides=(1, 2)).eval()
    result = filters.compute(study_model(net), DATA, params(threshold_images=0), make_ctx(INFO))
    frame = result.tables["filters"]
    assert set(frame.layer) == {"block2.0", filters.ALL_LAYERS}
    assert value(frame, metric=filters.LAYERS_MEASURED) == 1.0
    assert value(frame, metric=filters.LAYERS_LEFT_OUT) == 1.0
    assert result.notes[0] == (
        "m: 3×3 statistics cover 1 of 2 convolutions (block2.0 (3×3)); "
        "left out, other kernel sizes: block1.0 (5×5)"
    )
    assert "first convolution block1.0 is 5×5" in result.notes[1]
    assert list(result.arrays["filters/index"]) == ["filters/d10/3x3/block2.0"]
    assert result.arrays["first_layer"].shape == (4, 1, 5, 5)  # Fig. 4 shows it anyway
    both = filters.compute(
        study_model(net), DATA, params(threshold_images=0, kernel_sizes=[3, 5]), make_ctx(INFO)
    )
    assert "filters/first/5x5/block1.0" in both.arrays
    with pytest.raises(ConfigError, match="kernel_sizes"):
        filters.compute(study_model(net), DATA, params(kernel_sizes=[7]), make_ctx(INFO))


@pytest.mark.parametrize(
    ("override", "value", "allowed", "hint"),
    [
        (
            {"kernel_sizes": []},
            [],
            "a non-empty list, each a whole number ≥ 1",
            "e.g. kernel_sizes = [3] (the paper) or [3, 5]",
        ),
        ({"resamples": -1}, -1, "a whole number ≥ 0", None),
        (
            {"threshold_attack": "deepfool l2 0.1"},
            "deepfool l2 0.1",
            "a PGD or FGSM setting (a fixed budget, e.g. 'pgd linf 0.03137 10')",
            None,
        ),
        (
            {"threshold_attack": "pgd"},
            "pgd",
            "an attack setting 'ATTACK NORM EPS [STEPS] [@cifar10|@imagenet|@N]'",
            "attack setting 'pgd' is not understood",
        ),
    ],
)
def test_bad_parameters_are_refused(override, value, allowed, hint):
    with pytest.raises(ConfigError) as err:
        params(**override)
    (key,) = override
    assert str(err.value) == str(invalid("", f"test.{key}", value, allowed, hint))


def test_figures_compare_robust_and_natural():
    natural = trained_cnn(INFO, seed=0)
    robust = trained_cnn(INFO, seed=1)
    models = [
        study_model(natural, "nat"),
        study_model(robust, "rob", {"method": "pgd", "norm": "linf", "eps": 0.1}),
    ]
    p = params()
    stored, frames = {}, []
    for m in models:
        result = filters.compute(m, DATA, p, make_ctx(INFO))
        stored[m.name] = result.arrays
        frames.append(result.tables["filters"])
    import pandas as pd

    figures = LENS.plot(
        {"filters": pd.concat(frames)},
        models,
        p,
        arrays=lambda model, name: stored[model].get(name),
    )
    titles = " | ".join(figures)
    for part in ("Eq. 7–9", "Eq. 10", "Fig. 2", "Fig. 3", "Fig. 4", "Fig. 6"):
        assert part in titles


def test_a_resnet20_spreads_its_layers_over_the_depth_deciles():
    torch.manual_seed(0)
    net = build_model("resnet20", INFO).eval()
    result = filters.compute(
        study_model(net), DATA, params(threshold_images=0, resamples=2), make_ctx(INFO)
    )
    groups = set(result.tables["filters"].group)
    assert "first" in groups and {"d1", "d5", "d10"} <= groups and len(groups) >= 9
    folded = filters.compute(
        study_model(net),
        DATA,
        params(threshold_images=0, resamples=2, fold_batchnorm=True),
        make_ctx(INFO),
    )
    assert (folded.tables["filters"].weights == "BatchNorm-folded").all()
