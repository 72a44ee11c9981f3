"""The probes lens (Itazuri et al. 2019, §4.1): accuracy under blur, median, reversal, texture."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from robustlens.data import probes as P
from robustlens.data.imageset import ImageSet
from robustlens.errors import ConfigError
from robustlens.lenses import probes
from robustlens.params import invalid
from tests.lenses.helpers import (
    check_intervals,
    lens_setup,
    make_ctx,
    make_info,
    study_model,
    trained_cnn,
    value,
)

INFO, DATA, LENS = lens_setup("probes", 60, seed=5)


def params(**overrides):
    base = {"blur_sigmas": [0, 1.0, 2.5], "median_times": [0, 2]}
    return LENS.resolve_params(INFO, {**base, **overrides}, "test")


def test_defaults_are_the_papers_schedules():
    p = LENS.resolve_params(INFO, {}, "test")
    assert p.blur_sigmas[0] == 0 and p.blur_sigmas[-1] == 5 and len(p.blur_sigmas) == 21
    assert p.median_times == (0, 1, 2, 3, 4, 5)
    assert p.blur_kernel == 7 and p.median_kernel == 5


def test_accuracy_per_probe_is_the_models_accuracy_on_the_transformed_images():
    net = trained_cnn(INFO)
    result = probes.compute(study_model(net), DATA, params(), make_ctx(INFO))
    frame = result.tables["probes"]
    assert check_intervals(frame, ("accuracy",)) == len(frame[frame.metric == "accuracy"])
    with torch.no_grad():
        # §4.1's σ = 2.5 and kernel 7 are for 224 px: on 12 px, σ 2.5·12/224 and kernel 3
        blurred = P.gaussian_blur(DATA.images, 2.5 * 12 / 224, 3)
        expected = (net(blurred).argmax(1) == DATA.labels).float().mean().item()
        edges = (net(P.edge_map(DATA.images)).argmax(1) == DATA.labels).numpy()
        clean = (net(DATA.images).argmax(1) == DATA.labels).float().mean().item()
    assert value(frame, setting="gaussian_blur", level=2.5) == pytest.approx(expected)
    assert value(frame, setting="gaussian_blur", level=0.0) == pytest.approx(clean)
    assert value(frame, setting="median_filter", level=0.0) == pytest.approx(clean)
    np.testing.assert_array_equal(result.arrays["correct/edge_map/1"], edges)
    assert set(frame.setting) == {
        "gaussian_blur",
        "median_filter",
        "color_reversal",
        "amplitude_swap",
        "edge_map",
    }
    assert any("clips" in note for note in result.notes)
    assert "blur kernel 7 → 3×3, median kernel 5 → 3×3" in result.notes[0]


def transforms(info, images, **overrides) -> dict[tuple[str, float], torch.Tensor]:
    p = LENS.resolve_params(info, {"texture": [], "reversal": False, **overrides}, "test")
    data = ImageSet(images, torch.zeros(len(images), dtype=torch.long), info, "test",
                    torch.arange(len(images)))  # fmt: skip
    return {(probe, level): fn(images) for probe, level, fn in probes.settings(p, data, 0)}


def test_on_224_px_the_relative_sizes_are_the_papers_exactly():
    info = make_info((1, 224, 224))
    images = torch.rand(2, 1, 224, 224, generator=torch.Generator().manual_seed(1))
    relative, absolute = transforms(info, images), transforms(info, images, reference_side=0)
    assert len(relative) == 21 + 6 and relative.keys() == absolute.keys()
    for key, out in relative.items():
        assert torch.equal(out, absolute[key]), key
    torch.testing.assert_close(
        relative[(probes.GAUSSIAN_BLUR, 5.0)], P.gaussian_blur(images, 5.0, 7), rtol=0, atol=0
    )


def test_on_28_px_sigma_and_kernels_shrink_with_the_side():
    info = make_info((1, 28, 28))
    images = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    sizes = probes.applied(LENS.resolve_params(info, {}, "test"), images)
    assert sizes.sigma(5.0) == (0.625, 0.625)  # σ_max = 5·28/224
    assert (sizes.blur_kernel, sizes.median_kernel) == ((3, 3), (3, 3))
    out = transforms(info, images)
    torch.testing.assert_close(out[(probes.GAUSSIAN_BLUR, 5.0)], P.gaussian_blur(images, 0.625, 3))
    torch.testing.assert_close(out[(probes.MEDIAN_FILTER, 2)], P.median_filter(images, 2, 3))
    # the absolute form, as robustlens had it: σ = 5 with the 7×7 kernel
    fixed = transforms(info, images, reference_side=0)
    torch.testing.assert_close(fixed[(probes.GAUSSIAN_BLUR, 5.0)], P.gaussian_blur(images, 5, 7))
    assert not torch.allclose(fixed[(probes.GAUSSIAN_BLUR, 5.0)], out[(probes.GAUSSIAN_BLUR, 5.0)])


def test_donors_are_a_seeded_permutation_without_fixed_points():
    for n in (2, 3, 10, 101):
        order = probes.donors(n, seed=n)
        assert sorted(order.tolist()) == list(range(n))
        assert not torch.any(order == torch.arange(n))
    # the seed alone fixes the permutation: the same for the same seed, another for another
    assert torch.equal(probes.donors(50, 1), probes.donors(50, 1))
    assert not torch.equal(probes.donors(50, 1), probes.donors(50, 2))
    with pytest.raises(ConfigError, match="two images"):
        probes.donors(1, 0)


def test_shape_bias_counts_shape_against_texture_decisions():
    pred = np.array([0, 0, 1, 2, 2])
    shape = np.array([0, 0, 0, 2, 1])
    texture = np.array([1, 1, 1, 0, 2])
    # shape hits: 0, 0, 2 → 3; texture hits: pred 1 on texture 1, pred 2 on texture 2 → 2
    assert probes.shape_bias(pred, shape, texture) == pytest.approx(3 / 5)
    assert np.isnan(probes.shape_bias(np.array([2]), np.array([0]), np.array([1])))


def test_cue_conflict_names_give_the_texture_class():
    classes = ("cat", "c0", "c1", "elephant")
    assert probes.cue_conflict_texture("cat7-elephant1.png", classes) == "elephant"
    assert probes.cue_conflict_texture("c01-c11.png", classes) == "c1"
    assert probes.cue_conflict_texture("cat7.png", classes) is None
    assert probes.cue_conflict_texture("cat7-dog1.png", classes) is None


def write_stylized(root, names):
    gen = np.random.default_rng(0)
    for folder, file in names:
        (root / folder).mkdir(parents=True, exist_ok=True)
        pixels = (gen.random((12, 12)) * 255).astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(root / folder / file)


def test_stylized_folder_gives_accuracy_and_shape_bias(tmp_path):
    write_stylized(
        tmp_path,
        [
            ("c0", "c01-c11.png"),
            ("c0", "c02-c21.png"),
            ("c1", "c13-c01.png"),
            ("c2", "c24-c24.png"),
        ],
    )
    net = trained_cnn(INFO)
    p = params(stylized_dir=str(tmp_path), texture=[], reversal=False)
    result = probes.compute(study_model(net), DATA, p, make_ctx(INFO))
    frame = result.tables["probes"]
    correct = result.arrays["correct/stylized/1"]
    assert correct.shape == (4,)
    assert value(frame, setting="stylized", metric="accuracy") == pytest.approx(correct.mean())
    bias = frame[(frame.setting == "stylized") & (frame.metric == "shape_bias")]
    assert len(bias) == 1 and int(bias.n.iloc[0]) == 3  # c24-c24 is not a conflict


def test_stylized_folder_with_foreign_classes_is_refused(tmp_path):
    write_stylized(tmp_path, [("zebra", "a.png")])
    p = params(stylized_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="zebra"):
        probes.compute(study_model(trained_cnn(INFO)), DATA, p, make_ctx(INFO))


@pytest.mark.parametrize(
    ("override", "key", "value", "allowed"),
    [
        ({"blur_kernel": 6}, "blur_kernel", 6, "an odd whole number ≥ 1"),
        ({"median_times": [-1]}, "median_times[0]", -1, "a whole number ≥ 0"),
        ({"texture": ["cartoon"]}, "texture[0]", "cartoon", "one of 'amplitude_swap', 'edge_map'"),
        (
            {"stylized_dir": "/no/such/folder"},
            "stylized_dir",
            "/no/such/folder",
            "a folder with one subfolder of images per class or nothing (leave it out)",
        ),
    ],
)
def test_bad_parameters_are_refused(override, key, value, allowed):
    with pytest.raises(ConfigError) as err:
        params(**override)
    assert str(err.value) == str(invalid("", f"test.{key}", value, allowed))


def test_figure_has_curves_and_bars():
    nat, rob = trained_cnn(INFO, seed=0), trained_cnn(INFO, seed=1)
    models = [
        study_model(nat, "nat"),
        study_model(rob, "rob", {"method": "pgd", "norm": "linf", "eps": 0.1}),
    ]
    p = params()
    frames = [probes.compute(m, DATA, p, make_ctx(INFO)).tables["probes"] for m in models]
    figures = LENS.plot({"probes": pd.concat(frames)}, models, p)
    assert len(figures) == 1 and "Fig. 6" in next(iter(figures))
