"""APGD in L1 (Croce & Hein 2021, "Mind the box: l1-APGD for sparse adversarial attacks on
image classifiers", ICML): the pieces :class:`robustlens.attacks.apgd.APGD` uses when its
threat model is ``L1(eps)``.

- S is the L1 ball of radius ε around x0 intersected with the [0, 1] box, and every iterate is
  its exact Euclidean projection (:func:`project_l1_box`), not ball-then-clip: clipping after
  an L1 projection wastes budget on coordinates the box cuts off.
- The step is sparse and adaptive: the coordinates whose |gradient| is in the top fraction
  ``topk`` move, each by η / (their count) in the direction of the gradient's sign (so the step
  has L1 length η); no momentum. The initial η is ε (α = 1) and ``topk`` starts at 0.2.
- Every max(⌊0.04 N⌋, 1) iterations the sparsity of the best point found so far (its number of
  non-zero coordinates, ‖x_best − x0‖₀) is compared with the last check's: when it fell below
  0.95 of it, η returns to ε and the iterate restarts from the best point (with its gradient);
  otherwise η is divided by 1.5, never below ε / 10. Either way ``topk`` becomes
  ‖x_best − x0‖₀ / (1.5 d).
- The start is a Gaussian draw projected onto S.
- ``large_eps`` (what AutoAttack's L1 version uses): the N iterations are split into stages at
  3ε, 2ε and ε with ⌈0.3 N⌉, ⌈0.3 N⌉ and the remaining iterations (fewer, down to none,
  when N < 4 leaves no room); each stage starts from the
  previous stage's highest-loss point projected onto its smaller ball, with η = its radius and
  ``topk`` = ‖δ‖₀ / (1.5 d) of that start. Only the last stage (inside the ε-ball) can fool.

These constants are the authors' released code's (github.com/fra31/auto-attack, read for the
facts): there the L1 step has no momentum and the check interval does not shrink.
"""

from __future__ import annotations

import math

import torch

from robustlens.attacks.threat import L1, _flat, _per_sample

TOPK_START = 0.2
CHECK_FRACTION = 0.04
SPARSER = 0.95
STEP_DECAY = 1.5
MIN_STEP_FRACTION = 10.0
TOPK_MARGIN = 1.5
LARGE_EPS = (3.0, 2.0, 1.0)
LARGE_EPS_SPLIT = 0.3


def project_l1_box(
    v: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, radius: torch.Tensor | float
) -> torch.Tensor:
    """Euclidean projection of each row of ``v`` onto {δ : ‖δ‖₁ ≤ r, lo ≤ δ ≤ hi} (lo ≤ 0 ≤ hi).

    The KKT conditions give δ_i(θ) = sign(v_i)·clamp(|v_i| − θ, 0, b_i) with b_i the bound in
    v_i's direction and θ ≥ 0 the smallest value with ‖δ(θ)‖₁ ≤ r. f(θ) = ‖δ(θ)‖₁ is piecewise
    linear and nonincreasing, with breakpoints |v_i| − b_i (coordinate i leaves its bound) and
    |v_i| (it reaches 0); θ is found on the segment where f crosses r, in float64. ``radius``
    is a float or one value per row.
    """
    shape, dtype = v.shape, v.dtype
    v, lo, hi = _flat(v), _flat(lo), _flat(hi)
    n, d = v.shape
    r = torch.as_tensor(radius, dtype=torch.float64, device=v.device).expand(n)
    a = v.abs()
    b = torch.where(v > 0, hi, -lo).clamp_min(0.0)
    out = torch.minimum(a, b)
    over = out.double().sum(dim=1) > r
    if bool(over.any()):
        ao, bo, ro = a[over].double(), b[over].double(), r[over].unsqueeze(1)
        points = torch.cat([ao - bo, ao], dim=1)
        change = torch.cat([torch.ones_like(ao), -torch.ones_like(ao)], dim=1)
        points, order = points.sort(dim=1)
        slope = change.gather(1, order).cumsum(dim=1)  # coordinates moving right after a point
        fall = (points.diff(dim=1) * slope[:, :-1]).cumsum(dim=1)
        f = bo.sum(dim=1, keepdim=True) - torch.cat([torch.zeros_like(ro), fall], dim=1)
        j = (f > ro).sum(dim=1, keepdim=True).clamp(1, 2 * d - 1) - 1
        theta = points.gather(1, j) + (f.gather(1, j) - ro) / slope.gather(1, j).clamp_min(1)
        kept = (ao - theta.clamp_min(0.0)).clamp_min(0.0).minimum(bo)
        out[over] = kept.to(dtype)
    # rounding in the working dtype can leave ‖δ‖₁ a hair above r: scale those rows down
    size = out.sum(dim=1)
    ratio = torch.where(size > r.to(dtype), r.to(dtype) / size.clamp_min(1e-30), 1.0)
    out = out * ratio.unsqueeze(1)
    return (torch.sign(v) * out).reshape(shape)


def sparse_direction(grad: torch.Tensor, topk: torch.Tensor) -> torch.Tensor:
    """sign(g) on each row's coordinates with |g| at or above the row's (1 − topk) quantile,
    divided by their number (an L1-unit step); 0 elsewhere."""
    g = _flat(grad)
    d = g.shape[1]
    index = ((1.0 - topk) * d).clamp(0, d - 1).long().unsqueeze(1)
    threshold = g.abs().sort(dim=1).values.gather(1, index)
    signs = torch.sign(g) * (g.abs() >= threshold)
    return (signs / (signs.abs().sum(dim=1, keepdim=True) + 1e-10)).reshape(grad.shape)


def nonzeros(delta: torch.Tensor) -> torch.Tensor:
    """‖δ‖₀ per row, in δ's dtype."""
    return (_flat(delta) != 0).sum(dim=1).to(delta.dtype)


class L1Schedule:
    """The stages, radii and step rules of one APGD-L1 run of ``steps`` iterations."""

    def __init__(self, threat: L1, steps: int, radius_of, large_eps: bool) -> None:
        mults = LARGE_EPS if large_eps else (1.0,)
        if large_eps:  # stage ends at ⌈0.3 N⌉, 2⌈0.3 N⌉ and N, none beyond N
            first = math.ceil(LARGE_EPS_SPLIT * steps)
            ends = [min(first, steps), min(2 * first, steps), steps]
            lengths = [b - a for a, b in zip([0, *ends[:-1]], ends, strict=True)]
        else:
            lengths = [steps]
        self.eps = [threat.eps * m for m in mults]
        self.radius = torch.tensor([radius_of(e) for e in self.eps], dtype=torch.float64)
        self.lengths = torch.tensor(lengths)
        self.every = (self.lengths.double() * CHECK_FRACTION).floor().long().clamp_min(1)
        self.last = len(lengths) - 1
        self.jumps = self.last  # evaluations spent moving between stages

    def fresh(self, x0: torch.Tensor, generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        """Stage 0: a Gaussian draw projected onto its ball ∩ box, η = its radius, topk 0.2."""
        m, dev = x0.shape[0], x0.device
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(dev)
        radius = self.radius[0].item()
        start = x0 + project_l1_box(noise, -x0, 1.0 - x0, radius)
        d = x0[0].numel()
        stage = torch.zeros(m, dtype=torch.long, device=dev)
        if self.last > 0:  # AutoAttack's large-ε stages start from the drawn point's sparsity
            sp = nonzeros(start - x0)
            topk = sp / d / TOPK_MARGIN
        else:
            sp = torch.full((m,), float(d), dtype=x0.dtype, device=dev)
            topk = torch.full((m,), TOPK_START, dtype=x0.dtype, device=dev)
        return {
            "x": start,
            "eta": torch.full((m,), self.eps[0], dtype=x0.dtype, device=dev),
            "stage": stage,
            "k": torch.zeros(m, dtype=torch.long, device=dev),
            "topk": topk,
            "sp_old": sp,
        }

    def radius_of(self, s: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.radius.to(s["stage"].device)[s["stage"]]

    def admissible(self, s: dict[str, torch.Tensor]) -> torch.Tensor:
        """Rows whose iterate lies in the ε-ball (the last stage): only they can fool."""
        return s["stage"] == self.last

    def checkpoint(
        self, s: dict[str, torch.Tensor], grad: torch.Tensor | None, x0: torch.Tensor
    ) -> torch.Tensor | None:
        """The sparsity check (module docs), on the rows at a multiple of their interval."""
        every = self.every.to(x0.device)[s["stage"]]
        check = (s["k"] > 0) & (s["k"] % every == 0)
        if not bool(check.any()):
            return grad
        d = x0[0].numel()
        full = torch.tensor(self.eps, dtype=x0.dtype, device=x0.device)[s["stage"]]
        sp = nonzeros(s["x_max"] - x0)
        sparser = check & (sp / s["sp_old"].clamp_min(1) < SPARSER)
        eta = torch.where(sparser, full, s["eta"] / STEP_DECAY)
        eta = torch.minimum(torch.maximum(eta, full / MIN_STEP_FRACTION), full)
        s["eta"] = torch.where(check, eta, s["eta"])
        s["topk"] = torch.where(check, sp / d / TOPK_MARGIN, s["topk"])
        s["sp_old"] = torch.where(check, sp, s["sp_old"])
        back = _per_sample(sparser, s["x"])
        s["x"] = torch.where(back, s["x_max"], s["x"])
        return torch.where(back, s["g_max"], grad) if grad is not None else None

    def step(
        self, s: dict[str, torch.Tensor], x0: torch.Tensor, grad: torch.Tensor
    ) -> torch.Tensor:
        """A sparse step for rows inside a stage; rows at the end of a stage move to the next
        one instead (from the stage's best point). Returns the rows that took a step."""
        lengths = self.lengths.to(x0.device)
        jump = (s["k"] >= lengths[s["stage"]]) & (s["stage"] < self.last)
        radius = self.radius_of(s)
        moved = s["x"] + self.direction(grad, s) * _per_sample(s["eta"], grad)
        if bool(jump.any()):
            s["stage"] = s["stage"] + jump
            radius = self.radius_of(s)
            moved = torch.where(_per_sample(jump, moved), s["x_max"], moved)
        s["x"] = x0 + project_l1_box(moved - x0, -x0, 1.0 - x0, radius)
        s["k"] = torch.where(jump, 0, s["k"] + 1)
        s["t"] = s["t"] + 1
        if bool(jump.any()):
            d = x0[0].numel()
            sp = nonzeros(s["x"] - x0)
            full = torch.tensor(self.eps, dtype=x0.dtype, device=x0.device)[s["stage"]]
            s["eta"] = torch.where(jump, full, s["eta"])
            s["topk"] = torch.where(jump, sp / d / TOPK_MARGIN, s["topk"])
            s["sp_old"] = torch.where(jump, sp, s["sp_old"])
            s["loss_max"] = torch.where(jump, -torch.inf, s["loss_max"])
        return ~jump

    @staticmethod
    def direction(grad: torch.Tensor, s: dict[str, torch.Tensor]) -> torch.Tensor:
        return sparse_direction(grad, s["topk"])
