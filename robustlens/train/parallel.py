"""How one training run uses its processes and devices: data-parallel shards of each batch,
per-rank random streams, SyncBatchNorm, bf16 autocast and the channels_last layout.

With one process a run is exactly what it always was: one generator seeded by (seed, epoch)
shuffles, augments and draws attack noise. With N processes (torchrun; see
:mod:`robustlens.distributed`) every rank draws the same permutation from (seed, epoch), takes
every N-th image of each global batch of ``batch_size`` images (``DistributedSampler``'s
sharding, done on the batch so that the union of the ranks' batch i is the unsharded run's
batch i), augments and attacks its own share with a stream derived from (seed, epoch, rank),
and weights its loss by its share of the global batch, so that DistributedDataParallel's
average of the ranks' gradients is the gradient of the global batch's mean loss.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from robustlens import distributed
from robustlens.data.imageset import ImageSet
from robustlens.errors import ConfigError
from robustlens.train.recipe import Recipe

log = logging.getLogger(__name__)


def _autocast_forward(model: nn.Module, device: torch.device) -> None:
    """Make ``model``'s forward pass (and only it) run under bf16 autocast, returning float32
    logits: the attacks' and the training loss's forward passes then compute in bf16 while
    losses, backward passes and optimiser steps stay outside autocast, as PyTorch advises (with
    the whole epoch under autocast the loop stopped learning on the H200: benchmarks/RESULTS.md,
    "A bf16 finding")."""
    plain = model.forward

    def forward(*args: Any, **kwargs: Any) -> torch.Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            out = plain(*args, **kwargs)
        return out.float()

    model.forward = forward


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch``'s permutation (and, with one process, of all its noise)."""
    return seed * 1_000_003 + epoch


@dataclass(frozen=True)
class Runtime:
    """The processes and numerics of one run, as they take effect on its device."""

    where: distributed.Rank
    device: torch.device
    precision: str
    channels_last: bool
    sync_batchnorm: bool

    @classmethod
    def for_run(
        cls, recipe: Recipe, device: torch.device, where: distributed.Rank | None = None
    ) -> Runtime:
        """The runtime ``recipe`` asks for on ``device`` as rank ``where`` (default: this
        process's): bf16 is refused off CUDA (it would change the numbers the card promises);
        channels_last is ignored off CUDA, with a warning (a memory layout only, for the GPU's
        tensor cores); SyncBatchNorm takes effect only with several processes, and is refused
        for several processes on the CPU (DistributedDataParallel supports it on GPUs only)."""
        where = distributed.current() if where is None else where
        if recipe.precision == "bf16" and device.type != "cuda":
            raise ConfigError(
                f"precision 'bf16' (bf16 autocast) needs a CUDA device; this run is on {device}",
                fix="set precision = 'fp32' for a CPU run, or run on a GPU",
            )
        if recipe.precision == "bf16" and not torch.cuda.is_bf16_supported():
            raise ConfigError(
                f"precision 'bf16' asked for, but {torch.cuda.get_device_name(device)} has no "
                "bf16 support",
                fix="set precision = 'fp32'",
            )
        if recipe.sync_batchnorm and where.sharded and device.type != "cuda":
            raise ConfigError(
                f"sync_batchnorm with {where.world_size} processes on {device}: PyTorch's "
                "SyncBatchNorm runs on GPUs only",
                fix="set sync_batchnorm = false for CPU processes, or run on GPUs",
            )
        channels_last = recipe.channels_last and device.type == "cuda"
        if recipe.channels_last and not channels_last:
            log.warning("channels_last ignored on %s: it only speeds up CUDA kernels", device)
        return cls(where, device, recipe.precision, channels_last, recipe.sync_batchnorm)

    def prepare(self, model: nn.Module) -> tuple[nn.Module, nn.Module]:
        """(the model to train, the module to call for the training loss): with several ranks
        the second is the first in DistributedDataParallel, with SyncBatchNorm if asked."""
        model = model.to(self.device)
        if self.sync_batchnorm and self.where.sharded:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if self.precision == "bf16":
            _autocast_forward(model, self.device)
        return model, distributed.wrap(model, self.device, self.where)

    def finish(self, model: nn.Module) -> nn.Module:
        """The trained model made plain again: its own forward, outside any process group."""
        if "forward" in vars(model):
            del model.forward  # back to the class's forward
        if self.sync_batchnorm and self.where.sharded:
            return distributed.revert_sync_batchnorm(model)
        return model

    def batches(
        self, train_set: ImageSet, recipe: Recipe, epoch: int
    ) -> tuple[torch.Generator, Iterator[tuple[torch.Tensor, torch.Tensor, int]]]:
        """(this rank's generator for the epoch, its batches as ``(x, y, global batch size)``);
        with one process, those of ``ImageSet.batches`` shuffled by one generator."""
        gen = torch.Generator().manual_seed(epoch_seed(recipe.seed, epoch))
        if not self.where.sharded:
            batches = train_set.batches(
                recipe.batch_size, shuffle=True, generator=gen, device=self.device
            )
            return gen, ((x, y, y.shape[0]) for x, y in batches)
        order = torch.randperm(len(train_set), generator=gen)
        mine = distributed.rank_generator(recipe.seed, epoch, self.where.rank)
        return mine, self._shares(train_set, order, recipe.batch_size)

    def _shares(
        self, train_set: ImageSet, order: torch.Tensor, batch_size: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
        for start in range(0, order.numel(), batch_size):
            batch = order[start : start + batch_size]
            idx = batch[self.where.rank :: self.where.world_size]
            x = train_set.images[idx].to(self.device, non_blocking=True)
            y = train_set.labels[idx].to(self.device, non_blocking=True)
            yield x, y, batch.numel()

    def sync_buffers(self, model: nn.Module) -> None:
        """Give every rank rank 0's buffers (BatchNorm statistics): after each step, so that
        every rank attacks the same model, and the ranks hold the model that rank 0 saves
        (DistributedDataParallel broadcasts them only at its own forward passes, after which
        each rank's share moves its copy)."""
        distributed.broadcast_buffers(model, self.where)

    def layout(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` in the model's memory layout."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def weighted(self, loss: torch.Tensor, logits: torch.Tensor, local: int, total: int):
        """The loss to back-propagate: the mean over this rank's ``local`` images scaled by
        ``local · world_size / total``, so that DDP's mean over ranks is the mean over the
        global batch of ``total`` images (a rank with no image adds a zero that still takes
        part in the gradient all-reduce)."""
        if not self.where.sharded:
            return loss
        if local == 0:
            return logits.sum() * 0.0
        return loss * (local * self.where.world_size / total)

    def card(self) -> dict[str, Any]:
        """What the model card records of how the run was computed."""
        return {
            "device": self.device.type,
            "world_size": self.where.world_size,
            "backend": distributed.backend_for(self.device) if self.where.sharded else None,
            "precision": self.precision,
            "channels_last": self.channels_last,
            "sync_batchnorm": self.sync_batchnorm and self.where.sharded,
        }
