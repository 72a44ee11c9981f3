"""Device names are checked before any work; memory estimates refuse what cannot fit."""

from __future__ import annotations

import pytest
import torch

from robustlens import runtime
from robustlens.errors import ConfigError, DataError


def test_cpu_and_the_default_resolve():
    assert runtime.resolve_device("cpu") == torch.device("cpu")
    assert runtime.resolve_device(None) == runtime.default_device()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is available")
@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_cuda_without_a_gpu_is_a_config_error(name):
    with pytest.raises(ConfigError, match=r"no CUDA device is available.*--device cpu"):
        runtime.resolve_device(name)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cuda_index_past_the_last_gpu_is_a_config_error():
    with pytest.raises(ConfigError, match="CUDA device"):
        runtime.resolve_device(f"cuda:{torch.cuda.device_count()}")


def test_a_malformed_device_name_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown device 'gpu0'"):
        runtime.resolve_device("gpu0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is available")
def test_the_environment_override_is_checked_too(monkeypatch):
    monkeypatch.setenv("ROBUSTLENS_DEVICE", "cuda")
    with pytest.raises(ConfigError, match="no CUDA device"):
        runtime.default_device()


def test_check_memory_refuses_beyond_80_percent_unless_allowed(monkeypatch):
    monkeypatch.delenv(runtime.ENV_ALLOW_LARGE, raising=False)
    monkeypatch.setattr(runtime, "available_memory", lambda: 1000)
    runtime.check_memory(800, "x", fix="f")
    with pytest.raises(
        DataError,
        match=r"x would need about 801 B of memory, more than the 1\.0 kB available\. f; set",
    ):
        runtime.check_memory(801, "x", fix="f", error=DataError)
    runtime.check_memory(10**15, "x", fix="f", allow=True)
    monkeypatch.setenv(runtime.ENV_ALLOW_LARGE, "yes")
    runtime.check_memory(10**15, "x", fix="f")


def test_available_memory_is_a_plausible_number():
    available = runtime.available_memory()
    assert available is None or 10**6 < available < 10**15
