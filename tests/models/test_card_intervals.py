"""Accuracies on model cards carry their 95 % Wilson interval; older cards without one are
read and given it."""

from __future__ import annotations

import json

import pytest

from robustlens.errors import CheckpointError, ConfigError
from robustlens.models import ModelCard, build_model
from robustlens.models.card import metric_proportion
from robustlens.proportions import wilson_interval

from .helpers import FMNIST


def _card() -> ModelCard:
    return ModelCard.for_model(build_model("small-cnn", FMNIST, widths=(4, 8, 8)), dataset=FMNIST)


def test_an_accuracy_gets_its_interval_and_other_metrics_do_not():
    card = _card()
    card.add_metric("robust_accuracy", 0.72, n=1000, attack={"attack": "pgd"})
    card.add_metric("mean_norm", 3.5, n=1000)
    robust = card.metric("robust_accuracy")
    assert (robust["ci_low"], robust["ci_high"]) == wilson_interval(720, 1000)
    assert "ci_low" not in card.metric("mean_norm")
    assert card.interval("robust_accuracy").k == 720
    assert str(card.interval("robust_accuracy")) == "0.720 [0.691, 0.747]"
    assert card.interval("mean_norm") is None and card.interval("missing") is None
    assert ModelCard.from_json(card.to_json()) == card


def test_an_accuracy_that_is_not_a_proportion_of_n_is_refused():
    with pytest.raises(ConfigError, match="not a proportion of 1000"):
        _card().add_metric("clean_accuracy", 0.7205, n=1000)


def test_an_old_card_without_intervals_is_read_and_given_them():
    data = _card().to_dict()
    data["metrics"] = [{"name": "clean_accuracy", "value": 0.9, "n": 50, "attack": None}]
    card = ModelCard.from_json(json.dumps(data))
    assert "ci_low" not in card.metric("clean_accuracy")
    got = card.interval("clean_accuracy")
    assert (got.k, got.n, (got.low, got.high)) == (45, 50, wilson_interval(45, 50))


def test_stored_bounds_are_used_as_stored():
    got = metric_proportion({"name": "a", "value": 0.5, "n": 4, "ci_low": 0.1, "ci_high": 0.9})
    assert (got.k, got.low, got.high) == (2, 0.1, 0.9)
    assert metric_proportion({"name": "a", "value": 0.5}) is None
    assert metric_proportion({"name": "a", "value": 0.123, "n": 4}) is None


@pytest.mark.parametrize(
    "bounds", [{"ci_low": 0.8, "ci_high": 0.9}, {"ci_low": 0.1}, {"ci_low": "a", "ci_high": 1}]
)
def test_bounds_that_do_not_surround_the_value_are_refused(bounds):
    data = _card().to_dict()
    data["metrics"] = [{"name": "clean_accuracy", "value": 0.5, "n": 4, "attack": None, **bounds}]
    with pytest.raises(CheckpointError, match="ci_low/ci_high"):
        ModelCard.from_json(json.dumps(data))
