"""Weights trained elsewhere: PyTorch ``.pt``/``.pth``/``.ckpt`` files and foreign safetensors.

Files are read with ``torch.load(..., weights_only=True)`` only: a file that needs arbitrary
unpickling (a pickled ``nn.Module``, a custom class) is refused, never loaded another way.
Recognised layouts: a plain state dict; a dict holding it under ``state_dict``, ``model``,
``net``, ...; keys behind any common prefix such as DataParallel's ``module.``; MadryLab
``robustness`` checkpoints (``module.model.*`` weights, ``module.attacker.*`` copy dropped,
``module.normalizer.new_mean``/``new_std`` used as the normalisation).
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import re
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from torch import Tensor

from robustlens.errors import CheckpointError, ConfigError
from robustlens.models.base import RobustClassifier
from robustlens.models.card import ModelCard
from robustlens.models.checkpoint import check_finite_weights, list_some, load_state_strict
from robustlens.models.zoo import build_model

logger = logging.getLogger(__name__)

WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "network", "module", "state")
# Keys of known layouts that hold no weights of the network itself.
IGNORED_PREFIXES = {
    "attacker.": "MadryLab attacker copy of the model",
    "sub_block1.": "RobustBench WideResNet sub_block1 (not used by its forward)",
}
Rename = Mapping[str, str] | Callable[[str], str | None]


def _refusal(path: Path, err: Exception) -> CheckpointError:
    found = re.findall(r"GLOBAL ([\w.]+)", str(err))
    what = f" (it references {found[0]})" if found else ""
    return CheckpointError(
        f"refused to load {path}: it holds Python objects other than tensors and plain "
        f"containers{what}, and unpickling them would execute arbitrary code",
        fix="from trusted code, load the model and save only its weights, "
        "torch.save(model.state_dict(), 'weights.pt'), or convert them to safetensors with "
        "safetensors.torch.save_file(model.state_dict(), 'weights.safetensors')",
    )


def read_weights_file(path: str | Path) -> Any:
    """The object stored in ``path`` (safetensors, or torch's format read with weights_only)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file {path} does not exist")
    if path.suffix == ".safetensors":
        try:
            return safetensors.torch.load_file(path, device="cpu")
        except Exception as err:  # safetensors raises its own error types
            raise CheckpointError(
                f"{path} is not a readable safetensors file ({err})",
                fix="download or copy the file again",
            ) from err
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if re.search(r"\bGLOBAL\b", str(err)):  # an object the safe unpickler will not build
            raise _refusal(path, err) from None
        detail = re.search(r"WeightsUnpickler error:\s*(.+)", str(err))
        raise CheckpointError(
            f"{path} is not a readable PyTorch weights file "
            f"({detail.group(1).strip() if detail else str(err).splitlines()[0]})",
            fix="download or copy the file again, or re-save it from trusted code with "
            "torch.save(model.state_dict(), path)",
        ) from None
    except Exception as err:  # weights_only loading runs no foreign code; any failure = damage
        raise CheckpointError(
            f"{path} is not a readable PyTorch weights file ({type(err).__name__}: {err})",
            fix="download or copy the file again",
        ) from None


def _is_state_dict(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) for k in obj)
        and all(isinstance(v, Tensor) for v in obj.values())
    )


def find_state_dict(obj: Any, origin: str) -> tuple[dict[str, Tensor], list[str]]:
    """The state dict inside ``obj`` and the wrapper keys leading to it."""
    if _is_state_dict(obj):
        return dict(obj), []
    if isinstance(obj, Mapping):
        for key in WRAPPER_KEYS:
            if isinstance(obj.get(key), Mapping):
                try:
                    state, path = find_state_dict(obj[key], origin)
                except CheckpointError:
                    continue
                return state, [key, *path]
    keys = ", ".join(repr(k) for k in list(obj)[:8]) if isinstance(obj, Mapping) else ""
    raise CheckpointError(
        f"found no state dict (a mapping of names to tensors) in {origin}"
        + (f"; its top-level keys are {keys}" if keys else f"; it holds {type(obj).__name__}"),
        fix="save the weights with torch.save(model.state_dict(), path)",
    )


def _best_prefix(keys: list[str], targets: set[str]) -> str:
    """The prefix that, stripped, turns the most ``keys`` into ``targets`` (shortest on ties)."""
    votes: Counter[str] = Counter()
    for key in keys:
        starts = [0] + [i + 1 for i, ch in enumerate(key) if ch == "."]
        for start in starts:
            if key[start:] in targets:
                votes[key[:start]] += 1
                break
    if not votes:
        return ""
    return min(votes, key=lambda p: (-votes[p], len(p)))


def _split_madrylab(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], Tensor, Tensor] | None:
    """(model weights, mean, std) of a MadryLab robustness state dict, or None."""
    plain = {k.removeprefix("module."): v for k, v in state.items()}
    if not {"normalizer.new_mean", "normalizer.new_std"} <= set(plain):
        return None
    if not any(k.startswith("model.") for k in plain):
        return None
    weights = {k.removeprefix("model."): v for k, v in plain.items() if k.startswith("model.")}
    return weights, plain["normalizer.new_mean"], plain["normalizer.new_std"]


def _unalias(key: str, aliases: Mapping[str, str]) -> str:
    """``key`` as the foreign implementation spells it (inverse of ``aliases``)."""
    return next((o + key[len(n) :] for o, n in aliases.items() if key.startswith(n)), key)


def _apply_rename(state: dict[str, Tensor], rename: Rename | None) -> dict[str, Tensor]:
    if rename is None:
        return state
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if callable(rename):
            new = rename(key)
        else:
            new = next((n + key[len(o) :] for o, n in rename.items() if key.startswith(o)), key)
        if new is not None:
            out[new] = value
    return out


def _set_normalisation(
    model: RobustClassifier,
    statistics: tuple[Tensor, Tensor] | None,
    path: Path,
    arch_kwargs: Mapping[str, Any],
    dataset: Any,
) -> str:
    """Install the file's normalisation, if any; return a note saying where it came from."""
    if statistics is None:
        if "mean" in arch_kwargs or "std" in arch_kwargs:
            return "the file has no normalisation; mean/std given by the caller"
        if dataset is not None:
            return (
                "the file has no normalisation; using the data set's mean/std — check that the "
                "weights were trained with these statistics"
            )
        return "the file has no normalisation and none was given: identity normalisation"
    try:
        model.normalize.set_statistics(statistics[0].reshape(-1), statistics[1].reshape(-1))
    except ConfigError as err:
        raise CheckpointError(
            f"the normalisation in {path} does not fit the model: {err.problem}",
            fix="check in_channels, or drop the normaliser from the file and pass mean=/std=",
        ) from err
    # Record the statistics so that build_model(arch, **arch_kwargs) rebuilds the model exactly.
    mean, std = model.normalize.statistics()
    model.arch_kwargs = {**model.arch_kwargs, "mean": list(mean), "std": list(std)}
    return "normalisation mean/std taken from the file"


def load_foreign_weights(
    path: str | Path,
    arch: str,
    dataset: Any = None,
    *,
    strict: bool = True,
    rename: Rename | None = None,
    **arch_kwargs: Any,
) -> tuple[RobustClassifier, ModelCard]:
    """Build ``build_model(arch, dataset, **arch_kwargs)`` and load foreign weights into it.

    The normalisation comes from the file when it has one (our ``normalize.*`` keys or a
    MadryLab normaliser), otherwise from ``mean``/``std`` in ``arch_kwargs`` or the data set;
    the card's notes say which. ``rename`` maps key prefixes (or is a function returning the
    new key, or None to drop it), applied after the layout is unwrapped. With ``strict`` any key
    the model lacks is an error; with ``strict=False`` such keys are dropped and listed in the
    notes. Weights the model needs but the file lacks are always an error.
    Returns (model in eval mode, card); the card has no ``weights_sha256`` until saved.
    """
    path = Path(path)
    raw = read_weights_file(path)
    state, wrappers = find_state_dict(raw, str(path))
    model = build_model(arch, dataset, **arch_kwargs)
    notes: list[str] = []
    layout = "state dict" + (f" under {'/'.join(wrappers)}" if wrappers else "")

    statistics: tuple[Tensor, Tensor] | None = None
    madry = _split_madrylab(state)
    if madry is not None:
        state, mean, std = madry
        statistics = (mean, std)
        layout = "MadryLab robustness checkpoint (attacker copy dropped)"
    targets = set(model.state_dict())
    aliases = dict(type(model).foreign_aliases)
    spellings = targets | {_unalias(t, aliases) for t in targets}
    prefix = _best_prefix(list(state), spellings)
    if prefix:
        layout += f", keys prefixed {prefix!r}"
        state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)} | {
            k: v for k, v in state.items() if not k.startswith(prefix)
        }
    state = _apply_rename(_apply_rename(state, aliases), rename)

    for key in ("normalize.mean", "normalize.std"):
        if key in state and state[key].numel() == model.normalize.channels:
            state[key] = state[key].reshape(-1, 1, 1)
    if {"normalize.mean", "normalize.std"} <= set(state):
        statistics = (state.pop("normalize.mean"), state.pop("normalize.std"))
    else:
        state.pop("normalize.mean", None)
        state.pop("normalize.std", None)

    dropped = []
    for key in [k for k in state if k not in targets]:
        reason = next((r for p, r in IGNORED_PREFIXES.items() if key.startswith(p)), None)
        if reason is not None or not strict:
            dropped.append(key)
            del state[key]
    if dropped:
        notes.append(f"ignored {len(dropped)} keys from the file: {list_some(dropped)}")
    own = model.state_dict()
    untracked = [k for k in targets if k not in state and k.endswith("num_batches_tracked")]
    for key in [k for k in targets if k not in state and k.startswith("normalize.")] + untracked:
        state[key] = own[key]
    if untracked:
        notes.append(f"{len(untracked)} num_batches_tracked counters missing from the file; kept 0")
    check_finite_weights(state, origin=str(path))
    load_state_strict(model, state, origin=str(path))
    notes.append(_set_normalisation(model, statistics, path, arch_kwargs, dataset))

    source: dict[str, Any] = {
        "path": str(path.resolve()),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "layout": layout,
    }
    if isinstance(raw, Mapping) and isinstance(raw.get("epoch"), int | float):
        source["epoch"] = raw["epoch"]
    card = ModelCard.for_model(model, dataset=dataset, source=source, notes="\n".join(notes))
    logger.info("loaded %s weights from %s (%s)", arch, path, layout)
    model.eval()
    return model, card
