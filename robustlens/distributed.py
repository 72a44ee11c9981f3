"""Data parallelism on torch.distributed: which process this is, its share of the work, and
putting the shares back together.

``torchrun --nproc_per_node N -m robustlens …`` starts N processes with ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK`` (and ``MASTER_ADDR``/``MASTER_PORT``) in their environment;
:func:`init_from_env` joins them into one process group (NCCL on GPUs, gloo on CPUs). Without
those variables, or with one process, everything here is the identity: one rank of one.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from robustlens.errors import ConfigError
from robustlens.runtime import derive_seed, resolve_device

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
"""What torchrun sets in each process it starts."""
TIMEOUT = datetime.timedelta(minutes=30)
"""How long a collective waits for the other ranks (torch's own default)."""


@dataclass(frozen=True)
class Rank:
    """This process's place in the process group: ``rank`` of ``world_size``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """True on the one process that writes files (rank 0)."""
        return self.rank == 0

    @property
    def sharded(self) -> bool:
        return self.world_size > 1

    def share(self, n: int) -> range:
        """The items ``0 … n-1`` this rank takes: every ``world_size``-th, from ``rank``."""
        return range(self.rank, n, self.world_size)

    def barrier(self) -> None:
        """Wait for every rank (nothing to wait for with one process)."""
        if self.sharded:
            dist.barrier()


def launched() -> bool:
    """True when torchrun (or another launcher) set this process's rank variables."""
    return all(os.environ.get(name) for name in ENV_VARS)


def current() -> Rank:
    """This process's rank in the initialised process group (rank 0 of 1 when there is none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return Rank()
    local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
    return Rank(dist.get_rank(), dist.get_world_size(), local)


def backend_for(device: torch.device) -> str:
    """NCCL for CUDA devices, gloo for the CPU."""
    return "nccl" if device.type == "cuda" else "gloo"


def init_from_env(device: str | torch.device | None = None) -> tuple[Rank, torch.device | None]:
    """Join the process group torchrun describes in the environment, once.

    Returns (this rank, the device it computes on): ``cuda:LOCAL_RANK`` when the run is on
    GPUs (one GPU per process), else the CPU. Outside torchrun: (rank 0 of 1, ``device``
    unchanged, None meaning "the default")."""
    if not launched():
        return Rank(), None if device is None else resolve_device(device)
    rank, world, local = (int(os.environ[name]) for name in ENV_VARS)
    chosen = resolve_device(device)
    if chosen.type == "cuda":
        if local >= torch.cuda.device_count():
            raise ConfigError(
                f"local rank {local} but only {torch.cuda.device_count()} CUDA device(s)",
                fix="start at most one process per GPU (torchrun --nproc_per_node)",
            )
        chosen = torch.device("cuda", local)
        torch.cuda.set_device(chosen)
    if not dist.is_initialized():
        dist.init_process_group(backend_for(chosen), rank=rank, world_size=world, timeout=TIMEOUT)
    return Rank(rank, world, local), chosen


@contextmanager
def process_group(
    device: str | torch.device | None = None,
) -> Iterator[tuple[Rank, torch.device | None]]:
    """:func:`init_from_env` for the length of a command; the group it joined is left at the
    end (outside torchrun: rank 0 of 1, nothing to join)."""
    joined = launched() and not dist.is_initialized()
    try:
        yield init_from_env(device)
    finally:
        if joined and dist.is_initialized():
            dist.destroy_process_group()


def rank_generator(seed: int, epoch: int, rank: int) -> torch.Generator:
    """The random stream of ``rank`` in ``epoch`` of a run seeded ``seed`` (augmentation and
    attack noise of that rank's share of the batches)."""
    return torch.Generator().manual_seed(derive_seed(seed, f"epoch {epoch}", f"rank {rank}"))


@contextmanager
def main_first(where: Rank) -> Iterator[None]:
    """Run the block on rank 0 first and on the other ranks after it: for file work (repairs,
    removals) that rank 0 does and the others then only find done."""
    if not where.is_main:
        where.barrier()
    yield
    if where.is_main:
        where.barrier()


def all_sum(values: Sequence[float], where: Rank) -> list[float]:
    """Each of ``values`` summed over the ranks (float64; unchanged with one rank)."""
    if not where.sharded:
        return list(values)
    device = torch.device("cuda", torch.cuda.current_device()) if _nccl() else None
    total = torch.tensor(list(values), dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return [float(v) for v in total.cpu()]


def gather_by_index(local: dict[int, Any], where: Rank) -> list[Any]:
    """The items every rank holds, keyed by their position in the unsharded work, in order of
    that position (``local`` itself, ordered, with one rank). Items are pickled: give CPU
    tensors."""
    if not where.sharded:
        return [local[k] for k in sorted(local)]
    parts: list[dict[int, Any] | None] = [None] * where.world_size
    dist.all_gather_object(parts, local)
    merged: dict[int, Any] = {}
    for part in parts:
        merged.update(part or {})
    return [merged[k] for k in sorted(merged)]


def wrap(model: nn.Module, device: torch.device, where: Rank) -> nn.Module:
    """``model`` in DistributedDataParallel when there are several ranks (else itself)."""
    if not where.sharded:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def broadcast_buffers(model: nn.Module, where: Rank) -> None:
    """Copy rank 0's buffers (e.g. BatchNorm statistics) of ``model`` to every rank."""
    if where.sharded:
        for buffer in model.buffers():
            dist.broadcast(buffer, 0)


def revert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """``module`` with each SyncBatchNorm replaced by a BatchNorm2d holding the same
    parameters and statistics (what :func:`torch.nn.SyncBatchNorm.convert_sync_batchnorm`
    did, undone: the model then runs outside a process group)."""
    if isinstance(module, nn.SyncBatchNorm):
        plain = nn.BatchNorm2d(
            module.num_features,
            module.eps,
            module.momentum,
            module.affine,
            module.track_running_stats,
        ).to(next(module.buffers(), torch.zeros(())).device)
        plain.load_state_dict(module.state_dict())
        plain.train(module.training)
        return plain
    for name, child in module.named_children():
        setattr(module, name, revert_sync_batchnorm(child))
    return module


def _nccl() -> bool:
    return dist.get_backend() == "nccl"
