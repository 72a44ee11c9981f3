"""Models from other libraries (torchvision, timm, RobustBench) as :class:`RobustClassifier`\\ s.

>>> model = load_adapter("torchvision:resnet50:IMAGENET1K_V2")          # doctest: +SKIP
>>> model = load_adapter("timm:convnext_tiny")                           # doctest: +SKIP
>>> model = load_adapter("robustbench:cifar10:Linf:Carmon2019Unlabeled")  # doctest: +SKIP

The libraries are optional and imported only here, when an adapter is asked for.
:class:`AdaptedClassifier` wraps any ``nn.Module`` classifier: normalisation goes in front,
the last ``nn.Linear`` becomes the head, and the features are the same network with the head
swapped for ``nn.Identity`` in a shallow copy (the wrapped module itself is left unchanged;
the two share their parameters).
"""

from __future__ import annotations

import copy
import importlib
import logging
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import torch
from torch import Tensor, nn

from robustlens.errors import ConfigError
from robustlens.models.anatomy import _eval_mode
from robustlens.models.base import RobustClassifier
from robustlens.models.checkpoint import check_finite_weights

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HEAD_NAMES = ("fc", "linear", "head", "heads", "classifier", "last_linear", "logits")
ACTIVATIONS = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.ELU, nn.Hardswish, nn.Mish, nn.Softplus,
)  # fmt: skip
ADAPTER_OPTIONS = ("mean", "std", "input_shape", "head", "taps", "verify", "accepts_any_size")
ROBUSTBENCH_SHAPES = {"cifar10": (3, 32, 32), "cifar100": (3, 32, 32), "imagenet": (3, 224, 224)}


# ------------------------------------------------------------------------------ wrapping


def find_head(module: nn.Module) -> str:
    """The name of the classifier's final ``nn.Linear``.

    Looks at the usual attributes (``fc``, ``linear``, ``head``, ``classifier``, ...), taking the
    last Linear inside a container, then falls back to the last Linear of the whole module.
    """
    children = dict(module.named_children())
    for name in HEAD_NAMES:
        child = children.get(name)
        if isinstance(child, nn.Linear):
            return name
        if isinstance(child, nn.Module):
            inner = [n for n, m in child.named_modules() if isinstance(m, nn.Linear)]
            if inner:
                return f"{name}.{inner[-1]}"
    linears = [n for n, m in module.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ConfigError(
            f"found no nn.Linear in {type(module).__name__} to use as the head",
            fix="pass head=<name of the final linear layer>",
        )
    return linears[-1]


def _own_dicts(module: nn.Module) -> nn.Module:
    """A shallow copy of ``module`` with its own parameter, buffer, module and hook tables."""
    clone = copy.copy(module)
    for key, value in vars(module).items():
        if isinstance(value, dict):
            clone.__dict__[key] = type(value)(value)
    return clone


def without_head(module: nn.Module, head: str) -> nn.Module:
    """A copy of ``module`` whose sub-module ``head`` is ``nn.Identity``; ``module`` is unchanged.

    Only the modules on the path to the head are copied (shallowly); everything else, and all
    parameters, are shared.
    """
    parts = head.split(".")
    root = _own_dicts(module)
    node = root
    for part in parts[:-1]:
        child = _own_dicts(node._modules[part])
        node._modules[part] = child
        node = child
    node._modules[parts[-1]] = nn.Identity()
    return root


def _has_weights(module: nn.Module) -> bool:
    return any(True for _ in module.parameters(recurse=False))


def _composite(module: nn.Module) -> bool:
    """Whether ``module`` holds at least two layers with weights (a block, not a layer)."""
    return sum(1 for m in module.modules() if _has_weights(m)) >= 2


def guess_taps(module: nn.Module) -> list[str]:
    """Block outputs of a foreign network, found by structure.

    Every composite module (two or more layers with weights) that is an element of a
    Sequential/ModuleList (a residual block in a stage, a transformer block) is a tap; other
    containers and composite modules are searched inside; activation modules outside blocks (the
    stem's ReLU, the ReLUs of a plain conv stack) are taps too. Falls back to the top-level
    children.
    """
    taps: list[str] = []

    def walk(node: nn.Module, prefix: str, in_sequence: bool) -> None:
        for name, child in node.named_children():
            full = f"{prefix}{name}"
            container = isinstance(child, nn.Sequential | nn.ModuleList)
            if isinstance(child, nn.Identity):
                continue
            if in_sequence and _composite(child):
                taps.append(full)
            elif container or _composite(child):
                walk(child, f"{full}.", container)
            elif isinstance(child, ACTIVATIONS):
                taps.append(full)

    walk(module, "", False)
    if not taps:
        taps = [n for n, m in module.named_children() if not isinstance(m, nn.Identity)]
    return taps


class AdaptedClassifier(RobustClassifier):
    """A foreign ``nn.Module`` classifier behind the :class:`RobustClassifier` interface.

    ``module`` maps normalised images to logits and must end in its ``head`` Linear (found
    with :func:`find_head` unless given). ``mean``/``std`` are the normalisation it expects
    (identity when None, e.g. for models that already take [0, 1] inputs). ``taps`` default to
    :func:`guess_taps`. With ``verify``, a forward on two random images checks that
    ``head(features(x))`` equals the module's own output. ``body`` is the module with the head
    replaced by Identity; guided backprop needs its ReLUs to be modules, which foreign code
    does not always guarantee.
    """

    arch = "adapter"

    def __init__(
        self,
        module: nn.Module,
        *,
        input_shape: Sequence[int] = (3, 224, 224),
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        head: str | None = None,
        taps: Sequence[str] | None = None,
        accepts_any_size: bool = True,
        verify: bool = True,
        spec: str = "",
    ) -> None:
        head = head or find_head(module)
        if not head:
            raise ConfigError(
                f"{type(module).__name__} is a single linear layer: there are no features to "
                "separate from the head",
                fix="wrap it with the layers that compute its input",
            )
        try:
            linear = module.get_submodule(head)
        except AttributeError as err:
            raise ConfigError(f"{type(module).__name__} has no sub-module {head!r}") from err
        if not isinstance(linear, nn.Linear):
            raise ConfigError(
                f"the head {head!r} of {type(module).__name__} is a {type(linear).__name__}, "
                "not an nn.Linear",
                fix="pass head=<name of the final linear layer>",
            )
        check_finite_weights(module.state_dict(), origin=spec or type(module).__name__)
        shape = tuple(int(v) for v in input_shape)
        if len(shape) != 3:
            raise ConfigError(f"input_shape must be (C, H, W), got {input_shape!r}")
        super().__init__(shape[0], linear.out_features, input_size=shape[1:], mean=mean, std=std)
        self.body = without_head(module, head)
        self.linear = linear
        self.head_path = head
        self.accepts_any_size = bool(accepts_any_size)
        self.taps = (
            tuple(taps) if taps is not None else tuple(f"body.{t}" for t in guess_taps(self.body))
        )
        self.arch_kwargs = {"spec": spec, "head": head, "input_shape": list(shape)}
        parameter = next(module.parameters(), None)
        if parameter is not None:
            self.normalize.to(parameter.device)
        if verify:
            self._verify(module)

    def forward_features(self, z: Tensor) -> Tensor:
        return self.body(z)

    def _verify(self, module: nn.Module) -> None:
        device = self.normalize.mean.device
        generator = torch.Generator().manual_seed(0)
        x = torch.rand((2, *self.input_shape), generator=generator).to(device)
        with _eval_mode(module), _eval_mode(self), torch.no_grad():
            expected = module(self.normalize(x))
            features = self.features(x)
            got = self.head(features) if features.dim() == 2 else None
        if not isinstance(expected, Tensor):
            raise ConfigError(
                f"{type(module).__name__} returns {type(expected).__name__}, not logits",
                fix="wrap it in a module that returns the logits tensor",
            )
        if got is None or features.shape[1] != self.feature_dim:
            raise ConfigError(
                f"without its head {self.head_path!r}, {type(module).__name__} outputs shape "
                f"{tuple(features.shape)}, not (N, {self.feature_dim})",
                fix="pass head=<name of the final linear layer>",
            )
        if got.shape != expected.shape or not torch.allclose(got, expected, rtol=1e-4, atol=1e-5):
            raise ConfigError(
                f"{self.head_path!r} is not the last operation of {type(module).__name__}: "
                "head(features(x)) differs from the module's output",
                fix="pass head=<name of the final linear layer>, or verify=False if the "
                "difference is expected",
            )


# ------------------------------------------------------------------------------ loaders


def _optional(package: str, spec: str, pip_name: str | None = None) -> ModuleType:
    pip_name = pip_name or package
    try:
        return importlib.import_module(package)
    except ImportError as err:
        raise ConfigError(
            f"adapter {spec!r} needs the optional package {pip_name}, which is not installed",
            fix=f"pip install {pip_name}",
        ) from err
    except Exception as err:  # e.g. a torchvision build that does not match torch
        raise ConfigError(
            f"adapter {spec!r} needs the optional package {pip_name}, which is installed but "
            f"failed to import ({type(err).__name__}: {err})",
            fix=f"reinstall {pip_name} in a version built for torch {torch.__version__}",
        ) from err


def _split(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(options for AdaptedClassifier, arguments for the library's constructor)."""
    options = {k: kwargs.pop(k) for k in ADAPTER_OPTIONS if k in kwargs}
    return options, kwargs


def _torchvision(spec: str, rest: str, kwargs: dict[str, Any]) -> AdaptedClassifier:
    name, _, weights_name = rest.partition(":")
    options, model_kwargs = _split(kwargs)
    models = _optional("torchvision", spec).models
    weights = None
    mean, std, size = IMAGENET_MEAN, IMAGENET_STD, 224
    if weights_name:
        table = models.get_model_weights(name)
        try:
            weights = table.DEFAULT if weights_name.upper() == "DEFAULT" else table[weights_name]
        except KeyError as err:
            known = ", ".join(w.name for w in table)
            raise ConfigError(
                f"torchvision has no weights {weights_name!r} for {name}", fix=f"known: {known}"
            ) from err
        transform = weights.transforms()
        mean = tuple(getattr(transform, "mean", mean))
        std = tuple(getattr(transform, "std", std))
        size = int(getattr(transform, "crop_size", [size])[0])
    module = models.get_model(name, weights=weights, **model_kwargs)
    options = {"mean": mean, "std": std, "input_shape": (3, size, size), **options}
    return AdaptedClassifier(module, spec=spec, **options)


def _timm(spec: str, rest: str, kwargs: dict[str, Any]) -> AdaptedClassifier:
    options, model_kwargs = _split(kwargs)
    timm = _optional("timm", spec)
    model_kwargs.setdefault("pretrained", True)
    module = timm.create_model(rest, **model_kwargs)
    config = dict(getattr(module, "pretrained_cfg", None) or {})
    defaults = {
        "mean": tuple(config.get("mean", IMAGENET_MEAN)),
        "std": tuple(config.get("std", IMAGENET_STD)),
        "input_shape": tuple(config.get("input_size", (3, 224, 224))),
    }
    return AdaptedClassifier(module, spec=spec, **{**defaults, **options})


def _robustbench(spec: str, rest: str, kwargs: dict[str, Any]) -> AdaptedClassifier:
    parts = rest.split(":")
    if len(parts) != 3 or not all(parts):
        raise ConfigError(
            f"bad RobustBench adapter {spec!r}",
            fix="write robustbench:<dataset>:<threat>:<model_name>, e.g. "
            "robustbench:cifar10:Linf:Carmon2019Unlabeled",
        )
    dataset, threat, name = parts
    options, model_kwargs = _split(kwargs)
    utils = _optional("robustbench.utils", spec, "robustbench")
    module = utils.load_model(model_name=name, dataset=dataset, threat_model=threat, **model_kwargs)
    shape = ROBUSTBENCH_SHAPES.get(dataset.lower(), (3, 32, 32))
    # RobustBench models take [0, 1] images and normalise inside: identity normalisation here.
    return AdaptedClassifier(module, spec=spec, **{"input_shape": shape, **options})


LOADERS = {"torchvision": _torchvision, "timm": _timm, "robustbench": _robustbench}


def load_adapter(spec: str, **kwargs: Any) -> AdaptedClassifier:
    """A model from another library, named ``<library>:<name>...`` (see the module docs).

    ``mean``, ``std``, ``input_shape``, ``head``, ``taps``, ``verify`` and ``accepts_any_size``
    go to :class:`AdaptedClassifier`; other keyword arguments to the library's constructor.
    """
    kind, _, rest = spec.partition(":")
    loader = LOADERS.get(kind.strip().lower())
    if loader is None or not rest:
        raise ConfigError(
            f"unknown model adapter {spec!r}",
            fix="write torchvision:<name>[:<weights>], timm:<name> or "
            "robustbench:<dataset>:<threat>:<model_name>",
        )
    model = loader(spec, rest, dict(kwargs))
    logger.info("adapted %s: head %s, %d taps", spec, model.head_path, len(model.taps))
    return model
