"""The boundary lens (Garaev et al. 2024, §5, Eq. 6–7, Table 8): DeepFool distance from each
image to the decision boundary around its clean prediction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from robustlens.attacks import DeepFool
from robustlens.attacks.spec import AttackSpec
from robustlens.data.imageset import ImageSet
from robustlens.errors import ConfigError
from robustlens.lenses import attack_grid, boundary, get_lens
from robustlens.lenses.base import StudyModel
from robustlens.models.card import ModelCard
from robustlens.params import invalid
from tests.attacks.tiny_models import LinearClassifier
from tests.lenses.helpers import lens_setup, make_ctx, make_info, study_model, trained_cnn, value

INFO, DATA, LENS = lens_setup("boundary", 60, seed=9)


def linear_model(name: str = "linear") -> StudyModel:
    """z = W·x + b on 2-pixel images: every decision boundary is a known hyperplane."""
    net = LinearClassifier(LIN_W, LIN_B).eval()
    card = ModelCard(
        arch="linear",
        arch_kwargs={},
        num_classes=3,
        input_shape=LIN_INFO.shape,
        mean=(0.0,),
        std=(1.0,),
        recipe={"method": "natural"},
    )
    return StudyModel(name, net, card, digest=name)  # type: ignore[arg-type]


LIN_INFO = make_info((1, 1, 2), num_classes=3)
LIN_W = torch.tensor([[0.0, 0.0], [2.0, 1.0], [-1.0, 2.5]])
LIN_B = torch.tensor([0.0, -1.6, -0.9])
LIN_X = torch.tensor([[0.25, 0.3], [0.7, 0.45], [0.55, 0.35], [0.4, 0.6], [0.3, 0.3]])
# predicted classes 0, 1, 0, 2, 0: images 1 (label 0) and 3 (label 1) are misclassified
LIN_DATA = ImageSet(
    LIN_X.view(5, 1, 1, 2), torch.tensor([0, 0, 0, 1, 0]), LIN_INFO, "test", torch.arange(5)
)


def exact_distance(x: torch.Tensor, q: float) -> tuple[int, float]:
    """The predicted class p of x and the distance from x to the boundary of p's region: the
    region is ∩_k {z_p ≥ z_k}, so the distance is min_k (z_p − z_k) / ‖w_p − w_k‖_q, q the
    dual norm (2 for L2, 1 for L∞)."""
    z = LIN_W @ x + LIN_B
    p = int(z.argmax())
    gaps = [float((z[p] - z[k]) / (LIN_W[p] - LIN_W[k]).norm(p=q)) for k in range(3) if k != p]
    return p, min(gaps)


def test_distance_is_measured_from_the_clean_prediction_even_when_it_is_wrong():
    model = linear_model()
    ctx = make_ctx(LIN_INFO)
    result = boundary.compute(model, LIN_DATA, LENS.resolve_params(LIN_INFO, {}, "t"), ctx)
    frame = result.tables["boundary"]
    correct = np.array([True, False, True, False, True])
    np.testing.assert_array_equal(result.arrays["correct"], correct)
    for norm, q in (("l2", 2.0), ("linf", 1.0)):
        exact = np.array([exact_distance(x, q)[1] for x in LIN_X])
        assert exact.min() > 0.04  # DeepFool's 1e-4 slack is negligible against these
        d = result.arrays[f"distance/{norm}"]
        # one linearised step lands on the nearest hyperplane; the overshoot adds 2 %
        np.testing.assert_allclose(d, 1.02 * exact, rtol=2e-3)
        np.testing.assert_array_equal(result.arrays[f"iterations/{norm}"], np.ones(5))
        assert value(frame, norm=norm, metric="mean_distance_all") == pytest.approx(d.mean())
        assert value(frame, norm=norm, metric="mean_distance_correct") == pytest.approx(
            d[correct].mean()
        )
        assert value(frame, norm=norm, metric="median_distance_all") == pytest.approx(np.median(d))
        assert value(frame, norm=norm, metric="mean_iterations") == 1.0
        assert value(frame, norm=norm, metric="not_found") == 0.0
    # the misclassified images' perturbations leave their predicted class
    with torch.no_grad():
        clean = model.model(LIN_DATA.images).argmax(1)
        for norm in ("l2", "linf"):
            spec = AttackSpec("deepfool", norm, 0.0, 50)
            merged = boundary.from_prediction(ctx, model, LIN_DATA, clean, spec)
            assert (model.model(merged.adversarial).argmax(1) != clean).all()


def test_correct_images_share_the_true_label_run_with_attack_grid():
    model = linear_model()
    ctx = make_ctx(LIN_INFO)
    boundary.compute(model, LIN_DATA, LENS.resolve_params(LIN_INFO, {"norms": ["l2"]}, "t"), ctx)
    assert len(ctx.cache) == 2  # the shared run on the labels, and the misclassified images'
    grid = get_lens("attack_grid")
    p = grid.resolve_params(LIN_INFO, {"attacks": ["deepfool l2 0.25"], "reference_dim": 0}, "t")
    attack_grid.compute(model, LIN_DATA, p, ctx)
    assert len(ctx.cache) == 2  # attack_grid found its DeepFool run in the cache
    correct = LIN_DATA.take(torch.tensor([0, 2, 4]))
    ctx2 = make_ctx(LIN_INFO)
    boundary.compute(model, correct, LENS.resolve_params(LIN_INFO, {"norms": ["l2"]}, "t"), ctx2)
    assert len(ctx2.cache) == 1  # nothing misclassified: no second run


def test_distances_are_deepfool_norms_from_the_clean_prediction():
    net = trained_cnn(INFO)
    result = boundary.compute(
        study_model(net), DATA, LENS.resolve_params(INFO, {}, "t"), make_ctx(INFO)
    )
    frame = result.tables["boundary"]
    with torch.no_grad():
        predicted = net(DATA.images).argmax(1)
    correct = (predicted == DATA.labels).numpy()
    np.testing.assert_array_equal(result.arrays["correct"], correct)
    assert 0 < correct.mean() < 1
    for norm in ("l2", "linf"):
        # DeepFool started from the model's own prediction for every image
        attack = DeepFool(net, norm).run(DATA.images, predicted)
        d = result.arrays[f"distance/{norm}"]
        np.testing.assert_allclose(d, attack.norms.numpy().astype(np.float64), rtol=1e-5)
        np.testing.assert_array_equal(result.arrays[f"iterations/{norm}"], attack.iterations)
        assert (d > 0).all()  # misclassified images are not at distance 0
        assert value(frame, norm=norm, metric="mean_distance_all") == pytest.approx(d.mean())
        assert value(frame, norm=norm, metric="median_distance_correct") == pytest.approx(
            np.median(d[correct])
        )
        assert value(frame, norm=norm, metric="mean_iterations") == pytest.approx(
            attack.iterations.double().mean().item()
        )
        assert value(frame, norm=norm, metric="not_found") == 0.0
    # an L∞ distance is never larger than the L2 one of the same image... for the same δ;
    # DeepFool's two runs find different δ, but ‖δ‖∞ ≤ ‖δ‖₂ bounds the best L∞ answer
    assert np.median(result.arrays["distance/linf"]) <= np.median(result.arrays["distance/l2"])


def test_an_image_deepfool_cannot_move_has_no_distance():
    net = trained_cnn(INFO)
    p = LENS.resolve_params(INFO, {"steps": 1, "norms": ["l2"]}, "t")
    result = boundary.compute(study_model(net), DATA, p, make_ctx(INFO))
    with torch.no_grad():
        predicted = net(DATA.images).argmax(1)
    attack = DeepFool(net, "l2", steps=1).run(DATA.images, predicted)
    d = result.arrays["distance/l2"]
    np.testing.assert_array_equal(np.isnan(d), ~attack.success.numpy())
    assert (~attack.success).any()  # one DeepFool step is not enough for every image
    assert torch.isinf(attack.norms[~attack.success]).all()  # the minimal-norm convention
    frame = result.tables["boundary"]
    assert value(frame, metric="not_found") == pytest.approx((~attack.success).double().mean())
    assert value(frame, metric="mean_distance_all") == pytest.approx(np.nanmean(d))


def test_figure_draws_one_violin_per_model_and_norm():
    nets = [trained_cnn(INFO, seed=0), trained_cnn(INFO, seed=1)]
    models = [study_model(n, f"m{i}") for i, n in enumerate(nets)]
    p = LENS.resolve_params(INFO, {"n": 30}, "t")
    ctx = make_ctx(INFO)
    results = {m.name: boundary.compute(m, DATA, p, ctx) for m in models}
    frame = pd.concat([r.tables["boundary"] for r in results.values()])
    (fig,) = boundary.plot(
        {"boundary": frame}, models, p, arrays=lambda m, name: results[m].arrays.get(name)
    ).values()
    assert len(fig.axes) == 2
    assert all(len(ax.collections) >= 2 for ax in fig.axes)


@pytest.mark.parametrize(
    "overrides, key, value, allowed",
    [
        ({"norms": ["l1"]}, "norms[0]", "l1", "one of 'l2', 'linf'"),
        ({"norms": []}, "norms", [], "a non-empty list, each one of 'l2', 'linf'"),
        ({"steps": 0}, "steps", 0, "a whole number ≥ 1"),
    ],
)
def test_bad_parameters_are_refused(overrides, key, value, allowed):
    with pytest.raises(ConfigError) as err:
        LENS.resolve_params(INFO, overrides, "lenses.boundary")
    assert str(err.value) == str(invalid("", f"lenses.boundary.{key}", value, allowed))
