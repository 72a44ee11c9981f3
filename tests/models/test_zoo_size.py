"""Architectures are sized before they are built; models are checked against the data."""

from __future__ import annotations

import pytest

from robustlens import runtime
from robustlens.errors import ConfigError
from robustlens.models import build_model
from robustlens.models.zoo import ARCHITECTURES, check_model_fits, parameter_count


def test_widths_asking_for_terabytes_are_refused_before_allocating(monkeypatch):
    # 1.8e13 parameters: building them (not just counting) would be killed for memory
    monkeypatch.delenv(runtime.ENV_ALLOW_LARGE, raising=False)
    with pytest.raises(ConfigError, match=r"small-cnn.*parameters.*smaller widths") as err:
        build_model("small-cnn", "digits", widths=(10**6, 10**6, 10**6))
    assert "ROBUSTLENS_ALLOW_LARGE" in str(err.value) and "TB" in str(err.value)


def test_the_parameter_count_is_the_built_models():
    model = build_model("small-cnn", "digits", widths=(4, 8), kernels=(3, 3), strides=(1, 2))
    spec = ARCHITECTURES.get("small-cnn")
    arguments = {
        "num_classes": 10, "in_channels": 1, "input_size": (8, 8), "mean": [0.0], "std": [1.0],
        "widths": (4, 8), "kernels": (3, 3), "strides": (1, 2),
    }  # fmt: skip
    assert parameter_count(spec, arguments) == sum(p.numel() for p in model.parameters())


def test_the_limit_follows_the_memory_available_and_can_be_lifted(monkeypatch):
    monkeypatch.delenv(runtime.ENV_ALLOW_LARGE, raising=False)
    model = build_model("small-cnn", "digits", widths=(4, 4, 4))
    needed = 12 * sum(p.numel() for p in model.parameters())  # weights, gradients, momentum
    monkeypatch.setattr(runtime, "available_memory", lambda: int(needed / 0.8) + 1)
    build_model("small-cnn", "digits", widths=(4, 4, 4))
    monkeypatch.setattr(runtime, "available_memory", lambda: int(needed / 0.8) - 10)
    with pytest.raises(ConfigError, match=r"parameters"):
        build_model("small-cnn", "digits", widths=(4, 4, 4))
    assert build_model("small-cnn", "digits", widths=(4, 4, 4), allow_large=True).arch_kwargs[
        "widths"
    ] == [4, 4, 4]
    monkeypatch.setenv(runtime.ENV_ALLOW_LARGE, "1")
    build_model("small-cnn", "digits", widths=(4, 4, 4))


def test_allow_large_is_not_an_architecture_argument():
    model = build_model("small-cnn", "digits", widths=(4, 4, 4), allow_large=True)
    assert "allow_large" not in model.arch_kwargs
    rebuilt = build_model(model.arch, **model.arch_kwargs)
    assert rebuilt.arch_kwargs == model.arch_kwargs


def test_a_model_is_checked_against_the_data_it_is_given():
    model = build_model("small-cnn", "digits", widths=(4, 4, 4))
    check_model_fits(model, 10, (1, 8, 8), "digits")
    with pytest.raises(ConfigError, match=r"\(1, 8, 8\).*\(1, 28, 28\)"):
        check_model_fits(model, 10, (1, 28, 28), "fashion-mnist")
    with pytest.raises(ConfigError, match=r"10 classes.*100"):
        check_model_fits(model, 100, (1, 8, 8), "other")
