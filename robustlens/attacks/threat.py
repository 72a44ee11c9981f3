"""Threat models: the ε-balls of L∞, L2 and L1 perturbations inside the [0, 1] image box.

A threat model is a value (``Linf(0.1)``); it knows how to start inside its ball, how to take
a steepest-ascent step of a given length, and how to project back. Attacks combine these with
an optimiser and never special-case the norm themselves.
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch

from robustlens.errors import ConfigError


def _flat(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1)


def _per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape a per-sample vector so it broadcasts against a batch shaped like ``like``."""
    return values.reshape((-1,) + (1,) * (like.ndim - 1))


def clip_to_box(x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """The part of ``delta`` that keeps ``x + delta`` inside [0, 1] (coordinates move toward 0)."""
    return (x + delta).clamp_(0.0, 1.0) - x


@dataclass(frozen=True)
class ThreatModel(ABC):
    """An ε-ball in one norm. ``eps`` is in pixel units of [0, 1] images."""

    eps: float

    norm: ClassVar[str] = ""  # "linf", "l2" or "l1" in the subclasses

    def __post_init__(self) -> None:
        ok = isinstance(self.eps, numbers.Real) and not isinstance(self.eps, bool)
        if not ok or not math.isfinite(self.eps) or self.eps < 0:
            raise ConfigError(
                f"{type(self).__name__} budget must be a finite number ≥ 0, got {self.eps!r}"
            )

    @abstractmethod
    def norms(self, delta: torch.Tensor) -> torch.Tensor:
        """Per-sample norm of a batch of perturbations."""

    @abstractmethod
    def random_init(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """A perturbation drawn uniformly from the ball, clipped so ``x + δ`` is in the box."""

    @abstractmethod
    def step(self, grad: torch.Tensor, step_size: float, x_adv: torch.Tensor) -> torch.Tensor:
        """The steepest-ascent step of length ``step_size`` (in this norm) along ``grad``."""

    @abstractmethod
    def project(self, delta: torch.Tensor) -> torch.Tensor:
        """The nearest point of the ball (Euclidean projection onto the ε-ball of this norm)."""

    def contains(self, delta: torch.Tensor, tol: float = 1e-5) -> torch.Tensor:
        """Per-sample test ‖δ‖ ≤ ε (with a relative tolerance for float rounding)."""
        return self.norms(delta) <= self.eps * (1 + tol) + tol

    def with_eps(self, eps: float) -> ThreatModel:
        return type(self)(eps)

    def describe(self) -> dict[str, float | str]:
        return {"norm": self.norm, "eps": float(self.eps)}

    def __str__(self) -> str:
        return f"{self.norm.upper()}(ε={self.eps:g})"


@dataclass(frozen=True)
class Linf(ThreatModel):
    """‖δ‖∞ ≤ ε. Step: ε-scaled sign of the gradient (FGSM / Madry PGD)."""

    norm: ClassVar[str] = "linf"

    def norms(self, delta: torch.Tensor) -> torch.Tensor:
        return _flat(delta).abs().amax(dim=1)

    def random_init(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        u = torch.rand(x.shape, generator=generator, device="cpu", dtype=x.dtype).to(x.device)
        return clip_to_box(x, (2 * u - 1) * self.eps)

    def step(self, grad: torch.Tensor, step_size: float, x_adv: torch.Tensor) -> torch.Tensor:
        return grad.sign() * step_size

    def project(self, delta: torch.Tensor) -> torch.Tensor:
        return delta.clamp(-self.eps, self.eps)


@dataclass(frozen=True)
class L2(ThreatModel):
    """‖δ‖₂ ≤ ε. Step: the normalised gradient."""

    norm: ClassVar[str] = "l2"

    def norms(self, delta: torch.Tensor) -> torch.Tensor:
        return _flat(delta).norm(p=2, dim=1)

    def random_init(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Uniform in the ball, not on its sphere: direction ~ N(0, I), radius ε·U^(1/d)."""
        n = x.shape[0]
        d = x[0].numel()
        g = torch.randn(x.shape, generator=generator, device="cpu", dtype=x.dtype)
        u = torch.rand(n, generator=generator, device="cpu", dtype=x.dtype)
        direction = g / _per_sample(_flat(g).norm(dim=1).clamp_min(1e-12), g)
        radius = self.eps * u.pow(1.0 / d)
        return clip_to_box(x, (direction * _per_sample(radius, g)).to(x.device))

    def step(self, grad: torch.Tensor, step_size: float, x_adv: torch.Tensor) -> torch.Tensor:
        norm = _flat(grad).norm(dim=1).clamp_min(1e-12)
        return grad * _per_sample(step_size / norm, grad)

    def project(self, delta: torch.Tensor) -> torch.Tensor:
        norm = self.norms(delta)
        factor = torch.where(norm > self.eps, self.eps / norm.clamp_min(1e-12), 1.0)
        return delta * _per_sample(factor, delta)


def project_l1_ball(v: torch.Tensor, eps: float) -> torch.Tensor:
    """Euclidean projection of each row of ``v`` onto {w : ‖w‖₁ ≤ eps}.

    Sort-based algorithm of Duchi et al. (2008), "Efficient projections onto the l1-ball",
    Fig. 1: with u = |v| sorted descending, ρ = max{j : u_j − (Σ_{i≤j} u_i − ε)/j > 0} and
    θ = (Σ_{i≤ρ} u_i − ε)/ρ, the projection is sign(v)·max(|v| − θ, 0). Rows already inside
    the ball are returned unchanged.
    """
    shape = v.shape
    flat = _flat(v)
    a = flat.abs()
    inside = a.sum(dim=1) <= eps
    if bool(inside.all()):
        return v.clone()
    if eps == 0:
        return torch.zeros_like(v)
    u = torch.sort(a, dim=1, descending=True).values
    css = u.cumsum(dim=1)
    j = torch.arange(1, u.shape[1] + 1, device=v.device, dtype=u.dtype)
    positive = (u - (css - eps) / j) > 0
    # ρ is the last index where the condition holds (it holds on a prefix).
    rho = positive.to(torch.int64).sum(dim=1).clamp_min(1)
    theta = (css.gather(1, (rho - 1).unsqueeze(1)).squeeze(1) - eps) / rho.to(u.dtype)
    theta = torch.where(inside, torch.zeros_like(theta), theta.clamp_min(0))
    w = flat.sign() * (a - theta.unsqueeze(1)).clamp_min(0)
    return w.reshape(shape)


@dataclass(frozen=True)
class L1(ThreatModel):
    """‖δ‖₁ ≤ ε. Step: sparse — the top-k gradient coordinates (Tramèr & Boneh 2019, SLIDE).

    ``sparsity`` is the gradient quantile above which coordinates move (0.99 moves the top 1 %);
    coordinates already at a box bound and pushed outward are not chosen.
    """

    sparsity: float = 0.99
    norm: ClassVar[str] = "l1"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.sparsity < 1.0:
            raise ConfigError(f"L1 sparsity must be in [0, 1), got {self.sparsity!r}")

    def with_eps(self, eps: float) -> ThreatModel:
        return L1(eps, sparsity=self.sparsity)

    def norms(self, delta: torch.Tensor) -> torch.Tensor:
        return _flat(delta).abs().sum(dim=1)

    def random_init(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Uniform in the L1 ball: exponential spacings with one slack coordinate, random signs."""
        n = x.shape[0]
        d = x[0].numel()
        e = -torch.log(torch.rand(n, d + 1, generator=generator, dtype=x.dtype).clamp_min(1e-12))
        point = e[:, :d] / e.sum(dim=1, keepdim=True)
        signs = torch.randint(0, 2, (n, d), generator=generator).to(x.dtype) * 2 - 1
        delta = (point * signs * self.eps).reshape(x.shape).to(x.device)
        return clip_to_box(x, delta)

    def step(self, grad: torch.Tensor, step_size: float, x_adv: torch.Tensor) -> torch.Tensor:
        g = _flat(grad)
        xa = _flat(x_adv)
        # A coordinate at a bound cannot move further out: do not spend budget on it.
        blocked = ((xa <= 0) & (g < 0)) | ((xa >= 1) & (g > 0))
        g = g.masked_fill(blocked, 0.0)
        d = g.shape[1]
        k = max(1, round((1.0 - self.sparsity) * d))
        top = g.abs().topk(k, dim=1)
        chosen = torch.zeros_like(g).scatter_(1, top.indices, 1.0) * (top.values[:, -1:] > 0)
        count = chosen.sum(dim=1, keepdim=True).clamp_min(1.0)
        direction = g.sign() * chosen / count
        return (direction * step_size).reshape(grad.shape)

    def project(self, delta: torch.Tensor) -> torch.Tensor:
        return project_l1_ball(delta, self.eps)


NORMS: dict[str, type[ThreatModel]] = {"linf": Linf, "l2": L2, "l1": L1}


def threat_model(norm: str, eps: float) -> ThreatModel:
    """Build a threat model from its norm's name ("linf", "l2", "l1"; "inf"/"2"/"1" accepted)."""
    key = str(norm).strip().lower().replace("∞", "inf")
    key = {"inf": "linf", "l_inf": "linf", "2": "l2", "1": "l1"}.get(key, key)
    if key not in NORMS:
        raise ConfigError(f"unknown norm {norm!r}", fix="use one of: linf, l2, l1")
    return NORMS[key](float(eps))
