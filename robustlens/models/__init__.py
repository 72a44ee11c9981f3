"""Classifiers with normalisation inside, named block taps, checkpoints with model cards.

>>> from robustlens.models import build_model, save_checkpoint, load_checkpoint
>>> model = build_model("small-cnn", "fashion-mnist")              # doctest: +SKIP
>>> card = save_checkpoint(model, "runs/fmnist-small", dataset="fashion-mnist")  # doctest: +SKIP
>>> model, card = load_checkpoint("runs/fmnist-small.safetensors")  # doctest: +SKIP
"""

from robustlens.models.adapters import AdaptedClassifier, load_adapter
from robustlens.models.anatomy import capture_activations, read_activations, tap_modules
from robustlens.models.base import RobustClassifier
from robustlens.models.bottleneck import BottleneckResNet
from robustlens.models.card import CARD_FORMAT, ModelCard
from robustlens.models.checkpoint import (
    checkpoint_paths,
    load_checkpoint,
    model_digest,
    save_checkpoint,
)
from robustlens.models.foreign import load_foreign_weights
from robustlens.models.mode import eval_mode
from robustlens.models.normalize import Normalize
from robustlens.models.preact_resnet import PreActResNet
from robustlens.models.resnet import CifarResNet, ResNet
from robustlens.models.simple import MLP, LeNet, SmallCNN
from robustlens.models.vgg import VGG
from robustlens.models.wide_resnet import WideResNet
from robustlens.models.zoo import ARCHITECTURES, ArchSpec, build_model, list_architectures

__all__ = [
    "ARCHITECTURES",
    "CARD_FORMAT",
    "MLP",
    "VGG",
    "AdaptedClassifier",
    "ArchSpec",
    "BottleneckResNet",
    "CifarResNet",
    "LeNet",
    "ModelCard",
    "Normalize",
    "PreActResNet",
    "ResNet",
    "RobustClassifier",
    "SmallCNN",
    "WideResNet",
    "build_model",
    "capture_activations",
    "checkpoint_paths",
    "eval_mode",
    "list_architectures",
    "load_adapter",
    "load_checkpoint",
    "load_foreign_weights",
    "model_digest",
    "read_activations",
    "save_checkpoint",
    "tap_modules",
]
