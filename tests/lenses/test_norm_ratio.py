"""The norm-ratio lens (Garaev et al. 2024, §3.2, Tables 4–6, Eq. 5)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from robustlens.attacks.spec import AttackSpec
from robustlens.data.imageset import ImageSet
from robustlens.errors import ConfigError
from robustlens.lenses import norm_ratio
from robustlens.lenses.base import StudyModel
from robustlens.lenses.norm_ratio import norm_ratios
from robustlens.models.card import ModelCard
from robustlens.params import invalid
from tests.attacks.tiny_models import LinearClassifier
from tests.lenses.helpers import lens_setup, make_ctx, make_info, study_model, trained_cnn, value

INFO, DATA, LENS = lens_setup("norm_ratio", 64, seed=5)


def test_ratio_by_hand():
    d = 12 * 12
    delta = np.zeros((4, 1, 12, 12))
    delta[0] = 0.03  # constant: ‖δ‖₂ = 0.03·√d, ‖δ‖∞ = 0.03, ratio √d (the upper bound)
    delta[1, 0, 3, 4] = -0.5  # one value: ratio 1 (the lower bound)
    delta[2, 0, 0, :2] = [0.3, 0.4]  # ‖δ‖₂ = 0.5, ‖δ‖∞ = 0.4
    ratio = norm_ratios(delta)
    assert ratio[0] == pytest.approx(math.sqrt(d))
    assert ratio[1] == pytest.approx(1.0)
    assert ratio[2] == pytest.approx(1.25)
    assert np.isnan(ratio[3])  # δ = 0 has no ratio


def test_keeps_perturbations_that_moved_away_from_label_and_clean_prediction():
    net = trained_cnn(INFO)
    p = LENS.resolve_params(
        INFO, {"attacks": ["pgd linf 0.15 10", "pgd l2 1.5 10"], "reference_dim": 0}, "test"
    )
    result = norm_ratio.compute(study_model(net), DATA, p, make_ctx(INFO))
    frame = result.tables["norm_ratio"]
    with torch.no_grad():
        clean_pred = net(DATA.images).argmax(1).numpy()
    for text in p.attacks:
        spec = AttackSpec.parse(text)
        adv = spec.build(net, seed=0, early_stop=False).run(DATA.images, DATA.labels).adversarial
        with torch.no_grad():
            pred = net(adv).argmax(1).numpy()
        kept = (pred != DATA.labels.numpy()) & (pred != clean_pred)
        ratio = result.arrays[f"ratio/{text}"]
        np.testing.assert_array_equal(~np.isnan(ratio), kept)
        expected = norm_ratios((adv - DATA.images).numpy())[kept]
        np.testing.assert_allclose(ratio[kept], expected)
        assert kept.sum() >= 10  # the budgets are large enough to fool this model often
        assert value(frame, key=text, metric="C1") == pytest.approx(expected.min())
        assert value(frame, key=text, metric="C2") == pytest.approx(expected.max())
        assert value(frame, key=text, metric="misclassified") == pytest.approx(
            (pred != DATA.labels.numpy()).mean()
        )
        assert expected.min() >= 1.0 and expected.max() <= 12.0 + 1e-9  # 1 ≤ ratio ≤ √d
    assert value(frame, key="pgd linf 0.15 10", metric="sqrt_d") == 12.0
    # L∞ PGD saturates most coordinates, L2 PGD concentrates: the §3.2 picture on a toy model
    linf_median = value(frame, key="pgd linf 0.15 10", metric="median")
    l2_median = value(frame, key="pgd l2 1.5 10", metric="median")
    assert linf_median > l2_median
    figures = norm_ratio.plot({"norm_ratio": frame}, [study_model(net)], p)
    (fig,) = figures.values()
    assert len(fig.axes) == 2


def test_a_misclassified_image_the_attack_left_alone_is_not_counted():
    """A model of the pixel sum s (z = (1 − s, s − 3, 0): class 0 below s = 1, 2 up to 3, 1
    above) on 4-pixel images; PGD L∞ moves every pixel by ±ε unless the box stops it.

    image  label  s     clean  adversarial      kept
    0      0      0.96  0      2 (s 1.16)       yes: moved off label and clean prediction
    1      0      3.8   1      1 (s 3.9)        no: misclassified, but still the clean class
    2      2      2.9   2      1 (s 3.1)        yes
    3      1      3.8   1      1 (s 3.6)        no: correct
    4      1      1.05  2      0 (s 0.85)       yes: misclassified and moved on
    Image 1's two pixels at 1 cannot move, so its ratio is √2 against √4 = 2 for the others:
    counting it would make C1 = √2."""
    info = make_info((1, 2, 2), num_classes=3)
    weight = torch.tensor([[-1.0] * 4, [1.0] * 4, [0.0] * 4])
    net = LinearClassifier(weight, torch.tensor([1.0, -3.0, 0.0])).eval()
    card = ModelCard(
        arch="linear",
        arch_kwargs={},
        num_classes=3,
        input_shape=info.shape,
        mean=(0.0,),
        std=(1.0,),
        recipe={"method": "natural"},
    )
    model = StudyModel("sum", net, card, digest="sum")  # type: ignore[arg-type]
    pixels = torch.tensor([[0.24] * 4, [1.0, 1.0, 0.9, 0.9], [0.725] * 4, [0.95] * 4, [0.2625] * 4])
    data = ImageSet(pixels.view(5, 1, 2, 2), torch.tensor([0, 0, 2, 1, 1]), info, "test",
                    torch.arange(5))  # fmt: skip
    p = LENS.resolve_params(info, {"attacks": ["pgd linf 0.05 10"], "reference_dim": 0}, "t")
    result = norm_ratio.compute(model, data, p, make_ctx(info))
    with torch.no_grad():
        assert net(data.images).argmax(1).tolist() == [0, 1, 2, 1, 2]
    ratio = result.arrays["ratio/pgd linf 0.05 10"]
    np.testing.assert_array_equal(np.isnan(ratio), [False, True, False, True, False])
    np.testing.assert_allclose(ratio[[0, 2, 4]], 2.0, rtol=1e-5)
    frame = result.tables["norm_ratio"]
    assert value(frame, metric="C1") == pytest.approx(2.0, rel=1e-5)  # √2 if image 1 counted
    assert value(frame, metric="C2") == pytest.approx(2.0, rel=1e-5)
    assert value(frame, metric="misclassified") == pytest.approx(4 / 5)  # image 1 among them
    assert value(frame, metric="kept") == pytest.approx(3 / 5)
    # image 1 was attacked (δ ≠ 0), so its exclusion is the clean-prediction condition's doing
    spec = AttackSpec.parse("pgd linf 0.05 10")
    adv = spec.build(net, seed=0, early_stop=False).run(data.images, data.labels).adversarial
    assert norm_ratios((adv - data.images).numpy())[1] == pytest.approx(math.sqrt(2), rel=1e-5)


def test_no_successful_perturbation_gives_empty_statistics_not_an_error():
    net = trained_cnn(INFO)
    p = LENS.resolve_params(INFO, {"attacks": ["fgsm linf 0"], "reference_dim": 0}, "test")
    frame = norm_ratio.compute(study_model(net), DATA, p, make_ctx(INFO)).tables["norm_ratio"]
    assert math.isnan(value(frame, metric="C1")) and value(frame, metric="kept") == 0.0
    assert isinstance(frame, pd.DataFrame)


@pytest.mark.parametrize(
    "overrides, key, value, allowed",
    [
        (
            {"attacks": ["deepfool l2 0.1"]},
            "attacks[0]",
            "deepfool l2 0.1",
            "a PGD or FGSM setting (a fixed budget, e.g. 'pgd l2 0.25 20')",
        ),
        (
            {"attacks": []},
            "attacks",
            [],
            "a non-empty list, each an attack setting "
            "'ATTACK NORM EPS [STEPS] [@cifar10|@imagenet|@N]'",
        ),
        ({"n": 0}, "n", 0, "a whole number ≥ 1 or nothing (leave it out)"),
    ],
)
def test_bad_parameters_are_refused(overrides, key, value, allowed):
    with pytest.raises(ConfigError) as err:
        LENS.resolve_params(INFO, overrides, "lenses.norm_ratio")
    assert str(err.value) == str(invalid("", f"lenses.norm_ratio.{key}", value, allowed))
