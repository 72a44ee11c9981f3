"""Robust accuracy of a model on a data set under an attack, and sweeps over ε.

In a process group of several ranks (torchrun; robustlens.distributed) an evaluation is
sharded: the images are cut into chunks, rank r attacks chunks r, r + N, …, and the per-image
results are gathered in order. Chunk k ≥ 1 draws its attack noise from a stream of its own
(derived from the attack's seed and k; chunk 0 from the attack's generator), so the gathered
result is exactly the one a single process computes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from robustlens import distributed
from robustlens.attacks.base import Attack, predict
from robustlens.data.imageset import ImageSet
from robustlens.errors import ConfigError
from robustlens.models.mode import eval_mode
from robustlens.progress import progress_bar
from robustlens.proportions import Proportion, proportion_of
from robustlens.runtime import derive_seed

MINIMAL_NORM_ATTACKS = ("cw-l2", "deepfool")
CHUNK_BATCHES = 8


@dataclass
class RobustnessResult:
    """Per-sample outcome of evaluating one model under one attack.

    A sample is robust when the model classifies it correctly and the attack does not succeed
    (for minimal-norm attacks: finds no perturbation within ``eps``).
    """

    clean_correct: torch.Tensor
    robust: torch.Tensor
    norms: torch.Tensor
    iterations: torch.Tensor
    attack: dict[str, Any]
    seconds: float
    eps: float | None = None
    broken_by: list[str] | None = None
    """Per sample, the attack of a composition (AutoAttack) that broke it first ("clean":
    misclassified to begin with; "": robust); None for single attacks."""

    @property
    def n(self) -> int:
        return int(self.clean_correct.numel())

    @property
    def clean_accuracy(self) -> float:
        return float(self.clean_correct.float().mean())

    @property
    def robust_accuracy(self) -> float:
        return float(self.robust.float().mean())

    @property
    def clean_proportion(self) -> Proportion:
        """Clean accuracy as k of n with its 95 % Wilson interval."""
        return proportion_of(self.clean_correct)

    @property
    def robust_proportion(self) -> Proportion:
        """Robust accuracy as k of n with its 95 % Wilson interval."""
        return proportion_of(self.robust)

    def as_metrics(self) -> list[dict[str, Any]]:
        """Model-card metrics: clean and robust accuracy, each with its 95 % Wilson interval
        (``ci_low``, ``ci_high``), and the exact attack behind the robust one."""
        return [
            {
                "name": "clean_accuracy",
                "value": self.clean_accuracy,
                "n": self.n,
                "attack": None,
                **self.clean_proportion.columns(),
            },
            {
                "name": "robust_accuracy",
                "value": self.robust_accuracy,
                "n": self.n,
                "attack": self.attack,
                **self.robust_proportion.columns(),
            },
        ]


def _as_chunks(
    data: ImageSet | tuple[torch.Tensor, torch.Tensor],
    size: int,
    device: torch.device,
    where: distributed.Rank,
) -> tuple[int, Iterable[tuple[int, torch.Tensor, torch.Tensor]]]:
    """(number of images, this rank's chunks of ``size`` images as (chunk index, x, y))."""
    images, labels = (data.images, data.labels) if isinstance(data, ImageSet) else data
    if images.shape[0] != labels.shape[0]:
        raise ConfigError(f"{images.shape[0]} images but {labels.shape[0]} labels")
    n = images.shape[0]
    return n, (
        (
            k,
            images[k * size : (k + 1) * size].to(device),
            labels[k * size : (k + 1) * size].to(device),
        )
        for k in where.share(-(-n // size))
    )


@contextmanager
def _chunk_stream(attack: Attack, chunk: int) -> Iterator[None]:
    """Chunk ``chunk``'s attack noise: the attack's own generator for chunk 0, a generator
    derived from its seed and ``chunk`` for the others (so any rank can attack any chunk)."""
    if chunk == 0:
        yield
        return
    own = attack.generator
    attack.generator = torch.Generator().manual_seed(derive_seed(attack.seed, f"chunk {chunk}"))
    try:
        yield
    finally:
        attack.generator = own


def _input_size(data: ImageSet | tuple[torch.Tensor, torch.Tensor]) -> int:
    images = data.images if isinstance(data, ImageSet) else data[0]
    return int(images[0].numel()) if images.shape[0] else 1


def within_budget(norms: torch.Tensor, eps: float, input_size: int) -> torch.Tensor:
    """Which minimal-norm perturbations fit the budget ``eps``, up to the rounding of their
    norm: a norm summed over ``input_size`` values in the norms' dtype is off by at most a few
    ulp × √input_size relative (4·eps_dtype·√d), so a perturbation found exactly at ε counts
    as within it on every CPU."""
    dtype = norms.dtype if norms.is_floating_point() else torch.float32
    slack = 4 * torch.finfo(dtype).eps * math.sqrt(max(input_size, 1))
    return norms <= eps * (1 + slack)


def _device_of(model: nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def robust_accuracy(
    model: nn.Module,
    data: ImageSet | tuple[torch.Tensor, torch.Tensor],
    attack: Attack,
    *,
    eps: float | None = None,
    batch_size: int = 256,
    progress: bool = False,
    sharded: bool | None = None,
) -> RobustnessResult:
    """Clean and robust accuracy of ``model`` on ``data`` under ``attack``.

    For minimal-norm attacks (C&W, DeepFool) pass ``eps``: a sample then counts as robust when
    the perturbation found is larger than ``eps`` (or none was found). The model is evaluated
    and attacked in eval mode (BatchNorm statistics untouched), as is the attack's own model when
    it is another one; their modes are restored afterwards.

    ``sharded``: split the images across the ranks of the process group (every rank must call
    this with the same arguments) and gather the per-image results; None (the default) does so
    whenever there is a process group of several ranks, False never.
    """
    name = attack.describe()["attack"]
    if name in MINIMAL_NORM_ATTACKS and eps is None:
        raise ConfigError(
            f"{name} finds minimal perturbations: give the budget eps to compare with"
        )
    device = _device_of(model)
    where = distributed.current() if sharded is not False else distributed.Rank()
    # Chunks of several batches: pooled attacks (PGD) keep their working batch full inside a
    # chunk while samples finish at different steps.
    n, chunks = _as_chunks(data, CHUNK_BATCHES * batch_size, device, where)
    done: dict[int, tuple[torch.Tensor, ...]] = {}
    start = time.perf_counter()
    size = CHUNK_BATCHES * batch_size
    mine = sum(min(size, n - k * size) for k in where.share(-(-n // size)))
    shown = progress and where.is_main  # rank 0's share of the images
    with (
        eval_mode(model, getattr(attack, "model", None)),
        progress_bar(shown, total=mine, description=f"{name} evaluation") as advance,
    ):
        for k, x, y in chunks:
            ok = predict(model, x, batch_size) == y
            with _chunk_stream(attack, k):
                result = attack.run(x, y, batch_size=batch_size)
            fooled = result.success
            if eps is not None and name in MINIMAL_NORM_ATTACKS:
                fooled = fooled & within_budget(result.norms, eps, x[0].numel())
            done[k] = (
                ok.cpu(),
                (ok & ~fooled).cpu(),
                result.norms.detach().cpu(),
                result.iterations.cpu(),
                list(getattr(result, "broken_by", [])),
            )
            advance(x.shape[0])
    parts = distributed.gather_by_index(done, where)
    seconds = time.perf_counter() - start
    desc = attack.describe()
    if eps is not None:
        desc = {**desc, "eps": float(eps)}
    columns = list(zip(*parts, strict=True))
    clean, robust, norms, iters = (torch.cat(column) for column in columns[:4])
    broken_by = [name for names in columns[4] for name in names] if columns else []
    return RobustnessResult(
        clean,
        robust,
        norms,
        iters,
        desc,
        seconds,
        eps,
        broken_by if len(broken_by) == n else None,
    )


@dataclass
class SweepResult:
    """Per-sample robustness at each ε: ``robust[i, j]`` for ε_i and sample j."""

    epsilons: list[float]
    clean_correct: torch.Tensor
    robust: torch.Tensor
    attacks: list[dict[str, Any]] = field(default_factory=list)

    def accuracies(self) -> list[float]:
        return [float(r.float().mean()) for r in self.robust]

    def to_frame(self):  # -> pandas.DataFrame
        """One row per ε: eps, robust accuracy with its 95 % Wilson interval (ci_low,
        ci_high), clean accuracy, n."""
        # heavy: pandas loads only when a table is asked for
        import pandas as pd

        robust = [proportion_of(r) for r in self.robust]
        return pd.DataFrame(
            {
                "eps": self.epsilons,
                "robust_accuracy": self.accuracies(),
                "ci_low": [p.low for p in robust],
                "ci_high": [p.high for p in robust],
                "clean_accuracy": float(self.clean_correct.float().mean()),
                "n": int(self.clean_correct.numel()),
            }
        )


def epsilon_sweep(
    model: nn.Module,
    data: ImageSet | tuple[torch.Tensor, torch.Tensor],
    attack: Attack | Callable[[float], Attack],
    epsilons: Sequence[float],
    *,
    batch_size: int = 256,
    progress: bool = False,
) -> SweepResult:
    """Robustness at several budgets.

    ``attack`` is either a factory ``eps -> Attack`` (PGD / FGSM: one run per ε), or a
    minimal-norm attack instance (C&W, DeepFool: one run, then thresholded at each ε).
    """
    eps_list = [float(e) for e in epsilons]
    if not eps_list:
        raise ConfigError("give at least one ε to sweep")
    if isinstance(attack, Attack):
        single = robust_accuracy(
            model, data, attack, eps=max(eps_list), batch_size=batch_size, progress=progress
        )
        fooled = ~single.robust & single.clean_correct
        d = _input_size(data)
        robust = torch.stack(
            [single.clean_correct & ~(fooled & within_budget(single.norms, e, d)) for e in eps_list]
        )
        return SweepResult(eps_list, single.clean_correct, robust, [attack.describe()])
    rows, attacks, clean = [], [], None
    for e in eps_list:
        one = robust_accuracy(model, data, attack(e), batch_size=batch_size, progress=progress)
        rows.append(one.robust)
        attacks.append(one.attack)
        clean = one.clean_correct
    return SweepResult(eps_list, clean, torch.stack(rows), attacks)
