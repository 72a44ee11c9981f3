"""Shared fixtures: real Fashion-MNIST models, trained once per test session."""

from __future__ import annotations

import pytest
import torch

from robustlens.data import load_dataset, locate_dataset

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))

TRAIN_N = 12000
ARCH_KWARGS = {"widths": (16, 32, 64)}


@pytest.fixture(scope="session")
def fashion_mnist_root():
    root = locate_dataset("fashion-mnist")
    if root is None:
        pytest.skip(
            "Fashion-MNIST is not installed: run `make setup` (Debian package "
            "dataset-fashion-mnist, or the verified download)"
        )
    return root


@pytest.fixture(scope="session")
def fmnist_test(fashion_mnist_root):
    """1 000 class-balanced Fashion-MNIST test images (seed 0)."""
    return load_dataset("fashion-mnist", "test", n=1000, seed=0)


@pytest.fixture(scope="session")
def fmnist_models(fashion_mnist_root, tmp_path_factory):
    """A natural and an FGSM-RS (L∞, ε = 0.1) small CNN trained on 12 000 images.

    Small and briefly trained, so the session stays fast; the full-size models and their
    accuracies are in benchmarks/ (model_quality.py).
    """
    from robustlens.train import Recipe, train

    out = tmp_path_factory.mktemp("fmnist-models")
    common = dict(arch_kwargs=ARCH_KWARGS, train_n=TRAIN_N, device="cpu")
    natural = train(
        "small-cnn", "fashion-mnist", Recipe(epochs=2, eval_n=500), out / "natural", **common
    )
    robust = train(
        "small-cnn",
        "fashion-mnist",
        Recipe(method="fgsm-rs", eps=0.1, epochs=3, eval_n=500),
        out / "fgsm-rs",
        **common,
    )
    return {"natural": natural.model.eval(), "robust": robust.model.eval(), "dir": out}
