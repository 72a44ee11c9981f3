"""Training tests run on one thread: the same numbers in the test process and in the killed
child processes, and no threads spinning against each other on a busy machine."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
