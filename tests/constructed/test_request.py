"""A study's request for a constructed training set (``train_on``): Springer et al.'s rules on
which sets exist, which settings each takes and who may check a set for leakage, and what
identifies the set (the leakage model does not)."""

from __future__ import annotations

from typing import Any

import pytest

from robustlens.constructed.request import TARGETED_SETS, TRAIN_ON_SETS, TrainOn
from robustlens.errors import ConfigError


class Check:
    """A Checker that names the key and checks types plainly."""

    def error(self, key: str, problem: str, allowed: str | None = None) -> ConfigError:
        return ConfigError(f"train_on.{key}: {problem}", fix=allowed)

    def typed(self, key: str, value: Any, kind: type, *, minimum: int | None = None) -> Any:
        ok = isinstance(value, int | float) if kind is float else isinstance(value, kind)
        if not ok or isinstance(value, bool) or (minimum is not None and value < minimum):
            raise self.error(key, f"bad {kind.__name__} {value!r}")
        return value


EARLIER = ("natural", "linf", "zero")
ROBUST = ("linf",)


def parse(**table: Any) -> TrainOn:
    return TrainOn.parse(table, Check(), EARLIER, ROBUST)


def test_a_targeted_set_with_its_settings_and_a_leakage_check():
    request = parse(set="zero", source="natural", steps=3, eps=1, leakage_model="linf")
    assert request == TrainOn("zero", "natural", 3, None, 1.0, None, "linf")
    assert isinstance(request.eps, float)
    # the leakage model is a check: not among what identifies the set
    assert request.options == {"steps": 3, "eps": 1.0}
    assert parse(set="negative", source="natural").options == {}


def test_a_robustified_set_takes_a_seed_mode_and_no_budget():
    request = parse(set="robustified", source="linf", seed_mode="noise", step_size=0.5)
    assert request.options == {"step_size": 0.5, "seed_mode": "noise"}
    with pytest.raises(ConfigError, match=r"train_on\.eps: a robustified set has no budget"):
        parse(set="robustified", source="linf", eps=0.5)
    with pytest.raises(ConfigError, match="there is no new label to leak"):
        parse(set="robustified", source="linf", leakage_model="linf")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"set": "other", "source": "natural"}, r"train_on\.set: unknown constructed set 'other'"),
        ({"set": "zero", "source": "later"}, r"train_on\.source: 'later' is not a model listed"),
        ({"set": "zero", "source": "natural", "steps": 0}, r"train_on\.steps: bad int"),
        ({"set": "zero", "source": "natural", "eps": -1.0}, r"train_on\.eps: must be > 0"),
        ({"set": "zero", "source": "natural", "step_size": 0}, r"train_on\.step_size: must be"),
        ({"set": "zero", "source": "natural", "seed_mode": "noise"}, "only a robustified set"),
        ({"set": "robustified", "source": "linf", "seed_mode": "x"}, "unknown seed mode 'x'"),
        ({"set": "zero", "source": "natural", "leakage_model": "later"}, "not a model listed"),
        ({"set": "zero", "source": "natural", "leakage_model": "zero"}, "not adversarially"),
    ],
)
def test_every_broken_request_is_one_error_naming_its_key(table, message):
    with pytest.raises(ConfigError, match=message):
        TrainOn.parse(table, Check(), EARLIER, ROBUST)


def test_the_kinds_of_set():
    assert set(TARGETED_SETS) < set(TRAIN_ON_SETS) == {"robustified", *TARGETED_SETS}
