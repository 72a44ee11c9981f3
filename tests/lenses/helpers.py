"""Small hand-made data sets, models and contexts for the lens tests (offline, CPU, fast)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from robustlens.data.imageset import ImageSet
from robustlens.data.info import DatasetInfo
from robustlens.lenses import get_lens
from robustlens.lenses.base import LensContext, LensSpec, StudyModel
from robustlens.models import ModelCard, RobustClassifier, build_model


def make_info(
    shape: tuple[int, int, int] = (1, 12, 12), num_classes: int = 3, name: str = "toy"
) -> DatasetInfo:
    c = shape[0]
    return DatasetInfo(
        name=name,
        num_classes=num_classes,
        class_names=tuple(f"c{i}" for i in range(num_classes)),
        shape=shape,
        mean=(0.0,) * c,
        std=(1.0,) * c,
        splits=("train", "test"),
    )


TOY = make_info()
"""The toy data set most lens tests use: 12×12 grey images, 3 classes, mean 0, std 1."""


def lens_setup(lens: str, n: int, seed: int) -> tuple[DatasetInfo, ImageSet, LensSpec]:
    """The toy data set, ``n`` of its :func:`brightness_images` (drawn with ``seed``) and the
    lens registered as ``lens``: what a lens test module starts from."""
    return TOY, brightness_images(TOY, n, seed=seed), get_lens(lens)


def make_images(
    info: DatasetInfo,
    n: int,
    *,
    seed: int = 0,
    labels: torch.Tensor | None = None,
    split: str = "test",
) -> ImageSet:
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand((n, *info.shape), generator=gen)
    if labels is None:
        labels = torch.randint(0, info.num_classes, (n,), generator=gen)
    return ImageSet(images, labels.long(), info, split, torch.arange(n))


def small_cnn(info: DatasetInfo, seed: int = 0) -> RobustClassifier:
    torch.manual_seed(seed)
    model = build_model("small-cnn", info, widths=(4, 8), kernels=(3, 3), strides=(1, 2))
    return model.eval()


def mlp(info: DatasetInfo, hidden: tuple[int, ...], seed: int = 0) -> RobustClassifier:
    """An untrained MLP, its weights drawn after seeding torch's global generator with ``seed``."""
    torch.manual_seed(seed)
    return build_model("mlp", info, hidden=hidden)


def fit_full_batch(
    net: RobustClassifier, data: ImageSet, *, steps: int, lr: float
) -> RobustClassifier:
    """``net`` trained in place by ``steps`` full-batch Adam steps on ``data``'s cross-entropy;
    returned in eval mode."""
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(data.images), data.labels).backward()
        opt.step()
    return net.eval()


def correct(net: torch.nn.Module, data: ImageSet) -> np.ndarray:
    """Whether ``net`` classifies each image of ``data`` correctly (bool per image)."""
    with torch.no_grad():
        return (net(data.images).argmax(1) == data.labels).numpy()


def features(net: RobustClassifier, images: torch.Tensor) -> np.ndarray:
    """``net``'s penultimate representation of ``images`` as float64, [N, D]."""
    with torch.no_grad():
        return net.features(images).double().numpy()


def study_model(
    model: RobustClassifier, name: str = "m", recipe: dict[str, Any] | None = None
) -> StudyModel:
    recipe = {"method": "natural"} if recipe is None else recipe
    # a digest per model object: lenses share attack results between models by digest
    digest = f"{name}-{id(model):x}"
    return StudyModel(name, model.eval(), ModelCard.for_model(model, recipe=recipe), digest=digest)


def make_ctx(
    info: DatasetInfo,
    load_split: Callable[[str, int | None], ImageSet] | None = None,
    seed: int = 0,
) -> LensContext:
    def no_split(split: str, n: int | None) -> ImageSet:
        raise AssertionError(f"this lens should not load another split ({split}, {n})")

    return LensContext(
        info=info, seed=seed, device=torch.device("cpu"), load_split=load_split or no_split
    )


def rows(frame, **match):
    """The rows of a tidy frame whose columns equal ``match``."""
    mask = True
    for key, value in match.items():
        mask = mask & (frame[key] == value)
    return frame[mask]


def value(frame, **match) -> float:
    part = rows(frame, **match)
    assert len(part) == 1, f"expected one row for {match}, got {len(part)}"
    return float(part["value"].iloc[0])


def brightness_images(info: DatasetInfo, n: int, *, seed: int = 0, split: str = "test") -> ImageSet:
    """Noisy images labelled by their brightness band: a task a small CNN learns in seconds."""
    gen = torch.Generator().manual_seed(seed)
    level = torch.rand(n, 1, 1, 1, generator=gen)
    noise = torch.rand((n, *info.shape), generator=gen)
    images = (0.5 * noise + 0.5 * level).clamp(0, 1)
    labels = (level.flatten() * info.num_classes).long().clamp(max=info.num_classes - 1)
    return ImageSet(images, labels, info, split, torch.arange(n))


_TRAINED: dict[tuple, RobustClassifier] = {}


def trained_cnn(info: DatasetInfo, seed: int = 0, epochs: int = 15) -> RobustClassifier:
    """A small CNN trained on :func:`brightness_images` (clean accuracy ≈ 0.9): unlike a random
    network it has decision boundaries inside [0, 1] that attacks can cross."""
    key = (info, seed, epochs)
    if key not in _TRAINED:
        model = small_cnn(info, seed=seed).train()
        train = brightness_images(info, 256, seed=1000 + seed, split="train")
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            for idx in torch.randperm(len(train), generator=gen).split(64):
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(
                    model(train.images[idx]), train.labels[idx]
                )
                loss.backward()
                opt.step()
        _TRAINED[key] = model.eval()
    return _TRAINED[key]


_TRAINED_MLP: dict[tuple, RobustClassifier] = {}


def trained_mlp(
    info: DatasetInfo, hidden: tuple[int, ...] = (32,), seed: int = 0
) -> RobustClassifier:
    """An MLP fitted to 256 :func:`brightness_images` in 30 full-batch steps: a trained model of
    another architecture than :func:`trained_cnn` (cached, like it)."""
    key = (info, hidden, seed)
    if key not in _TRAINED_MLP:
        train = brightness_images(info, 256, seed=99, split="train")
        _TRAINED_MLP[key] = fit_full_batch(mlp(info, hidden, seed), train, steps=30, lr=0.01)
    return _TRAINED_MLP[key]


# ------------------------------------------------------------- every lens, every architecture

MATRIX_SHAPES = ((1, 28, 28), (3, 32, 32))
"""The two input shapes of the zoo's data sets (Fashion-MNIST-like, CIFAR-like)."""

SMALLEST_ARCH_KWARGS: dict[str, dict[str, Any]] = {
    "small-cnn": {"widths": (4, 8), "kernels": (3, 3), "strides": (1, 2)},
    "mlp": {"hidden": (8,)},
    "lenet": {"widths": (2, 4), "hidden": (8, 8)},
    "resnet18": {"width": 2},
    "resnet20": {"width": 2},
    "resnet56": {"width": 1},
    "preact-resnet18": {"width": 2},
    "wrn": {"depth": 10, "widen_factor": 1},
    "vgg16-bn": {},  # fixed widths: the zoo's largest model here
}
"""Each zoo architecture at the smallest width / depth it allows."""

TINY_LENS_PARAMS: dict[str, dict[str, Any]] = {
    "activations": {"batch_size": 8},
    "attack-grid": {"attacks": ["fgsm linf 0.03", "pgd l2 0.5 2"], "reference_dim": 0, "n": 4},
    "boundary": {"steps": 2, "norms": ["l2"], "n": 4},
    "color": {"thicknesses": [1], "grid_copies": 2},
    "embedding": {"attacks": ["fgsm linf 0.03"], "reference_dim": 0, "k": 2, "n": 4},
    "ensemble": {"targets": ["lowres-7"], "train_n": 10, "test_n": 10},
    "featviz": {"channels": 1, "steps": 2},
    "filters": {
        "reference_dim": 0,
        "threshold_attack": "pgd linf 0.03 1",
        "resamples": 0,  # intervals are not what the matrix checks; SVDs of VGG are slow
        "threshold_images": 2,
    },
    "latent": {"epochs": 1, "batch_size": 8, "train_n": 10, "attack_steps": 1},
    "loss-dist": {"attacks": ["fgsm linf 0.03"], "reference_dim": 0, "folds": 2, "n": 4},
    "masking": {"n": 10, "steps": 1, "more_steps": 2, "eps_grid": [1.0], "queries": 2},
    "norm-ratio": {"attacks": ["fgsm linf 0.03"], "reference_dim": 0, "n": 4},
    "probes": {"blur_sigmas": [0, 1.0], "median_times": [0, 1], "n": 4},
    # the sanity check re-initialises every layer in turn: tests/lenses/test_matrix.py runs
    # it on each architecture with one method
    "saliency": {"n": 2, "show": 1, "smoothgrad_samples": 2, "ig_steps": 2, "sanity_images": 0},
    "similarity": {"attacks": ["fgsm linf 0.03"], "reference_dim": 0, "bootstrap": 0, "keep": 0.5},
    "transfer": {"n": 4, "steps": 1, "eps": 1.0, "step_size": 0.5, "reference_dim": 0},
    "universality": {"n": 4, "steps": 1, "step_size": 0.1},
}
"""Parameters that make every registered lens take a fraction of a second on a tiny model
(few images, one or two steps): the matrix checks that a lens runs, not what it finds."""


def run_lens_like_a_study(
    spec: Any,
    models: list[StudyModel],
    data: ImageSet,
    overrides: dict[str, Any],
    *,
    load_split: Callable[[str, int | None], ImageSet] | None = None,
) -> Any:
    """Run ``spec`` as the study runner does: the up-front applicability check on the first
    model for a model-scope lens (raising LensNotApplicable), then the computation on it, or
    on all ``models`` for a study-scope lens. Returns the LensResult."""
    params = spec.resolve_params(data.info, overrides, f"lenses.{spec.name}")
    ctx = make_ctx(data.info, load_split=load_split)
    if spec.scope == "model":
        spec.check_applicable(models[0], params)
        return spec.compute(models[0], data, params, ctx)
    return spec.compute(models, data, params, ctx)


def check_intervals(frame, metrics: tuple[str, ...], skip_settings: tuple[str, ...] = ()) -> int:
    """Every row of ``frame`` whose metric is in ``metrics`` (a proportion of its n images)
    carries its 95 % Wilson interval in ``ci_low``/``ci_high``; returns how many rows did."""
    from robustlens.proportions import count_of, wilson_interval

    chosen = frame[frame.metric.isin(metrics) & ~frame.setting.isin(skip_settings)]
    assert len(chosen), f"no {metrics} rows to check"
    for _, row in chosen.iterrows():
        n = int(row["n"])
        expected = wilson_interval(count_of(float(row["value"]), n), n)
        assert (row["ci_low"], row["ci_high"]) == expected, dict(row)
    return len(chosen)
