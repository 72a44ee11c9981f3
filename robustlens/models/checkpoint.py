"""Checkpoints: weights as ``<stem>.safetensors`` plus a model card ``<stem>.json`` beside them.

:func:`save_checkpoint` writes both files atomically (a temporary file in the same folder,
fsync, then ``os.replace``), the weights first, so an interrupted save leaves either the
previous files or new weights whose hash the old card rejects, never a half-written file.
:func:`save_checkpoint_unit` (what training uses) goes further: the pair is staged in a hidden
folder and committed by one rename, so after a kill it is either completed or redone, never
left as weights without a card. Loading checks the weights' sha256 against the card before
parsing them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import safetensors.torch
import torch
from torch import Tensor, nn

from robustlens.errors import CheckpointError, ConfigError
from robustlens.models.base import RobustClassifier
from robustlens.models.card import ModelCard
from robustlens.models.zoo import ARCHITECTURES, build_model

logger = logging.getLogger(__name__)

WEIGHTS_SUFFIX = ".safetensors"
CARD_SUFFIX = ".json"
_CHUNK = 1 << 22


def checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    """(weights, card) paths for ``path``: a stem, either file of the pair, or a folder
    holding a ``model`` pair (a study's ``models/NAME/``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "model"
    stem = path.with_suffix("") if path.suffix in (WEIGHTS_SUFFIX, CARD_SUFFIX) else path
    return (
        stem.with_name(stem.name + WEIGHTS_SUFFIX),
        stem.with_name(stem.name + CARD_SUFFIX),
    )


def list_some(items: list[str], limit: int = 5) -> str:
    """Up to ``limit`` of ``items``, comma-separated, with the total when there are more."""
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown}, ... ({len(items)} in all)"


# ------------------------------------------------------------------------------ writing


def _write_all(handle: BinaryIO, data: bytes) -> None:
    view = memoryview(data)
    for start in range(0, len(view), _CHUNK):
        handle.write(view[start : start + _CHUNK])


def _write_new(path: Path, data: bytes) -> None:
    """Write ``data`` to the new file ``path`` (never an existing one) and fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            _write_all(handle, data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _write_temp(final: Path, data: bytes) -> Path:
    """Write ``data`` to a new hidden file beside ``final`` and fsync it; return its path."""
    temp = final.with_name(f".{final.name}.{secrets.token_hex(6)}.tmp")
    _write_new(temp, data)
    return temp


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(files: Mapping[Path, bytes]) -> None:
    """Write every file atomically: all temporaries first, then rename them in order."""
    temps: list[tuple[Path, Path]] = []
    try:
        for final, data in files.items():
            temps.append((_write_temp(final, data), final))
        for temp, final in temps:
            os.replace(temp, final)
    finally:
        for temp, _ in temps:
            temp.unlink(missing_ok=True)
    for folder in {final.parent for final in files}:
        _fsync_dir(folder)


def state_tensors(model: nn.Module) -> dict[str, Tensor]:
    """The state dict as independent, contiguous CPU tensors (aliases become copies)."""
    return {
        key: value.detach().to("cpu", copy=True).contiguous()
        for key, value in model.state_dict().items()
    }


def _card_for(model: RobustClassifier, card: ModelCard | None, fields: dict[str, Any]) -> ModelCard:
    """``card`` (or a new one) with the model's own facts and ``fields`` filled in."""
    described = ModelCard.for_model(model, dataset=fields.pop("dataset", None))
    try:
        if card is None:
            return described.replace(**fields)
        own = {
            name: getattr(described, name)
            for name in ("arch", "arch_kwargs", "num_classes", "input_shape", "mean", "std")
        }
        if described.dataset is not None:
            own["dataset"] = described.dataset
        return card.replace(**own, **fields)
    except TypeError as err:
        raise ConfigError(
            f"unknown model card field in {sorted(fields)}: {err}",
            fix="see robustlens.models.ModelCard for the fields",
        ) from err


def _check_rebuildable(model: RobustClassifier) -> None:
    """Raise unless ``build_model(model.arch, **model.arch_kwargs)`` has the model's tensors."""
    try:
        with torch.device("meta"):  # shapes only: no memory, no initialisation
            rebuilt = build_model(model.arch, **model.arch_kwargs)
    except ConfigError as err:
        raise CheckpointError(
            f"cannot save {model.arch}: its arch_kwargs do not rebuild it ({err})",
            fix="build models with robustlens.models.build_model",
        ) from err
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}
    if ours != theirs:
        differ = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
        raise CheckpointError(
            f"cannot save {model.arch}: the model was changed after it was built, so "
            f"build_model(arch, **arch_kwargs) would not rebuild it (differs in "
            f"{list_some(differ)})",
            fix="change the model through build_model arguments (e.g. num_classes=) instead "
            "of replacing its layers, or save model.state_dict() yourself",
        )


def encode_checkpoint(
    model: RobustClassifier, card: ModelCard | None = None, **card_fields: Any
) -> tuple[bytes, bytes, ModelCard]:
    """The bytes of ``model``'s weights file and of its card, and the card: what
    :func:`save_checkpoint` writes (see there for ``card`` and ``card_fields``)."""
    if not model.arch or model.arch not in ARCHITECTURES or not model.arch_kwargs:
        raise CheckpointError(
            f"cannot save a {type(model).__name__} with arch {model.arch!r} as a checkpoint: "
            "load_checkpoint rebuilds models with build_model, which does not know it",
            fix="save model.state_dict() with safetensors.torch.save_file and rebuild the model "
            "the way you built it, or build it with robustlens.models.build_model",
        )
    _check_rebuildable(model)
    written = _card_for(model, card, dict(card_fields))
    data = safetensors.torch.save(state_tensors(model), metadata={"arch": model.arch})
    written = written.replace(weights_sha256=hashlib.sha256(data).hexdigest())
    return data, written.to_json().encode("utf-8"), written


def save_checkpoint(
    model: RobustClassifier, path: str | Path, card: ModelCard | None = None, **card_fields: Any
) -> ModelCard:
    """Save ``model`` as ``<stem>.safetensors`` + ``<stem>.json`` and return the card written.

    ``path`` is the stem or either file name. The card is ``card`` (or a new one) updated with
    the model's architecture, shapes and normalisation and with ``card_fields`` (dataset,
    recipe, metrics, seed, source, notes, ...); its ``weights_sha256`` is the hash of the
    weights file's bytes.
    """
    data, text, written = encode_checkpoint(model, card, **card_fields)
    weights_path, card_path = checkpoint_paths(path)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write({weights_path: data, card_path: text})
    logger.info("saved %s (%s) to %s", model.arch, written.weights_sha256[:12], weights_path)
    return written


# ------------------------------------------------------------- weights and card as one unit


def unit_folders(path: str | Path) -> tuple[Path, Path]:
    """(staging, committed): the hidden folders beside ``path``'s pair that
    :func:`save_checkpoint_unit` writes the pair into (``.<stem>.staging``) and renames to
    once both files are complete (``.<stem>.commit``)."""
    weights_path, _ = checkpoint_paths(path)
    stem = weights_path.name[: -len(WEIGHTS_SUFFIX)]
    return (
        weights_path.with_name(f".{stem}.staging"),
        weights_path.with_name(f".{stem}.commit"),
    )


def _remove_unit_folder(folder: Path, names: tuple[str, ...]) -> None:
    """Remove ``folder``, which must hold nothing but (some of) ``names``."""
    for name in names:
        (folder / name).unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError as err:
        raise CheckpointError(
            f"{folder} holds files that save_checkpoint_unit did not write ({err})",
            fix=f"move your own files out of {folder}; it is robustlens's staging folder",
        ) from err


def finish_checkpoint_unit(path: str | Path) -> str | None:
    """Complete or discard a :func:`save_checkpoint_unit` that a kill interrupted.

    A committed pair (both files complete) is moved into place: "finished". A pair still
    being staged is half-written and is discarded: "discarded". Returns None when there was
    nothing to do. Only the hidden unit folders and the pair's own two files are touched.
    """
    weights_path, card_path = checkpoint_paths(path)
    staging, committed = unit_folders(path)
    names = (weights_path.name, card_path.name)
    outcome = None
    if committed.is_dir():
        # Card first, weights last: a weights file in place always has its card beside it.
        for name in (card_path.name, weights_path.name):
            if (committed / name).exists():
                os.replace(committed / name, weights_path.parent / name)
        _remove_unit_folder(committed, names)
        _fsync_dir(weights_path.parent)
        outcome = "finished"
        logger.info("finished the interrupted save of %s", weights_path)
    if staging.is_dir():
        _remove_unit_folder(staging, names)
        outcome = outcome or "discarded"
        logger.info("discarded the half-written save of %s", weights_path)
    return outcome


def save_checkpoint_unit(
    model: RobustClassifier,
    path: str | Path,
    card: ModelCard | None = None,
    *,
    at: Callable[[str], None] | None = None,
    **card_fields: Any,
) -> ModelCard:
    """:func:`save_checkpoint`, with weights and card saved as one unit that survives a kill.

    Both files are written (and fsynced) into ``.<stem>.staging`` beside ``path``, which is
    then renamed once to ``.<stem>.commit``: that rename is the commit. The files are then
    moved into place. After a kill, :func:`finish_checkpoint_unit` moves a committed pair
    into place and discards a staged one, so the pair in place is always complete. ``at`` is
    called with "weights-staged", "pair-committed" and "card-in-place" as those points pass
    (a test hook).
    """
    data, text, written = encode_checkpoint(model, card, **card_fields)
    weights_path, card_path = checkpoint_paths(path)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    finish_checkpoint_unit(path)
    staging, committed = unit_folders(path)
    staging.mkdir()
    at = at or (lambda phase: None)
    _write_new(staging / weights_path.name, data)
    at("weights-staged")
    _write_new(staging / card_path.name, text)
    _fsync_dir(staging)
    os.rename(staging, committed)
    _fsync_dir(weights_path.parent)
    at("pair-committed")
    os.replace(committed / card_path.name, card_path)
    at("card-in-place")
    os.replace(committed / weights_path.name, weights_path)
    committed.rmdir()
    _fsync_dir(weights_path.parent)
    logger.info("saved %s (%s) to %s", model.arch, written.weights_sha256[:12], weights_path)
    return written


# ------------------------------------------------------------------------------ loading


def load_state_strict(model: nn.Module, state: Mapping[str, Tensor], *, origin: str) -> None:
    """Load ``state`` into ``model``; any missing, unexpected or misshapen key raises."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshapen = [
        f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}"
        for k in expected
        if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing keys {list_some(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {list_some(unexpected)}")
    if misshapen:
        problems.append(f"shape mismatches (file vs model) {list_some(misshapen)}")
    if problems:
        name = getattr(model, "arch", "") or type(model).__name__
        raise CheckpointError(
            f"the weights in {origin} do not fit {name} {getattr(model, 'input_shape', '')}: "
            + "; ".join(problems),
            fix="check the architecture and its arguments (depth, width, num_classes, "
            "in_channels) against the ones the weights were trained with",
        )
    model.load_state_dict(dict(state), strict=True)


def check_finite_weights(state: Mapping[str, Tensor], *, origin: str) -> None:
    """Raise a CheckpointError naming the first floating-point tensor of ``state`` that holds
    a NaN or an infinite value (such a model's every output would be meaningless)."""
    for name, tensor in state.items():
        if not torch.is_tensor(tensor) or not torch.is_floating_point(tensor):
            continue
        finite = torch.isfinite(tensor)
        if not bool(finite.all()):
            bad = int((~finite).sum())
            raise CheckpointError(
                f"the weights in {origin} are not finite: tensor {name!r} holds {bad} NaN or "
                f"infinite value(s) of {tensor.numel()}",
                fix="the run that saved them diverged; use an earlier checkpoint or train again "
                "(e.g. with a lower learning rate)",
            )


def load_checkpoint(
    path: str | Path, *, map_location: str | torch.device = "cpu"
) -> tuple[RobustClassifier, ModelCard]:
    """Load a checkpoint written by :func:`save_checkpoint`; returns (model in eval mode, card).

    ``path`` is the .safetensors file, the .json card or their common stem. The weights'
    sha256 is checked against the card before they are parsed.
    """
    weights_path, card_path = checkpoint_paths(path)
    if not card_path.is_file():
        raise CheckpointError(
            f"no model card for {weights_path}: expected {card_path} beside it",
            fix="keep the .json card save_checkpoint wrote next to the weights; for weights "
            "from elsewhere use robustlens.models.load_foreign_weights",
        )
    if not weights_path.is_file():
        raise CheckpointError(
            f"weights file {weights_path} is missing (model card {card_path} refers to it)",
            fix="put the .safetensors file beside its card, with the same name",
        )
    card = ModelCard.read(card_path)
    if card.weights_sha256 is None:
        raise CheckpointError(
            f"model card {card_path} records no weights_sha256",
            fix="re-save the checkpoint with robustlens.models.save_checkpoint",
        )
    data = weights_path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != card.weights_sha256:
        raise CheckpointError(
            f"{weights_path} is corrupt or was changed after saving: its sha256 is {actual} "
            f"but its card {card_path} records {card.weights_sha256}",
            fix="restore the file (re-download or copy it again); if you changed the weights on "
            "purpose, save them with save_checkpoint",
        )
    try:
        state = safetensors.torch.load(data)
    except Exception as err:  # safetensors raises its own error types for damaged headers
        raise CheckpointError(
            f"{weights_path} is not a readable safetensors file ({err})",
            fix="restore the file or re-save the checkpoint",
        ) from err
    try:
        model = build_model(card.arch, **card.arch_kwargs)
    except ConfigError as err:
        raise CheckpointError(
            f"model card {card_path} describes a model this robustlens cannot build: {err}",
            fix="use the robustlens version that wrote it (see the card's versions)",
        ) from err
    if model.num_classes != card.num_classes or model.input_shape != card.input_shape:
        raise CheckpointError(
            f"model card {card_path} is inconsistent: arch_kwargs build a model with "
            f"{model.num_classes} classes and input {model.input_shape}, the card says "
            f"{card.num_classes} and {card.input_shape}",
            fix="repair the card or re-save the checkpoint",
        )
    check_finite_weights(state, origin=str(weights_path))
    load_state_strict(model, state, origin=str(weights_path))
    model.to(map_location)
    model.eval()
    return model, card


def model_digest(model: nn.Module) -> str:
    """sha256 over the state dict (names, dtypes, shapes, values) in sorted key order.

    Independent of device and of how the model was obtained, so it is stable across
    save/load; useful as a cache key.
    """
    digest = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        tensor = value.detach().to("cpu").contiguous()
        digest.update(f"{key}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
