"""Reading what a model's blocks output: tap modules and forward-hook activation capture.

>>> acts = read_activations(model, x)                              # doctest: +SKIP
>>> with capture_activations(model, ["layer4.1"]) as acts:         # doctest: +SKIP
...     for batch in loader:
...         model(batch); update_statistics(acts["layer4.1"])
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

import torch
from torch import Tensor, nn

from robustlens.errors import ConfigError
from robustlens.models.mode import eval_mode as _eval_mode


def _model_taps(model: nn.Module) -> tuple[str, ...]:
    return tuple(getattr(model, "taps", ()))


def _resolve(model: nn.Module, taps: str | Iterable[str] | None) -> dict[str, nn.Module]:
    """Tap name → module; names may be any sub-module name, defaulting to ``model.taps``."""
    names = _model_taps(model) if taps is None else ((taps,) if isinstance(taps, str) else taps)
    modules = dict(model.named_modules())
    chosen: dict[str, nn.Module] = {}
    unknown = []
    for name in names:
        if not isinstance(name, str) or not name or name not in modules:
            unknown.append(name)
        else:
            chosen[name] = modules[name]
    if unknown:
        listed = ", ".join(_model_taps(model)) or "(the model declares none)"
        raise ConfigError(
            f"unknown tap{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
            f"for {getattr(model, 'arch', '') or type(model).__name__}",
            fix=f"use one of the model's taps: {listed}; or any name from model.named_modules()",
        )
    return chosen


def tap_modules(model: nn.Module) -> dict[str, nn.Module]:
    """The modules named in ``model.taps``, in order."""
    return _resolve(model, None)


@contextlib.contextmanager
def capture_activations(
    model: nn.Module,
    taps: str | Iterable[str] | None = None,
    *,
    detach: bool = True,
    clone: bool = True,
) -> Iterator[dict[str, Tensor]]:
    """Yield a dict that every forward pass of ``model`` fills with the taps' outputs.

    Each entry is overwritten on every forward (a tap run twice in one forward keeps its last
    output). Outputs are cloned, so in-place operations later in the forward cannot change
    them; with ``detach=False`` they stay attached to the autograd graph. The hooks are removed
    when the block exits, also on errors. Runs nothing itself and leaves modes and gradients
    to the caller. ``clone=False`` skips the copy: only for models whose forward has no
    in-place operations (every robustlens zoo model), when the outputs are read right after
    each forward.
    """
    chosen = _resolve(model, taps)
    store: dict[str, Tensor] = {}
    handles = []

    def hook_for(name: str) -> Callable[[nn.Module, object, object], None]:
        def hook(_module: nn.Module, _inputs: object, output: object) -> None:
            if not isinstance(output, Tensor):
                raise ConfigError(
                    f"tap {name!r} outputs {type(output).__name__}, not a tensor",
                    fix="choose a module that returns a single tensor",
                )
            kept = output.detach() if detach else output
            store[name] = kept.clone() if clone else kept

        return hook

    try:
        for name, module in chosen.items():
            handles.append(module.register_forward_hook(hook_for(name)))
        yield store
    finally:
        for handle in handles:
            handle.remove()


def read_activations(
    model: nn.Module,
    x: Tensor,
    taps: str | Iterable[str] | None = None,
    *,
    eval_mode: bool = True,
) -> dict[str, Tensor]:
    """The outputs of ``taps`` (default: all of ``model.taps``) for the batch ``x``.

    Runs one forward under ``torch.no_grad()`` with temporary hooks (always removed). With
    ``eval_mode`` (the default) the forward runs in eval mode, so batch norm uses and keeps its
    running statistics, and every module's training flag is restored afterwards; with
    ``eval_mode=False`` the model runs in whatever mode it is in. Unknown tap names raise
    :class:`ConfigError` listing the model's taps.
    """
    chosen = _resolve(model, taps)
    mode = _eval_mode(model) if eval_mode else contextlib.nullcontext()
    with mode, torch.no_grad(), capture_activations(model, list(chosen)) as store:
        model(x)
    missing = [name for name in chosen if name not in store]
    if missing:
        raise ConfigError(
            f"taps {', '.join(missing)} were not run by the forward pass",
            fix="choose modules that the model's forward actually calls",
        )
    return {name: store[name] for name in chosen}
