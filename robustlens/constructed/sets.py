"""Constructed data sets on disk: tensors in safetensors, a JSON card beside them.

A set is a folder ``<name>/`` with ``images.safetensors`` (``images`` float32 NCHW in [0, 1],
``labels`` int64, ``indices`` int64: positions in the source split, ``seeds`` int64, and
optional per-image measures as ``measure/<name>`` float32, e.g. the relative representation
distance each robustified image reached) and
``card.json``: the kind of set, the data set, split and image shape it was made from, the
source model's digest, the parameters, the statistics that check the construction (for
robustified sets the relative representation distance reached; the source model's accuracy),
and the sha256 of the tensor file. Loading verifies the hash and refuses a set made for
another data set or image shape. Files are written to a temporary name and renamed, so a
killed write never leaves a half set behind. Checks made later against other models (the
robust feature leakage of a targeted set) are added to the card by :func:`update_card`; they
never change the tensors.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from robustlens.data.imageset import ImageSet
from robustlens.data.info import DatasetInfo
from robustlens.errors import ConfigError, DataError

TENSORS = "images.safetensors"
CARD = "card.json"
FORMAT = 1


@dataclass
class ConstructedSet:
    """A constructed set in memory: the images with their (new) labels and its card."""

    images: torch.Tensor
    labels: torch.Tensor
    indices: torch.Tensor
    seeds: torch.Tensor
    card: dict[str, Any] = field(default_factory=dict)
    measures: dict[str, torch.Tensor] = field(default_factory=dict)
    """Per-image numbers recorded with the set (for robustified sets ``distance`` and
    ``start_distance``, the relative representation distances reached and started from)."""

    def as_imageset(self, info: DatasetInfo) -> ImageSet:
        """The set as an ImageSet of ``info``'s data set (split named after the set's kind)."""
        return ImageSet(self.images, self.labels, info, str(self.card.get("kind", "constructed")),
                        self.indices)  # fmt: skip


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_set(folder: str | Path, data: ConstructedSet) -> Path:
    """Write ``data`` to ``folder`` (created), atomically file by file; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n = data.images.shape[0]
    if not (data.labels.shape == data.indices.shape == data.seeds.shape == (n,)):
        raise ConfigError("a constructed set needs one label, index and seed per image")
    for name, values in data.measures.items():
        if values.shape != (n,) or not name.replace("_", "").isalnum():
            raise ConfigError(f"measure {name!r} of a constructed set needs one value per image")
    tensors = {
        "images": data.images.detach().float().cpu().contiguous(),
        "labels": data.labels.detach().long().cpu().contiguous(),
        "indices": data.indices.detach().long().cpu().contiguous(),
        "seeds": data.seeds.detach().long().cpu().contiguous(),
    }
    for name, values in data.measures.items():
        tensors[f"measure/{name}"] = values.detach().float().cpu().contiguous()
    tmp = folder / (TENSORS + ".tmp")
    save_file(tensors, str(tmp))
    card = dict(data.card)
    card.update(
        format=FORMAT,
        n=n,
        image_shape=list(data.images.shape[1:]),
        sha256=_sha256(tmp),
    )
    os.replace(tmp, folder / TENSORS)
    _write_card(folder, card)
    return folder


def load_set(
    folder: str | Path, *, dataset: str | None = None, shape: tuple[int, ...] | None = None
) -> ConstructedSet:
    """Read a set, checking its hash and, when given, that it was made for ``dataset`` and
    images of ``shape`` (C, H, W)."""
    folder = Path(folder)
    card_path, tensor_path = folder / CARD, folder / TENSORS
    if not card_path.is_file() or not tensor_path.is_file():
        raise DataError(
            f"{folder} is not a constructed set (needs {CARD} and {TENSORS})",
            fix="construct it again, or point at the folder that holds both files",
        )
    card = _read_card(card_path)
    _check_card(card, card_path)
    if _sha256(tensor_path) != card["sha256"]:
        raise DataError(
            f"{tensor_path} does not match its card (sha256 differs): the file is corrupt or "
            "was replaced",
            fix="construct the set again",
        )
    if dataset is not None and card.get("dataset") != dataset:
        raise ConfigError(
            f"constructed set {folder} was made from {card.get('dataset')!r}, not {dataset!r}",
            fix="use a set constructed from the study's data set",
        )
    if shape is not None and list(shape) != list(card.get("image_shape", [])):
        raise ConfigError(
            f"constructed set {folder} holds images of shape {card.get('image_shape')}, "
            f"the models take {list(shape)}",
            fix="construct the set at the models' resolution",
        )
    try:
        tensors = load_file(str(tensor_path))
    except (SafetensorError, OSError) as exc:
        raise DataError(f"cannot read {tensor_path}: {exc}", fix="construct the set again") from exc
    images = tensors.get("images")
    if images is None or images.ndim != 4 or list(images.shape[1:]) != card["image_shape"]:
        raise DataError(
            f"{tensor_path} does not hold the images its card describes", fix=EDITED_FIX
        )
    n = images.shape[0]
    for key in ("labels", "indices", "seeds"):
        if key not in tensors or tuple(tensors[key].shape) != (n,):
            raise DataError(
                f"{tensor_path} lacks one {key[:-1] if key != 'indices' else 'index'} per image",
                fix=EDITED_FIX,
            )
    if n != card["n"]:
        raise DataError(
            f"{card_path} says the set holds {card['n']} images, {tensor_path} holds {n}: the "
            "card was edited by hand",
            fix=EDITED_FIX,
        )
    measures = {
        k.removeprefix("measure/"): v for k, v in tensors.items() if k.startswith("measure/")
    }
    return ConstructedSet(
        images, tensors["labels"], tensors["indices"], tensors["seeds"], card, measures
    )


EDITED_FIX = "construct the set again (its files must not be edited by hand)"


def _check_card(card: Any, path: Path) -> None:
    """Raise a DataError when ``card`` lacks a field the format needs or has it mistyped."""
    if not isinstance(card, dict) or card.get("format") != FORMAT:
        raise DataError(
            f"{path} is not a robustlens constructed-set card (format {FORMAT})", fix=EDITED_FIX
        )
    shape = card.get("image_shape")
    problems = []
    if not isinstance(card.get("sha256"), str):
        problems.append("no sha256 of the tensor file")
    if not isinstance(card.get("n"), int) or isinstance(card.get("n"), bool) or card["n"] < 0:
        problems.append(f"n = {card.get('n')!r} is not a count of images")
    if not (
        isinstance(shape, list)
        and len(shape) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)
    ):
        problems.append(f"image_shape = {shape!r} is not [channels, height, width]")
    if problems:
        raise DataError(f"{path} is damaged: {'; '.join(problems)}", fix=EDITED_FIX)


def _write_card(folder: Path, card: dict[str, Any]) -> None:
    """Write ``card.json`` by a temporary file and a rename (never half written)."""
    tmp = folder / (CARD + ".tmp")
    tmp.write_text(json.dumps(card, indent=2, sort_keys=True))
    os.replace(tmp, folder / CARD)


def _read_card(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: JSON and UTF-8 errors
        raise DataError(f"{path} is not readable JSON: {exc}", fix=EDITED_FIX) from exc


def update_card(folder: str | Path, fields: dict[str, Any]) -> dict[str, Any]:
    """Add ``fields`` to a saved set's card (atomically; the tensors and their hash are left
    alone) and return the new card. The format's own keys cannot be overwritten."""
    folder = Path(folder)
    path = folder / CARD
    if not path.is_file():
        raise DataError(f"{folder} is not a constructed set (no {CARD})", fix="construct it first")
    reserved = sorted(set(fields) & {"format", "n", "image_shape", "sha256"})
    if reserved:
        raise ConfigError(f"the card's {reserved[0]!r} is set when the set is saved")
    card = _read_card(path)
    _check_card(card, path)
    card.update(fields)
    _write_card(folder, card)
    return card
