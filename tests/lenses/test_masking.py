"""The gradient-masking audit: each flag raised on a model built to trigger it, none on trained
small CNNs, and the statistics behind the flags by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from robustlens.errors import ConfigError
from robustlens.lenses import get_lens, masking
from robustlens.lenses.base import StudyModel
from robustlens.models import ModelCard
from tests.lenses.helpers import (
    TOY,
    brightness_images,
    make_ctx,
    make_info,
    small_cnn,
    trained_cnn,
)
from tests.lenses.masking_models import (
    AlwaysDropout,
    BandNet,
    SaturatingNet,
    ScaledLogits,
    ShatteredNet,
    SoftmaxOutput,
    ThresholdNet,
    lattice_images,
    saturating_images,
    threshold_images,
)

LENS = get_lens("masking")
FAST = {"steps": 10, "more_steps": 2, "restarts": 1, "queries": 100, "reference_dim": 0}
"""Few steps and queries: the models below are built so that these settle every flag."""


def params(info=TOY, **overrides):
    return LENS.resolve_params(info, {**FAST, **overrides}, "test")


def custom(net: torch.nn.Module, name: str, info=TOY, natural: bool = True) -> StudyModel:
    """A hand-built model as a study model (natural unless told, so audited in L∞)."""
    recipe = {"method": "natural"} if natural else {"method": "pgd", "norm": "linf", "eps": 0.1}
    card = ModelCard("custom", {}, info.num_classes, info.shape, (0.0,), (1.0,), recipe=recipe)
    return StudyModel(name, net.eval(), card, digest=f"{name}-{id(net):x}")


def audit(models, data, **overrides) -> dict[str, dict[str, masking.Flag]]:
    """model → flag name → Flag, read back from the lens's table."""
    p = params(data.info, **overrides)
    frame = LENS.run(models, data, p, make_ctx(data.info)).tables[masking.TABLE]
    out: dict[str, dict[str, masking.Flag]] = {}
    for (model, flag), part in frame.groupby(["model", "setting"], sort=False):
        status = part["status"].iloc[0]
        numbers = dict(zip(part.metric, part.value, strict=True))
        out.setdefault(model, {})[flag] = masking.Flag(flag, status, part.reason.iloc[0], numbers)
    return out


def raised(flags: dict[str, masking.Flag]) -> set[str]:
    return {name for name, f in flags.items() if f.status == masking.RAISED}


# ---------------------------------------------------------------------------- the statistics


def test_exact_mcnemar_by_hand():
    # only A breaks 5, only B none: P(X ≥ 5), X ~ Bin(5, 1/2) = 1/32
    assert masking.stronger_p(5, 0) == pytest.approx(1 / 32, rel=1e-12)
    # 6 against 2: P(X ≥ 6 | 8) = (28 + 8 + 1) / 256
    assert masking.stronger_p(6, 2) == pytest.approx(37 / 256, rel=1e-12)
    assert masking.stronger_p(0, 7) == 1.0
    robust_a = np.array([True, False, False, True, False])
    robust_b = np.array([True, True, True, False, False])
    numbers = masking.paired(robust_a, robust_b, "a", "b")
    assert (numbers["broken_by_a_only"], numbers["broken_by_b_only"]) == (2, 1)
    assert numbers["p_value"] == pytest.approx(0.5, rel=1e-12)  # P(X ≥ 2 | 3) = 4/8


def test_large_eps_reaches_the_grey_image_from_every_corner():
    d = 144
    corner = torch.zeros(d)
    to_grey = torch.full((d,), 0.5) - corner
    assert masking.large_eps("linf", d) == pytest.approx(float(to_grey.abs().max()))
    assert masking.large_eps("l2", d) == pytest.approx(float(to_grey.norm()))
    assert masking.large_eps("l1", d) == pytest.approx(float(to_grey.abs().sum()))


def test_parameters_are_checked_with_one_error():
    with pytest.raises(ConfigError, match="more_steps"):
        params(more_steps=1, restarts=1)
    with pytest.raises(ConfigError, match="black_box"):
        params(black_box="square-ish")
    with pytest.raises(ConfigError, match="alpha"):
        params(alpha=1.0)


def test_a_surrogate_that_is_not_a_model_is_refused():
    data = threshold_images(TOY, 6)
    with pytest.raises(ConfigError, match="not a model of the study"):
        audit([custom(ThresholdNet(), "t")], data, surrogate="nobody")


def test_the_audit_budget_follows_the_training_recipe():
    net = small_cnn(TOY)
    robust = StudyModel("r", net, ModelCard.for_model(net, recipe={
        "method": "pgd", "norm": "l2", "eps": 0.7}), "r")  # fmt: skip
    natural = StudyModel("n", net, ModelCard.for_model(net, recipe={"method": "natural"}), "n")
    p = LENS.resolve_params(TOY, {}, "test")  # CIFAR-10 budgets moved to 144 values
    assert masking.audit_budget(robust, p, 144) == ("l2", 0.7)
    assert masking.audit_budget(natural, p, 144) == ("linf", pytest.approx(8 / 255))
    norm, eps = masking.audit_budget(natural, LENS.resolve_params(TOY, {"norm": "l2"}, "t"), 144)
    assert (norm, eps) == ("l2", pytest.approx(0.5 * math.sqrt(144 / 3072)))


# ------------------------------------------------------------------------ models that trigger


def test_a_hard_threshold_input_layer_masks_gradients_and_loses_to_search_and_transfer():
    data = threshold_images(TOY, 36)
    flags = audit([custom(BandNet(), "band"), custom(ThresholdNet(), "step")], data, eps=0.1)
    step = flags["step"]
    assert {"gradients", "black-box", "transfer"} <= raised(step), step
    assert step["gradients"].numbers["zero_or_nonfinite_fraction"] == 1.0
    assert step["black-box"].numbers["broken_by_black_box_only"] >= 20
    assert step["transfer"].numbers["transfer_accuracy"] < step["transfer"].numbers[
        "white_box_accuracy"]  # fmt: skip
    # the smooth model of the same bands is its own natural surrogate and masks nothing
    assert flags["band"]["transfer"].status == masking.NOT_COMPUTED
    assert "gradients" not in raised(flags["band"])
    assert "single-step" not in raised(step)  # FGSM cannot move a zero gradient either


def test_shattered_gradients_make_fgsm_stronger_than_pgd():
    data = lattice_images(TOY, 24)
    flags = audit([custom(ShatteredNet(), "wave")], data, eps=0.1)["wave"]
    single = flags["single-step"]
    assert single.status == masking.RAISED, single.reason
    assert single.numbers["fgsm_accuracy"] == 0.0
    assert single.numbers["pgd_accuracy"] == 1.0
    assert single.numbers["p_value"] == pytest.approx(0.5**24)
    assert flags["gradients"].status == masking.CLEAR  # the gradients are there, just useless
    assert flags["transfer"].status == masking.NOT_COMPUTED  # no natural model in this study


def test_saturating_gradients_make_accuracy_rise_with_eps_and_stay_above_chance():
    info = make_info(num_classes=2)
    data = saturating_images(info, 20)
    flags = audit([custom(SaturatingNet(), "sat", info)], data, eps=0.1, eps_grid=[1.0, 2.0])
    trend = flags["sat"]["eps-trend"]
    assert trend.status == masking.RAISED, trend.reason
    assert trend.numbers["accuracy@1×ε"] == 0.0
    assert trend.numbers["accuracy@large ε"] == 1.0
    assert trend.numbers["pairs_rising"] >= 1
    assert trend.numbers["p_above_chance"] == pytest.approx(0.5**20)


def test_restarts_that_still_break_images_mean_unconverged():
    info = make_info(num_classes=2)
    data = saturating_images(info, 20)
    # at ε = 0.2 each random start saturates about half the pixels at random: more starts
    # find more of the draws with |h| > 60
    flags = audit([custom(SaturatingNet(), "sat", info)], data, eps=0.2, restarts=12)
    unconverged = flags["sat"]["unconverged"]
    assert unconverged.status == masking.RAISED, unconverged.reason
    assert unconverged.numbers["drop_points"] > 1.0
    one = audit([custom(SaturatingNet(), "sat", info)], data, eps=0.1, restarts=12)
    assert one["sat"]["unconverged"].status == masking.CLEAR  # ε = 0.1: PGD-10 breaks all


def test_a_saturated_cross_entropy_is_caught_by_apgd_t_as_unconverged():
    info = make_info(num_classes=4)
    data = brightness_images(info, 40, seed=5)
    net = trained_cnn(info)
    models = [custom(ScaledLogits(net), "scaled", info), custom(net, "plain", info)]
    flags = audit(models, data, eps=0.3, apgd_targets=3)
    scaled, plain = flags["scaled"]["unconverged"], flags["plain"]["unconverged"]
    assert scaled.status == masking.RAISED, scaled.reason
    # PGD-CE is stuck (zero gradient), APGD-T's margin loss is not: the same network
    # unscaled, where both losses work, shows the drop comes from the scale alone
    assert scaled.numbers["apgd_t_accuracy"] < scaled.numbers["pgd_accuracy"]
    assert scaled.numbers["drop_points"] > plain.numbers["drop_points"] + 10
    assert flags["scaled"]["gradients"].status == masking.CLEAR  # the margin still has one
    off = audit(models[:1], data, eps=0.3, apgd_targets=0)["scaled"]["unconverged"]
    assert "APGD-T not run" in off.reason and math.isnan(off.numbers["apgd_t_accuracy"])
    three = audit([custom(trained_cnn(TOY), "plain3", TOY)], brightness_images(TOY, 12), eps=0.3)
    assert "needs 4 classes" in three["plain3"]["unconverged"].reason


def test_softmax_outputs_are_flagged_as_probabilities():
    data = brightness_images(TOY, 24, seed=5)
    soft = custom(SoftmaxOutput(trained_cnn(TOY)), "soft")
    flags = audit([soft], data)["soft"]
    assert flags["probabilities"].status == masking.RAISED
    assert flags["probabilities"].numbers["min_output"] >= 0.0


def test_dropout_left_on_is_flagged_as_a_randomised_model():
    data = brightness_images(TOY, 24, seed=5)
    flags = audit([custom(AlwaysDropout(trained_cnn(TOY)), "drop")], data)["drop"]
    assert flags["randomness"].status == masking.RAISED
    assert flags["randomness"].numbers["max_output_change"] > 0.0
    assert "rand" in masking.FLAGS["randomness"]


def test_trained_small_cnns_raise_no_flag():
    data = brightness_images(TOY, 60, seed=7)
    models = [
        StudyModel(f"cnn{s}", trained_cnn(TOY, seed=s),
                   ModelCard.for_model(trained_cnn(TOY, seed=s), recipe={"method": "natural"}),
                   f"cnn{s}")
        for s in (0, 1)
    ]  # fmt: skip
    flags = audit(models, data, eps=0.05)
    for name in ("cnn0", "cnn1"):
        assert raised(flags[name]) == set(), {k: f.reason for k, f in flags[name].items()}
    assert flags["cnn1"]["transfer"].status == masking.CLEAR  # transferred from cnn0
    assert flags["cnn0"]["black-box"].status == masking.CLEAR


def test_raised_flags_reads_the_table_in_flag_order():
    data = threshold_images(TOY, 12)
    p = params(eps=0.1)
    result = LENS.run([custom(ThresholdNet(), "step")], data, p, make_ctx(TOY))
    frame = result.tables[masking.TABLE]
    found = masking.raised_flags(frame)["step"]
    assert found == [f for f in masking.FLAGS if f in set(found)]
    assert "gradients" in found
    assert set(frame[frame.metric == "raised"].status) <= {
        masking.RAISED, masking.CLEAR, masking.NOT_COMPUTED}  # fmt: skip
    figures = LENS.plot(result.tables, [custom(ThresholdNet(), "step")], p)
    assert len(figures) == 1


def test_the_black_box_flag_is_computed_in_l1_with_the_l1_square():
    data = threshold_images(TOY, 36)
    flags = audit([custom(ThresholdNet(), "step")], data, norm="l1", eps=8.0)["step"]
    assert flags["black-box"].status != masking.NOT_COMPUTED, flags["black-box"].reason
    assert "black-box" in raised(flags), flags["black-box"]
    assert flags["black-box"].numbers["broken_by_black_box_only"] >= 10
