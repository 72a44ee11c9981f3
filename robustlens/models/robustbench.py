"""Checkpoints from RobustBench's model zoo (Croce et al. 2021), loaded into our architectures.

RobustBench's CIFAR-10 models take images in [0, 1]; those that normalise do it inside their
forward with constants that are not in the checkpoint file (``mu``/``sigma`` buffers missing,
or none at all), and its ImageNet ResNet-50s are torchvision networks behind a ``normalize``
layer. So the table below records, per model id, the architecture, RobustBench's own
normalisation and the key layout; :func:`load_robustbench` reads a file the user downloaded
(``torch.load(weights_only=True)`` or safetensors only; nothing is downloaded here) and returns
one of our models with that normalisation inside it. Key names handled: ``module.`` and
``model.`` prefixes, a ``state_dict`` wrapper, ``sub_block1.*`` (an unused copy in some
WideResNets, dropped), ``mu``/``sigma`` and ``normalize.mean``/``normalize.std`` (the
normalisation, checked against the table), and torchvision's ``downsample``/``fc`` names.
Models whose forward our architectures do not reproduce (per-image standardisation, Swish
WideResNets, ensembles, transformers) are not in the table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robustlens.errors import CheckpointError, ConfigError
from robustlens.models.base import RobustClassifier
from robustlens.models.card import ModelCard
from robustlens.models.foreign import load_foreign_weights
from robustlens.registry import Registry

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2471, 0.2435, 0.2616)
MADRYLAB_CIFAR10_STD = (0.2023, 0.1994, 0.2010)
AUGUSTIN_MEAN = (0.4913997551666284, 0.48215855929893703, 0.4465309133731618)
AUGUSTIN_STD = (0.24703225141799082, 0.24348516474564, 0.26158783926049628)
RONY_MEAN, RONY_STD = (0.491, 0.482, 0.447), (0.247, 0.243, 0.262)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
IMAGENET_SHAPE = {"num_classes": 1000, "in_channels": 3, "input_size": 224}
WONG_PREACT = {"shortcut": "input", "final_bn": False}  # RobustBench's PreActBlock, no last BN
LAYOUTS = ("robustbench", "torchvision")


@dataclass(frozen=True)
class RobustBenchModel:
    """One RobustBench entry: our architecture for it and the normalisation inside it."""

    model_id: str
    dataset: str  # "cifar10" or "imagenet"
    threat: str  # "Linf" or "L2"
    arch: str
    arch_kwargs: Mapping[str, Any] = field(default_factory=dict)
    mean: tuple[float, ...] | None = None  # None: the model takes [0, 1] pixels as they are
    std: tuple[float, ...] | None = None
    layout: str = "robustbench"  # "torchvision": downsample/fc names (ImageNet ResNet-50s)
    note: str = ""

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.threat}/{self.model_id}"


CIFAR_STATS = {"mean": CIFAR10_MEAN, "std": CIFAR10_STD}
MADRYLAB = {"mean": CIFAR10_MEAN, "std": MADRYLAB_CIFAR10_STD}
IMAGENET = {"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "layout": "torchvision"}
ENTRIES = (
    # CIFAR-10, L∞
    RobustBenchModel("Carmon2019Unlabeled", "cifar10", "Linf", "wrn-28-10"),
    RobustBenchModel("Sehwag2020Hydra", "cifar10", "Linf", "wrn-28-10"),
    RobustBenchModel("Wang2020Improving", "cifar10", "Linf", "wrn-28-10", note="MART"),
    RobustBenchModel(
        "Hendrycks2019Using",
        "cifar10",
        "Linf",
        "wrn-28-10",
        mean=(0.5,) * 3,
        std=(0.5,) * 3,
        note="their forward computes 2x − 1 = (x − 0.5) / 0.5",
    ),
    RobustBenchModel("Zhang2019Theoretically", "cifar10", "Linf", "wrn-34-10", note="TRADES"),
    RobustBenchModel("Huang2020Self", "cifar10", "Linf", "wrn-34-10"),
    RobustBenchModel("Zhang2019You", "cifar10", "Linf", "wrn-34-10", note="YOPO"),
    RobustBenchModel(
        "Rice2020Overfitting",
        "cifar10",
        "Linf",
        "wrn",
        arch_kwargs={"depth": 34, "widen_factor": 20},
        **CIFAR_STATS,
    ),
    RobustBenchModel("Engstrom2019Robustness", "cifar10", "Linf", "resnet50", **MADRYLAB),
    RobustBenchModel(
        "Wong2020Fast", "cifar10", "Linf", "preact-resnet18", arch_kwargs=WONG_PREACT, **CIFAR_STATS
    ),
    RobustBenchModel(
        "Andriushchenko2020Understanding",
        "cifar10",
        "Linf",
        "preact-resnet18",
        arch_kwargs=WONG_PREACT,
    ),
    RobustBenchModel("Standard", "cifar10", "Linf", "wrn-28-10", note="naturally trained"),
    # CIFAR-10, L2
    RobustBenchModel("Engstrom2019Robustness", "cifar10", "L2", "resnet50", **MADRYLAB),
    RobustBenchModel("Rice2020Overfitting", "cifar10", "L2", "preact-resnet18", **CIFAR_STATS),
    RobustBenchModel(
        "Augustin2020Adversarial", "cifar10", "L2", "resnet50", mean=AUGUSTIN_MEAN, std=AUGUSTIN_STD
    ),
    RobustBenchModel(
        "Rony2019Decoupling", "cifar10", "L2", "wrn-28-10", mean=RONY_MEAN, std=RONY_STD
    ),
    RobustBenchModel("Standard", "cifar10", "L2", "wrn-28-10", note="naturally trained"),
    # ImageNet, L∞ (torchvision ResNet-50s; RobustBench resizes to 256 and crops 224 first,
    # Wong2020Fast crops 288: preprocessing outside the model)
    RobustBenchModel("Salman2020Do_R50", "imagenet", "Linf", "resnet50-imagenet", **IMAGENET),
    RobustBenchModel("Engstrom2019Robustness", "imagenet", "Linf", "resnet50-imagenet", **IMAGENET),
    RobustBenchModel(
        "Wong2020Fast",
        "imagenet",
        "Linf",
        "resnet50-imagenet",
        **IMAGENET,
        note="evaluated at 288 × 288 by RobustBench",
    ),
    RobustBenchModel(
        "Standard_R50",
        "imagenet",
        "Linf",
        "resnet50-imagenet",
        **IMAGENET,
        note="naturally trained",
    ),
)
ROBUSTBENCH_MODELS: Registry[RobustBenchModel] = Registry("RobustBench model")
for _e in ENTRIES:
    ROBUSTBENCH_MODELS.add(_e.key, _e)


def robustbench_model(
    model_id: str, dataset: str = "cifar10", threat: str = "Linf"
) -> RobustBenchModel:
    """The table's entry for ``model_id`` in ``dataset``'s ``threat`` leaderboard."""
    if threat not in ("Linf", "L2"):
        raise ConfigError(f"RobustBench threat model must be 'Linf' or 'L2', got {threat!r}")
    return ROBUSTBENCH_MODELS.get(f"{dataset}/{threat}/{model_id}")


def robustbench_rename(layout: str):  # -> Callable[[str], str | None]
    """The key renaming for ``layout``: ``mu``/``sigma`` → our normalisation, and for
    torchvision networks ``downsample`` → ``shortcut``, ``fc`` → ``linear``."""
    if layout not in LAYOUTS:
        raise ConfigError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")

    def rename(key: str) -> str | None:
        key = {"mu": "normalize.mean", "sigma": "normalize.std"}.get(key, key)
        if layout == "torchvision":
            key = key.replace(".downsample.", ".shortcut.")
            key = "linear." + key[3:] if key.startswith("fc.") else key
        return key

    return rename


def _check_statistics(model: RobustClassifier, entry: RobustBenchModel, path: Path) -> None:
    """Refuse a file whose own normalisation differs from the table's for its model id."""
    mean, std = model.normalize.statistics()
    want_mean = entry.mean or (0.0,) * len(mean)
    want_std = entry.std or (1.0,) * len(std)
    close = all(
        math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)
        for a, b in zip((*mean, *std), (*want_mean, *want_std), strict=True)
    )
    if not close:
        raise CheckpointError(
            f"{path} normalises with mean {list(mean)}, std {list(std)}, but RobustBench's "
            f"{entry.model_id} ({entry.dataset}, {entry.threat}) uses mean {list(want_mean)}, "
            f"std {list(want_std)}",
            fix="check that the file is the checkpoint of this model id",
        )


def load_robustbench_layout(
    path: str | Path,
    arch: str,
    dataset: Any = None,
    *,
    layout: str = "robustbench",
    **arch_kwargs: Any,
) -> tuple[RobustClassifier, ModelCard]:
    """Load a RobustBench-layout file into ``build_model(arch, dataset, **arch_kwargs)``.

    Pass the model's normalisation as ``mean``/``std`` in ``arch_kwargs`` (identity when the
    model takes raw [0, 1] pixels); a file that carries its own (``mu``/``sigma``,
    ``normalize.*``) overrides them. Use :func:`load_robustbench` for a model id in the table.
    """
    return load_foreign_weights(
        path, arch, dataset, strict=True, rename=robustbench_rename(layout), **arch_kwargs
    )


def load_robustbench(
    path: str | Path, model_id: str, *, dataset: str = "cifar10", threat: str = "Linf"
) -> tuple[RobustClassifier, ModelCard]:
    """Our model for RobustBench's ``model_id`` (``dataset``, ``threat``) with the weights in
    ``path``, a checkpoint the user downloaded; returns (model in eval mode, card)."""
    entry = robustbench_model(model_id, dataset, threat)
    path = Path(path)
    shape: dict[str, Any] = dict(IMAGENET_SHAPE) if entry.dataset == "imagenet" else {}
    channels = 3
    mean = entry.mean or (0.0,) * channels
    std = entry.std or (1.0,) * channels
    model, card = load_robustbench_layout(
        path,
        entry.arch,
        None if entry.dataset == "imagenet" else entry.dataset,
        layout=entry.layout,
        mean=mean,
        std=std,
        **shape,
        **entry.arch_kwargs,
    )
    _check_statistics(model, entry, path)
    source = dict(card.source) if isinstance(card.source, dict) else {}
    source["robustbench"] = {"model_id": model_id, "dataset": dataset, "threat": threat}
    card = card.replace(source=source, dataset=None if entry.dataset == "imagenet" else dataset)
    card.add_note(
        f"RobustBench {model_id} ({dataset}, {threat}) as {entry.arch}"
        + (f" {dict(entry.arch_kwargs)}" if entry.arch_kwargs else "")
        + (f"; {entry.note}" if entry.note else "")
    )
    return model, card
