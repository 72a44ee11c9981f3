"""A model's 2-D convolution layers in depth order, with BatchNorm folded in on request.

Gavrikov & Keuper (2022) measured filters exported through ONNX, which folds a BatchNorm that
directly follows a convolution into the convolution's weights (W' = W·γ/√(σ² + ε) per output
channel). robustlens reads the raw weights by default and folds only when asked, so a report
can say which of the two it measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.fx
from torch import nn

from robustlens.errors import ConfigError


@dataclass(frozen=True)
class ConvLayer:
    """One convolution layer's weights [c_out, c_in, k1, k2] (float64) and where it sits."""

    name: str
    weight: np.ndarray
    index: int
    """Position among the model's convolutions (0 = first), in registration order."""
    relative_depth: float
    """index / (number of convolutions − 1); 0 for a model with one convolution."""
    folded: bool
    """True when a following BatchNorm was folded into ``weight``."""

    @property
    def kernel_size(self) -> tuple[int, int]:
        return int(self.weight.shape[2]), int(self.weight.shape[3])


def conv_layers(model: nn.Module, *, fold_batchnorm: bool = False) -> list[ConvLayer]:
    """Every ``nn.Conv2d`` of ``model`` (grouped convolutions included as stored).

    Order is registration order, which is forward order for the zoo's models. With
    ``fold_batchnorm`` each convolution whose only consumer is a BatchNorm2d is scaled by that
    BatchNorm's γ/√(running var + ε); the model is traced with torch.fx to find these pairs.
    """
    convs = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ConfigError(
            f"{type(model).__name__} has no 2-D convolution layers",
            fix="filter statistics need a convolutional model",
        )
    scales = _batchnorm_scales(model) if fold_batchnorm else {}
    out = []
    last = max(len(convs) - 1, 1)
    for i, (name, conv) in enumerate(convs):
        w = conv.weight.detach().to("cpu", torch.float64).numpy().copy()
        scale = scales.get(name)
        if scale is not None:
            w = w * scale[:, None, None, None]
        out.append(
            ConvLayer(
                name=name,
                weight=w,
                index=i,
                relative_depth=i / last if len(convs) > 1 else 0.0,
                folded=scale is not None,
            )
        )
    return out


def _batchnorm_scales(model: nn.Module) -> dict[str, np.ndarray]:
    """conv name → γ/√(var + ε) of the BatchNorm2d that alone consumes its output."""
    modules = dict(model.named_modules())
    scales = {}
    for conv, bn_name in following_batchnorm(model).items():
        bn = modules[bn_name]
        gamma = (
            bn.weight.detach().double()
            if bn.weight is not None
            else torch.ones_like(bn.running_var, dtype=torch.float64)
        )
        scale = gamma / torch.sqrt(bn.running_var.detach().double() + bn.eps)
        scales[conv] = scale.cpu().numpy()
    return scales


def following_batchnorm(model: nn.Module) -> dict[str, str]:
    """conv name → name of the BatchNorm2d (with running statistics) that alone consumes the
    convolution's output, found by tracing the model with torch.fx."""

    class Tracer(torch.fx.Tracer):
        # modules without children (input normalisation with its shape checks, activations)
        # are kept whole: only the wiring between layers matters here
        def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
            return super().is_leaf_module(m, qualname) or not any(True for _ in m.children())

    try:
        graph = Tracer().trace(model)
    except Exception as exc:  # fx raises many types on untraceable code
        raise ConfigError(
            f"cannot fold BatchNorm into the convolutions of {type(model).__name__}: "
            f"torch.fx could not trace it ({type(exc).__name__})",
            fix="measure the raw weights (fold_batchnorm = false)",
        ) from exc
    modules = dict(model.named_modules())
    pairs = {}
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules.get(node.target), nn.Conv2d):
            continue
        users = list(node.users)
        if len(users) != 1 or users[0].op != "call_module":
            continue
        bn = modules.get(users[0].target)
        if isinstance(bn, nn.BatchNorm2d) and bn.running_var is not None:
            pairs[str(node.target)] = str(users[0].target)
    return pairs
