"""Building constructed sets in resumable chunks.

Generation runs chunk by chunk; each finished chunk is saved (atomically) under
``<folder>/.parts/`` together with the parameters it was made with, so a killed run continues
with the first missing chunk and a run with other parameters starts over. When every chunk is
there the set is written (:func:`robustlens.constructed.sets.save_set`) and the parts removed.

The parameters always include the source model's digest (its own weights' sha256 unless the
caller gives one), so chunks made against one model are never reused for another. Seeds — the
seed image of each robustified image, the new label of each targeted example — are drawn for
the whole set once and sliced per chunk, so the set does not depend on the chunk size and a
chunked build equals :func:`robustlens.constructed.robustify` /
:func:`robustlens.constructed.targeted_examples` on the whole set with the same seed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from robustlens.attacks.evaluate import predict
from robustlens.constructed.inversion import invert, seed_assignment, seed_images
from robustlens.constructed.sets import ConstructedSet, save_set
from robustlens.constructed.targeted import attack_toward, new_labels
from robustlens.data.imageset import ImageSet
from robustlens.errors import ConfigError
from robustlens.models.checkpoint import model_digest as weights_digest

PARTS = ".parts"
SEEDING = "whole-set"
"""How seeds are drawn (in the resume key: chunks drawn per chunk by older versions are not
reused)."""


def _device(model: nn.Module) -> torch.device:
    """Where ``model`` runs: chunks are moved there (sets are kept on the CPU)."""
    return next(model.parameters(), torch.zeros(0)).device


def _key(params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]


def build_in_chunks(
    folder: str | Path,
    n: int,
    params: dict[str, Any],
    make_chunk: Callable[[int, int], dict[str, torch.Tensor]],
    chunk: int,
) -> dict[str, torch.Tensor]:
    """Tensors of all ``n`` items made by ``make_chunk(start, stop)``, chunk by chunk, each
    chunk saved under ``folder/.parts`` and reused by a later call with the same ``params``."""
    parts = Path(folder) / PARTS
    key = _key(params)
    stamp = parts / "params.json"
    if parts.exists() and (not stamp.is_file() or json.loads(stamp.read_text()).get("key") != key):
        shutil.rmtree(parts)  # made with other parameters: start over
    parts.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps({"key": key, "params": params}, sort_keys=True))
    pieces: list[dict[str, torch.Tensor]] = []
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        path = parts / f"{start:08d}-{stop:08d}.safetensors"
        if path.is_file():
            pieces.append(load_file(str(path)))
            continue
        tensors = {k: v.detach().cpu().contiguous() for k, v in make_chunk(start, stop).items()}
        tmp = path.with_suffix(".tmp")
        save_file(tensors, str(tmp))
        os.replace(tmp, path)
        pieces.append(tensors)
    return {k: torch.cat([p[k] for p in pieces]) for k in pieces[0]}


def build_robustified(
    folder: str | Path,
    model: nn.Module,
    data: ImageSet,
    *,
    model_digest: str | None = None,
    steps: int | None = None,
    step_size: float | None = None,
    seed_mode: str = "other-image",
    seed: int = 0,
    chunk: int = 500,
    batch_size: int = 250,
) -> ConstructedSet:
    """R_ε of ``data`` against ``model`` (Springer et al. §3.3), labelled with the original
    labels, written to ``folder`` with its checks on the card. ``model_digest`` defaults to
    the sha256 of ``model``'s weights."""
    assignment = seed_assignment(len(data), seed_mode, seed)
    params = {
        "kind": "robustified",
        "dataset": data.info.name,
        "split": data.split,
        "data": data.fingerprint(),
        "model": model_digest or weights_digest(model),
        "steps": steps,
        "step_size": step_size,
        "seed_mode": seed_mode,
        "seed": seed,
        "seeding": SEEDING,
        "chunk": chunk,
    }

    def make(start: int, stop: int) -> dict[str, torch.Tensor]:
        device = _device(model)
        part = invert(
            model,
            data.images[start:stop].to(device),
            data.labels[start:stop].to(device),
            seed_images(data.images, assignment, start, stop, seed).to(device),
            assignment[start:stop],
            steps=steps,
            step_size=step_size,
            seed=seed,
            batch_size=batch_size,
        )
        return {
            "images": part.images,
            "seeds": part.seeds,
            "start_distance": torch.from_numpy(part.start_distance),
            "distance": torch.from_numpy(part.distance),
        }

    made = build_in_chunks(folder, len(data), params, make, chunk)
    predicted = predict(model, made["images"], 500).cpu()
    accuracy = float((predicted == data.labels.cpu()).float().mean())
    distance = made["distance"].numpy()
    card = {
        **params,
        "statistics": {
            "relative_distance_mean": float(np.mean(distance)),
            "relative_distance_median": float(np.median(distance)),
            "relative_distance_quantiles": [
                float(q) for q in np.quantile(distance, [0.05, 0.25, 0.75, 0.95])
            ],
            "start_relative_distance_mean": float(made["start_distance"].mean()),
            "source_model_accuracy": accuracy,
        },
    }
    out = ConstructedSet(
        made["images"],
        data.labels.clone(),
        data.indices.clone(),
        made["seeds"],
        card,
        {"distance": made["distance"], "start_distance": made["start_distance"]},
    )
    return _finish(folder, out)


def build_targeted(
    folder: str | Path,
    model: nn.Module,
    data: ImageSet,
    mode: str,
    *,
    model_digest: str | None = None,
    eps: float | None = None,
    steps: int = 200,
    step_size: float | None = None,
    seed: int = 0,
    chunk: int = 500,
    batch_size: int = 250,
) -> ConstructedSet:
    """A zero-robust (``zero``, ``zero-all``) or negative-robust (``negative``) training set
    made from ``data`` against a standard ``model``, written to ``folder``; the card records
    the share of attacks that reached their target. ε, steps and step size default to Table 4's
    0.5, 200 and 0.1 at every resolution (see :mod:`robustlens.constructed.targeted`);
    ``model_digest`` defaults to the sha256 of ``model``'s weights. Chunks are of ``chunk``
    examples (for ``zero-all``, K per image)."""
    if data.info.num_classes < 2:
        raise ConfigError("targeted sets need at least two classes")
    all_source, all_targets = new_labels(
        data.labels.cpu(), mode, data.info.num_classes, torch.Generator().manual_seed(seed)
    )
    params = {
        "kind": {
            "zero": "zero-robust",
            "zero-all": "zero-robust",
            "negative": "negative-robust",
        }.get(mode, mode),
        "mode": mode,
        "dataset": data.info.name,
        "split": data.split,
        "data": data.fingerprint(),
        "model": model_digest or weights_digest(model),
        "eps": eps,
        "steps": steps,
        "step_size": step_size,
        "seed": seed,
        "seeding": SEEDING,
        "chunk": chunk,
    }

    def make(start: int, stop: int) -> dict[str, torch.Tensor]:
        device = _device(model)
        source = all_source[start:stop]
        images, success = attack_toward(
            model,
            data.images[source].to(device),
            data.labels[source].to(device),
            all_targets[start:stop].to(device),
            eps=eps,
            steps=steps,
            step_size=step_size,
            seed=seed,
            batch_size=batch_size,
        )
        return {
            "images": images,
            "labels": all_targets[start:stop],
            "source": source,
            "success": success.to(torch.uint8),
        }

    made = build_in_chunks(folder, len(all_source), params, make, chunk)
    success = made["success"].bool()
    card = {
        **params,
        "statistics": {
            "attack_success_rate": float(success.float().mean()),
            "examples": int(success.numel()),
            "label_distribution": torch.bincount(
                made["labels"], minlength=data.info.num_classes
            ).tolist(),
        },
    }
    source = made["source"]
    out = ConstructedSet(made["images"], made["labels"], data.indices[source].clone(), source, card)
    return _finish(folder, out)


def _finish(folder: str | Path, out: ConstructedSet) -> ConstructedSet:
    """Write the whole set, then drop the chunks it was assembled from."""
    save_set(folder, out)
    shutil.rmtree(Path(folder) / PARTS, ignore_errors=True)
    return out
