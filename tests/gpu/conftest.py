"""The device the `gpu` tests compare with the CPU: CUDA when there is one; skipped otherwise.

``ROBUSTLENS_GPU_TESTS_ON_CPU=1`` makes it the CPU, so that the very same tests run (CPU against
CPU) on machines without a GPU: this is how they are checked before a GPU is at hand.

CUDA's TF32 modes are switched off while the tests run: with them a float32 convolution or
matrix product keeps 10 mantissa bits, and the comparisons below would measure TF32 rounding
rather than what differs between the two devices (kernel order of summation).
"""

from __future__ import annotations

import os

import pytest
import torch

ON_CPU = os.environ.get("ROBUSTLENS_GPU_TESTS_ON_CPU") == "1"


@pytest.fixture(scope="session")
def gpu_device() -> torch.device:
    if ON_CPU:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device (ROBUSTLENS_GPU_TESTS_ON_CPU=1 runs these tests on the CPU)")
    return torch.device("cuda")


@pytest.fixture(autouse=True, scope="session")
def _exact_float32():
    """No TF32, no autotuned (run-to-run varying) cuDNN algorithms, during the gpu tests."""
    saved = (
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cudnn.benchmark,
    )
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    yield
    (
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cudnn.benchmark,
    ) = saved
