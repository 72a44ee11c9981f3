"""The colour-bias lens (Carletti et al. 2022, §3.4, App. B) with models of known behaviour."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustlens.data.imageset import ImageSet
from robustlens.errors import ConfigError
from robustlens.lenses import get_lens
from robustlens.lenses.color import ColorParams, compute, default_thicknesses
from robustlens.lenses.output import TIDY_COLUMNS
from robustlens.models import RobustClassifier, build_model
from robustlens.params import invalid
from tests.lenses.helpers import (
    check_intervals,
    correct,
    make_ctx,
    make_info,
    mlp,
    rows,
    study_model,
    value,
)

RGB = {"white": (1.0, 1.0, 1.0), "red": (1.0, 0.0, 0.0), "green": (0.0, 1.0, 0.0)}
RGB["blue"] = (0.0, 0.0, 1.0)
GREY = {"white": 1.0, "red": 0.299, "green": 0.587, "blue": 0.114}  # BT.601 luma


class CentreProbe(RobustClassifier):
    """Predicts from the mean of the image's centre (the middle half of rows and columns).

    Three channels: class = the channel with the largest centre mean. One channel: class 1
    when the centre mean is above 0.5, else class 0. Records the input sizes it sees.
    """

    arch = "centre-probe"

    def __init__(self, channels: int, size: int | tuple[int, int]) -> None:
        classes = 3 if channels == 3 else 2
        super().__init__(channels, classes, input_size=size)
        self.linear = nn.Linear(channels, classes)
        with torch.no_grad():
            if channels == 3:
                self.linear.weight.copy_(torch.eye(3))
                self.linear.bias.zero_()
            else:
                self.linear.weight.copy_(torch.tensor([[0.0], [1.0]]))
                self.linear.bias.copy_(torch.tensor([0.5, 0.0]))
        self.seen: list[tuple[int, int]] = []

    def forward_features(self, z: torch.Tensor) -> torch.Tensor:
        h, w = z.shape[2:]
        self.seen.append((h, w))
        return z[:, :, h // 4 : h - h // 4, w // 4 : w - w // 4].mean(dim=(2, 3))


class FixedSizeProbe(CentreProbe):
    """Like an MLP: takes only the input size it was built for."""

    accepts_any_size = False

    def forward_features(self, z: torch.Tensor) -> torch.Tensor:
        if tuple(z.shape[1:]) != self.input_shape:
            raise ConfigError(f"built for {self.input_shape}, got {tuple(z.shape[1:])}")
        return super().forward_features(z)


# ------------------------------------------------------------------- the oracle, in NumPy


def predict(images: np.ndarray) -> np.ndarray:
    h, w = images.shape[2:]
    centre = images[:, :, h // 4 : h - h // 4, w // 4 : w - w // 4].mean(axis=(2, 3))
    if images.shape[1] == 3:
        return centre.argmax(axis=1)
    return (centre[:, 0] > 0.5).astype(np.int64)


def contour(images: np.ndarray, color: str, t: int) -> np.ndarray:
    out = images.copy()
    value = np.array(RGB[color] if images.shape[1] == 3 else (GREY[color],))[None, :, None, None]
    h, w = images.shape[2:]
    mask = np.zeros((h, w), dtype=bool)
    mask[:t, :] = mask[h - t :, :] = mask[:, :t] = mask[:, w - t :] = True
    return np.where(mask[None, None], value, out)


def make_data(channels: int, size: int = 16, n: int = 60, seed: int = 0):
    """Random images with one colour cast in the centre and another (per pixel) around it;
    3/4 of the labels are the clean prediction."""
    info = make_info((channels, size, size), num_classes=3 if channels == 3 else 2)
    rng = np.random.default_rng(seed)
    cast = rng.uniform(0.0, 0.4, size=(n, channels, size, size))
    q = size // 4
    cast[:, :, q : size - q, q : size - q] = rng.uniform(0.0, 0.4, size=(n, channels, 1, 1))
    images = (rng.random((n, channels, size, size)) * 0.6 + cast).astype(np.float32)
    labels = predict(images.astype(np.float64))
    flip = rng.random(n) < 0.25
    labels[flip] = rng.integers(0, info.num_classes, size=int(flip.sum()))
    data = ImageSet(
        torch.from_numpy(images), torch.from_numpy(labels).long(), info, "test", torch.arange(n)
    )
    return info, data


def accuracy(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return predict(images.astype(np.float64)) == labels


# ------------------------------------------------------------------- default thicknesses


@pytest.mark.parametrize("resolution", [28, 32])
def test_default_thicknesses_small_images_are_the_papers_cifar_values(resolution):
    assert default_thicknesses(resolution) == (1, 2, 3, 4)


def test_default_thicknesses_224_are_the_papers_imagenet_values():
    assert default_thicknesses(224) == (1, 5, 10, 15, 20)


@pytest.mark.parametrize("resolution", [65, 96, 112, 128, 160, 448])
def test_default_thicknesses_in_between_are_scaled_distinct_and_fit(resolution):
    t = default_thicknesses(resolution)
    assert len(t) >= 3
    assert list(t) == sorted(set(t))  # distinct, increasing
    assert all(isinstance(v, int) and v >= 1 for v in t)
    assert all(2 * v <= resolution for v in t)
    expected_max = max(1, round(20 * resolution / 224))
    assert max(t) == expected_max


def test_default_thicknesses_at_96_px():
    # 1, 5, 10, 15, 20 px × 96/224 = 0.43, 2.14, 4.29, 6.43, 8.57 → 1, 2, 4, 6, 9
    assert default_thicknesses(96) == (1, 2, 4, 6, 9)


def test_lens_defaults_follow_the_resolution():
    spec = get_lens("color")
    assert spec.resolve_params(make_info((1, 28, 28)), {}, "s").thicknesses == (1, 2, 3, 4)
    assert spec.resolve_params(make_info((3, 224, 224)), {}, "s").thicknesses == (
        1,
        5,
        10,
        15,
        20,
    )


def test_default_thicknesses_fit_non_square_images():
    info = make_info((3, 32, 224))  # e.g. imagefolder with image_size=(32, 224)
    params = get_lens("color").resolve_params(info, {}, "s")
    images = torch.rand(4, 3, 32, 224, generator=torch.Generator().manual_seed(0))
    data = ImageSet(images, torch.zeros(4, dtype=torch.long), info, "test", torch.arange(4))
    result = compute(study_model(CentreProbe(3, (32, 224))), data, params, make_ctx(info))
    assert 2 * max(params.thicknesses) <= 32
    assert len(params.thicknesses) >= 3
    assert result.arrays["contour"].shape[1] == len(params.thicknesses)


# ------------------------------------------------------------------- compute


@pytest.mark.parametrize("channels", [3, 1], ids=["rgb", "grey"])
def test_compute_accuracies_match_direct_evaluation(channels):
    info, data = make_data(channels)
    x, y = data.images.numpy().astype(np.float64), data.labels.numpy()
    thicknesses = (1, 4, 5, 6)
    params = ColorParams(thicknesses=thicknesses, batch_size=7)
    net = CentreProbe(channels, 16).eval()
    result = compute(study_model(net, "probe"), data, params, make_ctx(info))
    frame = result.tables["color"]
    accuracies = frame[frame.metric == "accuracy"]
    assert check_intervals(frame, ("accuracy",), ("chance",)) == len(accuracies) - 1
    assert rows(frame, setting="chance").ci_low.isna().all()  # chance is no count of images

    clean = accuracy(x, y)
    assert 0.5 < clean.mean() < 1.0  # not degenerate
    np.testing.assert_array_equal(result.arrays["clean"], clean)
    assert value(frame, setting="clean", metric="accuracy") == pytest.approx(clean.mean())
    chance = 1.0 / info.num_classes
    assert value(frame, setting="chance", metric="accuracy") == pytest.approx(chance)

    averaged = accuracy(np.broadcast_to(x.mean(axis=(2, 3), keepdims=True), x.shape), y)
    np.testing.assert_array_equal(result.arrays["pixel_average"], averaged)
    assert value(frame, setting="pixel-average", metric="accuracy") == pytest.approx(
        averaged.mean()
    )

    colors = ("white", "red", "green", "blue")
    expected = np.array([[accuracy(contour(x, c, t), y) for t in thicknesses] for c in colors])
    assert result.arrays["contour"].shape == (4, len(thicknesses), len(data))
    np.testing.assert_array_equal(result.arrays["contour"], expected)
    drops = clean.mean() - expected.mean(axis=2)
    for i, c in enumerate(colors):
        for j, t in enumerate(thicknesses):
            setting = f"contour {c} {t}px"
            acc = value(frame, setting=setting, metric="accuracy")
            assert acc == pytest.approx(expected[i, j].mean())
            assert value(frame, setting=setting, metric="drop") == pytest.approx(drops[i, j])
            row = rows(frame, setting=setting, metric="drop")
            assert row.color.iloc[0] == c and row.thickness.iloc[0] == t
    for j, t in enumerate(thicknesses):
        mean = value(frame, setting=f"contour {t}px", metric="drop_mean")
        std = value(frame, setting=f"contour {t}px", metric="drop_std")
        assert mean == pytest.approx(drops[:, j].mean())
        assert std == pytest.approx(drops[:, j].std())
    # the centre (rows/columns 4–11) is untouched up to 4 px, so nothing changes there ...
    assert np.allclose(drops[:, :2], 0.0)
    # ... and wider frames do change predictions in this example
    assert np.abs(drops[:, 2:]).max() > 0

    grid = accuracy(np.tile(x, (1, 1, 2, 2)), y)
    assert (grid != clean).any()  # the grid's centre is the whole image, rearranged
    np.testing.assert_array_equal(result.arrays["grid"], grid)
    assert value(frame, setting="grid 2x2", metric="accuracy") == pytest.approx(grid.mean())
    assert value(frame, setting="grid 2x2", metric="drop") == pytest.approx(
        clean.mean() - grid.mean()
    )
    assert (32, 32) in net.seen  # the grid went in at full size
    assert result.notes == []


def test_compute_tables_are_tidy():
    info, data = make_data(3, n=12)
    params = ColorParams(thicknesses=(1, 2), colors=("red", "blue"))
    result = compute(study_model(CentreProbe(3, 16), "p"), data, params, make_ctx(info))
    frame = result.tables["color"]
    assert list(frame.columns[: len(TIDY_COLUMNS)]) == list(TIDY_COLUMNS)
    assert set(frame.model) == {"p"} and set(frame.layer) == {"input"}
    assert (frame.n == 12).all()
    assert frame.value.notna().all()
    expected = {"clean", "chance", "pixel-average", "grid 2x2"}
    expected |= {f"contour {c} {t}px" for c in ("red", "blue") for t in (1, 2)}
    expected |= {"contour 1px", "contour 2px"}
    assert set(frame.setting) == expected
    assert result.arrays["contour"].shape == (2, 2, 12)


def test_compute_grid_copies_three():
    info, data = make_data(3, n=20, seed=1)
    x, y = data.images.numpy().astype(np.float64), data.labels.numpy()
    net = CentreProbe(3, 16)
    params = ColorParams(thicknesses=(1,), grid_copies=3)
    result = compute(study_model(net), data, params, make_ctx(info))
    grid = accuracy(np.tile(x, (1, 1, 3, 3)), y)
    assert value(result.tables["color"], setting="grid 3x3", metric="accuracy") == pytest.approx(
        grid.mean()
    )
    assert (48, 48) in net.seen


def test_fixed_size_model_gets_the_grid_resized_and_a_note():
    info, data = make_data(3, n=30, seed=2)
    x, y = data.images, data.labels.numpy()
    net = FixedSizeProbe(3, 16)
    result = compute(study_model(net, "fixed"), data, ColorParams(), make_ctx(info))
    assert set(net.seen) == {(16, 16)}
    tiled = x.repeat(1, 1, 2, 2)
    resized = F.interpolate(
        tiled, size=(16, 16), mode="bilinear", align_corners=False, antialias=True
    ).clamp(0, 1)
    grid = accuracy(resized.numpy().astype(np.float64), y)
    assert (grid != result.arrays["clean"]).sum() >= 3  # resizing the grid ≠ the clean image
    np.testing.assert_array_equal(result.arrays["grid"], grid)
    assert value(result.tables["color"], setting="grid 2x2", metric="accuracy") == pytest.approx(
        grid.mean()
    )
    assert len(result.notes) == 1
    assert "fixed" in result.notes[0] and "resized" in result.notes[0]
    assert "16×16" in result.notes[0]


def test_real_mlp_runs_with_a_resized_grid_and_small_cnn_without():
    info, data = make_data(1, n=10, seed=3)
    small_mlp = mlp(info, (8,)).eval()  # the CNN is drawn right after it, from the same seed
    cnn = build_model("small-cnn", info, widths=(4, 8), kernels=(3, 3), strides=(1, 2)).eval()
    params = ColorParams(thicknesses=(1, 2))
    for net, noted in ((small_mlp, True), (cnn, False)):
        result = compute(study_model(net, "n"), data, params, make_ctx(info))
        assert bool(result.notes) is noted
        np.testing.assert_array_equal(result.arrays["clean"], correct(net, data))


def test_thickness_beyond_half_the_image_is_a_config_error():
    info, data = make_data(3, size=16, n=4)
    net = CentreProbe(3, 16)
    with pytest.raises(ConfigError, match="9"):
        compute(study_model(net), data, ColorParams(thicknesses=(1, 9)), make_ctx(info))
    # exactly half the side still fits: the frame covers the whole image
    result = compute(study_model(net), data, ColorParams(thicknesses=(8,)), make_ctx(info))
    assert result.arrays["contour"].shape == (4, 1, 4)


# ------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"thicknesses": ()}, "thickness"),
        ({"thicknesses": (1, 0)}, "thickness"),
        ({"colors": ("purple",)}, "purple"),
        ({"colors": ()}, "colors"),
        ({"grid_copies": 1}, "grid_copies"),
    ],
)
def test_invalid_params_raise_config_error(kwargs, word):
    with pytest.raises(ConfigError, match=word):
        ColorParams(**kwargs)


def test_resolve_params_validates_and_names_the_key():
    spec = get_lens("color")
    info = make_info((3, 32, 32))
    p = spec.resolve_params(info, {"thicknesses": [2, 3], "colors": ["red"]}, "w")
    assert p.thicknesses == (2, 3) and p.colors == ("red",)
    with pytest.raises(ConfigError, match="thickness_px"):
        spec.resolve_params(info, {"thickness_px": [1]}, "w")
    with pytest.raises(ConfigError, match=r"w\.thicknesses\[1\]"):
        spec.resolve_params(info, {"thicknesses": [1, 2.5]}, "w")
    with pytest.raises(ConfigError, match=r"w\.colors"):
        spec.resolve_params(info, {"colors": "red"}, "w")
    with pytest.raises(ConfigError, match=r"w\.grid_copies"):
        spec.resolve_params(info, {"grid_copies": "2"}, "w")
    with pytest.raises(ConfigError) as err:
        spec.resolve_params(info, {"colors": ["white", "pink"]}, "w")
    colours = "one of 'white', 'red', 'green', 'blue'"
    assert str(err.value) == str(invalid("", "w.colors[1]", "pink", colours))
    with pytest.raises(ConfigError) as err:
        spec.resolve_params(info, {"thicknesses": []}, "w")
    allowed = "a non-empty list, each a whole number ≥ 1"
    assert str(err.value) == str(invalid("", "w.thicknesses", [], allowed))
